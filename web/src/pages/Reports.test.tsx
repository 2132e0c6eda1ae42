import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { renderApp, session } from "../test/render";

const arm = (entrants: number, conversions: number) => ({
  entrants,
  conversions,
  conversion_rate: "0.1000",
  revenue: "100.00",
  revenue_per_entrant: "1.00",
});

const node = (sent: number, conversions: number) => ({
  entrants: sent,
  recipients: sent,
  sent,
  opened: 5,
  clicked: 2,
  conversions,
  conversion_rate: "0.1",
  attributed_revenue: "40.00",
  revenue_per_recipient: "4.00",
  revenue_per_message: "4.00",
  assisted_revenue_linear: "0",
  assisted_revenue_time_decay: "0",
  open_rate: "0.5",
  click_rate: "0.2",
  unsubscribe_rate: "0",
  bounce_rate: "0.0100",
  complaint_rate: "0",
  exits: {},
});

function report(incremental: Record<string, unknown>) {
  return {
    flow_id: 3,
    key: "welcome",
    name: "Welcome",
    currency: "EUR",
    entrants: 20,
    holdout_entrants: 2,
    recipients: 18,
    messages_sent: 30,
    conversions: 4,
    conversion_rate: "0.2",
    attributed_revenue: "80.00",
    revenue_per_recipient: "4.44",
    revenue_per_message: "2.67",
    assisted_revenue_linear: "0",
    assisted_revenue_time_decay: "0",
    skipped: {},
    opens: 10,
    clicks: 4,
    open_rate: "0.3333",
    click_rate: "0.1333",
    unsubscribe_rate: "0",
    bounce_rate: "0",
    complaint_rate: "0",
    nodes: { "welcome-1": node(18, 3), "welcome-2": node(12, 1) },
    incremental: {
      window_seconds: 432000,
      treated: arm(18, 4),
      holdout: arm(2, 0),
      reason: null,
      holdout_entrants_needed: null,
      entrants_still_needed: null,
      ...incremental,
    },
  };
}

const experiments = {
  flow_id: 3,
  currency: "EUR",
  metric: "placed_order",
  splits: [
    {
      node_id: "ab",
      mode: "fixed",
      status: "not_enough_data",
      winner: null,
      leader: "branch 1",
      reason: "each branch needs 30 conversions",
      conversions_needed: 27,
      variants: [
        { variant: "branch 1", next: "a", percent: 50, recipients: 9, conversions: 2, revenue: "40.00", value: "0.2222", p_value: null, probability_best: "0.6100", conversions_needed: 28 },
        { variant: "branch 2", next: "b", percent: 50, recipients: 9, conversions: 1, revenue: "20.00", value: "0.1111", p_value: "0.5300", probability_best: "0.3900", conversions_needed: 29 },
      ],
    },
  ],
};

