// The flow definition <-> the canvas graph, pure: which exits a node has, where they lead, the
// layered layout, adding and deleting nodes, and the server's "nodes[N].field: ..." errors per node.
import type { FlowDefinition, FlowNode } from "../api/types";

/** One way out of a node: `handle` names the field that holds the target ("next", "branches.1"). */
export interface Exit {
  handle: string;
  label: string;
}

export interface Point {
  x: number;
  y: number;
}

export interface GraphEdge {
  id: string;
  source: string;
  sourceHandle: string;
  target: string;
  label: string;
}

function branchesOf(node: FlowNode): Record<string, unknown>[] {
  return Array.isArray(node.branches) ? (node.branches as Record<string, unknown>[]) : [];
}

/** The exits a node of this type has, in the order the canvas draws them. */
export function exitsOf(node: FlowNode): Exit[] {
  switch (node.type) {
    case "exit":
      return [];
    case "wait":
      return [
        { handle: "on_event", label: "event" },
        { handle: "on_timeout", label: "timeout" },
      ];
    case "trigger_split":
      return [
        { handle: "yes", label: "yes" },
        { handle: "no", label: "no" },
      ];
    case "split":
      if (Array.isArray(node.branches)) {
        return [
          ...branchesOf(node).map((_, i) => ({ handle: `branches.${i}`, label: `branch ${i + 1}` })),
          { handle: "default", label: "default" },
        ];
      }
      return [
        { handle: "yes", label: "yes" },
        { handle: "no", label: "no" },
      ];
    case "random":
      return branchesOf(node).map((b, i) => ({
        handle: `branches.${i}`,
        label: `${String.fromCharCode(65 + i)} ${typeof b.percent === "number" ? `${b.percent}%` : ""}`.trim(),
      }));
    case "webhook":
      return [
        { handle: "next", label: "next" },
        { handle: "on_failure", label: "failure" },
      ];
    default:
      return [{ handle: "next", label: "next" }];
  }
}

/** Where an exit leads, or null when it is not connected. */
export function targetOf(node: FlowNode, handle: string): string | null {
  const branch = /^branches\.(\d+)$/.exec(handle);
  const value = branch ? branchesOf(node)[Number(branch[1])]?.next : node[handle];
  return typeof value === "string" && value !== "" ? value : null;
}

/** A copy of the node with this exit leading to `target` (null: disconnected). */
export function withTarget(node: FlowNode, handle: string, target: string | null): FlowNode {
  const branch = /^branches\.(\d+)$/.exec(handle);
  if (branch) {
    const i = Number(branch[1]);
    const branches = branchesOf(node).map((b, n) => {
      if (n !== i) return b;
      const { next: _old, ...rest } = b;
      return target === null ? rest : { ...rest, next: target };
    });
    return { ...node, branches };
  }
  const { [handle]: _old, ...rest } = node;
  return (target === null ? rest : { ...rest, [handle]: target }) as FlowNode;
}

export function edgesOf(definition: FlowDefinition): GraphEdge[] {
  const ids = new Set(definition.nodes.map((n) => n.id));
  const edges: GraphEdge[] = [];
  for (const node of definition.nodes) {
    const exits = exitsOf(node);
    for (const exit of exits) {
      const target = targetOf(node, exit.handle);
      if (target !== null && ids.has(target)) {
        // A lone "next" needs no label; branches say which way they go.
        const label = exits.length > 1 ? exit.label : "";
        edges.push({ id: `${node.id}:${exit.handle}`, source: node.id, sourceHandle: exit.handle, target, label });
      }
    }
  }
  return edges;
}

/** The node and exit of an edge id "<node id>:<exit>" (node ids may hold ":", exit names never do). */
export function edgeEnds(id: string): { source: string; handle: string } {
  const cut = id.lastIndexOf(":");
  return { source: id.slice(0, cut), handle: id.slice(cut + 1) };
}

export const LAYER_GAP = 125;
export const COLUMN_GAP = 260;

/** Layers by breadth-first depth from the entry; nodes it cannot reach go in one last layer. Each
 * layer is centred on x = 0, its nodes in the order the search met them. */
