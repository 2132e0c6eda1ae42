"""Campaign rows, the audience pages a launch reads, and the campaign's message rows by status."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shopflow.domain import events as metrics
from shopflow.store import analytics, analytics_reports, db, messages, tables

# Message statuses a campaign's unsent rows have: delivery claims only 'queued'; 'held' waits.
QUEUED, HELD, SKIPPED = "queued", "held", "skipped"
LIVE = ("scheduled", "sending", "paused")


@dataclass(frozen=True)
class Campaign:
    id: int
    workspace_id: str
    key: str
    name: str
    channel: str
    audience: dict[str, Any]
    template: str
    subject: str | None
    schedule_kind: str
    send_at: datetime | None
    local_time: str | None
    launch_at: datetime | None
    ends_at: datetime | None
    per_hour: int | None
    freeze_audience: bool
    status: str
    cursor_after_id: int
    recipients: int
    launch_done: bool
    launched_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    utm: dict[str, Any] | None = None
    ab: dict[str, Any] | None = None
    ab_tested: int = 0
    winner: str | None = None
    winner_reason: str | None = None
    winner_at: datetime | None = None


def _campaign(row: Any) -> Campaign:
    m = row._mapping
    return Campaign(
        **{
            **{k: m[k] for k in Campaign.__dataclass_fields__},
            "id": int(m["id"]),
            "audience": dict(m["audience"] or {}),
            "per_hour": None if m["per_hour"] is None else int(m["per_hour"]),
            "freeze_audience": bool(m["freeze_audience"]),
            "cursor_after_id": int(m["cursor_after_id"]),
            "recipients": int(m["recipients"]),
            "launch_done": bool(m["launch_done"]),
            "utm": dict(m["utm"]) if m["utm"] else None,
            "ab": dict(m["ab"]) if m["ab"] else None,
            "ab_tested": int(m["ab_tested"]),
        }
    )


def create(conn: Connection, *, values: dict[str, Any], now: datetime) -> int | None:
    """Insert a draft campaign; None when the workspace already has its key."""
    c = tables.campaigns
    exists = conn.execute(
        sa.select(c.c.id).where(c.c.workspace_id == values["workspace_id"], c.c.key == values["key"])
    ).first()
    if exists is not None:
        return None
    row = {**values, "status": "draft", "created_at": now, "updated_at": now}
    return int(conn.execute(c.insert().values(**row).returning(c.c.id)).scalar_one())


def get(conn: Connection, *, workspace_id: str, key: str, lock: bool = False) -> Campaign | None:
    c = tables.campaigns
    query = sa.select(c).where(c.c.workspace_id == workspace_id, c.c.key == key)
    if lock and not db.is_sqlite(conn):
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _campaign(row) if row is not None else None


def by_id(conn: Connection, *, campaign_id: int, lock: bool = False) -> Campaign | None:
    c = tables.campaigns
    query = sa.select(c).where(c.c.id == campaign_id)
    if lock and not db.is_sqlite(conn):
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _campaign(row) if row is not None else None


def all_campaigns(
    conn: Connection,
    *,
    workspace_id: str,
    launch_from: datetime | None = None,
    launch_to: datetime | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = 1000,
) -> list[Campaign]:
    """The workspace's campaigns by launch time (unscheduled last), then key."""
    c = tables.campaigns
    query = sa.select(c).where(c.c.workspace_id == workspace_id)
    if launch_from is not None:
        query = query.where(c.c.launch_at >= launch_from)
    if launch_to is not None:
        query = query.where(c.c.launch_at < launch_to)
    if statuses is not None:
        query = query.where(c.c.status.in_(list(statuses)))
    query = query.order_by(c.c.launch_at.is_(None), c.c.launch_at, c.c.key).limit(limit)
    return [_campaign(r) for r in conn.execute(query)]


def update(conn: Connection, *, campaign_id: int, now: datetime, **values: Any) -> None:
    c = tables.campaigns
    conn.execute(c.update().where(c.c.id == campaign_id).values(updated_at=now, **values))


# --- the periodic job's probes ----------------------------------------------------------------


