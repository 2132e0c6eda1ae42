"""The built-in segments (segments/library/*.yaml) in a workspace: what can be installed, and
installing it; `shopflow segments library` / `install` and `/api/v1/segments/library` share these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from shopflow import workspaces
from shopflow.domain.problems import Problem
from shopflow.domain.segments import validation
from shopflow.segments import builtin
from shopflow.segments.manage import Invalid
from shopflow.store import db, segment_admin
from shopflow.store import segments as segment_store


class NotInLibrary(LookupError):
    def __init__(self, key: str, available: list[str]) -> None:
        super().__init__(f"segment {key!r}: not in the library; available: {', '.join(available)}")
        self.key = key
        self.available = available


@dataclass(frozen=True)
class Installed:
    key: str
    segment_id: int
    status: str
    version: int
    created: bool  # False: the workspace had a segment with this key, left as it is


def library() -> list[builtin.LibrarySegment]:
    """Every built-in segment, by key."""
    return builtin.library()


def install(
    engine: Engine, *, workspace_id: str, keys: Sequence[str], now: datetime, live: bool = False
) -> list[Installed]:
    """Install these built-in segments (drafts unless `live`), all or none. A key the workspace
    already has is left as it is (its owner may have edited it): installing again is a no-op.
    NotInLibrary names the first unknown key."""
    known = {s.key: s for s in builtin.library()}
    for key in keys:
        if key not in known:
            raise NotInLibrary(key, sorted(known))
    with db.transaction(engine) as conn:
        workspaces.require(conn, workspace_id)
        segment_admin.lock_definitions(conn, workspace_id=workspace_id)
        out = []
        for key in dict.fromkeys(keys):
            existing = segment_admin.rows(conn, workspace_id=workspace_id, key=key)
            if not existing:
                item = known[key]
                names = segment_store.known_names(conn, workspace_id=workspace_id, own_key=key)
                problems = validation.check_references(item.rule, names)
                if problems:
                    raise Invalid([Problem(f"{key}.{p.path}", p.message) for p in problems])
                segment_store.create(
                    conn,
                    workspace_id=workspace_id,
                    key=key,
                    name=item.name,
                    rule=item.rule_data(),
                    includes=sorted(validation.segment_keys(item.rule)),
                    now=now,
                    status="live" if live else "draft",
                )
            (row,) = segment_admin.rows(conn, workspace_id=workspace_id, key=key)
            out.append(Installed(key, row.id, row.status, row.version, not existing))
        return out