export function layout(definition: FlowDefinition): Record<string, Point> {
  const byId = new Map(definition.nodes.map((n) => [n.id, n]));
  const depth = new Map<string, number>();
  const layers: string[][] = [];
  const queue: string[] = [];
  if (byId.has(definition.entry)) {
    depth.set(definition.entry, 0);
    queue.push(definition.entry);
  }
  while (queue.length > 0) {
    const id = queue.shift() as string;
    const d = depth.get(id) as number;
    (layers[d] ??= []).push(id);
    const node = byId.get(id) as FlowNode;
    for (const exit of exitsOf(node)) {
      const target = targetOf(node, exit.handle);
      if (target !== null && byId.has(target) && !depth.has(target)) {
        depth.set(target, d + 1);
        queue.push(target);
      }
    }
  }
  const unreached = definition.nodes.filter((n) => !depth.has(n.id)).map((n) => n.id);
  if (unreached.length > 0) layers.push(unreached);
  const out: Record<string, Point> = {};
  layers.forEach((layer, d) => {
    layer.forEach((id, i) => {
      out[id] = { x: (i - (layer.length - 1) / 2) * COLUMN_GAP, y: d * LAYER_GAP };
    });
  });
  return out;
}

/** The palette: what a new node of each type starts as (its exits unconnected). */
export const PALETTE: { type: string; label: string }[] = [
  { type: "delay", label: "Delay" },
  { type: "wait", label: "Wait for event" },
  { type: "split", label: "Split (condition)" },
  { type: "random", label: "A/B split (%)" },
  { type: "send", label: "Send message" },
  { type: "update_profile", label: "Update profile" },
  { type: "webhook", label: "Webhook" },
  { type: "exit", label: "Exit" },
];

export function newNode(type: string, taken: Iterable<string>): FlowNode {
  const used = new Set(taken);
  let n = 1;
  while (used.has(`${type}-${n}`)) n += 1;
  const id = `${type}-${n}`;
  switch (type) {
    case "delay":
      return { id, type, duration: "P1D" };
    case "wait":
      return { id, type, until: { event: "Placed Order" }, timeout: "P3D" };
    case "split":
      return { id, type, condition: { event: "Placed Order" } };
    case "random":
      return { id, type, branches: [{ percent: 50 }, { percent: 50 }] };
    case "send":
      return { id, type, channel: "email", template: "" };
    case "update_profile":
      return { id, type, set: {} };
    case "webhook":
      return { id, type, url: "https://", method: "POST" };
    case "exit":
      return { id, type, reason: "completed" };
    default:
      return { id, type };
  }
}

/** The definition without this node; exits that led to it are disconnected, and the entry moves
 * to the first node left when it was the one deleted. */
export function deleteNode(definition: FlowDefinition, id: string): FlowDefinition {
  const nodes = definition.nodes
    .filter((n) => n.id !== id)
    .map((n) => exitsOf(n).reduce((acc, exit) => (targetOf(acc, exit.handle) === id ? withTarget(acc, exit.handle, null) : acc), n));
  const entry = definition.entry === id ? (nodes[0]?.id ?? "") : definition.entry;
  return { ...definition, nodes, entry };
}

export function replaceNode(definition: FlowDefinition, node: FlowNode): FlowDefinition {
  return { ...definition, nodes: definition.nodes.map((n) => (n.id === node.id ? node : n)) };
}

export function connect(definition: FlowDefinition, source: string, handle: string, target: string | null): FlowDefinition {
  const node = definition.nodes.find((n) => n.id === source);
  if (!node || source === target) return definition;
  return replaceNode(definition, withTarget(node, handle, target));
}

/** Field errors by node id, from the server's messages ("nodes[3].duration: ..."); messages that
 * name no node (the trigger, the entry) come back under `flow`. */
export function errorsByNode(
  definition: FlowDefinition,
  messages: string[],
): { nodes: Record<string, Record<string, string>>; flow: string[] } {
  const nodes: Record<string, Record<string, string>> = {};
  const flow: string[] = [];
  for (const message of messages) {
    const match = /^nodes\[(\d+)\](?:\.([^:]+))?: (.*)$/s.exec(message);
    const node = match ? definition.nodes[Number(match[1])] : undefined;
    if (!match || !node) {
      flow.push(message);
      continue;
    }
    const field = match[2] ?? "node";
    const fields = (nodes[node.id] ??= {});
    fields[field] = fields[field] ? `${fields[field]}; ${match[3]}` : (match[3] as string);
  }
  return { nodes, flow };
}

/** The nodes a dry run's path visits, and the "source>target" steps between them, for the canvas. */
export function pathOf(stops: { node_id: string | null }[]): { nodes: Set<string>; steps: Set<string> } {
  const ids = stops.map((s) => s.node_id).filter((id): id is string => id !== null);
  const visited = ids.filter((id, i) => id !== ids[i - 1]);
  const steps = new Set(visited.slice(1).map((id, i) => `${visited[i]}>${id}`));
  return { nodes: new Set(visited), steps };
}