def due_ids(conn: Connection, *, now: datetime) -> dict[str, Any]:
    """Campaign ids by what the job must do: 'end' (a flash sale past its end), 'launch'
        (scheduled and due), 'continue' (sending, audience not exhausted), 'finish' (sending, all
        queued: finished once nothing of it waits); 'ab': (id, test, launched_at) of the sending A/B
    tests without a winner (the caller checks their windows)."""
    c = tables.campaigns
    ended = conn.execute(
        sa.select(c.c.id).where(c.c.ends_at <= now, c.c.status.in_(LIVE)).order_by(c.c.id)
    ).scalars()
    out: dict[str, Any] = {"end": [int(i) for i in ended]}
    rows = conn.execute(
        sa.select(c.c.id, c.c.status, c.c.launch_done)
        .where(
            sa.or_(
                sa.and_(c.c.status == "scheduled", c.c.launch_at <= now),
                c.c.status == "sending",
            )
        )
        .order_by(c.c.launch_at, c.c.id)
    ).all()
    ended_set = set(out["end"])
    out["launch"] = [int(r.id) for r in rows if r.status == "scheduled" and r.id not in ended_set]
    out["continue"] = [int(r.id) for r in rows if r.status == "sending" and not r.launch_done]
    out["finish"] = [int(r.id) for r in rows if r.status == "sending" and r.launch_done]
    tests = conn.execute(
        sa.select(c.c.id, c.c.ab, c.c.launched_at)
        .where(c.c.status == "sending", c.c.ab.is_not(None), c.c.winner.is_(None))
        .order_by(c.c.id)
    ).all()
    out["ab"] = [(int(r.id), dict(r.ab), r.launched_at) for r in tests if r.ab]
    return out


# --- audience pages ---------------------------------------------------------------------------


def list_ids(conn: Connection, *, workspace_id: str, keys: Iterable[str]) -> dict[str, int]:
    lst = tables.lists
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(lst.c.key, lst.c.id).where(lst.c.workspace_id == workspace_id, lst.c.key.in_(wanted))
    )
    return {k: int(i) for k, i in rows}


def list_member_ids(
    conn: Connection, *, workspace_id: str, list_id: int, after_id: int, limit: int
) -> list[int]:
    """A page of a list's member profile ids in order (the primary key's order)."""
    m = tables.list_members
    query = (
        sa.select(m.c.profile_id)
        .where(m.c.workspace_id == workspace_id, m.c.list_id == list_id, m.c.profile_id > after_id)
        .order_by(m.c.profile_id)
        .limit(limit)
    )
    return [int(i) for i in conn.execute(query).scalars()]


@dataclass(frozen=True)
class Facts:
    """What the send-time guards will check, read ahead for the preview and for local time."""

    email: str | None
    phone: str | None
    timezone: str | None
    merged: bool
    consent: str | None  # the channel's consent status
    suppressed: str | None  # the suppression reason on the channel


def facts(
    conn: Connection, *, workspace_id: str, profile_ids: Sequence[int], channel: str
) -> dict[int, Facts]:
    if not profile_ids:
        return {}
    p, cs, s = tables.profiles, tables.consents, tables.suppressions
    ids = list(profile_ids)
    consent = dict(
        conn.execute(
            sa.select(cs.c.profile_id, cs.c.status).where(
                cs.c.workspace_id == workspace_id,
                cs.c.channel == channel,
                db.one_of(conn, cs.c.profile_id, ids),
            )
        ).all()
    )
    suppressed = dict(
        conn.execute(
            sa.select(s.c.profile_id, s.c.reason).where(
                s.c.workspace_id == workspace_id, s.c.channel == channel, db.one_of(conn, s.c.profile_id, ids)
            )
        ).all()
    )
    rows = conn.execute(
        sa.select(p.c.id, p.c.email, p.c.phone, p.c.timezone, p.c.merged_into).where(
            p.c.workspace_id == workspace_id, db.one_of(conn, p.c.id, ids)
        )
    )
    return {
        int(r.id): Facts(
            email=r.email,
            phone=r.phone,
            timezone=r.timezone,
            merged=r.merged_into is not None,
            consent=consent.get(r.id),
            suppressed=suppressed.get(r.id),
        )
        for r in rows
    }


def profile_facts(
    conn: Connection, *, workspace_id: str, profile_ids: Sequence[int]
) -> dict[int, tuple[int, str | None]]:
    """For each profile id that exists: (the profile it is now, after merges; its time zone)."""
    if not profile_ids:
        return {}
    p = tables.profiles
    found: dict[int, tuple[int | None, str | None]] = {}
    pending = list(profile_ids)
    for _hop in range(8):  # merges chain rarely; bounded so a cycle cannot loop forever
        rows = conn.execute(
            sa.select(p.c.id, p.c.merged_into, p.c.timezone).where(
                p.c.workspace_id == workspace_id, db.one_of(conn, p.c.id, pending)
            )
        )
        for r in rows:
            found[int(r.id)] = (None if r.merged_into is None else int(r.merged_into), r.timezone)
        pending = sorted({m for m, _ in found.values() if m is not None and m not in found})
        if not pending:
            break
    out: dict[int, tuple[int, str | None]] = {}
    for pid in profile_ids:
        current = pid
        for _hop in range(8):
            entry = found.get(current)
            if entry is None or entry[0] is None:
                break
            current = entry[0]
        entry = found.get(current)
        if entry is not None and entry[0] is None:
            out[pid] = (current, entry[1])
    return out


