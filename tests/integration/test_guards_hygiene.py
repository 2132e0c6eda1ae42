"""Sunset job and deliverability alerts on SQLite and PostgreSQL, by function and by CLI."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from shopflow import cli
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.messaging import hygiene as hygiene_job
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
    with caplog.at_level(logging.WARNING, logger="shopflow.messaging.hygiene"):
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
