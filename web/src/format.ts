// Display formats: money from the API's decimal strings, ISO 8601 durations, dates.

export function formatMoney(amount: string | undefined, currency: string): string {
  if (amount === undefined) return "–";
  const value = Number(amount);
  if (!Number.isFinite(value)) return amount;
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency }).format(value);
  } catch {
    return `${value.toFixed(2)} ${currency}`;
  }
}

export function formatCount(value: number | undefined): string {
  return value === undefined ? "–" : new Intl.NumberFormat("en-US").format(value);
}

const UNITS: Array<[string, string]> = [
  ["D", "day"],
  ["H", "hour"],
  ["M", "minute"],
  ["S", "second"],
];

/** "P2D" -> "2 days", "PT1H30M" -> "1 hour 30 minutes"; anything else as given. */
export function formatDuration(iso: string): string {
  const match = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(iso);
  if (!match) return iso;
  const parts = match
    .slice(1)
    .map((n, i) => [Number(n ?? 0), UNITS[i]![1]] as const)
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n} ${unit}${n === 1 ? "" : "s"}`);
  return parts.length ? parts.join(" ") : "no time";
}

export function formatDate(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" });
}