# --- the campaign's messages ------------------------------------------------------------------


def _variant(m: sa.Table) -> sa.ColumnElement[str]:
    return analytics._json_text(m.c.context, "variant")


def move_messages(
    conn: Connection,
    *,
    campaign_id: int,
    from_statuses: Sequence[str],
    to: str,
    reason: str | None = None,
    tested_only: bool = False,
) -> int:
    """Change the status of the campaign's messages in `from_statuses` (never a claimed or sent
    one); `tested_only`: only those with a variant (an A/B test's held rest stays held)."""
    m = tables.messages
    values: dict[str, Any] = {"status": to}
    if reason is not None:
        values["skip_reason"] = reason
    query = m.update().where(m.c.campaign_id == campaign_id, m.c.status.in_(list(from_statuses)))
    if tested_only:
        query = query.where(_variant(m).is_not(None))
    result = conn.execute(query.values(**values))
    return int(result.rowcount or 0)


def release_rest(conn: Connection, *, campaign_id: int, template: str, context: dict[str, Any]) -> int:
    """An A/B test's held rest (held rows without a variant) queued with the winner's template
    and context."""
    m = tables.messages
    query = m.update().where(m.c.campaign_id == campaign_id, m.c.status == HELD, _variant(m).is_(None))
    result = conn.execute(query.values(status=QUEUED, template=template, context=context))
    return int(result.rowcount or 0)


def variant_figures(
    conn: Connection, *, campaign_id: int, exclude_machine_opens: bool, rest: bool
) -> dict[str, dict[str, Any]]:
    """Per variant of an A/B test (from the message context) of its test share (or, `rest`, of
    the rest sent the winner): messages sent, distinct sent messages opened and clicked,
    conversions credited and the sum and sum of squares of each message's net revenue."""
    m, e, a = tables.messages, tables.events, tables.attributions
    variant = _variant(m)
    marked = analytics._json_text(m.c.context, "ab_rest")
    phase = marked.is_not(None) if rest else marked.is_(None)
    out: dict[str, dict[str, Any]] = {}

    def entry(name: object) -> dict[str, Any]:
        return out.setdefault(
            str(name),
            {
                "sent": 0,
                "opened": 0,
                "clicked": 0,
                "conversions": 0,
                "revenue": Decimal(0),
                "squares": Decimal(0),
            },
        )

    sent = sa.select(variant, sa.func.count()).where(
        m.c.campaign_id == campaign_id, m.c.status == "sent", variant.is_not(None), phase
    )
    for name, n in conn.execute(sent.group_by(variant)):
        entry(name)["sent"] = int(n)
    opened = {metrics.OPENED_EMAIL: "opened", metrics.CLICKED_EMAIL: "clicked"}
    query = (
        sa.select(variant, e.c.name, sa.func.count(sa.distinct(m.c.id)))
        .select_from(analytics._with_touches(sorted(opened)))
        .where(m.c.campaign_id == campaign_id, m.c.status == "sent", variant.is_not(None), phase)
        .group_by(variant, e.c.name)
    )
    if exclude_machine_opens:
        machine = sa.func.coalesce(analytics._json_text(e.c.properties, "machine_open"), "")
        query = query.where(sa.or_(e.c.name != metrics.OPENED_EMAIL, machine.not_in(["true", "1"])))
    for name, event, n in conn.execute(query):
        entry(name)[opened[event]] = int(n)
    per_message = (
        sa.select(
            variant.label("variant"),
            sa.func.count().label("n"),
            analytics._money(sa.func.sum(a.c.revenue - a.c.reversed_amount)).label("net"),
        )
        .select_from(a.join(m, m.c.id == a.c.message_id))
        .where(
            m.c.campaign_id == campaign_id, a.c.workspace_id == m.c.workspace_id, variant.is_not(None), phase
        )
        .group_by(m.c.id, variant)
        .subquery()
    )
    for name, n, net in conn.execute(sa.select(per_message.c.variant, per_message.c.n, per_message.c.net)):
        got = entry(name)
        amount = analytics._dec(net)
        got["conversions"] += int(n)
        got["revenue"] += amount
        got["squares"] += amount * amount
    return out


