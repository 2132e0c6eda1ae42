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
