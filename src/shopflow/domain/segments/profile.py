"""One profile's state as a segment rule sees it: what the in-memory evaluator is given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shopflow.domain.segments.dimensions import Totals

Days = Mapping[int, Totals]  # day number -> rollup cell


@dataclass(frozen=True)
class Engagement:
    """What the person did with one message: the last human open and click (None: never)."""

    channel: str
    opened_at: datetime | None = None
    clicked_at: datetime | None = None


@dataclass(frozen=True)
class SentMessage:
    """A message sent to the profile and what was done with it ("opened 3 of the last 10")."""

    id: int
    channel: str
    sent_at: datetime
    engagement: Engagement | None = None


@dataclass(frozen=True)
class ProfileSnapshot:
    """Columns, properties, rollups, memberships, consent, suppressions and engagement of a profile.

    `metrics` maps a metric name to its days; `dimensions` maps (metric, dimension, value) to its
    days. `messages` holds the latest sent messages per channel (at least as many as the largest
    `of_last` a rule asks about), each with its engagement; `engagement` holds the engagement
    rows recorded for this profile, by message id.
    """

    workspace_id: str
    profile_id: int
    columns: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Days] = field(default_factory=dict)
    dimensions: Mapping[tuple[str, str, str], Days] = field(default_factory=dict)
    lists: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    consent: Mapping[str, str] = field(default_factory=dict)  # channel -> status (absent: never)
    suppressions: frozenset[tuple[str, str]] = frozenset()  # (channel, reason)
    messages: Sequence[SentMessage] = ()
    engagement: Mapping[int, Engagement] = field(default_factory=dict)
