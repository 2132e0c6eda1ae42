// Profiles: find a person by email, phone, external id or profile id (/app/profiles), and one
// person's consent per channel and timeline of events, messages, flow steps and skips with their
// reasons (/app/profiles/:id), all from the profiles API.
import { type FormEvent, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";

import { type ProfileQuery, useProfile, useProfileSearch, useSession, useTimeline } from "../api/hooks";
import type { ProfileSummary, TimelineItem } from "../api/types";
import { ErrorBox, FieldError } from "../components/FieldError";
import { formatMoney } from "../format";
import { ApiError } from "../api/client";

const KINDS = [
  { value: "email", label: "Email" },
  { value: "phone", label: "Phone" },
  { value: "external_id", label: "External id" },
  { value: "id", label: "Profile id" },
] as const;
type Kind = (typeof KINDS)[number]["value"];

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC" }) + " UTC";
}

function nameOf(p: ProfileSummary): string {
  const name = [p.first_name, p.last_name].filter(Boolean).join(" ");
  return name || p.email || p.phone || p.external_id || `Profile ${p.id}`;
}

/** The query a search form's values make; a profile id is not a query (it opens the profile). */
export function parseSearch(kind: Kind, text: string): { query: ProfileQuery } | { id: number } | { error: string } {
  const value = text.trim();
  if (!value) return { error: "expected something to search for" };
  if (kind === "id") {
    return /^[1-9]\d{0,17}$/.test(value) ? { id: Number(value) } : { error: `${JSON.stringify(value)} is not a profile id (a whole number from 1)` };
  }
  if (kind === "email" && !value.includes("@")) return { error: `${JSON.stringify(value)} is not an email address, like name@example.com` };
  return { query: { kind, value } };
}

