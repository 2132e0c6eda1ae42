"""`kill -9` at many moments — during sends, during delays, while runs advance — of the workers of
`shopflow worker --processes 2` and of their supervisor, with marketing sends whose consent and
frequency caps are checked: nothing lost, every run completes once, every guard decision stands.

A live marketing flow (send -> delay 1 s -> send -> delay 1 s -> send) takes 60 people: 40 who
subscribed (their first email goes; smart sending and the cap of one marketing email a day skip
the next two) and 20 who unsubscribed (every send skipped as unsubscribed). While the flow runs, a worker process is
killed with SIGKILL every 0.4 s, four times, and once the supervisor itself (its workers stop with
it); the supervisor is started again each time it is gone. At the end:
- one message per (person, node), none left queued or sending, every run exited `completed`;
- exactly the messages recorded sent arrived over SMTP (a replay carries the same Message-ID), and
  no skipped one did;
- the first email of each subscriber was sent; every email to an unsubscribed person was skipped
  as unsubscribed; the later emails of subscribers were skipped by smart sending or the cap.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.domain.flows import load_flow
from shopflow.ingest import pipeline
from shopflow.messaging.sink import Sink
from shopflow.store import db, tables
from shopflow.store import flows as store_flows
from tests.acceptance.test_worker_crash import CONNECTIONS, start_worker, state, waiting_runs
from tests.acceptance.test_worker_processes import alive, children

SUBSCRIBED, UNSUBSCRIBED = 40, 20
NODES = ("first", "second", "third")
KILLS = 4

FLOW = {
    "id": "kill-test",
    "name": "Kill test",
    "trigger": {"type": "event", "event": "Kill Test"},
    "holdout_percent": 0,
    "entry": "first",
    "nodes": [
        {"id": "first", "type": "send", "template": "welcome-1", "next": "d1"},
        {"id": "d1", "type": "delay", "duration": "PT1S", "next": "second"},
        {"id": "second", "type": "send", "template": "welcome-2", "next": "d2"},
        {"id": "d2", "type": "delay", "duration": "PT1S", "next": "third"},
        {"id": "third", "type": "send", "template": "welcome-3", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


def supervisor(database_url: str, smtp_port: int, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    return start_worker(database_url, smtp_port, cwd, log, processes=2)


def people(engine: Engine, ws: str, now: datetime) -> None:
    """Consent first (identify traits), then the trigger event for everyone."""
    consent = [
        CanonicalEvent(
            message_id=f"consent-{i}",
            source="test",
            identity=Identity(email=f"k{i}@example.org"),
            time=now,
            consent=(
                ConsentChange("email", "subscribed" if i < SUBSCRIBED else "unsubscribed", now, "test"),
            ),
        )
        for i in range(SUBSCRIBED + UNSUBSCRIBED)
    ]
    trigger = [
        CanonicalEvent(
            message_id=f"kill-{i}",
            source="test",
            identity=Identity(email=f"k{i}@example.org"),
            time=now,
            name="Kill Test",
        )
        for i in range(SUBSCRIBED + UNSUBSCRIBED)
    ]
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=consent, now=now)
    with db.transaction(engine) as conn:
        store_flows.save_flow(conn, workspace_id=ws, definition=load_flow(FLOW), now=now, status="live")
        pipeline.accept(conn, workspace_id=ws, events=trigger, now=now)


def settled(engine: Engine) -> bool:
    m = tables.messages
    with db.reading(engine) as conn:
        open_messages = conn.execute(
            sa.select(sa.func.count()).select_from(m).where(m.c.status.in_(["queued", "sending"]))
        ).scalar_one()
    return waiting_runs(engine) == 0 and int(open_messages) == 0


@pytest.mark.slow(
    reason="kills worker processes and their supervisor five times while a three-send flow runs"
)
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_kills_at_any_moment_keep_every_run_message_and_guard_decision(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    people(engine, ws, datetime.now(UTC))
    log = tmp_path / "worker.log"
    kills = 0
    with Sink() as sink:
        sup = supervisor(database_url, sink.port, tmp_path, log)
        try:
            deadline = time.monotonic() + 180  # a bound on a hang, not a speed
            while not settled(engine):
                assert time.monotonic() < deadline, state(engine, log)
                if not alive(sup.pid):
                    sup.wait(10)
                    sup = supervisor(database_url, sink.port, tmp_path, log)
                time.sleep(0.4)
                if kills < KILLS:
                    workers = children(sup.pid)
                    if workers:
                        os.kill(workers[kills % len(workers)], signal.SIGKILL)
                        kills += 1
                elif kills == KILLS:
                    sup.send_signal(signal.SIGKILL)  # the supervisor too: its workers stop with it
                    kills += 1
        finally:
            if alive(sup.pid):
                sup.terminate()
            sup.wait(20)
        received = collections.Counter(str(m["Message-ID"]) for m in sink.messages())
    assert kills == KILLS + 1

    m, r, p = tables.messages, tables.flow_runs, tables.profiles
    with db.reading(engine) as conn:
        rows = conn.execute(
            sa.select(m.c.id, p.c.email, m.c.node_id, m.c.status, m.c.skip_reason, m.c.provider_message_id)
            .join(p, p.c.id == m.c.profile_id)
            .where(m.c.workspace_id == ws)
        ).all()
        exits = conn.execute(
            sa.select(r.c.exit_reason, sa.func.count())
            .where(r.c.workspace_id == ws)
            .group_by(r.c.exit_reason)
        ).all()
    everyone = SUBSCRIBED + UNSUBSCRIBED
    assert {(reason, int(n)) for reason, n in exits} == {("completed", everyone)}
    assert len(rows) == everyone * len(NODES)
    assert len({(row.email, row.node_id) for row in rows}) == everyone * len(NODES)
    sent = {f"<shopflow.{ws}.{row.id}@example.com>" for row in rows if row.status == "sent"}
    assert set(received) == sent  # nothing lost, and no skipped message went out
    for row in rows:
        subscriber = int(row.email[1:].split("@")[0]) < SUBSCRIBED
        if not subscriber:
            assert (row.status, row.skip_reason) == ("skipped", "unsubscribed"), row
        elif row.node_id == "first":
            assert row.status == "sent", row
        else:
            assert row.status == "skipped" and row.skip_reason in ("smart_sending", "frequency_cap"), row
    duplicates = sum(n - 1 for n in received.values())
    print(f"\n{engine.dialect.name}: {kills} kills, {len(sent)} sent, {duplicates} duplicate(s)")
    per_kill = CONNECTIONS + (CONNECTIONS + 1) * 16  # see test_worker_crash's docstring
    assert duplicates <= kills * 2 * per_kill
