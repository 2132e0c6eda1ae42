"""Campaign rules that need no I/O: the definition and its validation (every problem naming its
field), the lifecycle, and when each recipient's message may go (local time, throttling)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shopflow.domain.durations import parse_duration
from shopflow.domain.problems import Problem, ProblemsError

CHANNELS = ("email", "sms", "push")
NOW, AT, LOCAL_TIME = "now", "at", "local_time"
SCHEDULE_KINDS = (NOW, AT, LOCAL_TIME)
DRAFT, SCHEDULED, SENDING, PAUSED, SENT, CANCELLED = (
    "draft",
    "scheduled",
    "sending",
    "paused",
    "sent",
    "cancelled",
)
STATUSES = (DRAFT, SCHEDULED, SENDING, PAUSED, SENT, CANCELLED)
# Why a message of a campaign was skipped by the campaign itself (the guards add their own).
CANCELLED_REASON = "campaign_cancelled"
ENDED_REASON = "campaign_ended"

DEFAULT_LOCAL_TIME = time(10, 0)
# The earliest zone on Earth (UTC+14, Line Islands): a local-time campaign starts queueing when
# the scheduled day's send time arrives there.
EARLIEST_OFFSET = timedelta(hours=14)
MAX_SOURCES = 50  # lists or segments in one part of an audience
MAX_PER_HOUR = 10_000_000
KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
TEMPLATE = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
SOURCE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
FIELDS = frozenset(
    {
        "key",
        "name",
        "channel",
        "audience",
        "template",
        "subject",
        "schedule",
        "ends_at",
        "per_hour",
        "freeze_audience",
        "utm",
        "ab",
    }
)
UTM_KEYS = ("source", "medium", "campaign")
UTM_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")
AB_FIELDS = frozenset({"variants", "test_percent", "window", "metric", "winner"})
AB_METRICS = ("open", "click", "placed_order", "revenue_per_recipient")
AB_WINNERS = ("auto", "manual")
MAX_WINDOW = timedelta(days=30)
NOT_SIGNIFICANT = "not_significant"


class Invalid(ProblemsError):
    title = "invalid campaign"


class TransitionError(ValueError):
    """The campaign's status forbids the action (naming both)."""


@dataclass(frozen=True)
class Sources:
    lists: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()

    def empty(self) -> bool:
        return not self.lists and not self.segments

    def dump(self) -> dict[str, list[str]]:
        return {"lists": list(self.lists), "segments": list(self.segments)}


@dataclass(frozen=True)
class Audience:
    include: Sources
    exclude: Sources = field(default_factory=Sources)

    def dump(self) -> dict[str, Any]:
        return {"include": self.include.dump(), "exclude": self.exclude.dump()}


@dataclass(frozen=True)
class Schedule:
    kind: str = NOW
    at: datetime | None = None  # kind 'at'
    day: date | None = None  # kind 'local_time'
    local: time = DEFAULT_LOCAL_TIME  # kind 'local_time'

    def dump(self) -> dict[str, Any]:
        if self.kind == AT and self.at is not None:
            return {"kind": AT, "at": self.at.isoformat()}
        if self.kind == LOCAL_TIME and self.day is not None:
            return {"kind": LOCAL_TIME, "date": self.day.isoformat(), "time": self.local.strftime("%H:%M")}
        return {"kind": NOW}


@dataclass(frozen=True)
class Variant:
    key: str
    subject: str | None = None
    template: str | None = None

    def dump(self) -> dict[str, Any]:
        parts = {"key": self.key, "subject": self.subject, "template": self.template}
        return {k: v for k, v in parts.items() if v is not None}


@dataclass(frozen=True)
class AbTest:
    variants: tuple[Variant, ...]
    test_percent: int
    window: str  # ISO 8601 duration
    metric: str
    winner: str  # auto | manual

    @property
    def window_span(self) -> timedelta:
        return parse_duration(self.window)

    def variant(self, key: str) -> Variant | None:
        return next((v for v in self.variants if v.key == key), None)

    def dump(self) -> dict[str, Any]:
        return {
            "variants": [v.dump() for v in self.variants],
            "test_percent": self.test_percent,
            "window": self.window,
            "metric": self.metric,
            "winner": self.winner,
        }


