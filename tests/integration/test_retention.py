"""Data retention on both databases: a workspace's events and finished messages older than its
settings are removed in batches; queued work, the trigger events of waiting runs and other
workspaces' data stay; the settings are validated."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline, retention
from shopflow.store import db, flow_runs, messages, tables
from shopflow.workers import events as event_worker

NOW = testing.T0 + timedelta(days=400)


def _accept(engine: Engine, ws: str, at: datetime, ids: list[str]) -> None:
    batch = [
        CanonicalEvent(
            message_id=m,
            source="test",
            identity=Identity(email=f"{m}@example.com"),
            time=at,
            name="Viewed Product",
        )
        for m in ids
    ]
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=batch, now=at)


def _process(engine: Engine) -> None:
    event_worker.process_pending(engine, clock=SimulatedClock(NOW))


def _events(engine: Engine, ws: str) -> list[str]:
    e = tables.events
    with db.reading(engine) as conn:
        return sorted(conn.execute(sa.select(e.c.message_id).where(e.c.workspace_id == ws)).scalars())


def _message(engine: Engine, ws: str, at: datetime, key: str, *, sent: bool) -> int:
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn, workspace_id=ws, profile_id=1, channel="email", template="t", dedupe_key=key, now=at,
            status=messages.QUEUED if sent else messages.SKIPPED, skip_reason=None if sent else "no_consent",
        )  # fmt: skip
        assert mid is not None
        if sent:  # a message still queued stays queued: only these two are claimed and sent
            for claimed in messages.claim_due(conn, now=at, limit=10, stale_before=at):
                messages.mark_sent(
                    conn,
                    [
                        {
                            "id": claimed.id,
                            "sent_at": at,
                            "to_address": "x@example.com",
                            "subject": "s",
                            "provider_message_id": None,
                        }
                    ],
                )
        return mid


def test_old_events_and_messages_go_in_batches_and_nothing_else(engine: Engine) -> None:
    ws = testing.make_workspace(engine, name="Keeps 30 days").workspace.id
    other = testing.make_workspace(engine, name="Keeps everything").workspace.id
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=10)
    _accept(engine, ws, old, ["old1", "old2", "old3"])
    _accept(engine, other, old, ["other-old"])
    _process(engine)
    _accept(engine, ws, old, ["old-pending"])  # not processed yet: it must stay
    _accept(engine, ws, recent, ["recent"])
    gone_sent = _message(engine, ws, old, "m-old-sent", sent=True)
    gone_skipped = _message(engine, ws, old, "m-old-skipped", sent=False)
    kept_recent = _message(engine, ws, recent, "m-recent", sent=True)
    with db.transaction(engine) as conn:
        kept_queued = messages.enqueue(
            conn, workspace_id=ws, profile_id=1, channel="email", template="t", dedupe_key="m-queued", now=old,
            send_after=NOW + timedelta(days=1),
        )  # fmt: skip
    assert retention.configure(engine, workspace_id=ws, events_days=30, messages_days=30) == {
        "retention_events_days": 30,
        "retention_messages_days": 30,
    }

    first = retention.run(engine, now=NOW, batch=2, max_batches=1)
    assert (first.events, first.messages, first.unfinished) == (2, 2, [ws])
    rest = retention.run(engine, now=NOW, batch=2, max_batches=5)
    assert (rest.events, rest.messages, rest.unfinished) == (1, 0, [])
    assert _events(engine, ws) == ["old-pending", "recent"]
    assert _events(engine, other) == ["other-old"]
    with db.reading(engine) as conn:
        left = set(conn.execute(sa.select(tables.messages.c.id)).scalars())
    assert left == {kept_recent, kept_queued} and not left & {gone_sent, gone_skipped}


def test_a_waiting_run_keeps_the_events_from_its_start_on(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    started = NOW - timedelta(days=50)
    _accept(engine, ws, NOW - timedelta(days=60), ["before-run"])
    _accept(engine, ws, NOW - timedelta(days=45), ["trigger"])
    _process(engine)
    flow_id = _flow(engine, ws)
    with db.transaction(engine) as conn:
        flow_runs.create_runs(
            conn,
            [{
                "workspace_id": ws, "flow_id": flow_id, "version": 1, "profile_id": 1, "trigger_key": "k",
                "trigger_event_id": None, "node_id": "wait", "state": {}, "wake_at": NOW + timedelta(days=30),
                "holdout": False, "started_at": started, "updated_at": started,
            }],
        )  # fmt: skip
    retention.configure(engine, workspace_id=ws, events_days=30, messages_days=None)
    assert retention.run(engine, now=NOW).events == 1
    assert _events(engine, ws) == ["trigger"]


def _flow(engine: Engine, ws: str) -> int:
    from shopflow.flows import library

    with db.transaction(engine) as conn:
        return library.install(conn, workspace_id=ws, name="win-back", now=NOW, live=True)


@pytest.fixture
def cli_database(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    return engine


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--events-days", "7"],
            "events_days: expected 0 (keep everything) or whole days from 30 to 36500, got 7",
        ),
        (["--messages-days", "-1"], "messages_days: expected 0"),
        (["--messages-days", "99999999"], "messages_days: expected 0"),
    ],
)
def test_bad_retention_settings_are_refused_and_nothing_changes(
    cli_database: Engine, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    engine = cli_database
    ws = testing.make_workspace(engine).workspace.id
    assert cli.main(["workspaces", "retention", "--workspace", ws, *args]) == 2
    assert message in capsys.readouterr().err
    assert cli.main(["workspaces", "retention", "--workspace", ws]) == 0
    assert "keep everything" in capsys.readouterr().out
    assert cli.main(["workspaces", "retention", "--workspace", "ws_nope", "--events-days", "30"]) == 2
    assert "no workspace" in capsys.readouterr().err
