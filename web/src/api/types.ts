// The shapes of the API's answers the UI reads (src/shopflow/api/routes/*.py).

export type Role = "owner" | "marketer" | "viewer";

export interface Session {
  email: string;
  role: Role;
  can_write: boolean;
  workspace: { id: string; name: string; currency: string };
  expires_at: string;
  csrf_token: string;
}

export type FlowStatus = "draft" | "manual" | "live" | "paused";

export interface FlowSummary {
  id: number;
  key: string;
  name: string;
  status: FlowStatus;
  version: number;
  trigger_event: string | null;
  created_at: string;
  updated_at: string;
}

// Money is a decimal string ("12.50"): exact, never a float.
export interface FlowReport {
  flow_id: number;
  entrants: number;
  holdout_entrants: number;
  recipients: number;
  messages_sent: number;
  conversions: number;
  attributed_revenue: string;
  revenue_per_recipient: string;
}

export interface LibraryFlow {
  name: string;
  purpose: string;
}

export interface FlowNode {
  id: string;
  type: string;
  next?: string;
  [field: string]: unknown;
}

export interface FlowDefinition {
  id: string;
  name: string;
  description: string;
  trigger: { type: string; event?: string; [field: string]: unknown };
  entry: string;
  nodes: FlowNode[];
  [field: string]: unknown;
}

export interface LibraryPreview {
  name: string;
  purpose: string;
  definition: FlowDefinition;
}

export interface Installed {
  name: string;
  flow_id: number;
  status: FlowStatus;
  version: number;
}

export interface FlowDetail extends FlowSummary {
  definition: FlowDefinition;
}

export interface NodeCount {
  node_id: string;
  type: string | null;
  entered: number;
  branches: Record<string, number>;
  waiting: number;
  exited: Record<string, number>;
  skipped: Record<string, number>;
}

export interface NodeReport {
  flow_id: number;
  status: FlowStatus;
  version: number;
  entrants: number;
  nodes: NodeCount[];
}

export interface ProfileSummary {
  id: number;
  email: string | null;
  email_status: string | null;
  phone: string | null;
  external_id: string | null;
  first_name: string | null;
  last_name: string | null;
  created_at: string | null;
  order_count: number;
  total_spent: string | null;
}

export interface ProfileDetail extends ProfileSummary {
  timezone: string | null;
  properties: Record<string, unknown>;
  aggregates: { order_count: number; total_spent: string | null; last_active_at: string | null; [k: string]: unknown };
  consent: Record<string, { status: string; updated_at: string | null }>;
  identifiers: { kind: string; value: string }[];
}

export type TimelineItem =
  | { type: "event"; at: string; id: number; name: string; properties: Record<string, unknown>; value: string | null; currency: string | null; source: string | null }
  | {
      type: "message";
      at: string;
      id: number;
      channel: string;
      template: string | null;
      subject: string | null;
      status: string;
      skip_reason: string | null;
      flow_id: number | null;
      node_id: string | null;
      sent_at: string | null;
    }
  | { type: "flow_step"; at: string; id: number; kind: string; flow_id: number; flow_name: string; flow_key: string; node_id: string | null; reason: string | null };

export interface Timeline {
  profile_id: number;
  items: TimelineItem[];
}

export interface DryRun {
  flow_id: number;
  version: number;
  profile_id: number;
  entered: boolean;
  outcome: string;
  path: { at: string; node_id: string | null; kind: string; detail: string }[];
}
