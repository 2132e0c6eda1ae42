import { type FormEvent, useState } from "react";
import { Navigate, useLocation, useNavigate } from "react-router-dom";

import { ApiError } from "../api/client";
import { useSession, useSignIn } from "../api/hooks";
import { FieldError } from "../components/FieldError";

interface Choice {
  id: string;
  name: string;
}

export function SignInPage() {
  const session = useSession();
  const signIn = useSignIn();
  const navigate = useNavigate();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from ?? "/";
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [workspace, setWorkspace] = useState("");

  if (session.data) return <Navigate to={from} replace />;

  const error = signIn.error instanceof ApiError ? signIn.error : null;
  const choices = (error?.body.workspaces as Choice[] | undefined) ?? null;
  const fieldError = (field: string) => (error?.field === field ? error.detail : null);
  const shownBesideField = error !== null && ["email", "password", "workspace"].includes(error.field ?? "");
  const general = signIn.error && !shownBesideField ? signIn.error.message : null;

  function submit(event: FormEvent) {
    event.preventDefault();
    const form = { email, password, ...(workspace ? { workspace } : {}) };
    signIn.mutate(form, { onSuccess: () => navigate(from, { replace: true }) });
  }

  return (
    <div className="sign-in">
      <form className="card sign-in-card" onSubmit={submit} noValidate aria-labelledby="sign-in-title">
        <div className="brand brand-large">
          <span className="logo" aria-hidden="true">
            ◆
          </span>
          Shopflow
        </div>
        <h1 id="sign-in-title">Sign in</h1>
        <div className="field">
          <label htmlFor="email">Email</label>
          <input
            id="email"
            type="email"
            autoComplete="username"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            aria-invalid={fieldError("email") ? true : undefined}
            aria-describedby={fieldError("email") ? "email-error" : undefined}
            required
          />
          <FieldError id="email-error" message={fieldError("email")} />
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input
            id="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-invalid={fieldError("password") ? true : undefined}
            aria-describedby={fieldError("password") ? "password-error" : undefined}
            required
          />
          <FieldError id="password-error" message={fieldError("password")} />
        </div>
        {choices && (
          <div className="field">
            <label htmlFor="workspace">Workspace</label>
            <select id="workspace" value={workspace} onChange={(e) => setWorkspace(e.target.value)}>
              <option value="">Choose a store…</option>
              {choices.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
            <FieldError id="workspace-error" message={fieldError("workspace")} />
          </div>
        )}
        {general && (
          <div className="error-box" role="alert">
            {general}
          </div>
        )}
        <button type="submit" className="button-primary" disabled={signIn.isPending}>
          {signIn.isPending ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </div>
  );
}
