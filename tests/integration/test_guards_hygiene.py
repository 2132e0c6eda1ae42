"""Sunset job and deliverability alerts on SQLite and PostgreSQL, by function and by CLI."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import hygiene as address_hygiene
from shopflow.ingest import pipeline
from shopflow.messaging.deliverability import hygiene as hygiene_job
from shopflow.store import db, hygiene, profiles
from tests.integration.guards_support import history, person, workspace

D = timedelta(days=1)


def props(engine: Engine, ws_id: str, pid: int) -> dict[str, object]:
    with db.reading(engine) as conn:
        row = profiles.get(conn, workspace_id=ws_id, profile_id=pid)
    assert row is not None
    return dict(row.properties)


def report(engine: Engine, ws_id: str, pid: int, name: str, *, at: datetime, n: int) -> None:
    with db.transaction(engine) as conn:
        pipeline.accept(
            conn,
            workspace_id=ws_id,
            events=[
                CanonicalEvent(f"{name}-{pid}-{at:%H%M}-{k}", "test", Identity(profile_id=pid), at, name=name)
                for k in range(n)
            ],
            now=at,
        )


def test_sunset_marks_the_unengaged_and_clears_the_reengaged(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    times = [clock.now() - k * 20 * D for k in range(1, 6)]  # 5 emails over 100 days
    cold = person(engine, ws.id, clock, "cold@example.org", traits={"tier": "gold"})
    history(engine, ws.id, cold, times, opened=[False] * 5)
    warm = person(engine, ws.id, clock, "warm@example.org")
    history(engine, ws.id, warm, times, opened=[False, False, False, False, True])
    few = person(engine, ws.id, clock, "few@example.org")
    history(engine, ws.id, few, times[:4], opened=[False] * 4)  # only 4 emails: too few to judge

    result = hygiene_job.sunset(engine, workspace_id=ws.id, clock=clock)
    assert (result.marked, result.cleared) == ([cold], [])
    assert props(engine, ws.id, cold)["sunset"] is True
    assert "sunset" not in props(engine, ws.id, warm)
    assert "sunset" not in props(engine, ws.id, few)

    report(engine, ws.id, cold, "Clicked Email", at=clock.now(), n=1)
    clock.advance(D)
    result = hygiene_job.sunset(engine, workspace_id=ws.id, clock=clock)
    assert (result.marked, result.cleared) == ([], [cold])
    assert "sunset" not in props(engine, ws.id, cold)
    assert props(engine, ws.id, cold) == {"tier": "gold"}  # other properties kept


def test_alerts_fire_above_the_thresholds_once(
    engine: Engine, clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    ws = workspace(engine, clock).workspace
    pid = person(engine, ws.id, clock, "a@example.org")
    sent_at = [clock.now() - timedelta(minutes=14 * k) for k in range(1, 101)]  # 100 in the last day
    history(engine, ws.id, pid, sent_at, opened=[False] * 100)
    report(engine, ws.id, pid, "Bounced Email", at=clock.now() - timedelta(hours=2), n=2)  # 2 %: not above
    report(
        engine, ws.id, pid, "Marked Email as Spam", at=clock.now() - timedelta(hours=2), n=1
    )  # 1 % > 0.1 %
    with caplog.at_level(logging.WARNING, logger="shopflow.messaging.deliverability.hygiene"):
        alerts = hygiene_job.check_alerts(engine, workspace_id=ws.id, clock=clock)
    assert alerts == [hygiene_job.Alert("complaint_rate", 0.01, 0.001, True)]
    assert "complaint_rate 1.00 % over the last day is above 0.10 %" in caplog.text

    clock.advance(timedelta(minutes=10))
    report(
        engine, ws.id, pid, "Bounced Email", at=clock.now(), n=1
    )  # after the window's end: not yet counted
    again = hygiene_job.check_alerts(engine, workspace_id=ws.id, clock=clock)
    assert again == [hygiene_job.Alert("complaint_rate", 0.01, 0.001, False)]
    clock.advance(timedelta(hours=1))
    later = hygiene_job.check_alerts(engine, workspace_id=ws.id, clock=clock)
    assert [(a.kind, a.new) for a in later] == [("bounce_rate", True), ("complaint_rate", True)]
    assert later[0].value == pytest.approx(3 / 98)  # the two oldest emails left the window
    with db.reading(engine) as conn:
        rows = hygiene.list_alerts(conn, workspace_id=ws.id)
    assert [(r["kind"], r["window_end"]) for r in rows] == [
        ("complaint_rate", datetime(2026, 1, 5, 10, tzinfo=UTC)),
        ("bounce_rate", datetime(2026, 1, 5, 10, tzinfo=UTC)),
        ("complaint_rate", datetime(2026, 1, 5, 9, tzinfo=UTC)),
    ]


def test_no_mail_no_alert_and_daily_job(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    pid = person(engine, ws.id, clock, "a@example.org")
    report(engine, ws.id, pid, "Bounced Email", at=clock.now() - timedelta(hours=2), n=3)
    assert hygiene_job.check_alerts(engine, workspace_id=ws.id, clock=clock) == []
    assert hygiene_job.run_daily(engine, clock=clock) == {ws.id: {"sunset": 0, "alerts": []}}


def test_cli(
    engine: Engine,
    clock: SimulatedClock,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    ws = workspace(engine, clock).workspace
    assert cli.main(["hygiene", "sunset", "--workspace", ws.id]) == 0
    assert json.loads(capsys.readouterr().out) == {"marked": 0, "cleared": 0}
    assert cli.main(["alerts", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main(["hygiene", "sunset", "--workspace", "ws_nope"]) == 2
    assert "workspace: no workspace 'ws_nope'" in capsys.readouterr().err


# --- address hygiene at intake ----------------------------------------------------------------


def flags(engine: Engine, ws_id: str, pid: int) -> tuple[str | None, bool | None]:
    with db.reading(engine) as conn:
        row = profiles.get(conn, workspace_id=ws_id, profile_id=pid)
    assert row is not None
    return row.email_status, row.email_role


def identify(engine: Engine, ws_id: str, at: datetime, *events: CanonicalEvent) -> list[int]:
    with db.transaction(engine) as conn:
        result = pipeline.accept(conn, workspace_id=ws_id, events=list(events), now=at)
    assert result.accepted == len(events)  # flagged, never refused
    return result.profile_ids


def test_ingest_flags_each_address_and_keeps_the_event(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    cases = {
        "ana@acme-shoes.com": ("valid", False),
        "Info@Acme-Shoes.com": ("valid", True),
        "test@test.com": ("fake", False),
        "jane@example.com": ("reserved_domain", False),
        "sales@shop.example": ("reserved_domain", True),
        "bad@@acme-shoes.com": ("invalid_syntax", False),
    }
    now = clock.now()
    pids = identify(
        engine,
        ws.id,
        now,
        *(CanonicalEvent(f"v-{a}", "test", Identity(email=a), now, name="Viewed Product") for a in cases),
    )
    assert [flags(engine, ws.id, pid) for pid in pids] == list(cases.values())
    with db.reading(engine) as conn:
        kept = profiles.get(conn, workspace_id=ws.id, profile_id=pids[5])
    assert kept is not None and kept.email == "bad@@acme-shoes.com"  # kept as given, only flagged
    # A profile without an address has no flags.
    (anon,) = identify(
        engine, ws.id, now, CanonicalEvent("anon", "test", Identity(anonymous_id="a-1"), now, "X")
    )
    assert flags(engine, ws.id, anon) == (None, None)


def test_a_changed_address_is_checked_again(engine: Engine, clock: SimulatedClock) -> None:
    ws = workspace(engine, clock).workspace
    now = clock.now()
    (pid,) = identify(
        engine,
        ws.id,
        now,
        CanonicalEvent("i1", "test", Identity(external_id="c-1"), now, traits={"email": "asdf@asdf.com"}),
    )
    assert flags(engine, ws.id, pid) == ("fake", False)
    # The shopper fixes the address: same profile (external id), new flags.
    identify(
        engine,
        ws.id,
        now,
        CanonicalEvent(
            "i2", "test", Identity(external_id="c-1"), now, traits={"email": "Ana.Ruiz@acme-shoes.com"}
        ),
    )
    assert flags(engine, ws.id, pid) == ("valid", False)
    # An anonymous profile that identifies later takes the address and its flags.
    (anon,) = identify(
        engine, ws.id, now, CanonicalEvent("v1", "test", Identity(anonymous_id="a-9"), now, "X")
    )
    identify(
        engine,
        ws.id,
        now,
        CanonicalEvent("i3", "test", Identity(anonymous_id="a-9", email="support@acme-shoes.com"), now, "Y"),
    )
    assert flags(engine, ws.id, anon) == ("valid", True)


def test_the_check_runs_once_per_new_address(
    engine: Engine, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(engine, clock).workspace
    checked: list[str] = []
    real = address_hygiene.check_address

    def counting(address: str) -> address_hygiene.AddressCheck:
        checked.append(address)
        return real(address)

    monkeypatch.setattr(address_hygiene, "check_address", counting)
    now = clock.now()
    events = [
        CanonicalEvent(f"e{k}", "test", Identity(email="ana@acme-shoes.com"), now, name="Viewed Product")
        for k in range(5)
    ]
    identify(engine, ws.id, now, *events)
    assert checked == ["ana@acme-shoes.com"]
    identify(engine, ws.id, now, CanonicalEvent("e9", "test", Identity(email="ana@acme-shoes.com"), now, "X"))
    assert checked == ["ana@acme-shoes.com"]  # unchanged address: not checked again
