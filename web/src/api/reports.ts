// The shapes of the reports API (src/shopflow/api/routes/reports.py, experiments.py) and their hooks.
// Money is a decimal string in the workspace currency; rates are fractions ("0.1234" = 12.34 %).
import { useQueries, useQuery } from "@tanstack/react-query";

import { api } from "./client";

export type Interval = "day" | "week" | "month";

export interface Performance {
  conversions: number;
  conversion_rate: string;
  attributed_revenue: string;
  revenue_per_recipient: string;
  revenue_per_message: string;
  assisted_revenue_linear: string;
  assisted_revenue_time_decay: string;
}

export interface Period {
  period: string;
  orders: number;
  revenue: string;
  automation_revenue: string;
  automation_share: string;
}

export interface StoreReport {
  from: string | null;
  to: string | null;
  currency: string;
  orders: number;
  revenue: string;
  attributed_revenue: string;
  flow_revenue: string;
  flow_revenue_share: string;
  periods: Partial<Record<Interval, Period[]>>;
}

export interface FlowsReportRow extends Performance {
  flow_id: number;
  key: string;
  name: string;
  entrants: number;
  holdout_entrants: number;
  recipients: number;
  messages_sent: number;
  incremental_status: "ready" | "not_enough_data";
  incremental_revenue: string | null;
  entrants_still_needed: number | null;
}

export interface FlowsReport {
  currency: string;
  metric: string;
  flows: FlowsReportRow[];
}

export interface NodeReport extends Performance {
  entrants: number;
  recipients: number;
  sent: number;
  opened: number;
  clicked: number;
  open_rate: string;
  click_rate: string;
  unsubscribe_rate: string;
  bounce_rate: string;
  complaint_rate: string;
  exits: Record<string, number>;
}

export interface Arm {
  entrants: number;
  conversions: number;
  conversion_rate: string;
  revenue: string;
  revenue_per_entrant: string;
}

export interface Incremental {
  status: "ready" | "not_enough_data";
  reason: string | null;
  window_seconds: number;
  treated: Arm;
  holdout: Arm;
  holdout_entrants_needed: number | null;
  entrants_still_needed: number | null;
  relative_lift?: string | null;
  incremental_revenue?: string | null;
  incremental_revenue_interval?: string[] | null;
  significant?: boolean | null;
}

export interface FlowDetailReport extends Performance {
  flow_id: number;
  key: string;
  name: string;
  currency: string;
  entrants: number;
  holdout_entrants: number;
  recipients: number;
  messages_sent: number;
  skipped: Record<string, number>;
  opens: number;
  clicks: number;
  open_rate: string;
  click_rate: string;
  unsubscribe_rate: string;
  bounce_rate: string;
  complaint_rate: string;
  nodes: Record<string, NodeReport>;
  incremental: Incremental;
}

export interface Variant {
  variant: string;
  next: string;
  percent: number;
  recipients: number;
  conversions: number;
  revenue: string;
  value: string;
  p_value: string | null;
  probability_best: string;
  conversions_needed: number;
}

export interface Split {
  node_id: string;
  mode: string;
  status: "winner" | "no_winner_yet" | "not_enough_data";
  winner: string | null;
  leader: string;
  reason: string;
  conversions_needed: number;
  variants: Variant[];
}

export interface ExperimentsReport {
  flow_id: number;
  currency: string;
  metric: string;
  splits: Split[];
}

export const reportKeys = {
  store: (interval: Interval) => ["reports", "store", interval] as const,
  flows: ["reports", "flows"] as const,
  flow: (id: number) => ["reports", "flows", id] as const,
  experiments: (id: number) => ["reports", "flows", id, "experiments"] as const,
};

export function useStoreReport(interval: Interval) {
  return useQuery({
    queryKey: reportKeys.store(interval),
    queryFn: () => api.get<StoreReport>(`/api/v1/reports/store?interval=${interval}`),
  });
}

export function useFlowsReport() {
  return useQuery({ queryKey: reportKeys.flows, queryFn: () => api.get<FlowsReport>("/api/v1/reports/flows") });
}

export function useFlowDetailReport(id: number) {
  return useQuery({ queryKey: reportKeys.flow(id), queryFn: () => api.get<FlowDetailReport>(`/api/v1/reports/flows/${id}`) });
}

/** Every flow's own report side by side (sends, skips, deliverability); index-aligned with `ids`. */
export function useFlowDetailReports(ids: number[]) {
  return useQueries({
    queries: ids.map((id) => ({
      queryKey: reportKeys.flow(id),
      queryFn: () => api.get<FlowDetailReport>(`/api/v1/reports/flows/${id}`),
    })),
  });
}

export function useExperiments(id: number) {
  return useQuery({
    queryKey: reportKeys.experiments(id),
    queryFn: () => api.get<ExperimentsReport>(`/api/v1/reports/flows/${id}/experiments`),
  });
}

/** "0.0123" -> "1.23 %" (the API's fractions, shown with two decimals). */
export function formatRate(fraction: string | null | undefined): string {
  if (fraction === null || fraction === undefined) return "–";
  const value = Number(fraction);
  if (!Number.isFinite(value)) return fraction;
  return `${(value * 100).toFixed(2)} %`;
}

export type Health = "good" | "warning" | "bad";

export interface Threshold {
  metric: "complaint_rate" | "bounce_rate" | "unsubscribe_rate";
  label: string;
  /** At or above: amber. */
  warn: number;
  /** At or above: red. */
  bad: number;
  text: string;
}

// Gmail's and Yahoo's bulk-sender rules (Feb 2024) set only the complaint (spam) rate: keep it
// below 0.1 %, never reach 0.3 %. Bounce and unsubscribe limits are common industry guidance.
export const THRESHOLDS: Threshold[] = [
  {
    metric: "complaint_rate",
    label: "Complaint rate",
    warn: 0.001,
    bad: 0.003,
    text: "Gmail/Yahoo: below 0.10 % recommended, 0.30 % hard limit",
  },
  { metric: "bounce_rate", label: "Bounce rate", warn: 0.02, bad: 0.05, text: "below 2 % healthy, 5 % or more harmful (industry guidance)" },
  {
    metric: "unsubscribe_rate",
    label: "Unsubscribe rate",
    warn: 0.005,
    bad: 0.01,
    text: "below 0.5 % healthy, 1 % or more a warning sign (industry guidance)",
  },
];

export function health(fraction: string, threshold: Threshold): Health {
  const value = Number(fraction);
  if (value >= threshold.bad) return "bad";
  if (value >= threshold.warn) return "warning";
  return "good";
}
