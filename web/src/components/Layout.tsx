// The frame of every signed-in page: the workspace, navigation, who is signed in, sign out.
import { NavLink, Outlet, useNavigate } from "react-router-dom";

import { useSession, useSignOut } from "../api/hooks";

const NAV = [
  { to: "/", label: "Dashboard" },
  { to: "/flows", label: "Flows" },
  { to: "/library", label: "Library" },
  { to: "/profiles", label: "Profiles" },
  { to: "/reports", label: "Reports" },
];

export function Layout() {
  const { data: session } = useSession();
  const signOut = useSignOut();
  const navigate = useNavigate();
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true">
            ◆
          </span>
          Shopflow
          {session && <span className="workspace-name">{session.workspace.name}</span>}
        </div>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.to}>
                <NavLink to={item.to} end={item.to === "/"}>{item.label}</NavLink>
              </li>
            ))}
          </ul>
        </nav>
        {session && (
          <div className="who">
            <span>{session.email}</span>
            <span className={`role role-${session.role}`}>{session.role}</span>
            <button
              type="button"
              className="button-quiet"
              onClick={() => signOut.mutate(undefined, { onSettled: () => navigate("/sign-in") })}
            >
              Sign out
            </button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
