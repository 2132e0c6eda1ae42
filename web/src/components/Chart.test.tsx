import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { bandCentre, Chart, niceMax, scale } from "./Chart";

describe("chart scales", () => {
  it("rounds the top of the axis up to 1, 2 or 5 times a power of ten", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(-3)).toBe(1);
    expect(niceMax(0.0042)).toBe(0.005);
    expect(niceMax(1)).toBe(1);
    expect(niceMax(130)).toBe(200);
    expect(niceMax(501)).toBe(1000);
    expect(niceMax(5000)).toBe(5000);
  });

  it("maps values linearly, the y axis upside down", () => {
    const y = scale(200, 192, 12);
    expect(y(0)).toBe(192);
    expect(y(200)).toBe(12);
    expect(y(100)).toBe(102);
    expect(bandCentre(0, 4, 0, 400)).toBe(50);
    expect(bandCentre(3, 4, 0, 400)).toBe(350);
  });
});

describe("Chart", () => {
  it("draws a bar per value at its height and writes every figure in a table", () => {
    render(
      <Chart
        caption="Sales by week"
        kind="bar"
        labels={["W1", "W2"]}
        series={[{ label: "Sales", values: [50, 100] }]}
        format={(v) => `$${v}`}
        width={200}
        height={100}
      />,
    );
    const bars = screen.getAllByTestId("bar");
    // top = 100; y runs from 72 (100 - bottom 28) to 12: 60 px for 100.
    expect(bars.map((b) => b.getAttribute("height"))).toEqual(["30", "60"]);
    expect(bars.map((b) => b.getAttribute("y"))).toEqual(["42", "12"]);
    const table = screen.getByRole("table", { name: "Sales by week" });
    const rows = within(table).getAllByRole("row").map((r) => r.textContent);
    expect(rows).toEqual(["PeriodSales", "W1$50", "W2$100"]);
    expect(screen.getByRole("img").getAttribute("aria-label")).toBe("Sales by week: chart; the table below has its figures");
  });

  it("draws one line per series through every point", () => {
    render(
      <Chart
        caption="Revenue"
        kind="line"
        labels={["a", "b"]}
        series={[
          { label: "Store", values: [0, 2] },
          { label: "Flows", values: [1, 1] },
        ]}
        format={String}
        width={200}
        height={100}
      />,
    );
    const lines = screen.getAllByTestId("line");
    // x: bands of (200 - 64 - 16) / 2 = 60 from 64; top 2.
    expect(lines.map((l) => l.getAttribute("points"))).toEqual(["94,72 154,12", "94,42 154,42"]);
  });

  it("draws one period of a line chart as bars, none wider than 48 px", () => {
    render(<Chart caption="Revenue" kind="line" labels={["W1"]} series={[{ label: "Store", values: [10] }]} format={String} />);
    expect(screen.queryByTestId("line")).toBeNull();
    expect(screen.getAllByTestId("bar").map((b) => b.getAttribute("width"))).toEqual(["48"]);
  });

  it("says so when there is no data, and draws nothing", () => {
    render(<Chart caption="Revenue" kind="line" labels={[]} series={[{ label: "Store", values: [] }]} format={String} />);
    expect(screen.getByText("No data for this period yet.")).toBeTruthy();
    expect(screen.queryByRole("img")).toBeNull();
    expect(screen.queryByRole("table")).toBeNull();
    expect(screen.getByText("Revenue").tagName).toBe("FIGCAPTION");
  });
});
