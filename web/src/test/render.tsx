// Render the app at a path against a fake API: a table of "METHOD /path" -> [status, body].
import { QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { vi } from "vitest";

import { AppRoutes, makeQueryClient, ROUTER_FUTURE } from "../App";
import { setCsrfToken } from "../api/client";
import type { Session } from "../api/types";

export type Answer = [number, unknown];
export type FakeApi = Record<string, Answer | ((body: unknown) => Answer)>;

export interface Call {
  method: string;
  path: string;
  body: unknown;
  headers: Record<string, string>;
}

export function session(overrides: Partial<Session> = {}): Session {
  return {
    email: "owner@example.com",
    role: "owner",
    can_write: true,
    workspace: { id: "ws_1", name: "Acme Shoes", currency: "USD" },
    expires_at: "2026-12-11T00:00:00+00:00",
    csrf_token: "csrf-123",
    ...overrides,
  };
}

export function renderApp(path: string, routes: FakeApi) {
  const calls: Call[] = [];
  setCsrfToken(null);
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init: RequestInit = {}) => {
      const method = init.method ?? "GET";
      const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
      calls.push({ method, path: url, body, headers: (init.headers ?? {}) as Record<string, string> });
      const entry = routes[`${method} ${url}`];
      const [status, answer] = typeof entry === "function" ? entry(body) : (entry ?? [404, { error: `no fake for ${method} ${url}` }]);
      return new Response(status === 204 ? null : JSON.stringify(answer), {
        status,
        headers: { "Content-Type": "application/json" },
      });
    }),
  );
  const client = makeQueryClient();
  const view = render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]} future={ROUTER_FUTURE}>
        <AppRoutes />
      </MemoryRouter>
    </QueryClientProvider>,
  );
  return { ...view, calls };
}