def progress(conn: Connection, *, campaign_id: int) -> list[tuple[str, str | None, int]]:
    """(status, skip reason, count) of the campaign's messages."""
    m = tables.messages
    rows = conn.execute(
        sa.select(m.c.status, m.c.skip_reason, sa.func.count())
        .where(m.c.campaign_id == campaign_id)
        .group_by(m.c.status, m.c.skip_reason)
        .order_by(m.c.status, m.c.skip_reason)
    )
    return [(str(st), reason, int(n)) for st, reason, n in rows]


def waiting(conn: Connection, *, campaign_id: int) -> bool:
    """Whether any of the campaign's messages still waits to be sent (queued, held or claimed)."""
    m = tables.messages
    query = sa.select(m.c.id).where(m.c.campaign_id == campaign_id, m.c.status.in_([QUEUED, HELD, "sending"]))
    return db.any_exists(conn, [query])


_UNNEST = sa.text(
    "INSERT INTO messages (workspace_id, profile_id, channel, template, transactional, campaign_id,"
    " dedupe_key, status, context, send_after, created_at, attempts)"
    " SELECT :ws, u.p, :channel, :template, false, :cid, u.k, :status, CAST(:ctx AS jsonb), u.s, :now, 0"
    " FROM unnest(CAST(:pids AS bigint[]), CAST(:keys AS text[]), CAST(:sends AS timestamptz[])) AS u(p, k, s)"
    " ON CONFLICT (workspace_id, dedupe_key) DO NOTHING"
)


def enqueue(
    conn: Connection,
    *,
    workspace_id: str,
    campaign_id: int,
    channel: str,
    template: str,
    status: str,
    context: dict[str, Any],
    now: datetime,
    sends: Sequence[tuple[int, datetime]],
) -> None:
    """A message row per (profile id, send_after), dedupe key `campaign:{id}:{profile}` (one
    message per campaign and profile, however often a batch is written). The rows of
    messages.enqueue_many; on PostgreSQL one INSERT ... SELECT FROM unnest(arrays) per batch (a
    bound array per column instead of a statement per row: a million rows in seconds, not minutes)."""
    if not sends:
        return
    keys = [f"campaign:{campaign_id}:{pid}" for pid, _ in sends]
    if not db.is_sqlite(conn):
        conn.execute(
            _UNNEST,
            {
                "ws": workspace_id,
                "channel": channel,
                "template": template,
                "cid": campaign_id,
                "status": status,
                "ctx": json.dumps(context),
                "now": now,
                "pids": [pid for pid, _ in sends],
                "keys": keys,
                "sends": [after for _, after in sends],
            },
        )
        return
    messages.enqueue_many(
        conn,
        [
            {
                "workspace_id": workspace_id,
                "profile_id": pid,
                "channel": channel,
                "template": template,
                "transactional": False,
                "flow_id": None,
                "run_id": None,
                "node_id": None,
                "campaign_id": campaign_id,
                "dedupe_key": key,
                "status": status,
                "skip_reason": None,
                "context": context,
                "send_after": after,
                "created_at": now,
            }
            for (pid, after), key in zip(sends, keys, strict=True)
        ],
    )


# --- results: engagement and attributed revenue -------------------------------------------------


def outcomes(conn: Connection, *, campaign_id: int, exclude_machine_opens: bool) -> dict[str, int]:
    """Distinct sent messages of the campaign with an open, click, unsubscribe, bounce or
    complaint (the flow report's outcomes, analytics_reports.OUTCOMES)."""
    m, e = tables.messages, tables.events
    query = (
        sa.select(e.c.name, sa.func.count(sa.distinct(m.c.id)))
        .select_from(analytics._with_touches(sorted(analytics_reports.OUTCOMES)))
        .where(m.c.campaign_id == campaign_id, m.c.status == "sent")
        .group_by(e.c.name)
    )
    if exclude_machine_opens:
        machine = sa.func.coalesce(analytics._json_text(e.c.properties, "machine_open"), "")
        query = query.where(sa.or_(e.c.name != metrics.OPENED_EMAIL, machine.not_in(["true", "1"])))
    out: dict[str, int] = {}
    for name, n in conn.execute(query):
        key = analytics_reports.OUTCOMES[name]
        out[key] = out.get(key, 0) + int(n)
    return out


def attributed(conn: Connection, *, campaign_id: int) -> tuple[int, Decimal]:
    """(conversions credited to the campaign's messages, their net revenue: refunds reversed)."""
    a, m = tables.attributions, tables.messages
    row = conn.execute(
        sa.select(sa.func.count(), analytics._money(sa.func.sum(a.c.revenue - a.c.reversed_amount)))
        .select_from(a.join(m, m.c.id == a.c.message_id))
        .where(m.c.campaign_id == campaign_id, a.c.workspace_id == m.c.workspace_id)
    ).one()
    return int(row[0]), analytics._dec(row[1])
