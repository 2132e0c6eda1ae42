"""The guards' loading part: one workspace's gate for a batch (its facts read in a few grouped
queries). The rules themselves are pure, in domain.guards."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain import guards
from shopflow.ingest import hygiene
from shopflow.store import guard_facts, messages, senders, workspaces


def reserved_domains_allowed(workspace_settings: Mapping[str, Any]) -> bool:
    """Mail to RFC 2606 / 6761 names: the setting decides; unset, only a store whose own from
    address is at such a name (a test or demo store, whose mail goes to a sink) sends there."""
    chosen = guards.setting(workspace_settings, "deliver_to_reserved_domains")
    if chosen is not None:
        return bool(chosen)
    from_domain = str(workspace_settings.get("from_email") or "").rpartition("@")[2]
    return bool(from_domain) and hygiene.is_reserved_domain(from_domain)


def check_settings(workspace_settings: Mapping[str, Any], channel: str) -> dict[str, bool]:
    """The workspace settings `guards.check` takes, as its keyword arguments."""
    return guards.check_settings(
        workspace_settings, channel, reserved_domains_allowed=reserved_domains_allowed(workspace_settings)
    )


def load(
    conn: Connection,
    *,
    workspace: workspaces.Workspace | None,
    recipients: Iterable[messages.Recipient],
    now: datetime,
) -> guards.Gate:
    """The gate for one workspace's batch (its facts read in a few grouped queries)."""
    if workspace is None:
        return guards.Gate({}, guards.BatchFacts(), now)
    facts = guard_facts.load(
        conn, workspace_id=workspace.id, profile_ids=[r.profile_id for r in recipients], now=now
    )
    from_email = str(workspace.settings.get("from_email") or "")
    domain = from_email.rpartition("@")[2].lower()
    warmup_left = (
        senders.warmup_allowance(conn, workspace_id=workspace.id, domain=domain, now=now) if domain else None
    )
    return guards.Gate(
        workspace.settings, facts, now, warmup_left, reserved_domains_allowed(workspace.settings)
    )