describe("Flow report", () => {
  it("shows totals, every step, and a holdout without enough data with the sample still needed", async () => {
    renderApp("/flows/3/report", {
      "GET /api/v1/session": [200, session()],
      "GET /api/v1/reports/flows/3": [
        200,
        report({ status: "not_enough_data", reason: "the holdout is too small", holdout_entrants_needed: 38, entrants_still_needed: 380 }),
      ],
      "GET /api/v1/flows/3": [200, { id: 3, definition: { nodes: [{ id: "welcome-2", type: "send" }, { id: "welcome-1", type: "send" }] } }],
      "GET /api/v1/reports/flows/3/experiments": [200, experiments],
    });
    expect(await screen.findByRole("heading", { name: "Report: Welcome" })).toBeTruthy();
    expect(screen.getByTestId("flow-revenue").textContent).toBe("€80.00");
    expect(screen.getByTestId("flow-open-rate").textContent).toBe("33.33 %");
    expect(screen.getByTestId("holdout-not-enough").textContent).toBe(
      "Not enough data yet: 380 more entrants needed (38 in the holdout). The holdout is too small.",
    );
    const steps = screen.getByRole("table", { name: "Per step" });
    // In the flow's order (welcome-2 first here), once its definition has come.
    await waitFor(() => expect(within(steps).getAllByRole("row")[1]!.textContent).toMatch(/^welcome-2/));
    expect(within(steps).getAllByRole("row").slice(1).map((r) => r.textContent)).toEqual([
      "welcome-21212521€40.001.00 %0.00 %",
      "welcome-11818523€40.001.00 %0.00 %",
    ]);
    const ab = await screen.findByRole("table", { name: "Branches of split ab" });
    expect(within(ab).getAllByRole("row").slice(1).map((r) => r.textContent)).toEqual([
      "branch 1 (50 %)920.2222–61.00 %",
      "branch 2 (50 %)910.11110.530039.00 %",
    ]);
    expect(screen.getByText("each branch needs 30 conversions 27 more conversions needed.")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Download report CSV" }).getAttribute("href")).toBe("/api/v1/reports/flows/3?format=csv");
    expect(screen.getByRole("link", { name: "Download A/B CSV" }).getAttribute("href")).toBe("/api/v1/reports/flows/3/experiments?format=csv");
  });

  it("says why when no sample size can be given yet", async () => {
    renderApp("/flows/3/report", {
      "GET /api/v1/session": [200, session()],
      "GET /api/v1/reports/flows/3": [200, report({ status: "not_enough_data", reason: "the holdout has no entrants (is the flow's holdout_percent 0?)" })],
      "GET /api/v1/reports/flows/3/experiments": [200, { ...experiments, splits: [] }],
    });
    expect((await screen.findByTestId("holdout-not-enough")).textContent).toBe(
      "Not enough data yet. The holdout has no entrants (is the flow's holdout_percent 0?).",
    );
  });

  it("shows the incremental revenue and its interval once there is enough data", async () => {
    renderApp("/flows/3/report", {
      "GET /api/v1/session": [200, session()],
      "GET /api/v1/reports/flows/3": [
        200,
        report({ status: "ready", incremental_revenue: "52.10", incremental_revenue_interval: ["10.00", "94.20"], relative_lift: "0.4200", significant: true }),
      ],
      "GET /api/v1/reports/flows/3/experiments": [200, { ...experiments, splits: [] }],
    });
    expect((await screen.findByTestId("incremental-revenue")).textContent).toBe("€52.10");
    expect(screen.getByTestId("incremental-interval").textContent).toBe("€10.00 to €94.20");
    expect(screen.queryByTestId("holdout-not-enough")).toBeNull();
    expect(await screen.findByText("This flow has no random split, so nothing is being tested.")).toBeTruthy();
  });

  it("names a missing flow", async () => {
    renderApp("/flows/9/report", {
      "GET /api/v1/session": [200, session()],
      "GET /api/v1/reports/flows/9": [404, { error: "flow_id: no flow 9 in this workspace" }],
      "GET /api/v1/reports/flows/9/experiments": [404, { error: "flow_id: no flow 9 in this workspace" }],
    });
    expect((await screen.findByRole("alert")).textContent).toBe("Could not load the report: flow_id: no flow 9 in this workspace");
  });
});

describe("Reports list", () => {
  it("lists every flow with its incremental status and a CSV link", async () => {
    renderApp("/reports", {
      "GET /api/v1/session": [200, session()],
      "GET /api/v1/reports/flows": [
        200,
        {
          currency: "USD",
          metric: "attributed_revenue",
          flows: [
            { flow_id: 3, key: "w", name: "Welcome", entrants: 20, messages_sent: 30, conversions: 4, attributed_revenue: "80.00", revenue_per_recipient: "4.44", incremental_status: "not_enough_data", incremental_revenue: null, entrants_still_needed: 380 },
          ],
        },
      ],
    });
    const row = (await screen.findByRole("link", { name: "Welcome" })).closest("tr")!;
    expect(row.textContent).toBe("Welcome20304$80.00$4.44Not enough data yet (380 more entrants)");
    expect(screen.getByRole("link", { name: "Download flows CSV" }).getAttribute("href")).toBe("/api/v1/reports/flows?format=csv");
    expect(screen.getByRole("link", { name: "Download store CSV" }).getAttribute("href")).toBe("/api/v1/reports/store?format=csv");
  });
});
