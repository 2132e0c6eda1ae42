"""A workspace's A/B test settings, checked (pure). Stored under the workspace setting
"experiments" as JSON, beside "attribution"; every value has a default (DESIGN.md):

    {"confidence": 0.95, "min_conversions": 250, "thompson": false, "auto_winner": false,
     "weights_every_minutes": 60}

- confidence: how sure the test must be before a winner is named (0.5 to 0.9999);
- min_conversions: the conversions every variant needs first (1 to 1,000,000);
- thompson: whether a split node in `mode: thompson` may shift traffic (off: it keeps its percentages);
- auto_winner: once a winner is named, new entrants all take the winner's branch;
- weights_every_minutes: how stale the cached Thompson weights may get (1 to 10,080).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SETTING = "experiments"
KEYS = ("auto_winner", "confidence", "min_conversions", "thompson", "weights_every_minutes")
MIN_CONFIDENCE, MAX_CONFIDENCE = 0.5, 0.9999
MAX_CONVERSIONS = 1_000_000
MAX_MINUTES = 7 * 24 * 60


class SettingsError(ValueError):
    """A setting is wrong; the message starts with its path (experiments.confidence: ...)."""


@dataclass(frozen=True)
class ExperimentSettings:
    confidence: float = 0.95
    min_conversions: int = 250
    thompson: bool = False
    auto_winner: bool = False
    weights_every_minutes: int = 60

    def to_json(self) -> dict[str, Any]:
        return {
            "auto_winner": self.auto_winner,
            "confidence": self.confidence,
            "min_conversions": self.min_conversions,
            "thompson": self.thompson,
            "weights_every_minutes": self.weights_every_minutes,
        }


def _bool(path: str, raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise SettingsError(f"{path}: expected true or false, got {_shown(raw)}")
    return raw


def _int(path: str, raw: Any, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise SettingsError(f"{path}: expected a whole number from {low:,} to {high:,}, got {_shown(raw)}")
    return raw


def _shown(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def parse(raw: Any, *, path: str = SETTING) -> ExperimentSettings:
    """Checked settings from their JSON (missing keys take the defaults); SettingsError naming the path."""
    if raw is None:
        return ExperimentSettings()
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    unknown = sorted(str(k)[:64] for k in set(raw) - set(KEYS))
    if unknown:
        raise SettingsError(f"{path}.{unknown[0]}: unknown setting; expected one of {', '.join(KEYS)}")
    base = ExperimentSettings()
    confidence = raw.get("confidence", base.confidence)
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not MIN_CONFIDENCE <= confidence <= MAX_CONFIDENCE
    ):
        raise SettingsError(
            f"{path}.confidence: expected a fraction from {MIN_CONFIDENCE} to {MAX_CONFIDENCE} "
            f"(0.95 = 95 %), got {_shown(confidence)}"
        )
    return ExperimentSettings(
        confidence=float(confidence),
        min_conversions=_int(
            f"{path}.min_conversions", raw.get("min_conversions", base.min_conversions), 1, MAX_CONVERSIONS
        ),
        thompson=_bool(f"{path}.thompson", raw.get("thompson", base.thompson)),
        auto_winner=_bool(f"{path}.auto_winner", raw.get("auto_winner", base.auto_winner)),
        weights_every_minutes=_int(
            f"{path}.weights_every_minutes",
            raw.get("weights_every_minutes", base.weights_every_minutes),
            1,
            MAX_MINUTES,
        ),
    )