export function ProfilesPage() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const kindParam = (KINDS.find((k) => params.has(k.value))?.value ?? null) as Exclude<Kind, "id"> | null;
  const query: ProfileQuery | null = kindParam ? { kind: kindParam, value: params.get(kindParam) ?? "" } : null;
  const [kind, setKind] = useState<Kind>(kindParam ?? "email");
  const [text, setText] = useState(query?.value ?? "");
  const [problem, setProblem] = useState<string | null>(null);
  const found = useProfileSearch(query);
  const serverProblem = found.error instanceof ApiError && found.error.status === 400 ? found.error.message : null;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const parsed = parseSearch(kind, text);
    if ("error" in parsed) return setProblem(`${kind}: ${parsed.error}`);
    setProblem(null);
    if ("id" in parsed) return navigate(`/profiles/${parsed.id}`);
    setParams({ [parsed.query.kind]: parsed.query.value });
  };

  return (
    <section aria-labelledby="profiles-title">
      <div className="page-head">
        <h1 id="profiles-title">Profiles</h1>
      </div>
      <form className="card search" role="search" onSubmit={submit} noValidate>
        <div className="field">
          <label htmlFor="search-kind">Search by</label>
          <select id="search-kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
            {KINDS.map((k) => (
              <option key={k.value} value={k.value}>
                {k.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field grow">
          <label htmlFor="search-value">{KINDS.find((k) => k.value === kind)?.label}</label>
          <input
            id="search-value"
            type={kind === "email" ? "email" : "text"}
            value={text}
            onChange={(e) => setText(e.target.value)}
            aria-invalid={!!(problem || serverProblem)}
            aria-describedby={problem || serverProblem ? "search-error" : undefined}
          />
        </div>
        <button type="submit" className="button-primary">
          Search
        </button>
      </form>
      <FieldError id="search-error" message={problem ?? serverProblem} />
      {found.isFetching && <p className="loading">Searching…</p>}
      {found.error && !serverProblem && <ErrorBox error={found.error} />}
      {found.data && found.data.length === 0 && (
        <p className="card empty" role="status">
          No profile has {query?.kind.replace("_", " ")} {query?.value}.
        </p>
      )}
      {found.data && found.data.length > 0 && (
        <ul className="card results" aria-label="Profiles found">
          {found.data.map((p) => (
            <li key={p.id}>
              <Link to={`/profiles/${p.id}`}>{nameOf(p)}</Link>
              <span className="muted">
                {" "}
                · {[p.email, p.phone, p.external_id].filter((v) => v && v !== nameOf(p)).join(" · ")}
                {p.email || p.phone || p.external_id ? " · " : ""}
                {p.order_count} {p.order_count === 1 ? "order" : "orders"}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

const FILTERS = [
  { value: "all", label: "Everything" },
  { value: "event", label: "Events" },
  { value: "message", label: "Messages" },
  { value: "flow_step", label: "Flow steps" },
  { value: "skip", label: "Skips only" },
] as const;
type Filter = (typeof FILTERS)[number]["value"];

export function isSkip(item: TimelineItem): boolean {
  return (item.type === "message" && (item.status === "skipped" || item.skip_reason !== null)) || (item.type === "flow_step" && item.kind === "skip");
}

// The run log's kinds (flows/runtime.py): what happened at the step.
const STEP_KINDS: Record<string, string> = { entered: "entered the flow", node: "reached", resolved: "resolved at", exit: "exited at", skip: "skipped at" };

function describe(item: TimelineItem): { title: string; detail: string; reason: string | null } {
  switch (item.type) {
    case "event":
      return {
        title: item.name,
        detail: [item.value ? `value ${item.value} ${item.currency ?? ""}`.trim() : null, item.source ? `from ${item.source}` : null].filter(Boolean).join(" · "),
        reason: null,
      };
    case "message":
      return {
        title: `${item.channel} message ${item.template ? `“${item.template}”` : ""} — ${item.status}`,
        detail: [item.subject, item.flow_id ? `flow ${item.flow_id}${item.node_id ? `, step ${item.node_id}` : ""}` : null].filter(Boolean).join(" · "),
        reason: item.skip_reason,
      };
    case "flow_step": {
      const what = STEP_KINDS[item.kind] ?? item.kind.replace(/_/g, " ");
      return {
        title: `${item.flow_name}: ${what}${item.node_id ? ` ${item.node_id}` : ""}`,
        detail: `flow ${item.flow_key}`,
        reason: item.reason,
      };
    }
  }
}

function TimelineList({ items }: { items: TimelineItem[] }) {
  const [filter, setFilter] = useState<Filter>("all");
  const shown = items.filter((i) => filter === "all" || (filter === "skip" ? isSkip(i) : i.type === filter));
  return (
    <section className="card" aria-labelledby="timeline-title">
      <div className="page-head">
        <h2 id="timeline-title">Timeline</h2>
        <div className="field inline">
          <label htmlFor="timeline-filter">Show</label>
          <select id="timeline-filter" value={filter} onChange={(e) => setFilter(e.target.value as Filter)}>
            {FILTERS.map((f) => (
              <option key={f.value} value={f.value}>
                {f.label}
              </option>
            ))}
          </select>
        </div>
      </div>
      {shown.length === 0 ? (
        <p className="muted">Nothing to show.</p>
      ) : (
        <ol className="timeline" aria-label="Timeline, newest first">
          {shown.map((item) => {
            const { title, detail, reason } = describe(item);
            return (
              <li key={`${item.type}-${item.id}`} className={`timeline-item timeline-${item.type}${isSkip(item) ? " is-skip" : ""}`} data-type={item.type}>
                <time dateTime={item.at}>{formatTime(item.at)}</time>
                <span className="timeline-kind">{item.type === "flow_step" ? "step" : item.type}</span>
                <div>
                  <div className="timeline-title">{title}</div>
                  {detail && <div className="muted">{detail}</div>}
                  {reason && (
                    <div className={item.type === "flow_step" && item.kind === "node" ? "muted" : "timeline-reason"}>
                      {item.type === "flow_step" && item.kind === "node" ? "Note" : "Reason"}: {reason}
                    </div>
                  )}
                </div>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}

export function ProfilePage() {
  const params = useParams();
  const id = Number(params.id);
  const valid = Number.isInteger(id) && id > 0;
  const { data: session } = useSession();
  const profile = useProfile(valid ? id : 0);
  const timeline = useTimeline(valid ? id : 0);
  if (!valid) return <ErrorBox error={new Error(`profile_id: ${JSON.stringify(params.id)} is not a profile id`)} />;
  if (profile.isPending) return <p className="loading">Loading profile…</p>;
  if (profile.isError) return <ErrorBox error={profile.error} />;
  const p = profile.data;
  return (
    <section aria-labelledby="profile-title">
      <div className="page-head">
        <div>
          <Link to="/profiles" className="button-quiet">
            ← Profiles
          </Link>
          <h1 id="profile-title">{nameOf(p)}</h1>
          <p className="muted">Profile {p.id}</p>
        </div>
      </div>
      <div className="profile-grid">
        <section className="card" aria-labelledby="facts-title">
          <h2 id="facts-title">Who</h2>
          <dl className="facts">
            <dt>Email</dt>
            <dd>{p.email ?? "–"}</dd>
            <dt>Phone</dt>
            <dd>{p.phone ?? "–"}</dd>
            <dt>External id</dt>
            <dd>{p.external_id ?? "–"}</dd>
            <dt>Orders</dt>
            <dd>{p.aggregates.order_count}</dd>
            <dt>Spent</dt>
            <dd>{formatMoney(p.aggregates.total_spent ?? "0", session?.workspace.currency ?? "USD")}</dd>
            <dt>Last active</dt>
            <dd>{formatTime(p.aggregates.last_active_at)}</dd>
          </dl>
        </section>
        <section className="card" aria-labelledby="consent-title">
          <h2 id="consent-title">Consent</h2>
          <table className="table compact">
            <caption className="visually-hidden">Consent per channel</caption>
            <thead>
              <tr>
                <th scope="col">Channel</th>
                <th scope="col">Status</th>
                <th scope="col">Since</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(p.consent).map(([channel, c]) => (
                <tr key={channel} data-channel={channel}>
                  <th scope="row">{channel}</th>
                  <td>
                    <span className={`consent consent-${c.status}`}>{c.status.replace(/_/g, " ")}</span>
                  </td>
                  <td>{formatTime(c.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      </div>
      {timeline.isPending && <p className="loading">Loading timeline…</p>}
      <ErrorBox error={timeline.error} />
      {timeline.data && <TimelineList items={timeline.data.items} />}
    </section>
  );
}
