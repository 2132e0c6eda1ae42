import type { FlowStatus } from "../api/types";

const LABELS: Record<FlowStatus, string> = {
  draft: "Draft",
  manual: "Manual",
  live: "Live",
  paused: "Paused",
};

export function StatusBadge({ status }: { status: FlowStatus }) {
  return <span className={`badge badge-${status}`}>{LABELS[status] ?? status}</span>;
}
