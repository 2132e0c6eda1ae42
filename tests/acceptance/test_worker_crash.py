"""`kill -9` of `shopflow worker` mid-flow loses nothing and duplicates at most what was in flight.

A live flow (send -> delay 1 s -> send -> delay 1 s -> send -> exit, transactional) takes 200
profiles through the real ingest pipeline. The worker runs as a subprocess against the test
database and an in-process SMTP sink; it is killed with SIGKILL once some, but not all, emails
have arrived, then started again. Every run must exit and every (profile, node) email must arrive.

Duplicates cannot be ruled out, only bounded. Delivery records results as the SMTP server
answers, committed in groups (messaging.delivery.results.Recorder: 16 results or 10 ms), so the only
emails that can go out twice are those the server accepted just before the kill whose 'sent' was
not yet committed: at most a group per SMTP connection and one for the timer (each thread holds
the group it took until its commit is done), plus one in flight per SMTP connection. With SHOPFLOW_DELIVERY_RECORD_GROUP=1 (a commit per email) that is one per connection
(2 here). Exactly-once over SMTP is impossible, since the server's 250 and our commit are two
events a crash can fall between; the re-sent email carries the same deterministic Message-ID, so a
receiver can drop the replay.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.ingest import pipeline
from shopflow.messaging.sink import Sink
from shopflow.store import db, tables
from shopflow.store import flows as store_flows

PROFILES = 200
NODES = ("first", "second", "third")
CONNECTIONS = 2

FLOW = {
    "id": "crash-test",
    "name": "Crash test",
    "trigger": {"type": "event", "event": "Crash Test"},
    "holdout_percent": 0,
    "entry": "first",
    "nodes": [
        {"id": "first", "type": "send", "template": "welcome-1", "transactional": True, "next": "d1"},
        {"id": "d1", "type": "delay", "duration": "PT1S", "next": "second"},
        {"id": "second", "type": "send", "template": "welcome-2", "transactional": True, "next": "d2"},
        {"id": "d2", "type": "delay", "duration": "PT1S", "next": "third"},
        {"id": "third", "type": "send", "template": "welcome-3", "transactional": True, "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


def start_worker(
    database_url: str, smtp_port: int, cwd: Path, log: Path, *, record_group: int = 16, processes: int = 1
) -> subprocess.Popen[bytes]:
    """`shopflow worker` (a supervisor of `processes` workers when more than one) on the test
    database, mailing the SMTP server at `smtp_port`, its output appended to `log`."""
    env = {
        **os.environ,
        "SHOPFLOW_DELIVERY_RECORD_GROUP": str(record_group),
        "SHOPFLOW_DATABASE_URL": database_url,
        "SHOPFLOW_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}?connections={CONNECTIONS}",
        "SHOPFLOW_DELIVERY_STALE_SECONDS": "1",
        "SHOPFLOW_WORKER_POLL_MS": "20",
        "SHOPFLOW_LOG_LEVEL": "WARNING",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "shopflow.cli", "worker", "--processes", str(processes)],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def start_live_flow(engine: Engine, ws: str, flow: dict[str, object], profiles: int, *, now: datetime) -> int:
    """Save `flow` live and send its trigger event for `profiles` new people; the flow's id."""
    trigger = flow["trigger"]
    assert isinstance(trigger, dict)
    with db.transaction(engine) as conn:
        flow_id, _ = store_flows.save_flow(
            conn, workspace_id=ws, definition=load_flow(flow), now=now, status="live"
        )
        pipeline.accept(
            conn,
            workspace_id=ws,
            events=[
                CanonicalEvent(
                    message_id=f"{flow['id']}-{i}",
                    source="test",
                    identity=Identity(email=f"c{i}@example.org"),
                    time=now,
                    name=str(trigger["event"]),
                    properties={},
                )
                for i in range(profiles)
            ],
            now=now,
        )
    return flow_id


