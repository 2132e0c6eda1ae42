// TanStack Query hooks over the API: pages use these, never fetch() themselves.
import { useMutation, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, ApiError, setCsrfToken } from "./client";
import type { FlowReport, FlowSummary, Installed, LibraryFlow, LibraryPreview, Session } from "./types";

export const keys = {
  session: ["session"] as const,
  flows: ["flows"] as const,
  flowReport: (id: number) => ["flows", id, "report"] as const,
  library: ["library"] as const,
  libraryFlow: (name: string) => ["library", name] as const,
};

/** The signed-in session, or null when signed out (a 401 is an answer here, not an error). */
export function useSession() {
  return useQuery({
    queryKey: keys.session,
    queryFn: async (): Promise<Session | null> => {
      try {
        const session = await api.get<Session>("/api/v1/session");
        setCsrfToken(session.csrf_token);
        return session;
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          setCsrfToken(null);
          return null;
        }
        throw error;
      }
    },
    staleTime: 60_000,
    retry: false,
  });
}

export interface SignInForm {
  email: string;
  password: string;
  workspace?: string;
}

export function useSignIn() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (form: SignInForm) => api.post<Session>("/api/v1/session", form),
    onSuccess: (session) => {
      setCsrfToken(session.csrf_token);
      client.clear();
      client.setQueryData(keys.session, session);
    },
  });
}

export function useSignOut() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => api.delete<void>("/api/v1/session"),
    onSettled: () => {
      setCsrfToken(null);
      client.clear();
      client.setQueryData(keys.session, null);
    },
  });
}

export function useFlows() {
  return useQuery({
    queryKey: keys.flows,
    queryFn: async () => (await api.get<{ flows: FlowSummary[] }>("/api/v1/flows")).flows,
  });
}

/** One report per flow (entrants, revenue), fetched side by side; index-aligned with `flows`. */
export function useFlowReports(flows: FlowSummary[]) {
  return useQueries({
    queries: flows.map((flow) => ({
      queryKey: keys.flowReport(flow.id),
      queryFn: () => api.get<FlowReport>(`/api/v1/flows/${flow.id}/report`),
      staleTime: 30_000,
    })),
  });
}

export function useLibrary() {
  return useQuery({
    queryKey: keys.library,
    queryFn: async () => (await api.get<{ flows: LibraryFlow[] }>("/api/v1/library/flows")).flows,
    staleTime: 5 * 60_000,
  });
}

export function useLibraryPreview(name: string | null) {
  return useQuery({
    queryKey: keys.libraryFlow(name ?? ""),
    queryFn: () => api.get<LibraryPreview>(`/api/v1/library/flows/${encodeURIComponent(name ?? "")}`),
    enabled: name !== null,
    staleTime: 5 * 60_000,
  });
}

export function useInstall() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ name, live }: { name: string; live: boolean }) =>
      api.post<Installed>(`/api/v1/library/flows/${encodeURIComponent(name)}/install`, { live }),
    onSuccess: () => client.invalidateQueries({ queryKey: keys.flows }),
  });
}
