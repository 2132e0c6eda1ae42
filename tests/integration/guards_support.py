"""Helpers shared by the guards, consent, preferences and privacy tests (not a test module)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.domain import events as ev
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import due
from shopflow.store import db, messages, suppressions, workspaces
from shopflow.testing import InMemoryEmailChannel

SECRET = b"guards-test-secret"
PUBLIC = "https://sf.example"


def workspace(engine: Engine, clock: SimulatedClock, **settings: Any) -> workspaces.CreatedWorkspace:
    with db.transaction(engine) as conn:
        return workspaces.create_workspace(conn, name="Guard Store", now=clock.now(), settings=settings)


def person(
    engine: Engine,
    ws_id: str,
    clock: SimulatedClock,
    email: str,
    *,
    status: str | None = "subscribed",
    traits: dict[str, Any] | None = None,
) -> int:
    changes = (ConsentChange("email", status, clock.now(), "test"),) if status else ()
    event = CanonicalEvent(
        message_id=f"identify-{email}",
        source="test",
        identity=Identity(email=email),
        time=clock.now(),
        traits={"first_name": "Ana", **(traits or {})},
        consent=changes,
    )
    with db.transaction(engine) as conn:
        return pipeline.accept(conn, workspace_id=ws_id, events=[event], now=clock.now()).profile_ids[0]


def queue(
    engine: Engine,
    ws_id: str,
    pid: int,
    now: datetime,
    *,
    key: str,
    transactional: bool = False,
    context: dict[str, Any] | None = None,
    template: str = "welcome-1",
) -> int:
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="email",
            template=template,
            dedupe_key=key,
            now=now,
            transactional=transactional,
            context=context or {},
        )
    assert mid is not None
    return mid


def history(engine: Engine, ws_id: str, pid: int, times: list[datetime], *, opened: list[bool]) -> list[int]:
    """Marketing emails already sent at `times` (through the store's own claim and mark_sent)."""
    ids = []
    for n, at in enumerate(times):
        mid = queue(engine, ws_id, pid, at, key=f"hist-{pid}-{n}")
        with db.transaction(engine) as conn:
            claimed = messages.claim_due(conn, now=at, limit=10, stale_before=at)
            assert [c.id for c in claimed] == [mid]
            messages.mark_sent(
                conn,
                [{"id": mid, "sent_at": at, "to_address": "x", "subject": "s", "provider_message_id": None}],
            )
        ids.append(mid)
    opens = [
        CanonicalEvent(
            message_id=f"open-{mid}",
            source="test",
            identity=Identity(profile_id=pid),
            time=at,
            name=ev.OPENED_EMAIL,
            properties={"message_id": mid},
        )
        for mid, at, was_opened in zip(ids, times, opened, strict=True)
        if was_opened
    ]
    if opens:
        with db.transaction(engine) as conn:
            pipeline.accept(conn, workspace_id=ws_id, events=opens, now=max(times))
    return ids


def deliver(engine: Engine, clock: SimulatedClock, channel: InMemoryEmailChannel | None = None) -> int:
    return due.email(
        engine,
        clock=clock,
        channel=channel or InMemoryEmailChannel(),
        link_secret=SECRET,
        public_url=PUBLIC,
    )


def row(engine: Engine, mid: int) -> dict[str, Any]:
    with db.reading(engine) as conn:
        found = messages.get(conn, message_id=mid)
    assert found is not None
    return found


def outcome(engine: Engine, mid: int) -> tuple[str, str | None]:
    r = row(engine, mid)
    return str(r["status"]), r["skip_reason"]


def suppress(engine: Engine, ws_id: str, pid: int, now: datetime, reason: str = "hard_bounce") -> None:
    with db.transaction(engine) as conn:
        suppressions.suppress(
            conn, workspace_id=ws_id, profile_id=pid, channel="email", reason=reason, now=now
        )


def count(engine: Engine, table: sa.Table) -> int:
    with db.reading(engine) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