@dataclass(frozen=True)
class Definition:
    key: str
    name: str
    channel: str
    audience: Audience
    template: str
    subject: str | None = None
    schedule: Schedule = field(default_factory=Schedule)
    ends_at: datetime | None = None
    per_hour: int | None = None
    freeze_audience: bool = False
    utm: dict[str, str] | None = None
    ab: AbTest | None = None


def show(value: object) -> str:
    """A value as a problem message quotes it: short, one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(problems: list[Problem], path: str, value: object, *, limit: int, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, f"expected a non-empty string, got {show(value)}"))
        return None
    if len(value) > limit:
        problems.append(Problem(path, f"expected at most {limit} characters, got {len(value)}"))
        return None
    if any(ord(c) < 32 and c not in "\t" for c in value) or "\x7f" in value:
        problems.append(Problem(path, "expected text without control characters"))
        return None
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        problems.append(Problem(path, "expected text without lone surrogates"))
        return None
    return value.strip()


def _pattern(problems: list[Problem], path: str, value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        problems.append(Problem(path, f"expected {what}, got {show(value)}"))
        return ""
    return value


def parse_time(value: object, path: str, problems: list[Problem]) -> datetime | None:
    """An ISO 8601 time with an offset (or Z); a naive one is UTC."""
    if not isinstance(value, str) or len(value) > 40:
        problems.append(
            Problem(path, f"expected an ISO 8601 time like 2026-11-27T10:00:00Z, got {show(value)}")
        )
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problems.append(
            Problem(path, f"expected an ISO 8601 time like 2026-11-27T10:00:00Z, got {show(value)}")
        )
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _sources(problems: list[Problem], path: str, value: object) -> Sources:
    if value is None:
        return Sources()
    if not isinstance(value, Mapping):
        problems.append(Problem(path, f"expected an object with lists and segments, got {show(value)}"))
        return Sources()
    found: dict[str, tuple[str, ...]] = {}
    for name in sorted(set(value) - {"lists", "segments"}):
        problems.append(Problem(f"{path}.{name}", "unknown field (expected lists, segments)"))
    for part in ("lists", "segments"):
        keys = value.get(part, [])
        if not isinstance(keys, list):
            problems.append(Problem(f"{path}.{part}", f"expected a list of keys, got {show(keys)}"))
            continue
        if len(keys) > MAX_SOURCES:
            problems.append(
                Problem(f"{path}.{part}", f"expected at most {MAX_SOURCES} keys, got {len(keys)}")
            )
            continue
        good: list[str] = []
        for i, key in enumerate(keys):
            checked = _pattern(problems, f"{path}.{part}[{i}]", key, SOURCE_KEY, f"a {part[:-1]} key")
            if checked and checked not in good:
                good.append(checked)
        found[part] = tuple(good)
    return Sources(found.get("lists", ()), found.get("segments", ()))


def _audience(problems: list[Problem], value: object) -> Audience:
    if not isinstance(value, Mapping):
        problems.append(
            Problem("audience", f"expected an object with include and exclude, got {show(value)}")
        )
        return Audience(Sources())
    for name in sorted(set(value) - {"include", "exclude"}):
        problems.append(Problem(f"audience.{name}", "unknown field (expected include, exclude)"))
    include = _sources(problems, "audience.include", value.get("include"))
    exclude = _sources(problems, "audience.exclude", value.get("exclude"))
    if include.empty() and not any(p.path.startswith("audience.include") for p in problems):
        problems.append(Problem("audience.include", "expected at least one list or segment to send to"))
    return Audience(include, exclude)


def _schedule(problems: list[Problem], value: object) -> Schedule:
    if value is None:
        return Schedule()
    if not isinstance(value, Mapping):
        problems.append(Problem("schedule", f"expected an object with a kind, got {show(value)}"))
        return Schedule()
    kind = value.get("kind", NOW)
    if kind not in SCHEDULE_KINDS:
        problems.append(
            Problem("schedule.kind", f"expected one of {', '.join(SCHEDULE_KINDS)}, got {show(kind)}")
        )
        return Schedule()
    allowed = {NOW: {"kind"}, AT: {"kind", "at"}, LOCAL_TIME: {"kind", "date", "time"}}[kind]
    for name in sorted(set(value) - allowed):
        problems.append(Problem(f"schedule.{name}", f"unknown field for kind {kind!r}"))
    if kind == AT:
        return Schedule(AT, at=parse_time(value.get("at"), "schedule.at", problems))
    if kind == LOCAL_TIME:
        raw_day, raw_time = value.get("date"), value.get("time", "10:00")
        day: date | None = None
        try:
            day = date.fromisoformat(raw_day) if isinstance(raw_day, str) and len(raw_day) == 10 else None
        except ValueError:
            day = None
        if day is None:
            problems.append(Problem("schedule.date", f"expected a date like 2026-11-27, got {show(raw_day)}"))
        match = _HHMM.fullmatch(raw_time) if isinstance(raw_time, str) else None
        if match is None:
            problems.append(
                Problem("schedule.time", f"expected a local time HH:MM like 10:00, got {show(raw_time)}")
            )
            return Schedule(LOCAL_TIME, day=day)
        return Schedule(LOCAL_TIME, day=day, local=time(int(match[1]), int(match[2])))
    return Schedule()


def _utm(problems: list[Problem], value: object) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        if value is None:
            return None
        problems.append(Problem("utm", f"expected an object with {', '.join(UTM_KEYS)}, got {show(value)}"))
        return None
    out: dict[str, str] = {}
    for name in sorted(set(value) - set(UTM_KEYS), key=str):
        problems.append(Problem(f"utm.{str(name)[:40]}", f"unknown field (expected {', '.join(UTM_KEYS)})"))
    for name in UTM_KEYS:
        if name in value:
            what = "letters, digits, _ . + - (1 to 100)"
            found = _pattern(problems, f"utm.{name}", value[name], UTM_VALUE, what)
            if found:
                out[name] = found
    return out


def _whole(problems: list[Problem], path: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        problems.append(Problem(path, f"expected a whole number from {low} to {high}, got {show(value)}"))
        return low
    return value


def _variants(problems: list[Problem], value: object) -> tuple[Variant, ...]:
    if not isinstance(value, list) or not 2 <= len(value) <= 4:
        got = f"{len(value)}" if isinstance(value, list) else show(value)
        problems.append(Problem("ab.variants", f"expected a list of 2 to 4 variants, got {got}"))
        return ()
    out: list[Variant] = []
    for i, raw in enumerate(value):
        path = f"ab.variants[{i}]"
        if not isinstance(raw, Mapping):
            problems.append(
                Problem(path, f"expected an object with key, subject or template, got {show(raw)}")
            )
            continue
        for name in sorted(set(raw) - {"key", "subject", "template"}, key=str):
            problems.append(
                Problem(f"{path}.{str(name)[:40]}", "unknown field (expected key, subject, template)")
            )
        key = _pattern(problems, f"{path}.key", raw.get("key"), KEY, "a variant key like a or subject-b")
        if key and any(v.key == key for v in out):
            problems.append(Problem(f"{path}.key", f"{key!r} is already the key of another variant"))
        subject = _text(problems, f"{path}.subject", raw.get("subject"), limit=500, required=False)
        template = None
        if raw.get("template") is not None:
            template = _pattern(problems, f"{path}.template", raw["template"], TEMPLATE, "a template name")
        if raw.get("subject") is None and raw.get("template") is None:
            problems.append(Problem(path, "expected a subject or a template (what the variant changes)"))
        out.append(Variant(key, subject, template or None))
    return tuple(out)


def _ab(problems: list[Problem], value: object, channel: object) -> AbTest | None:
    if not isinstance(value, Mapping):
        if value is None:
            return None
        problems.append(
            Problem("ab", f"expected an object with {', '.join(sorted(AB_FIELDS))}, got {show(value)}")
        )
        return None
    for name in sorted(set(value) - AB_FIELDS, key=str):
        problems.append(
            Problem(f"ab.{str(name)[:40]}", f"unknown field (expected {', '.join(sorted(AB_FIELDS))})")
        )
    variants = _variants(problems, value.get("variants"))
    if channel != "email":
        for i, v in enumerate(variants):
            if v.subject is not None:
                problems.append(Problem(f"ab.variants[{i}].subject", "only an email has a subject line"))
    percent = _whole(problems, "ab.test_percent", value.get("test_percent"), 1, 99)
    window = value.get("window")
    try:
        span = parse_duration(window) if isinstance(window, str) and len(window) <= 40 else None
    except ValueError:
        span = None
    if span is None or not timedelta(minutes=1) <= span <= MAX_WINDOW:
        problems.append(
            Problem(
                "ab.window", f"expected an ISO 8601 duration from PT1M to P30D like PT4H, got {show(window)}"
            )
        )
    metric = value.get("metric")
    if metric not in AB_METRICS:
        problems.append(Problem("ab.metric", f"expected one of {', '.join(AB_METRICS)}, got {show(metric)}"))
    winner = value.get("winner", "auto")
    if winner not in AB_WINNERS:
        problems.append(Problem("ab.winner", f"expected one of {', '.join(AB_WINNERS)}, got {show(winner)}"))
    return AbTest(variants, percent, str(window), str(metric), str(winner))


def parse(data: object) -> Definition:
    """A campaign definition from JSON data; Invalid lists every problem, each naming its field."""
    if not isinstance(data, Mapping):
        raise Invalid([Problem("", f"expected a JSON object, got {type(data).__name__}")])
    problems: list[Problem] = [
        Problem(str(name)[:60], f"unknown field (expected one of {', '.join(sorted(FIELDS))})")
        for name in sorted(set(data) - FIELDS, key=str)
    ]
    key = _pattern(
        problems, "key", data.get("key"), KEY, "a key of lowercase letters, digits, - and _ (1 to 100)"
    )
    name = _text(problems, "name", data.get("name", key or None), limit=200, required=True) or key
    channel = data.get("channel", "email")
    if channel not in CHANNELS:
        problems.append(Problem("channel", f"expected one of {', '.join(CHANNELS)}, got {show(channel)}"))
    template = _pattern(problems, "template", data.get("template"), TEMPLATE, "a template name")
    subject = _text(problems, "subject", data.get("subject"), limit=500, required=False)
    audience = _audience(problems, data.get("audience"))
    schedule = _schedule(problems, data.get("schedule"))
    ends_at = parse_time(data["ends_at"], "ends_at", problems) if data.get("ends_at") is not None else None
    per_hour = data.get("per_hour")
    if per_hour is not None and (
        not isinstance(per_hour, int) or isinstance(per_hour, bool) or not 1 <= per_hour <= MAX_PER_HOUR
    ):
        problems.append(
            Problem("per_hour", f"expected a whole number from 1 to {MAX_PER_HOUR}, got {show(per_hour)}")
        )
        per_hour = None
    freeze = data.get("freeze_audience", False)
    if not isinstance(freeze, bool):
        problems.append(Problem("freeze_audience", f"expected true or false, got {show(freeze)}"))
        freeze = False
    utm = _utm(problems, data.get("utm"))
    ab = _ab(problems, data.get("ab"), channel)
    if ab is not None and freeze is True:
        problems.append(
            Problem("freeze_audience", "an A/B test resolves its audience at launch: expected false")
        )
    if problems:
        raise Invalid(problems)
    return Definition(
        key=key,
        name=name,
        channel=str(channel),
        audience=audience,
        template=template,
        subject=subject,
        schedule=schedule,
        ends_at=ends_at,
        per_hour=per_hour,
        freeze_audience=freeze,
        utm=utm,
        ab=ab,
    )


def dump(definition: Definition) -> dict[str, Any]:
    """The definition as JSON data (what `parse` reads back)."""
    out: dict[str, Any] = {
        "key": definition.key,
        "name": definition.name,
        "channel": definition.channel,
        "audience": definition.audience.dump(),
        "template": definition.template,
        "schedule": definition.schedule.dump(),
        "freeze_audience": definition.freeze_audience,
    }
    if definition.subject is not None:
        out["subject"] = definition.subject
    if definition.ends_at is not None:
        out["ends_at"] = definition.ends_at.isoformat()
    if definition.per_hour is not None:
        out["per_hour"] = definition.per_hour
    if definition.utm is not None:
        out["utm"] = dict(definition.utm)
    if definition.ab is not None:
        out["ab"] = definition.ab.dump()
    return out


# --- A/B tests --------------------------------------------------------------------------------


def ab_bucket(campaign_id: int, profile_id: int) -> int:
    """A recipient's place from 0 to 9999, the same however often it is asked (SHA-256 of the
    campaign id and the profile id)."""
    digest = hashlib.sha256(f"{campaign_id}:{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def in_test(test: AbTest, campaign_id: int, profile_id: int) -> bool:
    """Whether a recipient is in the test share (test_percent of the buckets), else held for the winner."""
    return ab_bucket(campaign_id, profile_id) < test.test_percent * 100


def launch_at(schedule: Schedule, *, now: datetime) -> datetime:
    """When the campaign starts queueing: now, its time, or when its local time first arrives."""
    if schedule.kind == AT and schedule.at is not None:
        return schedule.at
    if schedule.kind == LOCAL_TIME and schedule.day is not None:
        return max(now, datetime.combine(schedule.day, schedule.local, UTC) - EARLIEST_OFFSET)
    return now


def timing_problems(definition: Definition, *, now: datetime) -> list[Problem]:
    """A schedule or an end already past at `now`, each naming its field."""
    problems: list[Problem] = []
    sched = definition.schedule
    if sched.kind == AT and sched.at is not None and sched.at <= now:
        problems.append(
            Problem("schedule.at", f"{sched.at.isoformat()} is in the past (now {now.isoformat()})")
        )
    if sched.kind == LOCAL_TIME and sched.day is not None:
        # The latest zone (UTC-12) still sees this local time on that day until then.
        last = datetime.combine(sched.day, sched.local, UTC) + timedelta(hours=12)
        if last <= now:
            problems.append(
                Problem(
                    "schedule.date",
                    f"{sched.day.isoformat()} {sched.local:%H:%M} has passed in every time zone",
                )
            )
    if definition.ends_at is not None:
        start = launch_at(sched, now=now)
        if definition.ends_at <= max(now, start):
            problems.append(
                Problem(
                    "ends_at",
                    f"{definition.ends_at.isoformat()} is not after the campaign starts ({max(now, start).isoformat()})",
                )
            )
    return problems


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The profile's IANA zone, else the fallback's (the store's), else UTC."""
    for candidate in (name, fallback):
        if not candidate or len(candidate) > 64:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def local_send_time(
    *, day: date, at: time, zone_name: str | None, fallback_zone: str, now: datetime
) -> datetime:
    """`at` on `day` in the recipient's zone, in UTC; the next day at that time if it has passed."""
    tz = zone(zone_name, fallback_zone)
    moment = datetime.combine(day, at, tz)
    while moment.astimezone(UTC) < now:
        day = day + timedelta(days=1)
        moment = datetime.combine(day, at, tz)
    return moment.astimezone(UTC)


