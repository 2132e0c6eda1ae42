import { describe, expect, it } from "vitest";

import { checkDuration, fieldsOf, getField, setField, summary, validateNode } from "./fields";

describe("node forms", () => {
  it("checks a delay's duration as the server does", () => {
    expect(validateNode({ id: "d", type: "delay", duration: "P2D", next: "x" })).toEqual({});
    expect(validateNode({ id: "d", type: "delay", duration: "PT1H30M", next: "x" })).toEqual({});
    expect(validateNode({ id: "d", type: "delay", duration: "2 days", next: "x" })).toEqual({
      duration: '"2 days" is not an ISO 8601 duration of weeks/days/hours/minutes/seconds, like PT1H or P2D',
    });
    expect(validateNode({ id: "d", type: "delay", duration: "", next: "x" })).toEqual({ duration: "required" });
    expect(checkDuration("P0D")).toBe("expected a duration longer than zero");
    expect(checkDuration("PT")).not.toBeNull();
    expect(checkDuration("P1W")).toBeNull();
  });

  it("needs a send's template and a known channel", () => {
    expect(validateNode({ id: "s", type: "send", channel: "email", template: "" })).toEqual({ template: "required" });
    expect(validateNode({ id: "s", type: "send", channel: "fax", template: "t" })).toEqual({ channel: "expected one of email, sms, push" });
    expect(validateNode({ id: "s", type: "send", channel: "sms", template: "t" })).toEqual({});
  });

  it("needs a wait's timeout and event", () => {
    expect(validateNode({ id: "w", type: "wait", until: { event: "Placed Order" } })).toEqual({ timeout: "required" });
    expect(validateNode({ id: "w", type: "wait", until: { event: "" }, timeout: "P1D" })).toEqual({ "until.event": "required" });
    expect(validateNode({ id: "w", type: "wait", until: { event: "Placed Order" }, timeout: "P1D" })).toEqual({});
  });

  it("needs split percentages that are whole and add up to 100", () => {
    const split = (...percents: unknown[]) => ({ id: "r", type: "random", branches: percents.map((percent) => ({ percent, next: "x" })) });
    expect(validateNode(split(50, 50))).toEqual({});
    expect(validateNode(split(30, 30))).toEqual({ branches: "percentages add up to 60, expected 100" });
    expect(validateNode(split(50.5, 49.5))).toEqual({ branches: "each percentage is a whole number from 1 to 100" });
    expect(validateNode(split(0, 100))).toEqual({ branches: "each percentage is a whole number from 1 to 100" });
    expect(validateNode(split(100))).toEqual({ branches: "expected at least 2 branches" });
  });

  it("needs an http(s) webhook URL", () => {
    expect(validateNode({ id: "h", type: "webhook", url: "ftp://x", method: "POST" })).toEqual({ url: "expected an http(s) URL, like https://example.com/hook" });
    expect(validateNode({ id: "h", type: "webhook", url: "https://example.com/h", method: "POST" })).toEqual({});
  });

  it("edits other shapes as JSON", () => {
    expect(fieldsOf({ id: "d", type: "delay", until: { time: "10:00" } }).map((f) => f.kind)).toEqual(["json"]);
    expect(fieldsOf({ id: "l", type: "list", action: "add", list: "vip" }).map((f) => f.label)).toEqual(["Node (JSON)"]);
    expect(fieldsOf({ id: "w", type: "wait", until: { engagement: "opened", node: "m" } }).map((f) => f.name)).toEqual(["until", "timeout"]);
  });

  it("reads and writes dotted fields without touching the original", () => {
    const node = { id: "w", type: "wait", until: { event: "A", same_key: true }, timeout: "P1D" };
    const changed = setField(node, "until.event", "B");
    expect(changed).toEqual({ id: "w", type: "wait", until: { event: "B", same_key: true }, timeout: "P1D" });
    expect(getField(node, "until.event")).toBe("A");
    expect(setField(node, "", { type: "exit", id: "other" })).toEqual({ id: "w", type: "exit" });
  });

  it("sums a node up for its card", () => {
    expect(summary({ id: "d", type: "delay", duration: "P2D" })).toBe("Wait P2D");
    expect(summary({ id: "s", type: "send", channel: "sms", template: "hi" })).toBe("sms · hi");
    expect(summary({ id: "r", type: "random", branches: [{ percent: 20 }, { percent: 80 }] })).toBe("20% / 80%");
  });
});
