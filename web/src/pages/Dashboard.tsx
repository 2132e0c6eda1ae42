// The landing page: automation revenue and its share of the store's, the flows that earn most per
// recipient, messages sent and skipped, and deliverability against the bulk-sender thresholds.
import { useState } from "react";
import { Link } from "react-router-dom";

import { useSession } from "../api/hooks";
import {
  type FlowDetailReport,
  formatRate,
  health,
  type Interval,
  THRESHOLDS,
  useFlowDetailReports,
  useFlowsReport,
  useStoreReport,
} from "../api/reports";
import { Chart } from "../components/Chart";
import { HealthBadge } from "../components/HealthBadge";
import { formatCount, formatMoney } from "../format";

const INTERVALS: Interval[] = ["day", "week", "month"];

export function DashboardPage() {
  const [interval, setInterval] = useState<Interval>("week");
  const { data: session } = useSession();
  const store = useStoreReport(interval);
  const flows = useFlowsReport();
  const rows = flows.data?.flows ?? [];
  const details = useFlowDetailReports(rows.map((f) => f.flow_id));
  const currency = store.data?.currency ?? flows.data?.currency ?? session?.workspace.currency ?? "USD";
  const money = (value: number) => formatMoney(String(value), currency);
  const periods = store.data?.periods[interval] ?? [];
  const top = [...rows].sort((a, b) => Number(b.revenue_per_recipient) - Number(a.revenue_per_recipient)).slice(0, 5);
  const loaded = details.map((d) => d.data).filter((d): d is FlowDetailReport => d !== undefined);
  const skipped = new Map<string, number>();
  for (const report of loaded) for (const [reason, count] of Object.entries(report.skipped)) skipped.set(reason, (skipped.get(reason) ?? 0) + count);
  const sent = rows.reduce((sum, f) => sum + f.messages_sent, 0);

  return (
    <>
      <div className="page-head">
        <h1>Dashboard</h1>
        <div className="segmented" role="group" aria-label="Period length">
          {INTERVALS.map((value) => (
            <button key={value} type="button" aria-pressed={interval === value} onClick={() => setInterval(value)}>
              By {value}
            </button>
          ))}
        </div>
      </div>
      {(store.error || flows.error) && (
        <p className="error-box" role="alert">
          Could not load the reports: {(store.error ?? flows.error)?.message}
        </p>
      )}
      {store.data && (
        <dl className="tiles" aria-label="Store totals">
          <div className="tile">
            <dt>Store revenue</dt>
            <dd data-testid="store-revenue">{formatMoney(store.data.revenue, currency)}</dd>
          </div>
          <div className="tile">
            <dt>Automation revenue</dt>
            <dd data-testid="flow-revenue">{formatMoney(store.data.flow_revenue, currency)}</dd>
          </div>
          <div className="tile">
            <dt>Automation share</dt>
            <dd data-testid="flow-share">{formatRate(store.data.flow_revenue_share)}</dd>
          </div>
          <div className="tile">
            <dt>Orders</dt>
            <dd data-testid="orders">{formatCount(store.data.orders)}</dd>
          </div>
        </dl>
      )}
      <div className="grid-2">
        <section className="card" aria-labelledby="revenue-heading">
          <h2 id="revenue-heading">Revenue over time</h2>
          {store.isPending ? (
            <p className="loading">Loading…</p>
          ) : (
            <Chart
              caption={`Store and automation revenue by ${interval}`}
              kind="line"
              labels={periods.map((p) => p.period)}
              series={[
                { label: "Store revenue", values: periods.map((p) => Number(p.revenue)) },
                { label: "Automation revenue", values: periods.map((p) => Number(p.automation_revenue)) },
              ]}
              format={money}
            />
          )}
        </section>
        <section className="card" aria-labelledby="share-heading">
          <h2 id="share-heading">Automation share of store revenue</h2>
          {store.isPending ? (
            <p className="loading">Loading…</p>
          ) : (
            <Chart
              caption={`Automation share of store revenue by ${interval}`}
              kind="bar"
              labels={periods.map((p) => p.period)}
              series={[{ label: "Automation share", values: periods.map((p) => Number(p.automation_share)) }]}
              format={(v) => `${Number((v * 100).toFixed(1))} %`}
            />
          )}
        </section>
      </div>
      <div className="grid-2">
        <section className="card" aria-labelledby="top-heading">
          <h2 id="top-heading">Top flows by revenue per recipient</h2>
          {flows.isPending ? (
            <p className="loading">Loading…</p>
          ) : top.length === 0 ? (
            <p className="muted">No flows yet.</p>
          ) : (
            <table className="table" aria-labelledby="top-heading">
              <thead>
                <tr>
                  <th scope="col">Flow</th>
                  <th scope="col">Recipients</th>
                  <th scope="col">Revenue</th>
                  <th scope="col">Per recipient</th>
                </tr>
              </thead>
              <tbody>
                {top.map((f) => (
                  <tr key={f.flow_id} data-flow-key={f.key}>
                    <th scope="row">
                      <Link to={`/flows/${f.flow_id}/report`}>{f.name}</Link>
                    </th>
                    <td>{formatCount(f.recipients)}</td>
                    <td>{formatMoney(f.attributed_revenue, currency)}</td>
                    <td>{formatMoney(f.revenue_per_recipient, currency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section className="card" aria-labelledby="messages-heading">
          <h2 id="messages-heading">Messages sent and skipped</h2>
          <p>
            <strong data-testid="messages-sent">{formatCount(sent)}</strong> sent by {formatCount(rows.length)} flow{rows.length === 1 ? "" : "s"}.
          </p>
          {loaded.length < rows.length ? (
            <p className="loading">Loading…</p>
          ) : skipped.size === 0 ? (
            <p className="muted">Nothing skipped.</p>
          ) : (
            <table className="table" aria-label="Skipped messages by reason">
              <thead>
                <tr>
                  <th scope="col">Skipped because</th>
                  <th scope="col">Messages</th>
                </tr>
              </thead>
              <tbody>
                {[...skipped.entries()]
                  .sort((a, b) => b[1] - a[1])
                  .map(([reason, count]) => (
                    <tr key={reason} data-reason={reason}>
                      <th scope="row">{reason.replaceAll("_", " ")}</th>
                      <td>{formatCount(count)}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
      <section className="card" aria-labelledby="health-heading">
        <h2 id="health-heading">Deliverability health</h2>
        <ul className="hint">
          {THRESHOLDS.map((t) => (
            <li key={t.metric}>
              {t.label}: {t.text}
            </li>
          ))}
        </ul>
        {loaded.length === 0 ? (
          <p className="muted">{rows.length === 0 ? "No messages sent yet." : "Loading…"}</p>
        ) : (
          <table className="table nowrap-cells" aria-labelledby="health-heading">
            <thead>
              <tr>
                <th scope="col">Flow</th>
                <th scope="col">Sent</th>
                {THRESHOLDS.map((t) => (
                  <th key={t.metric} scope="col">
                    {t.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {loaded.map((r) => (
                <tr key={r.flow_id} data-health-flow={r.key}>
                  <th scope="row">{r.name}</th>
                  <td>{formatCount(r.messages_sent)}</td>
                  {THRESHOLDS.map((t) => (
                    <td key={t.metric} data-metric={t.metric}>
                      {formatRate(r[t.metric])} <HealthBadge status={health(r[t.metric], t)} />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
