// The side panel's forms: which fields each node type shows, and the checks the browser can make
// before the server's (the same rules as src/shopflow/domain/*_nodes.py, so most mistakes are
// caught while typing; the server's answer stays the authority and is shown the same way).
import type { FlowNode } from "../api/types";

export type FieldKind = "duration" | "text" | "url" | "select" | "json" | "percentages";

export interface FieldSpec {
  /** The node field the form edits ("duration", "until.event", "branches"). */
  name: string;
  label: string;
  kind: FieldKind;
  required?: boolean;
  options?: string[];
  hint?: string;
}

export const CHANNELS = ["email", "sms", "push"];

const FIELDS: Record<string, FieldSpec[]> = {
  delay: [{ name: "duration", label: "Wait for", kind: "duration", required: true, hint: "ISO 8601, like PT1H, P2D or P1W" }],
  wait: [
    { name: "until.event", label: "Until event", kind: "text", required: true, hint: "the event name, like Placed Order" },
    { name: "timeout", label: "Timeout", kind: "duration", required: true, hint: "ISO 8601, like P3D" },
  ],
  split: [{ name: "condition", label: "Condition (JSON)", kind: "json", required: true, hint: 'like {"event": "Placed Order"}' }],
  trigger_split: [{ name: "condition", label: "Condition (JSON)", kind: "json", required: true }],
  random: [{ name: "branches", label: "Percentages", kind: "percentages", required: true, hint: "they must add up to 100" }],
  send: [
    { name: "channel", label: "Channel", kind: "select", options: CHANNELS, required: true },
    { name: "template", label: "Template", kind: "text", required: true, hint: "the template's name" },
  ],
  update_profile: [{ name: "set", label: "Set properties (JSON)", kind: "json", required: true, hint: 'like {"vip": true}' }],
  webhook: [
    { name: "url", label: "URL", kind: "url", required: true },
    { name: "method", label: "Method", kind: "select", options: ["POST", "PUT", "PATCH"], required: true },
  ],
  exit: [{ name: "reason", label: "Reason", kind: "text", hint: "recorded on the profile's timeline" }],
};

/** The form of a node; a node of another type (or a delay `until` a moment) is edited as JSON. */
export function fieldsOf(node: FlowNode): FieldSpec[] {
  if (node.type === "delay" && (node.until !== undefined || (node.duration !== undefined && typeof node.duration !== "string"))) {
    return [{ name: "", label: "Node (JSON)", kind: "json", required: true }];
  }
  if (node.type === "wait" && !(typeof node.until === "object" && node.until !== null && "event" in node.until)) {
    return [
      { name: "until", label: "Until (JSON)", kind: "json", required: true },
      { name: "timeout", label: "Timeout", kind: "duration", required: true, hint: "ISO 8601, like P3D" },
    ];
  }
  return FIELDS[node.type] ?? [{ name: "", label: "Node (JSON)", kind: "json", required: true }];
}

/** A node's field by dotted name ("until.event"); "" is the whole node. */
export function getField(node: FlowNode, name: string): unknown {
  if (name === "") return node;
  return name.split(".").reduce<unknown>((value, key) => (value !== null && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined), node);
}

export function setField(node: FlowNode, name: string, value: unknown): FlowNode {
  if (name === "") return { ...(value as FlowNode), id: node.id };
  const [head, ...rest] = name.split(".") as [string, ...string[]];
  if (rest.length === 0) return { ...node, [head]: value } as FlowNode;
  const inner = node[head];
  const base = inner !== null && typeof inner === "object" ? (inner as Record<string, unknown>) : {};
  return { ...node, [head]: setField(base as FlowNode, rest.join("."), value) } as FlowNode;
}

// The server's durations (domain/durations.py): weeks, days, hours, minutes, seconds; positive.
const DURATION = /^P(?=\d|T\d)(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/;

export function checkDuration(text: string): string | null {
  if (!DURATION.test(text)) return `${JSON.stringify(text)} is not an ISO 8601 duration of weeks/days/hours/minutes/seconds, like PT1H or P2D`;
  if (!/[1-9]/.test(text)) return "expected a duration longer than zero";
  return null;
}

/** Problems the browser can see, by field name; empty when the form is fine. */
export function validateNode(node: FlowNode): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of fieldsOf(node)) {
    const value = getField(node, field.name);
    const missing = value === undefined || value === null || value === "";
    if (missing) {
      if (field.required) out[field.name] = "required";
      continue;
    }
    switch (field.kind) {
      case "duration": {
        const problem = typeof value === "string" ? checkDuration(value) : null;
        if (problem) out[field.name] = problem;
        break;
      }
      case "url":
        if (typeof value !== "string" || !/^https?:\/\/[^\s/]+/.test(value)) out[field.name] = "expected an http(s) URL, like https://example.com/hook";
        break;
      case "select":
        if (!field.options?.includes(String(value))) out[field.name] = `expected one of ${field.options?.join(", ")}`;
        break;
      case "text":
        if (typeof value === "string" && value.trim() === "") out[field.name] = "required";
        break;
      case "percentages": {
        const branches = Array.isArray(value) ? (value as { percent?: unknown }[]) : [];
        const percents = branches.map((b) => b.percent);
        if (branches.length < 2) out[field.name] = "expected at least 2 branches";
        else if (percents.some((p) => typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 100)) out[field.name] = "each percentage is a whole number from 1 to 100";
        else {
          const sum = (percents as number[]).reduce((a, b) => a + b, 0);
          if (sum !== 100) out[field.name] = `percentages add up to ${sum}, expected 100`;
        }
        break;
      }
      case "json":
        if (typeof value !== "object") out[field.name] = "expected a JSON object";
        break;
    }
  }
  return out;
}

/** One line about a node for the canvas card. */
export function summary(node: FlowNode): string {
  switch (node.type) {
    case "delay":
      return typeof node.duration === "string" ? `Wait ${node.duration}` : "Wait until a moment";
    case "wait": {
      const until = node.until as Record<string, unknown> | undefined;
      return `Until ${typeof until?.event === "string" ? until.event : "a condition"}, at most ${String(node.timeout ?? "?")}`;
    }
    case "send":
      return `${String(node.channel ?? "email")} · ${String(node.template || "no template")}`;
    case "random":
      return (Array.isArray(node.branches) ? (node.branches as { percent?: unknown }[]) : []).map((b) => `${String(b.percent)}%`).join(" / ");
    case "webhook":
      return `${String(node.method ?? "POST")} ${String(node.url ?? "")}`;
    case "exit":
      return String(node.reason ?? "completed");
    default:
      return "";
  }
}
