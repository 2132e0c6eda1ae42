"""Set up on-site tracking for a workspace: its store origins and consent mode, and the snippet."""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy.engine import Engine

from shopflow import workspaces
from shopflow.domain import onsite
from shopflow.store import db
from shopflow.store import workspaces as store_workspaces


def configure(
    engine: Engine,
    *,
    workspace_id: str,
    origins: list[str] | None = None,
    require_consent: bool | None = None,
    events_per_minute: int | None = None,
    forms_per_minute: int | None = None,
) -> onsite.Config:
    """Change the given on-site settings (None: keep); ValueError naming the field, LookupError for
    an unknown workspace."""
    for name, rate in (("events_per_minute", events_per_minute), ("forms_per_minute", forms_per_minute)):
        if rate is not None and not 0 < rate <= 100_000:
            raise ValueError(f"{name}: expected 1 to 100000, got {rate}")
    parsed = onsite.parse_origins(origins) if origins is not None else None
    with db.transaction(engine) as conn:
        ws = workspaces.require(conn, workspace_id)
        current: dict[str, Any] = dict(ws.settings.get("onsite") or {})
        for name, value in (
            ("origins", parsed),
            ("require_consent", require_consent),
            ("events_per_minute", events_per_minute),
            ("forms_per_minute", forms_per_minute),
        ):
            if value is not None:
                current[name] = value
        settings = store_workspaces.update_settings(
            conn, workspace_id=workspace_id, changes={"onsite": current}
        )
    return onsite.config(settings)


def snippet(secret: bytes, engine: Engine, *, workspace_id: str, public_url: str) -> str:
    """The script tag a store puts on every page (before </body>); NoWorkspace for an unknown id."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
    src = html.escape(f"{public_url.rstrip('/')}/js/shopflow.js")
    key = html.escape(workspaces.site_key(secret, workspace_id))
    return f'<script src="{src}" data-key="{key}" async></script>'