def waiting_runs(engine: Engine) -> int:
    r = tables.flow_runs
    with db.reading(engine) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(r)).scalar_one()
        waiting = conn.execute(
            sa.select(sa.func.count()).select_from(r).where(r.c.status == "waiting")
        ).scalar_one()
    return int(waiting) if total else -1


def state(engine: Engine, log: Path) -> str:
    m, r = tables.messages, tables.flow_runs
    with db.reading(engine) as conn:
        msgs = conn.execute(
            sa.select(m.c.status, m.c.skip_reason, sa.func.count()).group_by(m.c.status, m.c.skip_reason)
        ).all()
        runs = conn.execute(
            sa.select(r.c.status, r.c.node_id, sa.func.count()).group_by(r.c.status, r.c.node_id)
        ).all()
    return f"messages {msgs}, runs {runs}, log:\n{log.read_text()[-3000:]}"


def unsent(engine: Engine) -> int:
    m = tables.messages
    with db.reading(engine) as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(m).where(m.c.status != "sent")).scalar_one()
        )


@pytest.mark.slow(
    reason="starts a real worker process, kills it with SIGKILL mid-flow and restarts it until every email is delivered over SMTP"
)
@pytest.mark.parametrize("record_group", [1, 16], ids=["commit-each", "commit-groups"])
def test_kill_9_mid_flow_loses_nothing(
    engine: Engine, database_url: str, tmp_path: Path, record_group: int
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    now = datetime.now(UTC)
    flow_id = start_live_flow(engine, ws, FLOW, PROFILES, now=now)
    log = tmp_path / "worker.log"
    with Sink() as sink:
        worker = start_worker(database_url, sink.port, tmp_path, log, record_group=record_group)
        try:
            deadline = time.monotonic() + 120  # a bound on a hang, not a speed
            # Kill mid-flow: some emails arrived, and most of the flow is still ahead.
            while sink.count() < PROFILES // 2:
                assert time.monotonic() < deadline, state(engine, log)
                assert worker.poll() is None, log.read_text()
                time.sleep(0.002)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            at_kill = sink.count()
            assert at_kill < PROFILES * len(NODES)

            worker = start_worker(database_url, sink.port, tmp_path, log, record_group=record_group)
            deadline = time.monotonic() + 120  # a bound on a hang, not a speed
            while waiting_runs(engine) != 0 or unsent(engine) != 0:
                assert time.monotonic() < deadline, state(engine, log)
                assert worker.poll() is None, log.read_text()
                time.sleep(0.05)
        finally:
            worker.terminate()
            worker.wait(10)
        received = collections.Counter(str(m["Message-ID"]) for m in sink.messages())

    m, r = tables.messages, tables.flow_runs
    with db.reading(engine) as conn:
        rows = conn.execute(
            sa.select(m.c.id, m.c.profile_id, m.c.node_id, m.c.status, m.c.provider_message_id).where(
                m.c.flow_id == flow_id
            )
        ).all()
        exits = conn.execute(
            sa.select(r.c.exit_reason, sa.func.count())
            .where(r.c.flow_id == flow_id)
            .group_by(r.c.exit_reason)
        ).all()
    assert {(reason, int(n)) for reason, n in exits} == {("completed", PROFILES)}
    # One message per (profile, node), every one sent.
    assert len(rows) == PROFILES * len(NODES)
    assert len({(row.profile_id, row.node_id) for row in rows}) == PROFILES * len(NODES)
    assert {row.status for row in rows} == {"sent"}
    expected = {f"<shopflow.{ws}.{row.id}@example.com>" for row in rows}
    assert {row.provider_message_id for row in rows} == expected
    # Nothing lost: every (profile, node) email arrived; nothing else did.
    assert set(received) == expected
    duplicates = sum(n - 1 for n in received.values())
    print(f"\n{engine.dialect.name}: killed at {at_kill} emails, {duplicates} duplicate(s)")
    groups_in_flight = CONNECTIONS + 1 if record_group > 1 else 0  # a session's each, the timer's
    assert duplicates <= CONNECTIONS + groups_in_flight * record_group
