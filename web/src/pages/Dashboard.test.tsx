import { fireEvent, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { renderApp, session } from "../test/render";

const period = (period: string, revenue: string, automation: string, share: string) => ({
  period,
  orders: 3,
  revenue,
  automation_revenue: automation,
  automation_share: share,
});

const store = {
  from: null,
  to: null,
  currency: "USD",
  orders: 12,
  revenue: "1200.00",
  flow_revenue: "300.00",
  flow_revenue_share: "0.25",
  attributed_revenue: "300.00",
  periods: {
    week: [period("2026-W47", "500.00", "100.00", "0.2"), period("2026-W48", "700.00", "200.00", "0.2857")],
    month: [period("2026-11", "1200.00", "300.00", "0.25")],
  },
};

const row = (flow_id: number, key: string, name: string, rpr: string, sent: number) => ({
  flow_id,
  key,
  name,
  entrants: 10,
  holdout_entrants: 1,
  recipients: 9,
  messages_sent: sent,
  conversions: 2,
  conversion_rate: "0.2",
  attributed_revenue: "150.00",
  revenue_per_recipient: rpr,
  revenue_per_message: "1.00",
  assisted_revenue_linear: "0.00",
  assisted_revenue_time_decay: "0.00",
  incremental_status: "not_enough_data",
  incremental_revenue: null,
  entrants_still_needed: 90,
});

const detail = (flow_id: number, key: string, name: string, rates: [string, string, string], skipped: Record<string, number>) => ({
  flow_id,
  key,
  name,
  messages_sent: 1000,
  bounce_rate: rates[0],
  complaint_rate: rates[1],
  unsubscribe_rate: rates[2],
  skipped,
});

function routes() {
  return {
    "GET /api/v1/session": [200, session()] as [number, unknown],
    "GET /api/v1/reports/store?interval=week": [200, store] as [number, unknown],
    "GET /api/v1/reports/store?interval=month": [200, store] as [number, unknown],
    "GET /api/v1/reports/flows": [
      200,
      { currency: "USD", metric: "attributed_revenue", flows: [row(1, "welcome", "Welcome", "2.50", 1000), row(2, "cart", "Cart", "7.25", 1000)] },
    ] as [number, unknown],
    "GET /api/v1/reports/flows/1": [200, detail(1, "welcome", "Welcome", ["0.0100", "0.0005", "0.0020"], { no_consent: 4, quiet_hours: 1 })] as [number, unknown],
    "GET /api/v1/reports/flows/2": [200, detail(2, "cart", "Cart", ["0.0300", "0.0020", "0.0150"], { no_consent: 2 })] as [number, unknown],
  };
}

describe("Dashboard", () => {
  it("shows the store totals, the revenue charts' tables, top flows, skips and deliverability", async () => {
    renderApp("/", routes());
    expect((await screen.findByTestId("store-revenue")).textContent).toBe("$1,200.00");
    expect(screen.getByTestId("flow-revenue").textContent).toBe("$300.00");
    expect(screen.getByTestId("flow-share").textContent).toBe("25.00 %");
    const revenue = screen.getByRole("table", { name: "Store and automation revenue by week" });
    expect(within(revenue).getAllByRole("row").map((r) => r.textContent)).toEqual([
      "PeriodStore revenueAutomation revenue",
      "2026-W47$500.00$100.00",
      "2026-W48$700.00$200.00",
    ]);
    const share = screen.getByRole("table", { name: "Automation share of store revenue by week" });
    expect(within(share).getAllByRole("row")[2]!.textContent).toBe("2026-W4828.6 %");

    const top = screen.getByRole("table", { name: "Top flows by revenue per recipient" });
    expect(within(top).getAllByRole("row").slice(1).map((r) => r.textContent)).toEqual(["Cart9$150.00$7.25", "Welcome9$150.00$2.50"]);
    expect(within(top).getByRole("link", { name: "Cart" }).getAttribute("href")).toBe("/flows/2/report");

    expect(screen.getByTestId("messages-sent").textContent).toBe("2,000");
    const skips = await screen.findByRole("table", { name: "Skipped messages by reason" });
    expect(within(skips).getAllByRole("row").slice(1).map((r) => r.textContent)).toEqual(["no consent6", "quiet hours1"]);

    const health = screen.getByRole("table", { name: "Deliverability health" });
    const welcome = within(health).getByRole("row", { name: /Welcome/ });
    expect(within(welcome).getAllByRole("cell").map((c) => c.textContent)).toEqual([
      "1,000",
      "0.05 % Healthy",
      "1.00 % Healthy",
      "0.20 % Healthy",
    ]);
    const cart = within(health).getByRole("row", { name: /Cart/ });
    expect(within(cart).getAllByRole("cell").map((c) => c.textContent)).toEqual([
      "1,000",
      "0.20 % Watch",
      "3.00 % Watch",
      "1.50 % Too high",
    ]);
    expect(screen.getByText("Complaint rate: Gmail/Yahoo: below 0.10 % recommended, 0.30 % hard limit")).toBeTruthy();
  });

  it("changes the period length on request", async () => {
    const { calls } = renderApp("/", routes());
    await screen.findByTestId("store-revenue");
    fireEvent.click(screen.getByRole("button", { name: "By month" }));
    expect(await screen.findByRole("table", { name: "Store and automation revenue by month" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "By month" }).getAttribute("aria-pressed")).toBe("true");
    expect(calls.some((c) => c.path === "/api/v1/reports/store?interval=month")).toBe(true);
  });

  it("shows empty states for a new workspace", async () => {
    renderApp("/", {
      ...routes(),
      "GET /api/v1/reports/store?interval=week": [200, { ...store, revenue: "0.00", orders: 0, periods: { week: [] } }],
      "GET /api/v1/reports/flows": [200, { currency: "USD", metric: "attributed_revenue", flows: [] }],
    });
    expect(await screen.findByText("No flows yet.")).toBeTruthy();
    expect(screen.getAllByText("No data for this period yet.")).toHaveLength(2);
    expect(screen.getByText("No messages sent yet.")).toBeTruthy();
  });
});
