"""GDPR / CCPA: export everything about a person, erase a person from every table.

Generic over the schema on purpose: any table with a `profile_id` column is exported and erased
without this module knowing it, so a table added later is covered from its first day.

Erasure keeps the person's contribution to aggregates, anonymously: a *tombstone* profile (a new
id, no identifiers, no names, properties {"erased": true}) takes over the order count, total spent
and first/last order dates, and the attributions (revenue credited to flows and messages, with the
shop's order id removed). Everything else that names the person is deleted: identifiers, events,
messages, runs and their log, consent and its evidence, suppressions, preferences, merges, and
rows of other tables whose JSON mentions the email address. See docs/decisions/privacy-erasure.md.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.domain.clock import as_utc
from shopflow.store import tables, workspaces

EXPORT = "export"
ERASE = "erase"
_JSON_TYPES = (sa.JSON,)
_EMAIL_COLUMNS = ("email", "to_address", "address", "recipient")


@dataclass(frozen=True)
class Subject:
    workspace_id: str
    profile_id: int  # the surviving profile
    profile_ids: tuple[int, ...]  # it and every profile merged into it
    emails: tuple[str, ...]
    phones: tuple[str, ...]


def find(
    conn: Connection, *, workspace_id: str, email: str | None = None, profile_id: int | None = None
) -> Subject:
    """The person named by an email address or a profile id (following merges), or LookupError."""
    p = tables.profiles
    if (email is None) == (profile_id is None):
        raise ValueError("give exactly one of email or profile_id")
    if email is not None:
        address = email.strip().lower()
        t = tables.profile_identifiers
        found = conn.execute(
            sa.select(t.c.profile_id).where(
                t.c.workspace_id == workspace_id, t.c.kind == "email", t.c.value == address
            )
        ).scalar()
        if found is None:
            found = conn.execute(
                sa.select(p.c.id)
                .where(p.c.workspace_id == workspace_id, p.c.email == address)
                .order_by(p.c.id)
            ).scalar()
        if found is None:
            raise LookupError(f"email: no profile with {address!r} in workspace {workspace_id!r}")
        profile_id = int(found)
    assert profile_id is not None
    pid = int(profile_id)
    for _hop in range(16):  # follow a merged profile to the person it became
        row = conn.execute(
            sa.select(p.c.id, p.c.merged_into).where(p.c.workspace_id == workspace_id, p.c.id == pid)
        ).first()
        if row is None:
            raise LookupError(f"profile: no profile {profile_id} in workspace {workspace_id!r}")
        if row.merged_into is None:
            break
        pid = int(row.merged_into)
    ids = {pid}
    while True:  # every profile merged (directly or through a chain) into it
        more = set(
            conn.execute(
                sa.select(p.c.id).where(p.c.workspace_id == workspace_id, p.c.merged_into.in_(ids))
            ).scalars()
        )
        if more <= ids:
            break
        ids |= more
    rows = list(
        conn.execute(sa.select(p.c.email, p.c.phone).where(p.c.workspace_id == workspace_id, p.c.id.in_(ids)))
    )
    t = tables.profile_identifiers
    idents = list(
        conn.execute(
            sa.select(t.c.kind, t.c.value).where(t.c.workspace_id == workspace_id, t.c.profile_id.in_(ids))
        )
    )
    emails = {r.email for r in rows if r.email} | {v for k, v in idents if k == "email"}
    phones = {r.phone for r in rows if r.phone} | {v for k, v in idents if k == "phone"}
    return Subject(workspace_id, pid, tuple(sorted(ids)), tuple(sorted(emails)), tuple(sorted(phones)))


def _profile_tables() -> list[sa.Table]:
    return [
        t
        for t in tables.metadata.sorted_tables
        if "profile_id" in t.c and "workspace_id" in t.c and t.name not in ("profiles", "attributions")
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _rows(conn: Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r._mapping.items()} for r in conn.execute(query)]


def export(conn: Connection, *, subject: Subject) -> dict[str, Any]:
    """Everything stored about the person, by table name (JSON-ready)."""
    ws, ids = subject.workspace_id, list(subject.profile_ids)
    p, m = tables.profiles, tables.profile_merges
    out: dict[str, Any] = {
        "subject": {
            "workspace_id": ws,
            "profile_id": subject.profile_id,
            "profile_ids": ids,
            "emails": list(subject.emails),
            "phones": list(subject.phones),
        },
        "profiles": _rows(conn, sa.select(p).where(p.c.workspace_id == ws, p.c.id.in_(ids)).order_by(p.c.id)),
        "profile_merges": _rows(
            conn,
            sa.select(m)
            .where(m.c.workspace_id == ws, sa.or_(m.c.from_profile_id.in_(ids), m.c.into_profile_id.in_(ids)))
            .order_by(m.c.id),
        ),
    }
    a = tables.attributions
    out["attributions"] = _rows(
        conn, sa.select(a).where(a.c.workspace_id == ws, a.c.profile_id.in_(ids)).order_by(a.c.id)
    )
    for table in _profile_tables():
        order = [c for c in table.primary_key.columns] or list(table.c)[:1]
        out[table.name] = _rows(
            conn,
            sa.select(table).where(table.c.workspace_id == ws, table.c.profile_id.in_(ids)).order_by(*order),
        )
    return out


def subject_hash(conn: Connection, subject: Subject) -> str:
    """Keyed with the instance secret: who holds it can check "was X erased?", nobody can reverse it."""
    key = workspaces.instance_secret(conn).encode()
    text = f"{subject.workspace_id}|{subject.profile_id}|{','.join(subject.emails)}"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def record_audit(
    conn: Connection, *, subject: Subject, action: str, actor: str, now: datetime, details: dict[str, Any]
) -> int:
    row_id = conn.execute(
        tables.privacy_audit.insert()
        .values(
            workspace_id=subject.workspace_id,
            action=action,
            subject_hash=subject_hash(conn, subject),
            actor=actor[:64],
            at=now,
            details=details,
        )
        .returning(tables.privacy_audit.c.id)
    ).scalar_one()
    return int(row_id)


def erase(conn: Connection, *, subject: Subject, now: datetime, actor: str) -> dict[str, Any]:
    """Delete the person everywhere, keep their aggregates on a tombstone, write the audit record.

    Returns the audit details: rows removed per table and the tombstone's id.
    """
    ws, ids = subject.workspace_id, list(subject.profile_ids)
    p = tables.profiles
    agg = conn.execute(
        sa.select(
            sa.func.sum(p.c.order_count),
            sa.func.sum(p.c.total_spent),
            sa.func.min(p.c.first_order_at),
            sa.func.max(p.c.last_order_at),
            sa.func.min(p.c.created_at),
        ).where(p.c.workspace_id == ws, p.c.id.in_(ids))
    ).one()
    tombstone = int(
        conn.execute(
            p.insert()
            .values(
                workspace_id=ws,
                properties={"erased": True},
                created_at=agg[4] or now,
                updated_at=now,
                order_count=int(agg[0] or 0),
                total_spent=agg[1] if agg[1] is not None else Decimal(0),
                first_order_at=agg[2],
                last_order_at=agg[3],
            )
            .returning(p.c.id)
        ).scalar_one()
    )
    removed: dict[str, int] = {}

    def note(name: str, count: int) -> None:
        if count:
            removed[name] = removed.get(name, 0) + count

    # Rows that hang off the person's runs, messages and events but carry no profile_id themselves.
    run_ids = _ids(conn, tables.flow_runs, ws, ids)
    message_ids = _ids(conn, tables.messages, ws, ids)
    event_ids = _ids(conn, tables.events, ws, ids)
    pe = tables.pending_events
    note("pending_events", _delete(conn, pe, pe.c.event_id.in_(event_ids)) if event_ids else 0)
    for table in tables.metadata.sorted_tables:
        if "profile_id" in table.c or "workspace_id" not in table.c or table.name in ("messages", "events"):
            continue
        for column, owned in (("run_id", run_ids), ("message_id", message_ids)):
            if column in table.c and owned and isinstance(table.c[column].type, sa.Integer):
                note(table.name, _delete(conn, table, table.c.workspace_id == ws, table.c[column].in_(owned)))

    a = tables.attributions
    moved = conn.execute(
        a.update()
        .where(a.c.workspace_id == ws, a.c.profile_id.in_(ids))
        .values(profile_id=tombstone, order_id=None)
    ).rowcount
    note("attributions (kept, anonymised)", int(moved or 0))
    for table in _profile_tables():
        note(table.name, _delete(conn, table, table.c.workspace_id == ws, table.c.profile_id.in_(ids)))
    m = tables.profile_merges
    note(
        "profile_merges",
        _delete(
            conn,
            m,
            m.c.workspace_id == ws,
            sa.or_(m.c.from_profile_id.in_(ids), m.c.into_profile_id.in_(ids)),
        ),
    )
    note("profiles", _delete(conn, p, p.c.workspace_id == ws, p.c.id.in_(ids)))
    for name, count in _scrub_mentions(conn, ws, subject.emails + subject.phones).items():
        note(name, count)
    details = {"rows": removed, "tombstone_profile_id": tombstone, "profiles": len(ids)}
    record_audit(conn, subject=subject, action=ERASE, actor=actor, now=now, details=details)
    return details


def _ids(conn: Connection, table: sa.Table, ws: str, profile_ids: list[int]) -> list[int]:
    query = sa.select(table.c.id).where(table.c.workspace_id == ws, table.c.profile_id.in_(profile_ids))
    return [int(i) for i in conn.execute(query).scalars()]


def _delete(conn: Connection, table: sa.Table, *where: Any) -> int:
    return int(conn.execute(table.delete().where(*where)).rowcount or 0)


def _scrub_mentions(conn: Connection, ws: str, needles: tuple[str, ...]) -> dict[str, int]:
    """Tables without a profile_id that still mention the person: a nullable JSON column that
    mentions them is cleared (a stored webhook payload); a row keyed by their address (a bounce
    report) is deleted."""
    found: dict[str, int] = {}
    if not needles:
        return found
    for table in tables.metadata.sorted_tables:
        if "profile_id" in table.c or "workspace_id" not in table.c or table.name == "profiles":
            continue
        for column in table.c:
            is_json = isinstance(column.type, _JSON_TYPES) or any(
                isinstance(v, _JSON_TYPES) for v in getattr(column.type, "_variant_mapping", {}).values()
            )
            if is_json:
                text = sa.func.lower(sa.cast(column, sa.Text))
                hit = sa.or_(*(text.contains(n.lower(), autoescape=True) for n in needles))
                if not column.nullable:
                    continue  # configuration (flow definitions, settings): never deleted by a scan
                count = conn.execute(
                    table.update().where(table.c.workspace_id == ws, hit).values({column.name: None})
                ).rowcount
            elif column.name in _EMAIL_COLUMNS and isinstance(column.type, sa.String):
                count = _delete(conn, table, table.c.workspace_id == ws, sa.func.lower(column).in_(needles))
            else:
                continue
            if count:
                found[table.name] = found.get(table.name, 0) + int(count)
    return found
