import { useEffect, useRef } from "react";
import { useNavigate, useParams } from "react-router-dom";

import { useFlows, useInstall, useLibrary, useLibraryPreview, useSession } from "../api/hooks";
import type { FlowNode } from "../api/types";
import { ErrorBox } from "../components/FieldError";
import { formatDuration } from "../format";

function describe(node: FlowNode): string {
  switch (node.type) {
    case "delay":
      return `Wait ${formatDuration(String(node.duration ?? ""))}`;
    case "send":
      return `Send ${String(node.channel ?? "")} · template ${String(node.template ?? "")}`;
    case "exit":
      return `Exit${node.reason ? ` (${String(node.reason)})` : ""}`;
    default:
      return node.type.charAt(0).toUpperCase() + node.type.slice(1);
  }
}

function Preview({ name }: { name: string }) {
  const { data: session } = useSession();
  const preview = useLibraryPreview(name);
  const install = useInstall();
  const navigate = useNavigate();
  const canWrite = session?.can_write ?? false;

  if (preview.isPending) return <p className="loading">Loading preview…</p>;
  if (preview.isError) return <ErrorBox error={preview.error} />;
  const flow = preview.data.definition;
  return (
    <article className="card preview" aria-labelledby="preview-title">
      <h2 id="preview-title">{flow.name}</h2>
      <p>{preview.data.purpose}</p>
      <ErrorBox error={install.error} />
      <div className="actions">
        <button
          type="button"
          className="button-primary"
          disabled={!canWrite || install.isPending}
          aria-describedby={canWrite ? undefined : "viewer-note"}
          onClick={() =>
            install.mutate(
              { name, live: false },
              { onSuccess: (done) => navigate("/flows", { state: { installed: done.name } }) },
            )
          }
        >
          {install.isPending ? "Installing…" : "Install as draft"}
        </button>
        {!canWrite && (
          <p id="viewer-note" className="muted">
            Viewers can look but not install: ask an owner or marketer.
          </p>
        )}
      </div>
      <dl className="facts">
        <dt>Trigger</dt>
        <dd>{flow.trigger.event ?? flow.trigger.type}</dd>
        <dt>Steps</dt>
        <dd>{flow.nodes.length}</dd>
      </dl>
      <ol className="steps" aria-label="Steps">
        {flow.nodes.map((node) => (
          <li key={node.id} className={`step step-${node.type}`}>
            <span className="step-type">{node.type}</span>
            <span>{describe(node)}</span>
            <code className="muted">{node.id}</code>
          </li>
        ))}
      </ol>
    </article>
  );
}

export function LibraryPage() {
  const library = useLibrary();
  const flows = useFlows();
  const { name } = useParams();
  const navigate = useNavigate();
  const installed = new Set((flows.data ?? []).map((f) => f.key));
  const selected = useRef<HTMLButtonElement | null>(null);
  // A flow opened by its address (/app/library/NAME) is scrolled into its list's view.
  // (A block body: newer Chromium's scrollIntoView returns a Promise, which React would take for
  // the effect's cleanup function.)
  useEffect(() => {
    selected.current?.scrollIntoView?.({ block: "nearest" });
  }, [name, library.data]);

  return (
    <section aria-labelledby="library-title">
      <div className="page-head">
        <h1 id="library-title">Flow library</h1>
      </div>
      <p className="lead">Ready-made flows: preview one, then install it as a draft to adjust and publish.</p>
      {library.isPending && <p className="loading">Loading the library…</p>}
      <ErrorBox error={library.error} />
      <div className="split">
        <ul className="library-list" aria-label="Library flows">
          {(library.data ?? []).map((flow) => (
            <li key={flow.name}>
              <button
                type="button"
                ref={flow.name === name ? selected : undefined}
                className={`library-item${flow.name === name ? " selected" : ""}`}
                aria-current={flow.name === name ? "true" : undefined}
                onClick={() => navigate(`/library/${encodeURIComponent(flow.name)}`)}
              >
                <span className="flow-name">
                  {flow.name}
                  {installed.has(flow.name) && <span className="badge badge-installed">Installed</span>}
                </span>
                <span className="muted">{flow.purpose}</span>
              </button>
            </li>
          ))}
        </ul>
        <div className="preview-pane">
          {name ? <Preview name={name} /> : <p className="muted">Choose a flow to preview it.</p>}
        </div>
      </div>
    </section>
  );
}
