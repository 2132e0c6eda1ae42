import { fireEvent, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { renderApp, session } from "../test/render";

const preview = {
  name: "welcome-series",
  purpose: "Welcomes a new subscriber.",
  definition: {
    id: "welcome-series",
    name: "Welcome series",
    description: "Welcomes a new subscriber.",
    trigger: { type: "event", event: "Subscribed" },
    entry: "welcome-1",
    nodes: [
      { id: "welcome-1", type: "send", channel: "email", template: "welcome-1", next: "wait" },
      { id: "wait", type: "delay", duration: "P2D", next: "done" },
      { id: "done", type: "exit", reason: "completed" },
    ],
  },
};

const api = (role: "owner" | "viewer") => ({
  "GET /api/v1/session": [200, session(role === "viewer" ? { role, can_write: false } : {})] as [number, unknown],
  "GET /api/v1/flows": [200, { flows: [] }] as [number, unknown],
  "GET /api/v1/library/flows": [200, { flows: [{ name: "welcome-series", purpose: "Welcomes a new subscriber." }] }] as [
    number,
    unknown,
  ],
  "GET /api/v1/library/flows/welcome-series": [200, preview] as [number, unknown],
});

describe("Library", () => {
  it("previews a flow's steps and installs it with the CSRF token", async () => {
    const { calls } = renderApp("/library", {
      ...api("owner"),
      "POST /api/v1/library/flows/welcome-series/install": [
        200,
        { name: "welcome-series", flow_id: 1, status: "draft", version: 1 },
      ],
    });
    fireEvent.click(await screen.findByRole("button", { name: /welcome-series/ }));
    expect(await screen.findByRole("heading", { name: "Welcome series" })).toBeTruthy();
    expect(screen.getByText("Wait 2 days")).toBeTruthy();
    expect(screen.getByText("Send email · template welcome-1")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Install as draft" }));
    expect(await screen.findByRole("status")).toBeTruthy();
    const install = calls.find((c) => c.method === "POST");
    expect(install?.body).toEqual({ live: false });
    expect(install?.headers["X-CSRF-Token"]).toBe("csrf-123");
  });

  it("does not offer a viewer the install button", async () => {
    renderApp("/library/welcome-series", api("viewer"));
    const button = await screen.findByRole("button", { name: "Install as draft" });
    expect((button as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByText(/Viewers can look but not install/)).toBeTruthy();
  });
});
