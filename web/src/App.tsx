import { QueryClient, QueryClientProvider, useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect, useState } from "react";
import { BrowserRouter, Route, Routes } from "react-router-dom";

import { onSignedOut } from "./api/client";
import { keys } from "./api/hooks";
import { Layout } from "./components/Layout";
import { RequireSession } from "./components/RequireSession";
import { DashboardPage } from "./pages/Dashboard";
import { FlowsPage } from "./pages/Flows";
import { LibraryPage } from "./pages/Library";
import { NotFoundPage } from "./pages/NotFound";
import { ProfilePage, ProfilesPage } from "./pages/Profiles";
import { FlowReportPage, ReportsPage } from "./pages/Reports";
import { SignInPage } from "./pages/SignIn";

// The canvas library is the biggest part of the bundle: loaded only when a flow is opened.
const FlowBuilderPage = lazy(async () => ({ default: (await import("./pages/FlowBuilder")).FlowBuilderPage }));

// React Router 7's behaviour now, so its upgrade changes nothing.
export const ROUTER_FUTURE = { v7_startTransition: true, v7_relativeSplatPath: true } as const;

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      // A 4xx will not get better by asking again.
      queries: { retry: (count, error) => count < 2 && !(error as { status?: number }).status, staleTime: 10_000 },
    },
  });
}

/** A lost session (any 401) sends every page back to sign-in; RequireSession does the redirect. */
function SignedOutWatcher() {
  const client = useQueryClient();
  useEffect(() => onSignedOut(() => client.setQueryData(keys.session, null)), [client]);
  return null;
}

export function AppRoutes() {
  return (
    <>
      <SignedOutWatcher />
      <Routes>
        <Route path="/sign-in" element={<SignInPage />} />
        <Route
          element={
            <RequireSession>
              <Layout />
            </RequireSession>
          }
        >
          <Route index element={<DashboardPage />} />
          <Route path="/flows" element={<FlowsPage />} />
          <Route
            path="/flows/:id"
            element={
              <Suspense fallback={<p className="loading">Loading the flow builder…</p>}>
                <FlowBuilderPage />
              </Suspense>
            }
          />
          <Route path="/flows/:id/report" element={<FlowReportPage />} />
          <Route path="/reports" element={<ReportsPage />} />
          <Route path="/profiles" element={<ProfilesPage />} />
          <Route path="/profiles/:id" element={<ProfilePage />} />
          {/* One route with an optional name: choosing a flow keeps the page (and its scroll). */}
          <Route path="/library/:name?" element={<LibraryPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Routes>
    </>
  );
}

export function App() {
  const [client] = useState(makeQueryClient);
  return (
    <QueryClientProvider client={client}>
      <BrowserRouter basename="/app" future={ROUTER_FUTURE}>
        <AppRoutes />
      </BrowserRouter>
    </QueryClientProvider>
  );
}
