// TanStack Query hooks over the API: pages use these, never fetch() themselves.
import { useMutation, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, ApiError, setCsrfToken } from "./client";
import type {
  DryRun,
  FlowDefinition,
  FlowDetail,
  FlowReport,
  FlowStatus,
  FlowSummary,
  Installed,
  LibraryFlow,
  LibraryPreview,
  NodeReport,
  ProfileDetail,
  ProfileSummary,
  Session,
  Timeline,
} from "./types";

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

export const flowKeys = {
  flow: (id: number) => ["flows", id, "detail"] as const,
  nodes: (id: number) => ["flows", id, "nodes"] as const,
};

export function useFlow(id: number) {
  return useQuery({ queryKey: flowKeys.flow(id), queryFn: () => api.get<FlowDetail>(`/api/v1/flows/${id}`), staleTime: Infinity });
}

/** Per-node counts, refreshed every few seconds while the page is open: the canvas is live. */
export function useNodeCounts(id: number) {
  return useQuery({
    queryKey: flowKeys.nodes(id),
    queryFn: () => api.get<NodeReport>(`/api/v1/flows/${id}/nodes`),
    refetchInterval: 5_000,
  });
}

/** Save a definition: the flow with the same `id` gets a new version (POST /api/v1/flows). */
export function useSaveFlow(id: number) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (definition: FlowDefinition) => api.post<FlowSummary>("/api/v1/flows", definition),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: flowKeys.flow(id) });
      void client.invalidateQueries({ queryKey: keys.flows, exact: true });
      void client.invalidateQueries({ queryKey: flowKeys.nodes(id) });
    },
  });
}

export function useFlowStatus(id: number) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (status: FlowStatus) => api.patch<FlowSummary>(`/api/v1/flows/${id}`, { status }),
    onSuccess: (flow) => {
      client.setQueryData<FlowDetail>(flowKeys.flow(id), (old) => (old ? { ...old, ...flow } : old));
      void client.invalidateQueries({ queryKey: keys.flows, exact: true });
    },
  });
}

export type ProfileQuery = { kind: "email" | "phone" | "external_id"; value: string };

export function useProfileSearch(query: ProfileQuery | null) {
  return useQuery({
    queryKey: ["profiles", "search", query?.kind, query?.value],
    queryFn: async () =>
      (await api.get<{ profiles: ProfileSummary[] }>(`/api/v1/profiles?${query?.kind}=${encodeURIComponent(query?.value ?? "")}`)).profiles,
    enabled: query !== null,
  });
}

export function useProfile(id: number) {
  return useQuery({ queryKey: ["profiles", id], queryFn: () => api.get<ProfileDetail>(`/api/v1/profiles/${id}`) });
}

export function useTimeline(id: number) {
  return useQuery({
    queryKey: ["profiles", id, "timeline"],
    queryFn: () => api.get<Timeline>(`/api/v1/profiles/${id}/timeline?limit=200`),
  });
}

/** The path a profile would take through the saved flow now, and why (writes nothing). */
export function useDryRun(id: number) {
  return useMutation({
    mutationFn: (profileId: number) => api.post<DryRun>(`/api/v1/flows/${id}/simulate`, { profile_id: profileId }),
  });
}
