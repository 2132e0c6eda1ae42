"""Campaign rules without a database: the definition, the lifecycle, local time and throttling."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from shopflow.domain import campaigns as rules

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def good(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": "black-friday",
        "name": "Black Friday",
        "channel": "email",
        "audience": {
            "include": {"lists": ["newsletter"], "segments": ["vip"]},
            "exclude": {"lists": ["staff"]},
        },
        "template": "seasonal-offer-1",
        "schedule": {"kind": "at", "at": "2026-11-27T09:00:00Z"},
    }
    data.update(changes)
    return data


def problems(data: Any) -> list[str]:
    with pytest.raises(rules.Invalid) as caught:
        rules.parse(data)
    return caught.value.messages()


def test_a_good_definition_parses_and_dumps_back() -> None:
    parsed = rules.parse(good(per_hour=1000, ends_at="2026-11-28T00:00:00+01:00"))
    assert parsed.audience.include == rules.Sources(("newsletter",), ("vip",))
    assert parsed.audience.exclude == rules.Sources(("staff",), ())
    assert parsed.schedule == rules.Schedule(rules.AT, at=datetime(2026, 11, 27, 9, tzinfo=UTC))
    assert parsed.ends_at == datetime(2026, 11, 27, 23, tzinfo=UTC)
    assert rules.parse(rules.dump(parsed)) == parsed


def test_every_problem_names_its_field() -> None:
    found = problems(
        {
            "key": "Bad Key",
            "channel": "fax",
            "audience": {"include": {"lists": [], "segments": []}, "other": 1},
            "template": "../etc/passwd",
            "schedule": {"kind": "local_time", "date": "2026-13-01", "time": "25:00"},
            "per_hour": 0,
            "freeze_audience": "yes",
            "surprise": True,
        }
    )
    assert found == [
        "surprise: unknown field (expected one of ab, audience, channel, ends_at, freeze_audience, key, name, "
        "per_hour, schedule, subject, template, utm)",
        "key: expected a key of lowercase letters, digits, - and _ (1 to 100), got 'Bad Key'",
        "name: expected a non-empty string, got None",
        "channel: expected one of email, sms, push, got 'fax'",
        "template: expected a template name, got '../etc/passwd'",
        "audience.other: unknown field (expected include, exclude)",
        "audience.include: expected at least one list or segment to send to",
        "schedule.date: expected a date like 2026-11-27, got '2026-13-01'",
        "schedule.time: expected a local time HH:MM like 10:00, got '25:00'",
        "per_hour: expected a whole number from 1 to 10000000, got 0",
        "freeze_audience: expected true or false, got 'yes'",
    ]


def test_hostile_values_are_refused() -> None:
    assert problems(good(name="a\x00b")) == ["name: expected text without control characters"]
    assert problems(good(name="x" * 201)) == ["name: expected at most 200 characters, got 201"]
    many = {"include": {"lists": [f"l{i}" for i in range(51)]}}
    assert problems(good(audience=many)) == ["audience.include.lists: expected at most 50 keys, got 51"]
    assert problems(good(schedule={"kind": "at", "at": "tomorrow"})) == [
        "schedule.at: expected an ISO 8601 time like 2026-11-27T10:00:00Z, got 'tomorrow'"
    ]
    assert problems([1, 2]) == ["expected a JSON object, got list"]
    assert problems(good(per_hour=True)) == ["per_hour: expected a whole number from 1 to 10000000, got True"]


def test_past_times_are_problems() -> None:
    past = rules.parse(good(schedule={"kind": "at", "at": "2026-11-20T11:59:00Z"}))
    assert [str(p) for p in rules.timing_problems(past, now=NOW)] == [
        "schedule.at: 2026-11-20T11:59:00+00:00 is in the past (now 2026-11-20T12:00:00+00:00)"
    ]
    local = rules.parse(good(schedule={"kind": "local_time", "date": "2026-11-19", "time": "10:00"}))
    assert [str(p) for p in rules.timing_problems(local, now=NOW)] == [
        "schedule.date: 2026-11-19 10:00 has passed in every time zone"
    ]
    # Still 10:00 somewhere west of UTC (UTC-12 until 22:00 UTC).
    today = rules.parse(good(schedule={"kind": "local_time", "date": "2026-11-20"}))
    assert rules.timing_problems(today, now=NOW) == []
    ended = rules.parse(good(ends_at="2026-11-27T08:00:00Z"))
    assert [p.path for p in rules.timing_problems(ended, now=NOW)] == ["ends_at"]


def test_local_send_time_is_ten_in_each_zone_or_the_next_day() -> None:
    day = date(2026, 11, 27)
    at = time(10, 0)
    early = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    ny = rules.local_send_time(day=day, at=at, zone_name="America/New_York", fallback_zone="UTC", now=early)
    assert ny == datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    tokyo = rules.local_send_time(day=day, at=at, zone_name="Asia/Tokyo", fallback_zone="UTC", now=early)
    assert tokyo == datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    # No zone (or a bogus one): the store's zone.
    store = rules.local_send_time(
        day=day, at=at, zone_name="Mars/Base", fallback_zone="Europe/Paris", now=early
    )
    assert store == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    # Already past in Tokyo: the next day at 10:00 there.
    late = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert rules.local_send_time(day=day, at=at, zone_name="Asia/Tokyo", fallback_zone="UTC", now=late) == (
        datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    )
    sched = rules.Schedule(rules.LOCAL_TIME, day=day)
    assert rules.launch_at(sched, now=early) == datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def test_throttling_spreads_by_the_hourly_limit() -> None:
    assert rules.throttled(NOW, 0, 1000) == NOW
    assert rules.throttled(NOW, 1000, 1000) == NOW + timedelta(hours=1)
    assert rules.throttled(NOW, 1, 3) == NOW + timedelta(minutes=20)
    assert rules.throttled(NOW, 12345, None) == NOW
    sched = rules.Schedule(rules.LOCAL_TIME, day=date(2026, 11, 20))
    # Local time 10:00 in Tokyo has passed at NOW: tomorrow, later than the throttled slot.
    got = rules.send_after(
        sched, start=NOW, index=5, per_hour=10, zone_name="Asia/Tokyo", fallback_zone="UTC"
    )
    assert got == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


def test_lifecycle() -> None:
    s = rules.transition(rules.DRAFT, "schedule")
    assert s == rules.SCHEDULED
    assert rules.transition(s, "pause") == rules.PAUSED
    assert rules.transition(rules.PAUSED, "resume", launched=False) == rules.SCHEDULED
    assert rules.transition(rules.SCHEDULED, "launch") == rules.SENDING
    assert rules.transition(rules.SENDING, "pause") == rules.PAUSED
    assert rules.transition(rules.PAUSED, "resume", launched=True) == rules.SENDING
    assert rules.transition(rules.SENDING, "finish") == rules.SENT
    assert rules.transition(rules.PAUSED, "end") == rules.SENT
    assert rules.transition(rules.PAUSED, "cancel") == rules.CANCELLED
    with pytest.raises(rules.TransitionError) as caught:
        rules.transition(rules.SENT, "cancel")
    assert (
        str(caught.value) == "status: a sent campaign cannot cancel (only draft, paused, scheduled, sending)"
    )
    with pytest.raises(rules.TransitionError):
        rules.transition(rules.CANCELLED, "resume")
    with pytest.raises(rules.TransitionError):
        rules.transition(rules.DRAFT, "explode")
