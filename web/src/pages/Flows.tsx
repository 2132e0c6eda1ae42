import { Link, useLocation } from "react-router-dom";

import { useFlowReports, useFlows, useSession } from "../api/hooks";
import { ErrorBox } from "../components/FieldError";
import { StatusBadge } from "../components/StatusBadge";
import { formatCount, formatDate, formatMoney } from "../format";

export function FlowsPage() {
  const { data: session } = useSession();
  const flows = useFlows();
  const reports = useFlowReports(flows.data ?? []);
  const location = useLocation();
  const installed = (location.state as { installed?: string } | null)?.installed;
  const currency = session?.workspace.currency ?? "USD";

  return (
    <section aria-labelledby="flows-title">
      <div className="page-head">
        <h1 id="flows-title">Flows</h1>
        {session?.can_write && (
          <Link className="button-primary" to="/library">
            Install from library
          </Link>
        )}
      </div>
      {installed && (
        <div className="notice" role="status">
          Installed <strong>{installed}</strong> as a draft.
        </div>
      )}
      {flows.isPending && <p className="loading">Loading flows…</p>}
      <ErrorBox error={flows.error} />
      {flows.data && flows.data.length === 0 && (
        <div className="card empty">
          <p>No flows yet.</p>
          <p>
            Start from a ready-made one in the <Link to="/library">flow library</Link>.
          </p>
        </div>
      )}
      {flows.data && flows.data.length > 0 && (
        <table className="table">
          <caption className="visually-hidden">Flows of {session?.workspace.name}</caption>
          <thead>
            <tr>
              <th scope="col">Flow</th>
              <th scope="col">Status</th>
              <th scope="col">Trigger</th>
              <th scope="col" className="num">
                Entrants
              </th>
              <th scope="col" className="num">
                Revenue
              </th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {flows.data.map((flow, i) => {
              const report = reports[i]?.data;
              return (
                <tr key={flow.id} data-flow-key={flow.key}>
                  <th scope="row">
                    <Link className="flow-name" to={`/flows/${flow.id}`}>
                      {flow.name}
                    </Link>
                    <span className="muted">
                      {flow.key} · v{flow.version}
                    </span>
                  </th>
                  <td>
                    <StatusBadge status={flow.status} />
                  </td>
                  <td>{flow.trigger_event ?? <span className="muted">schedule</span>}</td>
                  <td className="num">{formatCount(report?.entrants)}</td>
                  <td className="num">{formatMoney(report?.attributed_revenue, currency)}</td>
                  <td>{formatDate(flow.updated_at)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
