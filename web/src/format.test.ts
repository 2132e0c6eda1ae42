import { describe, expect, it } from "vitest";

import { formatCount, formatDuration, formatMoney } from "./format";

describe("formats", () => {
  it("reads ISO 8601 durations as people say them", () => {
    expect(formatDuration("P2D")).toBe("2 days");
    expect(formatDuration("PT1H")).toBe("1 hour");
    expect(formatDuration("P1DT2H30M")).toBe("1 day 2 hours 30 minutes");
    expect(formatDuration("P0D")).toBe("no time");
    expect(formatDuration("soon")).toBe("soon");
  });

  it("shows the API's decimal strings as money, exactly to the cent", () => {
    expect(formatMoney("1234.5", "USD")).toBe("$1,234.50");
    expect(formatMoney("0", "EUR")).toBe("€0.00");
    expect(formatMoney(undefined, "USD")).toBe("–");
    expect(formatMoney("12.00", "NOT-A-CURRENCY")).toBe("12.00 NOT-A-CURRENCY");
    expect(formatCount(1234567)).toBe("1,234,567");
  });
});
