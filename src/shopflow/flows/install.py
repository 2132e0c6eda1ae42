"""Installing library flows into a workspace: the use case `shopflow flows install` and
`POST /api/v1/library/flows/{name}/install` share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from shopflow import workspaces
from shopflow.flows import library
from shopflow.store import db
from shopflow.store import flows as store_flows


@dataclass(frozen=True)
class Installed:
    name: str
    flow_id: int
    status: str
    version: int


def install_from_library(
    engine: Engine, *, workspace_id: str, names: Sequence[str], now: datetime, live: bool
) -> list[Installed]:
    """Install these library flows (drafts unless `live`), all or none; installing again returns
    the same flows. NoWorkspace, or library.NotInLibrary naming the first unknown name."""
    with db.transaction(engine) as conn:
        workspaces.require(conn, workspace_id)
        installed = []
        for name in names:
            flow_id = library.install(conn, workspace_id=workspace_id, name=name, now=now, live=live)
            flow = store_flows.get_flow(conn, workspace_id=workspace_id, flow_id=flow_id)
            assert flow is not None
            installed.append(Installed(name, flow_id, flow.status, flow.version))
        return installed
