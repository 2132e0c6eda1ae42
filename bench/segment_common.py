"""Shared by the segment benchmarks: a workspace with live segments whose backfill is done."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain.segments import validation
from shopflow.segments import backfill, builtin
from shopflow.store import db, workspaces
from shopflow.store import segments as segment_store


def workspace(engine: Engine, now: datetime) -> str:
    with db.transaction(engine) as conn:
        return workspaces.create_workspace(conn, name="Bench", now=now).workspace.id


def add_segment(engine: Engine, ws: str, key: str, rule: dict[str, Any], now: datetime) -> None:
    parsed = validation.parse(rule)
    with db.transaction(engine) as conn:
        segment_store.create(
            conn, workspace_id=ws, key=key, name=key, rule=validation.dump(parsed),
            includes=sorted(validation.segment_keys(parsed)), now=now,
        )  # fmt: skip


def library_segments(count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` rules: the built-in library, then variants of it (each a stable random sample)."""
    base = [(s.key, s.rule_data()) for s in builtin.library()]
    out = list(base)
    n = 0
    while len(out) < count:
        key, rule = base[n % len(base)]
        out.append(
            (f"{key}-v{n}", {"all": [rule, {"bucket": {"salt": f"v{n}", "from": 0, "to": 30 + n % 70}}]})
        )
        n += 1
    return out[:count]


def finish_backfills(engine: Engine, now: datetime) -> None:
    while backfill.run_pending(engine, now=now):
        pass
