"""Driving library flows under the simulated clock: events in, the worker's steps, messages out."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.flows import install as flow_install
from shopflow.flows import scheduler, sweeps, triggers
from shopflow.ingest import pipeline
from shopflow.store import db, flow_runs, tables
from shopflow.store import events as store_events

T0 = testing.T0
H = timedelta(hours=1)
D = timedelta(days=1)


class Shop:
    """A workspace with library flows installed live, and helpers to live through time in it."""

    def __init__(
        self, engine: Engine, clock: SimulatedClock, *names: str, workspace_id: str | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.ws = workspace_id or testing.make_workspace(engine).workspace.id
        self.flow_ids = {name: self.install(name) for name in names}
        self._n = 0

    def install(self, name: str) -> int:
        (installed,) = flow_install.install_from_library(
            self.engine, workspace_id=self.ws, names=[name], now=T0, live=True
        )
        return installed.flow_id

    def track(
        self,
        email: str,
        name: str | None,
        *,
        value: str | None = None,
        traits: dict[str, Any] | None = None,
        sms_opt_in: bool = False,
        phone: str | None = None,
        **props: Any,
    ) -> None:
        self._n += 1
        now = self.clock.now()
        event = CanonicalEvent(
            message_id=f"m{self._n}",
            source="test",
            identity=Identity(email=email, phone=phone),
            time=now,
            name=name,
            properties=props,
            traits=traits or {},
            value=Decimal(value) if value is not None else None,
            consent=(ConsentChange("sms", "subscribed", now, "checkout"),) if sms_opt_in else (),
        )
        with db.transaction(self.engine) as conn:
            pipeline.accept(conn, workspace_id=self.ws, events=[event], now=now)
        # The event processor and the worker pick it up at once, as they would.
        self.tick()

    def tick(self) -> None:
        """One worker round: time-based triggers, event triggers, then every due step."""
        sweeps.run_sweeps(self.engine, clock=self.clock)
        with db.transaction(self.engine) as conn:
            batch = store_events.claim_pending(conn, limit=1000)
            triggers.on_events(conn, events=batch, now=self.clock.now())
        scheduler.run_all_due(self.engine, clock=self.clock)

    def at(self, delta: timedelta) -> None:
        """Live until T0 + delta: the worker runs at every moment a run or a trigger is due on the
        way (as a worker polling often would), then at T0 + delta."""
        target = T0 + delta
        assert target >= self.clock.now(), (target, self.clock.now())
        while (due := self._next_due()) is not None and due < target:
            self.clock.set(due)
            self.tick()
        self.clock.set(target)
        self.tick()

    def _next_due(self) -> datetime | None:
        r, s = tables.flow_runs, tables.trigger_schedule
        now = self.clock.now()
        with db.reading(self.engine) as conn:
            runs = conn.execute(
                sa.select(sa.func.min(r.c.wake_at)).where(
                    r.c.workspace_id == self.ws, r.c.status == "waiting", r.c.wake_at > now
                )
            ).scalar()
            fires = conn.execute(
                sa.select(sa.func.min(s.c.fire_at)).where(s.c.workspace_id == self.ws, s.c.fire_at > now)
            ).scalar()
        found = [t for t in (runs, fires) if t is not None]
        return min(found) if found else None

    def messages(self) -> list[tuple[str, str, str, timedelta]]:
        """(channel, template, node, created at as an offset from T0), in creation order."""
        m = tables.messages
        with db.reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(m.c.channel, m.c.template, m.c.node_id, m.c.created_at).order_by(m.c.id)
            )
            return [(r.channel, r.template, r.node_id, r.created_at - T0) for r in rows]

    def message_rows(self) -> list[sa.Row[Any]]:
        with db.reading(self.engine) as conn:
            return list(conn.execute(sa.select(tables.messages).order_by(tables.messages.c.id)))

    def runs(self, name: str) -> list[tuple[str, str, str | None]]:
        """(trigger key, status, exit reason) of the flow's runs (the reason is cut at 64 characters)."""
        r = tables.flow_runs
        with db.reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(r.c.trigger_key, r.c.status, r.c.exit_reason)
                .where(r.c.flow_id == self.flow_ids[name])
                .order_by(r.c.id)
            )
            return [(x.trigger_key, x.status, x.exit_reason) for x in rows]

    def exits(self, name: str) -> list[timedelta | None]:
        """When each of the flow's runs exited, as an offset from T0."""
        r = tables.flow_runs
        with db.reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(r.c.exited_at).where(r.c.flow_id == self.flow_ids[name]).order_by(r.c.id)
            )
            return [None if x is None else x - T0 for (x,) in rows]

    def run_ids(self, name: str) -> list[int]:
        with db.reading(self.engine) as conn:
            return [x.id for x in flow_runs.runs_of_flow(conn, flow_id=self.flow_ids[name])]

    def profile_properties(self, email: str) -> dict[str, Any]:
        p = tables.profiles
        with db.reading(self.engine) as conn:
            props = conn.execute(
                sa.select(p.c.properties).where(p.c.workspace_id == self.ws, p.c.email == email)
            ).scalar_one()
        return dict(props or {})

    def engage(self, email: str, name: str, node: str) -> None:
        """An open or click of this profile's message from `node` (what the tracking pixel sends)."""
        m, p = tables.messages, tables.profiles
        with db.reading(self.engine) as conn:
            message_id = conn.execute(
                sa.select(m.c.id)
                .join(p, p.c.id == m.c.profile_id)
                .where(m.c.workspace_id == self.ws, p.c.email == email, m.c.node_id == node)
            ).scalar_one()
        self.track(email, name, message_id=message_id)


def when(delta: timedelta) -> datetime:
    return T0 + delta


def log_of(shop: Shop, name: str) -> list[tuple[str, str | None, str | None, timedelta]]:
    """Every run's log as (kind, node, reason, offset from T0): where the runs went, and when."""
    with db.reading(shop.engine) as conn:
        return [
            (x["kind"], x["node_id"], x["reason"], x["at"] - T0)
            for run_id in shop.run_ids(name)
            for x in flow_runs.run_log(conn, run_id=run_id)
        ]
