"""Driving a library flow under the simulated clock: ingest, triggers, sweeps, steps and delivery.

`Shop.at(delta)` moves the clock to T0 + delta and runs one worker tick there, so a message's
`sent_at` is the moment its step came due (tests tick exactly at the expected times, and just
before them to show nothing went out early).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.flows import install as flow_install
from shopflow.flows import scheduler, sweeps, triggers
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import due
from shopflow.store import db, flow_runs, tables, workspaces
from shopflow.store import events as store_events

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@dataclass
class Shop:
    engine: Engine
    clock: SimulatedClock
    ws: str = ""
    channel: testing.InMemoryEmailChannel = field(default_factory=testing.InMemoryEmailChannel)
    _n: int = 0

    @classmethod
    def open(cls, engine: Engine, clock: SimulatedClock) -> Shop:
        shop = cls(engine, clock)
        shop.ws = testing.make_workspace(engine).workspace.id
        with db.transaction(engine) as conn:
            workspaces.update_settings(
                conn,
                workspace_id=shop.ws,
                changes={
                    "store_name": "Mugs & Co",
                    "store_url": "https://mugs.example",
                    "postal_address": "1 Main St, Springfield",
                },
            )
        return shop

    def install(self, name: str) -> int:
        (installed,) = flow_install.install_from_library(
            self.engine, workspace_id=self.ws, names=[name], now=self.clock.now(), live=True
        )
        return installed.flow_id

    def person(self, email: str, **traits: Any) -> None:
        """A profile subscribed to email marketing (so marketing sends are not skipped)."""
        self._accept(
            email,
            traits={"first_name": "Ana", **traits},
            consent=(ConsentChange("email", "subscribed", self.clock.now(), "test"),),
        )

    def track(self, email: str, metric: str, value: Decimal | None = None, **props: Any) -> None:
        self._accept(email, name=metric, props=props, value=value)

    def _accept(
        self,
        email: str,
        *,
        name: str | None = None,
        props: dict[str, Any] | None = None,
        value: Decimal | None = None,
        traits: dict[str, Any] | None = None,
        consent: tuple[ConsentChange, ...] = (),
    ) -> None:
        self._n += 1
        event = CanonicalEvent(
            message_id=f"m{self._n}",
            source="test",
            identity=Identity(email=email),
            time=self.clock.now(),
            name=name,
            properties=props or {},
            value=value,
            traits=traits or {},
            consent=consent,
        )
        with db.transaction(self.engine) as conn:
            pipeline.accept(conn, workspace_id=self.ws, events=[event], now=self.clock.now())

    def tick(self) -> None:
        with db.transaction(self.engine) as conn:
            batch = store_events.claim_pending(conn, limit=1000)
            triggers.on_events(conn, events=batch, now=self.clock.now())
        sweeps.run_sweeps(self.engine, clock=self.clock)
        scheduler.run_all_due(self.engine, clock=self.clock)
        due.email(
            self.engine,
            clock=self.clock,
            channel=self.channel,
            link_secret=b"s" * 32,
            public_url="http://localhost",
        )

    def at(self, delta: timedelta) -> None:
        self.clock.set(testing.T0 + delta)
        self.tick()

    def sent(self) -> list[tuple[str, str, timedelta]]:
        """(recipient, template, time since T0) of every message, in order; a skip shows its reason."""
        m, p = tables.messages, tables.profiles
        with db.reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(p.c.email, m.c.template, m.c.status, m.c.skip_reason, m.c.created_at)
                .join(p, p.c.id == m.c.profile_id)
                .where(m.c.workspace_id == self.ws)
                .order_by(m.c.id)
            ).all()
        out = []
        for r in rows:
            label = r.template if r.status == "sent" else f"{r.template}:{r.status}:{r.skip_reason}"
            out.append((r.email, label, r.created_at - testing.T0))
        return out

    def emails(self) -> dict[str, EmailMessage]:
        """The emails that went out, by subject."""
        return {str(m["Subject"]): m for m in self.channel.messages()}

    def runs(self, flow_id: int) -> list[tuple[str, str | None, str | None]]:
        """(status, node, exit reason) of the flow's runs, oldest first."""
        r = tables.flow_runs
        with db.reading(self.engine) as conn:
            ids = [run.id for run in flow_runs.runs_of_flow(conn, flow_id=flow_id)]
            rows = conn.execute(
                sa.select(r.c.id, r.c.status, r.c.node_id, r.c.exit_reason)
                .where(r.c.id.in_(ids))
                .order_by(r.c.id)
            ).all()
        return [(x.status, x.node_id, x.exit_reason) for x in rows]

    def alerts(self) -> list[tuple[str, datetime]]:
        a = tables.staff_alerts
        with db.reading(self.engine) as conn:
            rows = conn.execute(sa.select(a.c.message, a.c.created_at).order_by(a.c.id)).all()
        return [(x.message, x.created_at) for x in rows]


def body(message: EmailMessage) -> str:
    """The plain-text part of a sent email."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())
