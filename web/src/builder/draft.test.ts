import { afterEach, describe, expect, it } from "vitest";

import { clearDraft, loadDraft, saveDraft } from "./draft";

const definition = { id: "f", name: "F", description: "", trigger: { type: "event", event: "E" }, entry: "a", nodes: [{ id: "a", type: "exit" }] };

describe("drafts", () => {
  afterEach(() => localStorage.clear());

  it("keeps an unsaved flow per flow id until cleared", () => {
    saveDraft(3, { version: 2, savedAt: "2026-12-04T10:00:00Z", definition, positions: { a: { x: 1, y: 2 } } });
    expect(loadDraft(3)).toEqual({ version: 2, savedAt: "2026-12-04T10:00:00Z", definition, positions: { a: { x: 1, y: 2 } } });
    expect(loadDraft(4)).toBeNull();
    clearDraft(3);
    expect(loadDraft(3)).toBeNull();
  });

  it("ignores what is not a draft", () => {
    localStorage.setItem("shopflow.flow-draft.5", "{not json");
    expect(loadDraft(5)).toBeNull();
    localStorage.setItem("shopflow.flow-draft.5", JSON.stringify({ version: 1, definition: {} }));
    expect(loadDraft(5)).toBeNull();
  });
});
