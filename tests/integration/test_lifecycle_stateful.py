"""Hypothesis drives a flow through entries, clock jumps, pauses, resumes, manual mode, edits and
run migrations (SQLite, the real scheduler): no run is lost or stepped twice, exits are final,
delays never fire early, and a flow that is not running creates nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.flows import lifecycle, scheduler
from shopflow.store import db, tables
from tests.integration.test_lifecycle_flows import definition, delay, join, save, send, tick

V1 = definition(
    send("a", "d1"),
    delay("d1", "b", "PT1H"),
    send("b", "d2", "welcome-2"),
    delay("d2", "c", "PT2H"),
    send("c", "done", "welcome-3"),
    {"id": "done", "type": "exit"},
    reentry="always",
)
# An edit: b is gone, c is reached after the first delay and followed by c2.
V2 = definition(
    send("a", "d1"),
    delay("d1", "c", "PT1H"),
    send("c", "c2", "welcome-3"),
    send("c2", "done", "welcome-4"),
    {"id": "done", "type": "exit"},
    reentry="always",
)
# The delay before each node, in any version: a message at `node` comes at least this long after
# the message of the node before it.
GAPS = {("a", "b"): timedelta(hours=1), ("b", "c"): timedelta(hours=2), ("a", "c"): timedelta(hours=1)}

_engine: Engine | None = None


@pytest.fixture(scope="module", autouse=True)
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    global _engine
    path = Path(tmp_path_factory.mktemp("stateful")) / "shopflow.db"
    _engine = db.create_engine(f"sqlite:///{path}")
    db.upgrade(_engine)
    yield
    _engine.dispose()
    _engine = None


class FlowLifecycle(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        assert _engine is not None
        self.engine = _engine
        testing.truncate_all(self.engine)
        self.clock = SimulatedClock(testing.T0)
        self.ws = testing.make_workspace(self.engine).workspace.id
        self.flow_id = save(self.engine, self.ws, V1, self.clock)
        self.status = "live"
        self.entered = 0
        self.exits: dict[int, tuple[Any, ...]] = {}
        self.edited = False

    @rule(n=st.integers(1, 3))
    def enter(self, n: int) -> None:
        emails = [f"p{(self.entered + i) % 4}@example.org" for i in range(n)]
        self.entered += n
        join(self.engine, self.clock, self.ws, *emails)
        tick(self.engine, self.clock)

    @rule(minutes=st.sampled_from([1, 30, 59, 60, 61, 120, 180, 600]))
    def advance(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        seen = self._last_message_id()
        scheduler.run_all_due(self.engine, clock=self.clock)
        m = tables.messages
        with db.reading(self.engine) as conn:
            new = set(conn.execute(sa.select(m.c.status).where(m.c.id > seen)).scalars())
        expected = {"live": {"queued"}, "manual": {"pending_approval"}}.get(self.status, set())
        assert new <= expected, f"a {self.status} flow created {new} messages"

    @rule(status=st.sampled_from(["live", "paused", "manual", "draft"]))
    def set_status(self, status: str) -> None:
        with db.transaction(self.engine) as conn:
            lifecycle.change_status(
                conn, workspace_id=self.ws, flow_id=self.flow_id, status=status, now=self.clock.now()
            )
        self.status = status

    @precondition(lambda self: not self.edited)
    @rule()
    def edit_and_migrate(self) -> None:
        save(self.engine, self.ws, V2, self.clock, status=self.status)
        self.edited = True
        with db.transaction(self.engine) as conn:
            result = lifecycle.migrate_runs(
                conn, workspace_id=self.ws, flow_id=self.flow_id, to_version=2, now=self.clock.now()
            )
        assert all(r.node_id in ("b", "d2") for r in result.stayed)

    def _last_message_id(self) -> int:
        with db.reading(self.engine) as conn:
            return int(
                conn.execute(sa.select(sa.func.coalesce(sa.func.max(tables.messages.c.id), 0))).scalar_one()
            )

    @invariant()
    def nothing_lost_or_doubled(self) -> None:
        if not hasattr(self, "engine"):
            return
        r, m = tables.flow_runs, tables.messages
        now: datetime = self.clock.now()
        with db.reading(self.engine) as conn:
            runs = conn.execute(sa.select(r)).all()
            msgs = conn.execute(sa.select(m.c.run_id, m.c.node_id, m.c.created_at, m.c.status)).all()
        # A running flow leaves nothing due behind after the scheduler ran.
        if self.status in ("live", "manual"):
            scheduler.run_all_due(self.engine, clock=self.clock)
            with db.reading(self.engine) as conn:
                due = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(r)
                    .where(r.c.status == "waiting", r.c.wake_at <= now)
                ).scalar_one()
            assert due == 0
        by_run: dict[int, dict[str, datetime]] = {}
        for run_id, node_id, created_at, _status in msgs:
            assert node_id not in by_run.setdefault(int(run_id), {}), "a (run, node) message twice"
            by_run[int(run_id)][node_id] = created_at
        for sent in by_run.values():
            for (before, after), gap in GAPS.items():
                if before in sent and after in sent:
                    assert sent[after] - sent[before] >= gap, "a delay fired early"
        for run in runs:
            if run.status == "exited":
                record = (run.exited_at, run.exit_reason, run.node_id)
                assert self.exits.setdefault(int(run.id), record) == record, "an exit changed"
            else:
                assert int(run.id) not in self.exits, "an exited run came back"


FlowLifecycle.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
test_flow_lifecycle = FlowLifecycle.TestCase
