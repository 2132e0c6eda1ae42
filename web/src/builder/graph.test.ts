import { describe, expect, it } from "vitest";

import type { FlowDefinition } from "../api/types";
import { connect, deleteNode, edgeEnds, edgesOf, errorsByNode, exitsOf, layout, newNode, targetOf, withTarget } from "./graph";

const flow: FlowDefinition = {
  id: "cart",
  name: "Cart",
  description: "",
  trigger: { type: "event", event: "Started Checkout" },
  entry: "wait",
  nodes: [
    { id: "wait", type: "wait", until: { event: "Placed Order" }, timeout: "PT4H", on_event: "bought", on_timeout: "ab" },
    { id: "ab", type: "random", branches: [{ percent: 50, next: "mail" }, { percent: 50, next: "sms" }] },
    { id: "mail", type: "send", channel: "email", template: "cart-1", next: "bought" },
    { id: "sms", type: "send", channel: "sms", template: "cart-sms", next: "bought" },
    { id: "bought", type: "exit", reason: "completed" },
    { id: "orphan", type: "delay", duration: "P1D", next: "bought" },
  ],
};

describe("definition <-> graph", () => {
  it("lists each type's exits in drawing order", () => {
    expect(exitsOf(flow.nodes[0]!)).toEqual([
      { handle: "on_event", label: "event" },
      { handle: "on_timeout", label: "timeout" },
    ]);
    expect(exitsOf(flow.nodes[1]!)).toEqual([
      { handle: "branches.0", label: "A 50%" },
      { handle: "branches.1", label: "B 50%" },
    ]);
    expect(exitsOf({ id: "s", type: "split", condition: {}, yes: "a", no: "b" }).map((e) => e.handle)).toEqual(["yes", "no"]);
    expect(exitsOf({ id: "s", type: "split", branches: [{}, {}], default: "a" }).map((e) => e.handle)).toEqual(["branches.0", "branches.1", "default"]);
    expect(exitsOf({ id: "w", type: "webhook", url: "https://x", next: "a" }).map((e) => e.handle)).toEqual(["next", "on_failure"]);
    expect(exitsOf(flow.nodes[4]!)).toEqual([]);
  });

  it("draws one edge per connected exit, labelled only where a node has several", () => {
    expect(edgesOf(flow)).toEqual([
      { id: "wait:on_event", source: "wait", sourceHandle: "on_event", target: "bought", label: "event" },
      { id: "wait:on_timeout", source: "wait", sourceHandle: "on_timeout", target: "ab", label: "timeout" },
      { id: "ab:branches.0", source: "ab", sourceHandle: "branches.0", target: "mail", label: "A 50%" },
      { id: "ab:branches.1", source: "ab", sourceHandle: "branches.1", target: "sms", label: "B 50%" },
      { id: "mail:next", source: "mail", sourceHandle: "next", target: "bought", label: "" },
      { id: "sms:next", source: "sms", sourceHandle: "next", target: "bought", label: "" },
      { id: "orphan:next", source: "orphan", sourceHandle: "next", target: "bought", label: "" },
    ]);
  });

  it("reads an edge id back into its node and exit, colons in ids and all", () => {
    expect(edgeEnds("ab:branches.1")).toEqual({ source: "ab", handle: "branches.1" });
    expect(edgeEnds("step:2:on_timeout")).toEqual({ source: "step:2", handle: "on_timeout" });
  });

  it("lays nodes out in layers by breadth-first depth, unreachable ones last", () => {
    expect(layout(flow)).toEqual({
      wait: { x: 0, y: 0 },
      bought: { x: -130, y: 125 },
      ab: { x: 130, y: 125 },
      mail: { x: -130, y: 250 },
      sms: { x: 130, y: 250 },
      orphan: { x: 0, y: 375 },
    });
  });

  it("connects and disconnects exits, branches included", () => {
    const moved = connect(flow, "ab", "branches.1", "mail");
    expect(moved.nodes[1]).toEqual({ id: "ab", type: "random", branches: [{ percent: 50, next: "mail" }, { percent: 50, next: "mail" }] });
    expect(flow.nodes[1]!.branches).toEqual([{ percent: 50, next: "mail" }, { percent: 50, next: "sms" }]);
    const cut = withTarget(flow.nodes[2]!, "next", null);
    expect(cut).toEqual({ id: "mail", type: "send", channel: "email", template: "cart-1" });
    expect(targetOf(cut, "next")).toBeNull();
    expect(connect(flow, "mail", "next", "mail")).toBe(flow); // no loop onto itself
    expect(connect(flow, "nobody", "next", "mail")).toBe(flow);
  });

  it("deletes a node, disconnecting what led to it and moving the entry", () => {
    const without = deleteNode(flow, "bought");
    expect(without.nodes.map((n) => n.id)).toEqual(["wait", "ab", "mail", "sms", "orphan"]);
    expect(without.nodes[0]).toEqual({ id: "wait", type: "wait", until: { event: "Placed Order" }, timeout: "PT4H", on_timeout: "ab" });
    expect(without.nodes[2]!.next).toBeUndefined();
    expect(without.entry).toBe("wait");
    expect(deleteNode(flow, "wait").entry).toBe("ab");
  });

  it("gives new nodes unused ids and unconnected exits", () => {
    expect(newNode("delay", ["delay-1", "delay-3"])).toEqual({ id: "delay-2", type: "delay", duration: "P1D" });
    expect(newNode("random", [])).toEqual({ id: "random-1", type: "random", branches: [{ percent: 50 }, { percent: 50 }] });
    expect(newNode("send", [])).toEqual({ id: "send-1", type: "send", channel: "email", template: "" });
  });

  it("puts the server's errors on the node they name, the rest on the flow", () => {
    const errors = errorsByNode(flow, [
      "nodes[2].template: String should have at least 1 character (got '')",
      "nodes[1].branches: percentages add up to 60 (30 + 30), expected 100",
      "nodes[1].branches: at most 10",
      "nodes[5]: unreachable from the entry",
      "nodes[9].next: no such node",
      "trigger.event: required, but missing",
    ]);
    expect(errors).toEqual({
      nodes: {
        mail: { template: "String should have at least 1 character (got '')" },
        ab: { branches: "percentages add up to 60 (30 + 30), expected 100; at most 10" },
        orphan: { node: "unreachable from the entry" },
      },
      flow: ["nodes[9].next: no such node", "trigger.event: required, but missing"],
    });
  });
});

describe("dry run path", () => {
  it("lists the nodes visited and the steps between them, once each", async () => {
    const { pathOf } = await import("./graph");
    const path = pathOf([
      { node_id: null },
      { node_id: "wait" },
      { node_id: "wait" },
      { node_id: "ab" },
      { node_id: "mail" },
      { node_id: null },
    ]);
    expect([...path.nodes]).toEqual(["wait", "ab", "mail"]);
    expect([...path.steps]).toEqual(["wait>ab", "ab>mail"]);
  });
});
