// The one place the UI talks HTTP: same-origin cookies, JSON, the CSRF header on every write,
// and the server's error answers turned into ApiError (with the field they name).

export class ApiError extends Error {
  readonly status: number;
  // "email: expected an address like ..." -> field "email", detail "expected an address like ...".
  readonly field: string | null;
  readonly detail: string;
  readonly body: Record<string, unknown>;

  constructor(status: number, message: string, body: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.body = body;
    const match = /^([A-Za-z_][\w.-]*): (.*)$/s.exec(message);
    this.field = match?.[1] ?? null;
    this.detail = match?.[2] ?? message;
  }
}

let csrfToken: string | null = null;
const signedOutListeners = new Set<() => void>();

/** Remember the session's CSRF token (from the sign-in and session answers). */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called whenever the API answers 401 to a signed-in request: the session is gone. */
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

function messageOf(status: number, body: Record<string, unknown>): string {
  // Our routes answer {"error": ...}; FastAPI's HTTPException answers {"detail": ...}.
  const text = body.error ?? body.detail;
  return typeof text === "string" ? text : `HTTP ${status}`;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const answer = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (answer.status === 204) return undefined as T;
  const text = await answer.text();
  let parsed: unknown = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { error: text.slice(0, 200) };
  }
  if (!answer.ok) {
    const data = (parsed ?? {}) as Record<string, unknown>;
    if (answer.status === 401 && path !== "/api/v1/session") signedOutListeners.forEach((f) => f());
    throw new ApiError(answer.status, messageOf(answer.status, data), data);
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body),
  patch: <T>(path: string, body?: unknown) => request<T>("PATCH", path, body),
  delete: <T>(path: string) => request<T>("DELETE", path),
};
