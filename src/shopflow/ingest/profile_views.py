"""What the profile API shows: lookup by identifier, one profile in detail, its timeline.

Each read opens its own connection and returns plain JSON-ready dicts (money as exact strings,
times in ISO 8601). LookupError names a profile that is not in the workspace; ValueError a
lookup value that cannot be an identifier.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import workspaces
from shopflow.domain.clock import as_utc
from shopflow.ingest import identity
from shopflow.store import consent, db, events, profiles


def find_profiles(
    engine: Engine, *, workspace: workspaces.Workspace, kind: str, raw: str
) -> list[dict[str, Any]]:
    """Profiles with this email, phone or external id (at most one, since identifiers are unique)."""
    if kind == "email":
        value = identity.normalise_email(raw)
    elif kind == "phone":
        region = str(workspace.settings.get("phone_region") or identity.DEFAULT_REGION)
        value = identity.normalise_phone(raw, region)
    else:
        value = raw.strip() or None
    if value is None:
        raise ValueError(f"{kind}: {raw!r} is not a valid {kind.replace('_', ' ')}")
    with db.reading(engine) as conn:
        rows = profiles.find(conn, workspace_id=workspace.id, kind=kind, value=value)
    return [{**_summary(r), **_aggregates(r)} for r in rows]


def profile_detail(engine: Engine, *, workspace_id: str, profile_id: int) -> dict[str, Any]:
    """One profile: columns, custom properties, aggregates, consent per channel and identifiers."""
    with db.reading(engine) as conn:
        row = profiles.get(conn, workspace_id=workspace_id, profile_id=profile_id)
        if row is None:
            raise _no_profile(profile_id)
        channels = consent.for_profile(conn, workspace_id=workspace_id, profile_id=profile_id)
        ids = profiles.identifiers(conn, workspace_id=workspace_id, profile_id=profile_id)
        merges = profiles.merges_into(conn, workspace_id=workspace_id, profile_id=profile_id)
    return {
        **_summary(row),
        "timezone": row.timezone,
        "updated_at": _time(row.updated_at),
        "merged_into": None if row.merged_into is None else int(row.merged_into),
        "properties": dict(row.properties or {}),
        "aggregates": _aggregates(row),
        "consent": {
            ch: {
                "status": channels[ch]["status"] if ch in channels else consent.NEVER_SUBSCRIBED,
                "updated_at": _time(channels[ch]["updated_at"]) if ch in channels else None,
            }
            for ch in sorted(consent.CHANNELS | set(channels))
        },
        "identifiers": [{"kind": k, "value": v} for k, v in ids],
        "merged_from": [
            {"profile_id": int(m.from_profile_id), "reason": m.reason, "merged_at": _time(m.merged_at)}
            for m in merges
        ],
    }


def timeline(engine: Engine, *, workspace_id: str, profile_id: int, limit: int) -> dict[str, Any]:
    """Events, messages (with status and skip reason) and flow steps, newest first, at most `limit`."""
    with db.reading(engine) as conn:
        if profiles.get(conn, workspace_id=workspace_id, profile_id=profile_id) is None:
            raise _no_profile(profile_id)
        evs = events.for_profile(conn, workspace_id=workspace_id, profile_id=profile_id, limit=limit)
        msgs = profiles.timeline_messages(conn, workspace_id=workspace_id, profile_id=profile_id, limit=limit)
        steps = profiles.timeline_run_log(conn, workspace_id=workspace_id, profile_id=profile_id, limit=limit)
    items: list[tuple[datetime, int, dict[str, Any]]] = []
    for e in evs:
        items.append(
            (
                as_utc(e.time),
                0,
                {
                    "type": "event",
                    "at": _time(e.time),
                    "id": e.id,
                    "name": e.name,
                    "properties": e.properties,
                    "value": _money(e.value),
                    "currency": e.currency,
                    "source": e.source,
                },
            )
        )
    for m in msgs:
        items.append(
            (
                as_utc(m.created_at),
                1,
                {
                    "type": "message",
                    "at": _time(m.created_at),
                    "id": int(m.id),
                    "channel": m.channel,
                    "template": m.template,
                    "subject": m.subject,
                    "status": m.status,
                    "skip_reason": m.skip_reason,
                    "flow_id": m.flow_id,
                    "run_id": m.run_id,
                    "node_id": m.node_id,
                    "sent_at": _time(m.sent_at),
                },
            )
        )
    for s in steps:
        items.append(
            (
                as_utc(s.at),
                2,
                {
                    "type": "flow_step",
                    "at": _time(s.at),
                    "id": int(s.id),
                    "kind": s.kind,
                    "flow_id": int(s.flow_id),
                    "flow_name": s.flow_name,
                    "flow_key": s.flow_key,
                    "run_id": int(s.run_id),
                    "node_id": s.node_id,
                    "reason": s.reason,
                },
            )
        )
    items.sort(key=lambda item: (item[0], item[1], item[2]["id"]), reverse=True)
    return {"profile_id": profile_id, "items": [item for _, _, item in items[:limit]]}


def _no_profile(profile_id: int) -> LookupError:
    return LookupError(f"profile_id: no profile {profile_id} in this workspace")


def _time(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _summary(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "email": row.email,
        # Address hygiene, set at intake: valid | invalid_syntax | reserved_domain | fake (None: no
        # address); the guards refuse mail or marketing by it.
        "email_status": row.email_status,
        "email_role": None if row.email_role is None else bool(row.email_role),
        "phone": row.phone,
        "external_id": row.external_id,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "created_at": _time(row.created_at),
    }


def _aggregates(row: sa.Row[Any]) -> dict[str, Any]:
    count = int(row.order_count)
    total = Decimal(row.total_spent)
    average = (total / count).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if count else None
    return {
        "order_count": count,
        "total_spent": _money(total),
        "average_order_value": _money(average),
        "first_order_at": _time(row.first_order_at),
        "last_order_at": _time(row.last_order_at),
        "last_active_at": _time(row.last_active_at),
    }
