// The unsaved flow, kept in localStorage on every change: a lost session (or a closed tab) sends
// the marketer to sign-in and back without losing the edit.
import type { FlowDefinition } from "../api/types";
import type { Point } from "./graph";

export interface Draft {
  /** The flow version the edit started from. */
  version: number;
  savedAt: string;
  definition: FlowDefinition;
  positions: Record<string, Point>;
}

const key = (flowId: number) => `shopflow.flow-draft.${flowId}`;

export function loadDraft(flowId: number, storage: Storage = localStorage): Draft | null {
  try {
    const text = storage.getItem(key(flowId));
    if (!text) return null;
    const draft = JSON.parse(text) as Draft;
    const ok = typeof draft.version === "number" && Array.isArray(draft.definition?.nodes) && typeof draft.positions === "object";
    return ok ? draft : null;
  } catch {
    return null;
  }
}

export function saveDraft(flowId: number, draft: Draft, storage: Storage = localStorage): void {
  try {
    storage.setItem(key(flowId), JSON.stringify(draft));
  } catch {
    // Storage full or disabled: the edit still lives in the page.
  }
}

export function clearDraft(flowId: number, storage: Storage = localStorage): void {
  storage.removeItem(key(flowId));
}