def throttled(start: datetime, index: int, per_hour: int | None) -> datetime:
    """The `index`-th recipient's (from 0) earliest send: spread evenly, `per_hour` an hour."""
    if not per_hour:
        return start
    return start + timedelta(microseconds=(index * 3_600_000_000) // per_hour)


def send_after(
    definition_schedule: Schedule,
    *,
    start: datetime,
    index: int,
    per_hour: int | None,
    zone_name: str | None,
    fallback_zone: str,
) -> datetime:
    """When one recipient's message may go: its local time (local-time campaigns), never before
    its throttled slot."""
    slot = throttled(start, index, per_hour)
    if definition_schedule.kind == LOCAL_TIME and definition_schedule.day is not None:
        local = local_send_time(
            day=definition_schedule.day,
            at=definition_schedule.local,
            zone_name=zone_name,
            fallback_zone=fallback_zone,
            now=start,
        )
        return max(local, slot)
    return slot


# --- lifecycle --------------------------------------------------------------------------------

ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "schedule": (frozenset({DRAFT}), SCHEDULED),
    "launch": (frozenset({SCHEDULED}), SENDING),
    "pause": (frozenset({SCHEDULED, SENDING}), PAUSED),
    "resume": (frozenset({PAUSED}), SENDING),  # SCHEDULED when it had not started
    "cancel": (frozenset({DRAFT, SCHEDULED, SENDING, PAUSED}), CANCELLED),
    "finish": (frozenset({SENDING}), SENT),
    "end": (frozenset({SCHEDULED, SENDING, PAUSED}), SENT),  # a flash sale's end time
}


def transition(status: str, action: str, *, launched: bool = False) -> str:
    """The status after `action`, or TransitionError naming why it is refused."""
    if action not in ACTIONS:
        raise TransitionError(f"action: expected one of {', '.join(ACTIONS)}, got {show(action)}")
    allowed, after = ACTIONS[action]
    if status not in allowed:
        raise TransitionError(
            f"status: a {status} campaign cannot {action} (only {', '.join(sorted(allowed))})"
        )
    if action == "resume" and not launched:
        return SCHEDULED
    return after
