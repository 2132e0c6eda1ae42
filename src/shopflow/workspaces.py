"""Workspaces (the stores, one tenant each): create one with its keys, list them, change the
webhook signing secret. Each use case opens its own transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from shopflow.store import db
from shopflow.store import workspaces as store_workspaces

Workspace = store_workspaces.Workspace
CreatedWorkspace = store_workspaces.CreatedWorkspace


class NoWorkspace(LookupError):
    """The workspace id names no workspace; the CLI reports it against its --workspace flag."""

    def __init__(self, workspace_id: str) -> None:
        super().__init__(f"workspace: no workspace {workspace_id!r}")
        self.workspace_id = workspace_id


def require(conn: Connection, workspace_id: str) -> Workspace:
    """The workspace, or NoWorkspace; for use cases that check it inside their transaction."""
    found = store_workspaces.get(conn, workspace_id)
    if found is None:
        raise NoWorkspace(workspace_id)
    return found


def create(
    engine: Engine, *, name: str, now: datetime, shopify_secret: str | None = None
) -> CreatedWorkspace:
    """A new workspace with its keys (shown once); ValueError naming the field for a bad name."""
    with db.transaction(engine) as conn:
        return store_workspaces.create_workspace(conn, name=name, now=now, shopify_secret=shopify_secret)


def list_all(engine: Engine) -> list[Workspace]:
    """Every workspace, oldest first."""
    with db.reading(engine) as conn:
        return store_workspaces.list_all(conn)


def set_webhook_secret(engine: Engine, *, workspace_id: str, secret: str) -> None:
    """Change the secret incoming webhooks are signed with; LookupError for an unknown workspace."""
    with db.transaction(engine) as conn:
        store_workspaces.set_webhook_secret(conn, workspace_id=workspace_id, secret=secret)
