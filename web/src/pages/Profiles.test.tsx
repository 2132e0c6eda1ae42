import { fireEvent, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { renderApp, session } from "../test/render";
import { parseSearch } from "./Profiles";

const ann = {
  id: 42,
  email: "ann@example.org",
  email_status: "valid",
  phone: "+15551234567",
  external_id: "u-ann",
  first_name: "Ann",
  last_name: "Lee",
  created_at: "2026-12-01T10:00:00+00:00",
  order_count: 2,
  total_spent: "80.00",
};

const detail = {
  ...ann,
  timezone: null,
  properties: {},
  aggregates: { order_count: 2, total_spent: "80.00", last_active_at: "2026-12-03T09:30:00+00:00" },
  consent: {
    email: { status: "subscribed", updated_at: "2026-12-01T10:00:00+00:00" },
    push: { status: "never_subscribed", updated_at: null },
    sms: { status: "unsubscribed", updated_at: "2026-12-02T10:00:00+00:00" },
  },
  identifiers: [],
};

const timeline = {
  profile_id: 42,
  items: [
    { type: "message", at: "2026-12-03T10:00:00+00:00", id: 9, channel: "sms", template: "cart-sms", subject: null, status: "skipped", skip_reason: "no_consent", flow_id: 1, node_id: "sms", sent_at: null },
    { type: "flow_step", at: "2026-12-03T09:59:00+00:00", id: 8, kind: "skip", flow_id: 1, flow_name: "Cart", flow_key: "cart", run_id: 3, node_id: "ab", reason: "holdout" },
    { type: "message", at: "2026-12-02T10:00:00+00:00", id: 7, channel: "email", template: "welcome-1", subject: "Welcome!", status: "sent", skip_reason: null, flow_id: 2, node_id: "welcome-1", sent_at: "2026-12-02T10:00:01+00:00" },
    { type: "event", at: "2026-12-01T10:00:00+00:00", id: 5, name: "Placed Order", properties: {}, value: "40.00", currency: "USD", source: "shopify" },
  ],
};

describe("Profiles", () => {
  it("finds a profile by email and links to it", async () => {
    const { calls } = renderApp("/profiles", {
      "GET /api/v1/session": [200, session()],
      "GET /api/v1/profiles?email=ann%40example.org": [200, { profiles: [ann] }],
    });
    fireEvent.change(await screen.findByLabelText("Email"), { target: { value: " ann@example.org " } });
    fireEvent.click(screen.getByRole("button", { name: "Search" }));
    const link = await screen.findByRole("link", { name: "Ann Lee" });
    expect(link.getAttribute("href")).toBe("/profiles/42");
    expect(within(screen.getByRole("list", { name: "Profiles found" })).getByText(/u-ann · 2 orders/)).toBeTruthy();
    expect(calls.map((c) => `${c.method} ${c.path}`)).toContain("GET /api/v1/profiles?email=ann%40example.org");
  });

  it("names a bad search beside the field, and shows the server's", async () => {
    renderApp("/profiles?phone=12", {
      "GET /api/v1/session": [200, session()],
      "GET /api/v1/profiles?phone=12": [400, { error: "phone: '12' is not a valid phone" }],
    });
    expect((await screen.findByRole("alert")).textContent).toBe("phone: '12' is not a valid phone");
    fireEvent.change(screen.getByLabelText("Search by"), { target: { value: "id" } });
    fireEvent.change(screen.getByLabelText("Profile id"), { target: { value: "abc" } });
    fireEvent.click(screen.getByRole("button", { name: "Search" }));
    expect((await screen.findByRole("alert")).textContent).toBe('id: "abc" is not a profile id (a whole number from 1)');
    expect(screen.getByLabelText("Profile id").getAttribute("aria-invalid")).toBe("true");
  });

  it("shows consent per channel and the timeline with every skip's reason", async () => {
    renderApp("/profiles/42", {
      "GET /api/v1/session": [200, session()],
      "GET /api/v1/profiles/42": [200, detail],
      "GET /api/v1/profiles/42/timeline?limit=200": [200, timeline],
    });
    expect(await screen.findByRole("heading", { name: "Ann Lee" })).toBeTruthy();
    const consent = screen.getByRole("table");
    expect(within(consent).getAllByRole("row").map((r) => r.textContent)).toEqual([
      "ChannelStatusSince",
      "emailsubscribed1 Dec 2026, 10:00 UTC",
      "pushnever subscribed–",
      "smsunsubscribed2 Dec 2026, 10:00 UTC",
    ]);
    const list = await screen.findByRole("list", { name: "Timeline, newest first" });
    const items = within(list).getAllByRole("listitem");
    expect(items.map((i) => i.querySelector(".timeline-title")?.textContent)).toEqual([
      "sms message “cart-sms” — skipped",
      "Cart: skipped at ab",
      "email message “welcome-1” — sent",
      "Placed Order",
    ]);
    expect(items[0]!.textContent).toContain("Reason: no_consent");
    expect(items[1]!.textContent).toContain("Reason: holdout");
    fireEvent.change(screen.getByLabelText("Show"), { target: { value: "skip" } });
    const shown = () => within(screen.getByRole("list", { name: "Timeline, newest first" })).getAllByRole("listitem");
    expect(shown().map((i) => i.getAttribute("data-type"))).toEqual(["message", "flow_step"]);
    fireEvent.change(screen.getByLabelText("Show"), { target: { value: "message" } });
    expect(shown().map((i) => i.getAttribute("data-type"))).toEqual(["message", "message"]);
  });

  it("turns the search form into a query or a profile id", () => {
    expect(parseSearch("email", " a@b.c ")).toEqual({ query: { kind: "email", value: "a@b.c" } });
    expect(parseSearch("id", "42")).toEqual({ id: 42 });
    expect(parseSearch("id", "0")).toEqual({ error: '"0" is not a profile id (a whole number from 1)' });
    expect(parseSearch("email", "ann")).toEqual({ error: '"ann" is not an email address, like name@example.com' });
    expect(parseSearch("phone", "  ")).toEqual({ error: "expected something to search for" });
  });
});
