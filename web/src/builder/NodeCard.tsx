// One step on the canvas: its type, id and settings, live counts, problems, and one handle per exit.
import { Handle, type NodeProps, Position } from "@xyflow/react";
import { createContext, memo, useContext } from "react";

import type { FlowNode, NodeCount } from "../api/types";
import { summary } from "./fields";
import { exitsOf } from "./graph";

export interface CanvasData {
  byId: Map<string, FlowNode>;
  counts: Map<string, NodeCount>;
  problems: Record<string, Record<string, string>>;
  entry: string;
  onPath: Set<string>;
}

export const CanvasContext = createContext<CanvasData>({ byId: new Map(), counts: new Map(), problems: {}, entry: "", onPath: new Set() });

export const TYPE_LABELS: Record<string, string> = {
  delay: "Delay",
  wait: "Wait",
  split: "Split",
  trigger_split: "Trigger split",
  random: "A/B split",
  send: "Send",
  update_profile: "Update profile",
  list: "List",
  audience: "Audience",
  webhook: "Webhook",
  alert: "Alert",
  start_flow: "Start flow",
  consent: "Consent",
  exit: "Exit",
};

function NodeCardView({ id, selected }: NodeProps) {
  const { byId, counts, problems, entry, onPath } = useContext(CanvasContext);
  const node = byId.get(id);
  if (!node) return null;
  const exits = exitsOf(node);
  const count = counts.get(id);
  const issues = Object.entries(problems[id] ?? {});
  return (
    <div
      className={`flow-node flow-node-${node.type}${selected ? " is-selected" : ""}${issues.length ? " has-problems" : ""}${onPath.has(id) ? " on-path" : ""}`}
      data-node-id={id}
    >
      {/* Handles are for the pointer; the side panel's exit selects are the keyboard's way. */}
      <Handle type="target" position={Position.Top} />
      <div className="flow-node-head">
        <span className="flow-node-type">{TYPE_LABELS[node.type] ?? node.type}</span>
        {id === entry && <span className="flow-node-entry">entry</span>}
      </div>
      <div className="flow-node-id">{id}</div>
      {summary(node) && <div className="flow-node-summary">{summary(node)}</div>}
      <div className="flow-node-counts" data-testid={`counts-${id}`}>
        <span data-count="entered">{count?.entered ?? 0}</span> entered
        {(count?.waiting ?? 0) > 0 && <> · {count?.waiting} waiting</>}
      </div>
      {issues.length > 0 && (
        <div className="flow-node-problem" data-testid={`problem-${id}`}>
          {issues.length === 1 ? `${issues[0]?.[0]}: ${issues[0]?.[1]}` : `${issues.length} problems`}
        </div>
      )}
      {exits.length > 1 && (
        <div className="flow-node-exits" aria-hidden="true">
          {exits.map((exit) => (
            <span key={exit.handle}>{exit.label}</span>
          ))}
        </div>
      )}
      {exits.map((exit, i) => (
        <Handle
          key={exit.handle}
          type="source"
          id={exit.handle}
          position={Position.Bottom}
          style={{ left: `${((i + 1) / (exits.length + 1)) * 100}%` }}
        />
      ))}
    </div>
  );
}

export const NodeCard = memo(NodeCardView);
