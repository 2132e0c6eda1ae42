"""Shared set-up of the on-site tests: a real server, a workspace whose store is
https://shop.example, and small readers of what was stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing, workspaces
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.messaging.onsite import manage
from shopflow.store import db, tables

SECRET = "onsite-test-secret"
STORE = "https://shop.example"
ANON = "anon-0123456789"


@dataclass
class Site:
    base: str
    ws_id: str
    key: str
    write_key: str
    engine: Engine
    clock: SimulatedClock

    def url(self, path: str, key: str | None = None) -> str:
        return f"{self.base}/api/v1/browser/{path}?key={self.key if key is None else key}"

    def post(self, path: str, body: Any, *, origin: str = STORE, key: str | None = None) -> httpx.Response:
        headers = {"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"}
        content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
        return httpx.post(self.url(path, key), content=content, headers=headers)


def start(engine: Engine, clock: SimulatedClock, server_factory: Any, **onsite: Any) -> Site:
    settings = Settings(database_url=str(engine.url), secret_key=SECRET, public_url="https://sf.example")
    base = server_factory(create_app(settings, engine=engine, clock=clock))
    created = testing.make_workspace(engine)
    ws_id = created.workspace.id
    manage.configure(engine, workspace_id=ws_id, origins=onsite.pop("origins", [STORE]), **onsite)
    key = workspaces.site_key(SECRET.encode(), ws_id)
    return Site(base, ws_id, key, created.write_key, engine, clock)


def events(engine: Engine, name: str | None = None) -> list[dict[str, Any]]:
    t = tables.events
    query = sa.select(t.c.name, t.c.source, t.c.profile_id, t.c.properties, t.c.message_id).order_by(t.c.id)
    if name is not None:
        query = query.where(t.c.name == name)
    with db.reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def counts(engine: Engine) -> dict[str, int]:
    """Rows stored in the tables a browser call can write."""
    names = (
        "events",
        "profiles",
        "profile_identifiers",
        "messages",
        "stock_subscriptions",
        "push_subscriptions",
    )
    with db.reading(engine) as conn:
        return {
            n: int(conn.execute(sa.select(sa.func.count()).select_from(getattr(tables, n))).scalar_one())
            for n in names
        }


def page_view(mid: str = "m1", **extra: Any) -> dict[str, Any]:
    return {"type": "page", "messageId": mid, "context": {"page": {"url": f"{STORE}/", "path": "/"}}, **extra}


def track(event: str, mid: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "messageId": mid, "properties": props}
