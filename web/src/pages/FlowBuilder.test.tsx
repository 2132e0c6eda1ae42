import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";

import { renderApp, session } from "../test/render";

const definition = {
  id: "welcome",
  name: "Welcome",
  description: "",
  trigger: { type: "event", event: "Subscribed" },
  entry: "hello",
  nodes: [
    { id: "hello", type: "send", channel: "email", template: "welcome-1", next: "pause" },
    { id: "pause", type: "delay", duration: "P2D", next: "done" },
    { id: "done", type: "exit" },
  ],
};
const flow = { id: 7, key: "welcome", name: "Welcome", status: "draft", version: 1, trigger_event: "Subscribed", created_at: "2026-12-01T10:00:00+00:00", updated_at: "2026-12-01T10:00:00+00:00", definition };
const counts = {
  flow_id: 7,
  status: "draft",
  version: 1,
  entrants: 3,
  nodes: [
    { node_id: "hello", type: "send", entered: 3, branches: {}, waiting: 0, exited: {}, skipped: {} },
    { node_id: "pause", type: "delay", entered: 3, branches: {}, waiting: 2, exited: {}, skipped: {} },
  ],
};

function routes(save: (body: unknown) => [number, unknown]) {
  return {
    "GET /api/v1/session": [200, session()] as [number, unknown],
    "GET /api/v1/flows/7": [200, flow] as [number, unknown],
    "GET /api/v1/flows/7/nodes": [200, counts] as [number, unknown],
    "POST /api/v1/flows": save,
  };
}

async function openStep(id: string) {
  const panel = await screen.findByRole("complementary", { name: "Step settings" });
  fireEvent.click(within(panel).getByRole("button", { name: new RegExp(`^${id} `) }));
  return panel;
}

