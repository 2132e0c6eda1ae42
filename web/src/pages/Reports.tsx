// Reports: every flow's summary (/reports), and one flow per node with its holdout and A/B panels
// (/flows/:id/report). Each table can be downloaded as the API's CSV.
import { Link, useParams } from "react-router-dom";

import { useFlow } from "../api/hooks";

import {
  type ExperimentsReport,
  type FlowDetailReport,
  formatRate,
  type Incremental,
  useExperiments,
  useFlowDetailReport,
  useFlowsReport,
} from "../api/reports";
import { Chart } from "../components/Chart";
import { formatCount, formatMoney } from "../format";

export function ReportsPage() {
  const flows = useFlowsReport();
  const currency = flows.data?.currency ?? "USD";
  const rows = flows.data?.flows ?? [];
  return (
    <>
      <div className="page-head">
        <h1>Reports</h1>
        <div className="links">
          <a className="button-quiet" href="/api/v1/reports/flows?format=csv" download>
            Download flows CSV
          </a>
          <a className="button-quiet" href="/api/v1/reports/store?format=csv" download>
            Download store CSV
          </a>
        </div>
      </div>
      {flows.error && (
        <p className="error-box" role="alert">
          Could not load the report: {flows.error.message}
        </p>
      )}
      {flows.isPending ? (
        <p className="loading">Loading…</p>
      ) : rows.length === 0 ? (
        <p className="card empty">No flows yet.</p>
      ) : (
        <table className="table">
          <caption className="visually-hidden">Every flow's performance</caption>
          <thead>
            <tr>
              <th scope="col">Flow</th>
              <th scope="col">Entrants</th>
              <th scope="col">Messages sent</th>
              <th scope="col">Conversions</th>
              <th scope="col">Revenue</th>
              <th scope="col">Per recipient</th>
              <th scope="col">Incremental revenue</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((f) => (
              <tr key={f.flow_id} data-flow-key={f.key}>
                <th scope="row">
                  <Link to={`/flows/${f.flow_id}/report`}>{f.name}</Link>
                </th>
                <td>{formatCount(f.entrants)}</td>
                <td>{formatCount(f.messages_sent)}</td>
                <td>{formatCount(f.conversions)}</td>
                <td>{formatMoney(f.attributed_revenue, currency)}</td>
                <td>{formatMoney(f.revenue_per_recipient, currency)}</td>
                <td>
                  {f.incremental_status === "ready" && f.incremental_revenue !== null
                    ? formatMoney(f.incremental_revenue, currency)
                    : f.entrants_still_needed !== null
                      ? `Not enough data yet (${formatCount(f.entrants_still_needed)} more entrants)`
                      : "Not enough data yet"}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function HoldoutPanel({ incremental, currency }: { incremental: Incremental; currency: string }) {
  const days = Math.round(incremental.window_seconds / 86400);
  return (
    <section className="card" aria-labelledby="holdout-heading" data-testid="holdout">
      <h2 id="holdout-heading">Holdout: what the flow added</h2>
      <p className="hint">
        Entrants held out get no messages; the difference with those who got them, over {days} day{days === 1 ? "" : "s"}, is
        the flow's own effect.
      </p>
      {incremental.status === "ready" ? (
        <dl className="facts">
          <dt>Incremental revenue</dt>
          <dd data-testid="incremental-revenue">{formatMoney(incremental.incremental_revenue ?? undefined, currency)}</dd>
          <dt>95 % confidence interval</dt>
          <dd data-testid="incremental-interval">
            {incremental.incremental_revenue_interval
              ? incremental.incremental_revenue_interval.map((v) => formatMoney(v, currency)).join(" to ")
              : "–"}
          </dd>
          <dt>Relative lift</dt>
          <dd>{formatRate(incremental.relative_lift)}</dd>
          <dt>Significant</dt>
          <dd>{incremental.significant ? "Yes" : "Not yet"}</dd>
        </dl>
      ) : (
        <p className="notice notice-waiting" data-testid="holdout-not-enough">
          Not enough data yet
          {incremental.entrants_still_needed !== null
            ? `: ${formatCount(incremental.entrants_still_needed)} more entrants needed${
                incremental.holdout_entrants_needed !== null ? ` (${formatCount(incremental.holdout_entrants_needed)} in the holdout)` : ""
              }.`
            : "."}
          {incremental.reason && ` ${capitalise(incremental.reason)}.`}
        </p>
      )}
            <table className="table nowrap-cells">
        <caption className="visually-hidden">Treated and holdout groups</caption>
        <thead>
          <tr>
            <th scope="col">Group</th>
            <th scope="col">Entrants</th>
            <th scope="col">Conversions</th>
            <th scope="col">Rate</th>
            <th scope="col">Per entrant</th>
          </tr>
        </thead>
        <tbody>
          {(
            [
              ["Got messages", incremental.treated],
              ["Held out", incremental.holdout],
            ] as const
          ).map(([label, arm]) => (
            <tr key={label}>
              <th scope="row">{label}</th>
              <td>{formatCount(arm.entrants)}</td>
              <td>{formatCount(arm.conversions)}</td>
              <td>{formatRate(arm.conversion_rate)}</td>
              <td>{formatMoney(arm.revenue_per_entrant, currency)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

const SPLIT_STATUS: Record<string, string> = {
  winner: "Winner named",
  no_winner_yet: "No winner yet",
  not_enough_data: "Not enough data yet",
};

function ExperimentsPanel({ report, id }: { report: ExperimentsReport | undefined; id: number }) {
  return (
    <section className="card" aria-labelledby="ab-heading" data-testid="experiments">
      <div className="page-head">
        <h2 id="ab-heading">A/B tests</h2>
        <a href={`/api/v1/reports/flows/${id}/experiments?format=csv`} download>
          Download A/B CSV
        </a>
      </div>
      {!report ? (
        <p className="loading">Loading…</p>
      ) : report.splits.length === 0 ? (
        <p className="muted">This flow has no random split, so nothing is being tested.</p>
      ) : (
        report.splits.map((split) => (
          <div key={split.node_id}>
            <h3>
              Split {split.node_id}: {SPLIT_STATUS[split.status] ?? split.status}
              {split.winner && ` (${split.winner})`}
            </h3>
            <p className="hint">
              {split.reason}
              {split.status === "not_enough_data" && ` ${formatCount(split.conversions_needed)} more conversions needed.`}
            </p>
            <table className="table">
              <caption className="visually-hidden">Branches of split {split.node_id}</caption>
              <thead>
                <tr>
                  <th scope="col">Branch</th>
                  <th scope="col">Recipients</th>
                  <th scope="col">Conversions</th>
                  <th scope="col">{report.metric.replaceAll("_", " ")}</th>
                  <th scope="col">p-value</th>
                  <th scope="col">Chance to be best</th>
                </tr>
              </thead>
              <tbody>
                {split.variants.map((v) => (
                  <tr key={v.variant}>
                    <th scope="row">
                      {v.variant} ({v.percent} %)
                    </th>
                    <td>{formatCount(v.recipients)}</td>
                    <td>{formatCount(v.conversions)}</td>
                    <td>{v.value}</td>
                    <td>{v.p_value ?? "–"}</td>
                    <td>{formatRate(v.probability_best)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))
      )}
    </section>
  );
}

function FlowTotals({ report }: { report: FlowDetailReport }) {
  const c = report.currency;
  const facts: Array<[string, string, string]> = [
    ["Entrants", formatCount(report.entrants), "entrants"],
    ["Messages sent", formatCount(report.messages_sent), "messages-sent"],
    ["Conversions", formatCount(report.conversions), "conversions"],
    ["Revenue", formatMoney(report.attributed_revenue, c), "revenue"],
    ["Per recipient", formatMoney(report.revenue_per_recipient, c), "per-recipient"],
    ["Open rate", formatRate(report.open_rate), "open-rate"],
    ["Click rate", formatRate(report.click_rate), "click-rate"],
  ];
  return (
    <dl className="tiles" aria-label="Flow totals">
      {facts.map(([label, value, id]) => (
        <div className="tile" key={id}>
          <dt>{label}</dt>
          <dd data-testid={`flow-${id}`}>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

export function FlowReportPage() {
  const id = Number(useParams().id);
  const report = useFlowDetailReport(id);
  const experiments = useExperiments(id);
  const flow = useFlow(id);
  if (report.error)
    return (
      <p className="error-box" role="alert">
        Could not load the report: {report.error.message}
      </p>
    );
  if (!report.data) return <p className="loading">Loading…</p>;
  const r = report.data;
  // The steps in the flow's own order (the report lists them by id), any others after.
  const order = new Map((flow.data?.definition.nodes ?? []).map((n, i) => [n.id, i]));
  const nodes = Object.entries(r.nodes).sort(([a], [b]) => (order.get(a) ?? order.size) - (order.get(b) ?? order.size));
  return (
    <>
      <div className="page-head">
        <h1>Report: {r.name}</h1>
        <div className="links">
          <Link to={`/flows/${id}`}>Open in builder</Link>
          <a href={`/api/v1/reports/flows/${id}?format=csv`} download>
            Download report CSV
          </a>
        </div>
      </div>
      <FlowTotals report={r} />
      <div className="grid-2">
        <section className="card" aria-labelledby="nodes-chart-heading">
          <h2 id="nodes-chart-heading">Sent and converted per step</h2>
          <Chart
            caption="Messages sent and conversions per step"
            kind="bar"
            labels={nodes.map(([node]) => node)}
            series={[
              { label: "Sent", values: nodes.map(([, n]) => n.sent) },
              { label: "Conversions", values: nodes.map(([, n]) => n.conversions) },
            ]}
            format={(v) => formatCount(v)}
          />
        </section>
        <HoldoutPanel incremental={r.incremental} currency={r.currency} />
      </div>
      <section className="card spaced" aria-labelledby="nodes-heading">
        <h2 id="nodes-heading">Per step</h2>
        <table className="table nowrap-cells" aria-labelledby="nodes-heading">
          <thead>
            <tr>
              <th scope="col">Step</th>
              <th scope="col">Entrants</th>
              <th scope="col">Sent</th>
              <th scope="col">Opened</th>
              <th scope="col">Clicked</th>
              <th scope="col">Conversions</th>
              <th scope="col">Revenue</th>
              <th scope="col">Bounce rate</th>
              <th scope="col">Complaint rate</th>
            </tr>
          </thead>
          <tbody>
            {nodes.map(([node, n]) => (
              <tr key={node} data-node={node}>
                <th scope="row">{node}</th>
                <td>{formatCount(n.entrants)}</td>
                <td>{formatCount(n.sent)}</td>
                <td>{formatCount(n.opened)}</td>
                <td>{formatCount(n.clicked)}</td>
                <td>{formatCount(n.conversions)}</td>
                <td>{formatMoney(n.attributed_revenue, r.currency)}</td>
                <td>{formatRate(n.bounce_rate)}</td>
                <td>{formatRate(n.complaint_rate)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <ExperimentsPanel report={experiments.data} id={id} />
    </>
  );
}
