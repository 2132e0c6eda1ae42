import { fireEvent, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { renderApp, session } from "../test/render";

function fill(email: string, password: string) {
  fireEvent.change(screen.getByLabelText("Email"), { target: { value: email } });
  fireEvent.change(screen.getByLabelText("Password"), { target: { value: password } });
  fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
}

describe("Sign-in", () => {
  it("shows the server's field error beside the field it names", async () => {
    renderApp("/sign-in", {
      "GET /api/v1/session": [401, { detail: "session: signed out or expired; sign in again" }],
      "POST /api/v1/session": [400, { error: "email: expected an address like name@example.com, got 'nope'" }],
    });
    await screen.findByRole("heading", { name: "Sign in" });
    fill("nope", "secret secret");
    const error = await screen.findByText("expected an address like name@example.com, got 'nope'");
    expect(error.id).toBe("email-error");
    expect(screen.getByLabelText("Email").getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByLabelText("Email").getAttribute("aria-describedby")).toBe("email-error");
  });

  it("says when the credentials are not recognised", async () => {
    renderApp("/sign-in", {
      "GET /api/v1/session": [401, { detail: "session: signed out" }],
      "POST /api/v1/session": [401, { error: "email or password: not recognised" }],
    });
    await screen.findByRole("heading", { name: "Sign in" });
    fill("owner@example.com", "wrong password");
    expect((await screen.findByRole("alert")).textContent).toBe("email or password: not recognised");
  });

  it("signs in, then opens the dashboard and sends the CSRF token on writes", async () => {
    let signedIn = false;
    const { calls } = renderApp("/sign-in", {
      "GET /api/v1/session": () => (signedIn ? [200, session()] : [401, { detail: "signed out" }]),
      "POST /api/v1/session": (body) => {
        signedIn = true;
        expect(body).toEqual({ email: "owner@example.com", password: "correct horse" });
        return [200, session()];
      },
      "GET /api/v1/reports/store?interval=week": [200, { currency: "USD", revenue: "0", flow_revenue: "0", flow_revenue_share: "0", orders: 0, periods: { week: [] } }],
      "GET /api/v1/reports/flows": [200, { currency: "USD", metric: "attributed_revenue", flows: [] }],
      "DELETE /api/v1/session": [204, null],
    });
    await screen.findByRole("heading", { name: "Sign in" });
    fill("owner@example.com", "correct horse");
    expect(await screen.findByRole("heading", { name: "Dashboard" })).toBeTruthy();
    expect(screen.getByText("Acme Shoes")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Sign out" }));
    await screen.findByRole("heading", { name: "Sign in" });
    const signOut = calls.find((c) => c.method === "DELETE");
    expect(signOut?.headers["X-CSRF-Token"]).toBe("csrf-123");
  });
});
