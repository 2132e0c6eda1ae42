import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { renderApp, session } from "../test/render";

const flow = {
  id: 7,
  key: "welcome-series",
  name: "Welcome series",
  status: "live",
  version: 2,
  trigger_event: "Subscribed",
  created_at: "2026-12-01T10:00:00+00:00",
  updated_at: "2026-12-03T10:00:00+00:00",
};

describe("Flows list", () => {
  it("shows each flow's status, entrants and revenue from its report", async () => {
    renderApp("/flows", {
      "GET /api/v1/session": [200, session()],
      "GET /api/v1/flows": [200, { flows: [flow] }],
      "GET /api/v1/flows/7/report": [
        200,
        { flow_id: 7, entrants: 1234, attributed_revenue: "5678.50", revenue_per_recipient: "4.60" },
      ],
    });
    const row = (await screen.findByText("Welcome series")).closest("tr")!;
    expect(within(row).getByText("Live")).toBeTruthy();
    expect(within(row).getByText("Subscribed")).toBeTruthy();
    expect(await within(row).findByText("1,234")).toBeTruthy();
    expect(within(row).getByText("$5,678.50")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Install from library" })).toBeTruthy();
  });

  it("hides the install button from a viewer and shows an empty state", async () => {
    renderApp("/flows", {
      "GET /api/v1/session": [200, session({ role: "viewer", can_write: false })],
      "GET /api/v1/flows": [200, { flows: [] }],
    });
    expect(await screen.findByText("No flows yet.")).toBeTruthy();
    expect(screen.queryByRole("link", { name: "Install from library" })).toBeNull();
  });

  it("sends a signed-out visitor to the sign-in page", async () => {
    renderApp("/flows", { "GET /api/v1/session": [401, { detail: "session: signed out or expired" }] });
    expect(await screen.findByRole("heading", { name: "Sign in" })).toBeTruthy();
  });
});
