"""Workspaces (the stores, one tenant each): create one with its keys, list them, change the
webhook signing secret. Each use case opens its own transaction."""

from __future__ import annotations

import hashlib
import hmac
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


# --- the public site key -----------------------------------------------------------------------
# The snippet on the store's pages carries it, so anyone can read it: it names the workspace and
# lets a browser send its own activity, forms and push opt-ins (api/routes/browser.py), nothing
# else: no server events (orders, refunds), no consent changes without a form, no reads. It is
# derived from the instance key, so it needs no column; it changes when SHOPFLOW_SECRET_KEY does.
_SITE_KEY_DOMAIN = b"shopflow-site-key-v1\n"
SITE_KEY_PREFIX = "pk_"


def site_key(secret: bytes, workspace_id: str) -> str:
    """The workspace's public site key: `pk_<workspace id>_<32 hex digits of HMAC>`."""
    digest = hmac.new(secret, _SITE_KEY_DOMAIN + workspace_id.encode(), hashlib.sha256).hexdigest()
    return f"{SITE_KEY_PREFIX}{workspace_id}_{digest[:32]}"


def site_key_workspace_id(secret: bytes, key: str) -> str | None:
    """The workspace id a genuine site key names, else None (checked in constant time)."""
    if not key.startswith(SITE_KEY_PREFIX) or len(key) > 100:
        return None
    workspace_id, _, _sig = key[len(SITE_KEY_PREFIX) :].rpartition("_")
    if not workspace_id:
        return None
    return workspace_id if hmac.compare_digest(site_key(secret, workspace_id), key) else None


def by_site_key(engine: Engine, *, secret: bytes, key: str) -> Workspace | None:
    """The workspace of a genuine site key (a forged one costs no database read)."""
    workspace_id = site_key_workspace_id(secret, key)
    if workspace_id is None:
        return None
    with db.reading(engine) as conn:
        return store_workspaces.get(conn, workspace_id)
