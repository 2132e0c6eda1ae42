import type { Health } from "../api/reports";

const WORDS: Record<Health, string> = { good: "Healthy", warning: "Watch", bad: "Too high" };

/** Green, amber or red, always with a word: colour is never the only sign. */
export function HealthBadge({ status }: { status: Health }) {
  return <span className={`health health-${status}`}>{WORDS[status]}</span>;
}
