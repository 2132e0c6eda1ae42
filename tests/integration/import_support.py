"""Running imports in tests: fixture files copied to a temporary directory (the rejected rows file
is written beside the input), and readers of what an import stored."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.ingest import imports
from shopflow.store import db, tables

FIXTURES = Path(__file__).parent.parent / "fixtures" / "import"
EXPORTED = datetime.fromisoformat("2025-12-31T12:00:00+00:00")


def copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copy(FIXTURES / name, target)
    return target


def run(engine: Engine, clock: SimulatedClock, ws: str, kind: str, path: Path, **kw: Any) -> imports.Summary:
    kw.setdefault("exported_at", EXPORTED)
    return imports.run(engine, workspace_id=ws, kind=kind, path=str(path), clock=clock, **kw)


def workspace(engine: Engine) -> str:
    return testing.make_workspace(engine).workspace.id


def events(engine: Engine, ws: str) -> list[tuple[str, str, str, str | None]]:
    """(name, message id, source, value) of every event, in id order."""
    e = tables.events
    with db.reading(engine) as conn:
        rows = conn.execute(
            sa.select(e.c.name, e.c.message_id, e.c.source, e.c.value)
            .where(e.c.workspace_id == ws)
            .order_by(e.c.id)
        )
        return [(str(n), str(m), str(s), None if v is None else f"{v:.2f}") for n, m, s, v in rows]


def profile(engine: Engine, ws: str, email: str) -> dict[str, Any]:
    p = tables.profiles
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(p).where(p.c.workspace_id == ws, p.c.email == email)).one()
        return dict(row._mapping)


def count(engine: Engine, table: sa.Table, ws: str) -> int:
    with db.reading(engine) as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.workspace_id == ws)
            ).scalar_one()
        )
