"""A store for the campaign tests: profiles through ingest, a list, a segment, the SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.flows import lists
from shopflow.ingest import pipeline
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.delivery import due
from shopflow.messaging.sink import Sink
from shopflow.segments import manage as segments
from shopflow.store import db, tables
from shopflow.store import steps as store_steps

SECRET = b"campaign-test-secret"
PUBLIC = "https://sf.example"
TEMPLATE = "seasonal-offer-1"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    with Sink(directory=tmp_path / "mail") as s:
        yield s


@pytest.fixture
def smtp(sink: Sink) -> Iterator[SmtpChannel]:
    ch = SmtpChannel(f"smtp://127.0.0.1:{sink.port}")
    yield ch
    ch.close()


def deliver(engine: Engine, clock: SimulatedClock, channel: Any, **kw: Any) -> int:
    """The real email delivery (every guard) until nothing due is left; messages claimed."""
    total = 0
    while n := due.email(engine, clock=clock, channel=channel, link_secret=SECRET, public_url=PUBLIC, **kw):
        total += n
        if kw.get("limit"):
            break
    return total


@dataclass
class Shop:
    engine: Engine
    ws: str
    private_key: str
    clock: SimulatedClock

    def person(
        self,
        name: str,
        *,
        tz: str | None = None,
        tier: str | None = None,
        consent: str | None = "subscribed",
        phone: str | None = None,
    ) -> int:
        traits: dict[str, Any] = {"first_name": name.capitalize()}
        if tz:
            traits["timezone"] = tz
        if tier:
            traits["tier"] = tier
        changes = (ConsentChange("email", consent, self.clock.now(), "test"),) if consent else ()
        event = CanonicalEvent(
            message_id=f"id-{name}",
            source="test",
            identity=Identity(email=f"{name}@example.org", phone=phone),
            time=self.clock.now(),
            traits=traits,
            consent=changes,
        )
        with db.transaction(self.engine) as conn:
            result = pipeline.accept(conn, workspace_id=self.ws, events=[event], now=self.clock.now())
        return int(result.profile_ids[0])

    def add_list(self, key: str, members: list[int]) -> None:
        list_id = lists.create_list(
            self.engine, workspace_id=self.ws, key=key, name=key, now=self.clock.now()
        )
        rows = [
            {
                "workspace_id": self.ws,
                "list_id": list_id,
                "profile_id": pid,
                "source": "test",
                "joined_at": self.clock.now(),
            }
            for pid in members
        ]
        with db.transaction(self.engine) as conn:
            if rows:
                store_steps.add_members(conn, rows)

    def add_segment(self, key: str, rule: dict[str, Any]) -> None:
        segments.create(self.engine, workspace_id=self.ws, key=key, name=key, rule=rule, now=self.clock.now())

    def messages(self) -> list[dict[str, Any]]:
        """Every message row of the workspace, by profile (how the tests read the outbox)."""
        m = tables.messages
        with db.reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(
                    m.c.profile_id,
                    m.c.campaign_id,
                    m.c.status,
                    m.c.skip_reason,
                    m.c.send_after,
                    m.c.dedupe_key,
                )
                .where(m.c.workspace_id == self.ws)
                .order_by(m.c.profile_id, m.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def message_ids(self) -> list[tuple[int, int]]:
        """(profile id, message id) of every message of the workspace."""
        m = tables.messages
        with db.reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(m.c.profile_id, m.c.id).where(m.c.workspace_id == self.ws).order_by(m.c.id)
            )
            return [(int(p), int(i)) for p, i in rows]


def shop(engine: Engine, clock: SimulatedClock) -> Shop:
    created = testing.make_workspace(engine, now=clock.now())
    return Shop(engine, created.workspace.id, created.private_key, clock)


def definition(key: str = "bf", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": key,
        "name": "Black Friday",
        "channel": "email",
        "audience": {"include": {"lists": ["newsletter"]}},
        "template": TEMPLATE,
    }
    data.update(changes)
    return data


def at(clock: SimulatedClock, **delta: Any) -> str:
    from datetime import timedelta

    moment: datetime = clock.now() + timedelta(**delta)
    return moment.isoformat()