describe("Flow builder", () => {
  afterEach(() => localStorage.clear());

  it("shows the live counts and saves an edited delay as a new version", async () => {
    const { calls } = renderApp("/flows/7", routes(() => [200, { ...flow, version: 2 }]));
    await waitFor(() => expect(screen.getByTestId("entrants").textContent).toBe("3 entrants"));
    expect(screen.getByTestId("counts-pause").textContent).toBe("3 entered · 2 waiting");
    const panel = await openStep("pause");
    const duration = within(panel).getByLabelText("Wait for") as HTMLInputElement;
    expect(duration.value).toBe("P2D");
    fireEvent.change(duration, { target: { value: "P1D" } });
    expect(JSON.parse(localStorage.getItem("shopflow.flow-draft.7") ?? "{}").definition.nodes[1].duration).toBe("P1D");
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Saved as version 2.")).toBeTruthy();
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe("/api/v1/flows");
    expect(post.headers["X-CSRF-Token"]).toBe("csrf-123");
    expect((post.body as typeof definition).nodes[1]).toEqual({ id: "pause", type: "delay", duration: "P1D", next: "done" });
    expect(localStorage.getItem("shopflow.flow-draft.7")).toBeNull();
  });

  it("puts the server's field error on the step and the field it names", async () => {
    renderApp(
      "/flows/7",
      routes(() => [400, { error: "nodes[0].template: no template 'welcome-9'", errors: ["nodes[0].template: no template 'welcome-9'", "trigger.event: unknown"] }]),
    );
    const panel = await openStep("hello");
    fireEvent.change(within(panel).getByLabelText("Template"), { target: { value: "welcome-9" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    const alert = await screen.findByText(/Not saved: 1 step has problems/);
    expect(alert.closest("[role=alert]")?.textContent).toContain("trigger.event: unknown");
    expect(within(panel).getByText("template: no template 'welcome-9'")).toBeTruthy();
    expect(within(panel).getByLabelText("Template").getAttribute("aria-invalid")).toBe("true");
    // Editing the step clears the server's complaint about it.
    fireEvent.change(within(panel).getByLabelText("Template"), { target: { value: "welcome-1" } });
    await waitFor(() => expect(within(panel).queryByText("template: no template 'welcome-9'")).toBeNull());
  });

  it("does not send a form the browser can see is wrong", async () => {
    const { calls } = renderApp("/flows/7", routes(() => [200, flow]));
    const panel = await openStep("pause");
    fireEvent.change(within(panel).getByLabelText("Wait for"), { target: { value: "soon" } });
    expect(within(panel).getByRole("alert").textContent).toBe('duration: "soon" is not an ISO 8601 duration of weeks/days/hours/minutes/seconds, like PT1H or P2D');
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect((await screen.findByText(/fix the steps marked in red first \(pause\)/)).textContent).toContain("pause");
    expect(calls.filter((c) => c.method === "POST")).toEqual([]);
  });

  it("restores an unsaved edit kept before the session was lost", async () => {
    const edited = { ...definition, nodes: [definition.nodes[0], { ...definition.nodes[1], duration: "PT6H" }, definition.nodes[2]] };
    localStorage.setItem("shopflow.flow-draft.7", JSON.stringify({ version: 1, savedAt: "2026-12-04T10:00:00Z", definition: edited, positions: {} }));
    renderApp("/flows/7", { ...routes(() => [200, flow]), "GET /api/v1/flows/7": [200, { ...flow, version: 3 }] });
    const restored = (await screen.findByRole("status")).textContent;
    expect(restored).toContain("Restored your unsaved changes");
    expect(restored).toContain("They began from version 1; the flow has been saved as version 3 since");
    const panel = await openStep("pause");
    expect((within(panel).getByLabelText("Wait for") as HTMLInputElement).value).toBe("PT6H");
    fireEvent.click(screen.getByRole("button", { name: "Discard them" }));
    await waitFor(() => expect(localStorage.getItem("shopflow.flow-draft.7")).toBeNull());
  });

  it("adds a step from the palette and connects it from the panel", async () => {
    const { calls } = renderApp("/flows/7", routes(() => [200, { ...flow, version: 2 }]));
    fireEvent.click(await screen.findByRole("button", { name: "Add a/b split (%) step" }));
    const panel = screen.getByRole("complementary", { name: "Step settings" });
    expect(within(panel).getByRole("heading").textContent).toBe("A/B split random-1");
    fireEvent.change(within(panel).getByLabelText("Branch A %"), { target: { value: "30" } });
    expect(within(panel).getByRole("alert").textContent).toBe("branches: percentages add up to 80, expected 100");
    fireEvent.change(within(panel).getByLabelText("Branch B %"), { target: { value: "70" } });
    fireEvent.change(within(panel).getByLabelText("After “A 30%”"), { target: { value: "done" } });
    fireEvent.change(within(panel).getByLabelText("After “B 70%”"), { target: { value: "pause" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved as version 2.");
    const sent = calls.find((c) => c.method === "POST")!.body as typeof definition;
    expect(sent.nodes[3]).toEqual({ id: "random-1", type: "random", branches: [{ percent: 30, next: "done" }, { percent: 70, next: "pause" }] });
  });

  it("draws a dry run's path on the canvas", async () => {
    const answer = {
      flow_id: 7,
      version: 1,
      profile_id: 5,
      entered: true,
      outcome: "waiting at pause until 2026-12-06T10:00:00+00:00",
      path: [
        { at: "2026-12-04T10:00:00+00:00", node_id: null, kind: "trigger", detail: "Subscribed" },
        { at: "2026-12-04T10:00:00+00:00", node_id: "hello", kind: "send", detail: "email welcome-1" },
        { at: "2026-12-04T10:00:00+00:00", node_id: "pause", kind: "wait", detail: "P2D" },
      ],
    };
    const { calls } = renderApp("/flows/7", { ...routes(() => [200, flow]), "POST /api/v1/flows/7/simulate": [200, answer] });
    const profile = await screen.findByLabelText("Profile id");
    fireEvent.change(profile, { target: { value: "x5" } });
    fireEvent.click(screen.getByRole("button", { name: "Run" }));
    expect(screen.getByRole("alert").textContent).toBe('profile_id: "x5" is not a profile id (a whole number from 1)');
    fireEvent.change(profile, { target: { value: "5" } });
    fireEvent.click(screen.getByRole("button", { name: "Run" }));
    expect((await screen.findByText(/waiting at pause until/)).closest("[role=status]")?.textContent).toContain("Would enter (v1)");
    expect(calls.find((c) => c.path === "/api/v1/flows/7/simulate")?.body).toEqual({ profile_id: 5 });
    await waitFor(() => expect(document.querySelectorAll(".flow-node.on-path").length).toBe(2));
    expect([...document.querySelectorAll(".flow-node.on-path")].map((n) => n.getAttribute("data-node-id"))).toEqual(["hello", "pause"]);
  });

  it("lets a viewer look but not edit", async () => {
    renderApp("/flows/7", { ...routes(() => [403, {}]), "GET /api/v1/session": [200, session({ role: "viewer", can_write: false })] });
    const panel = await openStep("pause");
    expect((within(panel).getByLabelText("Wait for") as HTMLInputElement).disabled).toBe(true);
    expect(screen.queryByRole("button", { name: "Save" })).toBeNull();
    expect(screen.queryByRole("complementary", { name: "Add a step" })).toBeNull();
  });
});
