// A small SVG chart (lines or bars) with its caption and a data table for screen readers:
// the few charts of the dashboard and reports need no chart library (ADR 0013).

export interface Series {
  label: string;
  values: number[];
}

export interface ChartProps {
  caption: string;
  kind: "line" | "bar";
  /** One label per point (x axis), e.g. the periods. */
  labels: string[];
  series: Series[];
  /** How a value is written on the axis and in the table. */
  format: (value: number) => string;
  width?: number;
  height?: number;
}

const COLOURS = ["#4f46e5", "#0e9384", "#c4320a", "#6941c6"];
const PAD = { top: 12, right: 16, bottom: 28, left: 64 };

/** The smallest 1/2/5 x 10^n at or above `max` (0 stays 1, so an all-zero chart has an axis). */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/** A linear map from [0, top] to [start, end] (start at the bottom for a y axis). */
export function scale(top: number, start: number, end: number): (value: number) => number {
  return (value) => start + ((end - start) * value) / top;
}

/** The x of point i of n across [left, right]: centres of n equal bands. */
export function bandCentre(i: number, n: number, left: number, right: number): number {
  return left + ((right - left) * (i + 0.5)) / n;
}

export function Chart({ caption, kind, labels, series, format, width = 640, height = 220 }: ChartProps) {
  const empty = labels.length === 0 || series.every((s) => s.values.length === 0);
  const top = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const y = scale(top, height - PAD.bottom, PAD.top);
  const ticks = [0, top / 2, top];
  const n = labels.length;
  const band = (width - PAD.left - PAD.right) / Math.max(n, 1);
  const barWidth = Math.min(48, Math.max(2, (band * 0.7) / Math.max(series.length, 1)));
  // A line needs two points: one period is drawn as bars.
  const shape = kind === "line" && n < 2 ? "bar" : kind;
  // Only a handful of x labels, so they never overlap.
  const every = Math.max(1, Math.ceil(n / 8));
  return (
    <figure className="chart">
      <figcaption>{caption}</figcaption>
      {empty ? (
        <p className="muted">No data for this period yet.</p>
      ) : (
        <>
          {series.length > 1 && (
            <ul className="legend" aria-hidden="true">
              {series.map((s, i) => (
                <li key={s.label}>
                  <span className="swatch" style={{ background: COLOURS[i % COLOURS.length] }} />
                  {s.label}
                </li>
              ))}
            </ul>
          )}
          <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${caption}: chart; the table below has its figures`} data-testid="chart-svg">
            {ticks.map((tick) => (
              <g key={tick}>
                <line x1={PAD.left} x2={width - PAD.right} y1={y(tick)} y2={y(tick)} className="grid" />
                <text x={PAD.left - 6} y={y(tick) + 4} textAnchor="end" className="axis">
                  {format(tick)}
                </text>
              </g>
            ))}
            {labels.map((label, i) =>
              i % every === 0 ? (
                <text key={label} x={bandCentre(i, n, PAD.left, width - PAD.right)} y={height - 8} textAnchor="middle" className="axis">
                  {label}
                </text>
              ) : null,
            )}
            {series.map((s, k) => {
              const colour = COLOURS[k % COLOURS.length];
              if (shape === "bar")
                return s.values.map((value, i) => (
                  <rect
                    key={`${s.label}-${labels[i]}`}
                    data-testid="bar"
                    x={bandCentre(i, n, PAD.left, width - PAD.right) - (barWidth * series.length) / 2 + k * barWidth}
                    y={y(value)}
                    width={barWidth}
                    height={y(0) - y(value)}
                    fill={colour}
                  />
                ));
              const points = s.values.map((value, i) => `${bandCentre(i, n, PAD.left, width - PAD.right)},${y(value)}`).join(" ");
              return (
                <g key={s.label}>
                  <polyline points={points} fill="none" stroke={colour} strokeWidth={2} data-testid="line" />
                  {s.values.map((value, i) => (
                    <circle key={labels[i]} cx={bandCentre(i, n, PAD.left, width - PAD.right)} cy={y(value)} r={4} fill={colour} />
                  ))}
                </g>
              );
            })}
          </svg>
          <table className="visually-hidden">
            <caption>{caption}</caption>
            <thead>
              <tr>
                <th scope="col">Period</th>
                {series.map((s) => (
                  <th key={s.label} scope="col">
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {labels.map((label, i) => (
                <tr key={label}>
                  <th scope="row">{label}</th>
                  {series.map((s) => (
                    <td key={s.label}>{format(s.values[i] ?? 0)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </figure>
  );
}
