"""Campaign use cases: create (checked: audience, schedule, content), list, show, schedule,
send, pause, resume, cancel, progress, the audience preview and the offers calendar.

Each opens its own transactions; errors: rules.Invalid (bad input, every problem naming its
field; nothing is queued), CampaignNotFound (no such key in this workspace, another workspace's
included), Conflict (the status forbids it), workspaces.NoWorkspace.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow import workspaces
from shopflow.campaigns import ab, audience, content, launch
from shopflow.domain import campaigns as rules
from shopflow.domain import guards
from shopflow.domain.problems import Problem
from shopflow.store import campaigns as store
from shopflow.store import db

Campaign = store.Campaign
MAX_CALENDAR_DAYS = 400


class CampaignNotFound(LookupError):
    def __init__(self, key: object) -> None:
        super().__init__(f"key: no campaign {rules.show(key)} in this workspace")


class Conflict(ValueError):
    """The campaign's status (or its key, taken) forbids the change."""


def _find(conn: Connection, *, workspace_id: str, key: object, lock: bool = False) -> store.Campaign:
    if not isinstance(key, str) or not rules.KEY.fullmatch(key):
        raise CampaignNotFound(key)
    found = store.get(conn, workspace_id=workspace_id, key=key, lock=lock)
    if found is None:
        raise CampaignNotFound(key)
    return found


def _transition(c: store.Campaign, action: str) -> str:
    try:
        return rules.transition(c.status, action, launched=c.launched_at is not None)
    except rules.TransitionError as exc:
        raise Conflict(str(exc)) from None


def _values(workspace_id: str, d: rules.Definition) -> dict[str, Any]:
    sched = d.schedule
    send_at = sched.at if sched.kind == rules.AT else None
    if sched.kind == rules.LOCAL_TIME and sched.day is not None:
        send_at = datetime.combine(sched.day, datetime.min.time(), UTC)
    return {
        "workspace_id": workspace_id,
        "key": d.key,
        "name": d.name,
        "channel": d.channel,
        "audience": d.audience.dump(),
        "template": d.template,
        "subject": d.subject,
        "schedule_kind": sched.kind,
        "send_at": send_at,
        "local_time": sched.local.strftime("%H:%M") if sched.kind == rules.LOCAL_TIME else None,
        "ends_at": d.ends_at,
        "per_hour": d.per_hour,
        "freeze_audience": d.freeze_audience,
        # SQL NULL when unset (a JSON null would not be IS NULL)
        **({"utm": dict(d.utm)} if d.utm else {}),
        **({"ab": d.ab.dump()} if d.ab is not None else {}),
    }


def check(
    engine: Engine,
    *,
    workspace_id: str,
    definition: rules.Definition,
    now: datetime,
    libraries: content.Libraries | None = None,
) -> None:
    """Everything that must hold before a campaign may be stored, scheduled or sent: a schedule
    and end to come, an audience of at least one profile, content that renders for it."""
    problems = rules.timing_problems(definition, now=now)
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        first = audience.first_member(conn, workspace_id=workspace_id, audience=definition.audience, now=now)
    if first is None:
        problems.append(Problem("audience", "resolves to no profiles (after exclusions): nothing to send"))
    if problems:
        raise rules.Invalid(problems)
    assert first is not None
    content.check(
        engine,
        workspace_id=workspace_id,
        definition=definition,
        profile_id=first,
        now=now,
        libraries=libraries,
    )


def create(
    engine: Engine,
    *,
    workspace_id: str,
    data: object,
    now: datetime,
    libraries: content.Libraries | None = None,
) -> store.Campaign:
    """Store a draft campaign from its definition (JSON data), checked as `check` says."""
    definition = rules.parse(data)
    check(engine, workspace_id=workspace_id, definition=definition, now=now, libraries=libraries)
    with db.transaction(engine) as conn:
        workspaces.require(conn, workspace_id)
        new_id = store.create(conn, values=_values(workspace_id, definition), now=now)
        if new_id is None:
            raise Conflict(f"key: the workspace already has a campaign {definition.key!r}")
        created = store.by_id(conn, campaign_id=new_id)
    assert created is not None
    return created


def get(engine: Engine, *, workspace_id: str, key: object) -> store.Campaign:
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        return _find(conn, workspace_id=workspace_id, key=key)


def list_campaigns(engine: Engine, *, workspace_id: str, status: str | None = None) -> list[store.Campaign]:
    if status is not None and status not in rules.STATUSES:
        raise rules.Invalid(
            [Problem("status", f"expected one of {', '.join(rules.STATUSES)}, got {rules.show(status)}")]
        )
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        return store.all_campaigns(
            conn, workspace_id=workspace_id, statuses=None if status is None else [status]
        )


def definition(c: store.Campaign) -> dict[str, Any]:
    return rules.dump(launch.definition_of(c))


def schedule(
    engine: Engine,
    *,
    workspace_id: str,
    key: object,
    now: datetime,
    libraries: content.Libraries | None = None,
    batch: int = launch.BATCH,
) -> store.Campaign:
    """draft -> scheduled: the worker launches it at its time. A frozen audience is resolved now
    (its rows held until the launch); a frozen schedule that stopped resumes from its cursor."""
    c = get(engine, workspace_id=workspace_id, key=key)
    _transition(c, "schedule")
    d = launch.definition_of(c)
    check(engine, workspace_id=workspace_id, definition=d, now=now, libraries=libraries)
    with db.transaction(engine) as conn:
        c = _find(conn, workspace_id=workspace_id, key=key, lock=True)
        _transition(c, "schedule")
        store.update(conn, campaign_id=c.id, now=now, launch_at=rules.launch_at(d.schedule, now=now))
    if c.freeze_audience:
        launch.continue_launch(engine, c.id, now=now, status=store.HELD, expect=rules.DRAFT, batch=batch)
    with db.transaction(engine) as conn:
        c = _find(conn, workspace_id=workspace_id, key=key, lock=True)
        store.update(conn, campaign_id=c.id, now=now, status=_transition(c, "schedule"))
        done = store.by_id(conn, campaign_id=c.id)
    assert done is not None
    return done


def send(
    engine: Engine,
    *,
    workspace_id: str,
    key: object,
    now: datetime,
    max_batches: int | None = None,
    batch: int = launch.BATCH,
    on_batch: launch.OnBatch | None = None,
    libraries: content.Libraries | None = None,
) -> store.Campaign:
    """Launch now (a draft is checked and scheduled first) and queue its audience in batches;
    `max_batches` stops early and leaves the rest to the worker's job (the API does)."""
    c = get(engine, workspace_id=workspace_id, key=key)
    if c.status == rules.DRAFT:
        d = launch.definition_of(c)
        check(engine, workspace_id=workspace_id, definition=d, now=now, libraries=libraries)
        with db.transaction(engine) as conn:
            c = _find(conn, workspace_id=workspace_id, key=key, lock=True)
            _transition(c, "schedule")
            store.update(conn, campaign_id=c.id, now=now, status=rules.SCHEDULED, launch_at=now)
    with db.transaction(engine) as conn:
        c = _find(conn, workspace_id=workspace_id, key=key, lock=True)
        if c.status != rules.SENDING:
            _transition(c, "launch")
            if c.launch_at is None or c.launch_at > now:
                store.update(conn, campaign_id=c.id, now=now, launch_at=now)
                c = _find(conn, workspace_id=workspace_id, key=key)
            launch.start(conn, c, now=now)
    launch.continue_launch(engine, c.id, now=now, max_batches=max_batches, batch=batch, on_batch=on_batch)
    return get(engine, workspace_id=workspace_id, key=key)


def pause(engine: Engine, *, workspace_id: str, key: object, now: datetime) -> store.Campaign:
    """scheduled|sending -> paused: its queued messages are held (delivery never claims them)."""
    with db.transaction(engine) as conn:
        c = _find(conn, workspace_id=workspace_id, key=key, lock=True)
        status = _transition(c, "pause")
        store.move_messages(conn, campaign_id=c.id, from_statuses=[store.QUEUED], to=store.HELD)
        store.update(conn, campaign_id=c.id, now=now, status=status)
        return _find(conn, workspace_id=workspace_id, key=key)


def resume(engine: Engine, *, workspace_id: str, key: object, now: datetime) -> store.Campaign:
    """paused -> sending (its held messages queued again), or scheduled if it had not started."""
    with db.transaction(engine) as conn:
        c = _find(conn, workspace_id=workspace_id, key=key, lock=True)
        status = _transition(c, "resume")
        if status == rules.SENDING:
            store.move_messages(
                conn,
                campaign_id=c.id,
                from_statuses=[store.HELD],
                to=store.QUEUED,
                tested_only=c.ab is not None and c.winner is None,  # the A/B rest waits for the winner
            )
        store.update(conn, campaign_id=c.id, now=now, status=status)
        return _find(conn, workspace_id=workspace_id, key=key)


def pick_winner(
    engine: Engine, *, workspace_id: str, key: object, body: object, now: datetime
) -> store.Campaign:
    """An A/B test's winner picked by hand ({"variant": KEY}): sent to the held rest. The
    campaign is found first (another workspace's is not found, whatever the body); rules.Invalid
    naming the field for a malformed body; Conflict when the campaign has no test, a winner
    already, is not sending, or has no such variant."""
    with db.transaction(engine) as conn:
        c = _find(conn, workspace_id=workspace_id, key=key, lock=True)
        if not isinstance(body, dict):
            raise rules.Invalid([Problem("", f"expected a JSON object with variant, got {rules.show(body)}")])
        problems = [
            Problem(str(k)[:60], "unknown field (expected variant)")
            for k in sorted(set(body) - {"variant"}, key=str)
        ]
        if not isinstance(body.get("variant"), str):
            problems.append(
                Problem("variant", f"expected a variant key, got {rules.show(body.get('variant'))}")
            )
        if problems:
            raise rules.Invalid(problems)
        try:
            ab.pick(conn, c, body["variant"], now=now)
        except ValueError as exc:
            raise Conflict(str(exc)) from None
        return _find(conn, workspace_id=workspace_id, key=key)


def cancel(engine: Engine, *, workspace_id: str, key: object, now: datetime) -> store.Campaign:
    """-> cancelled: every unsent message skipped (campaign_cancelled); what was sent stays sent."""
    with db.transaction(engine) as conn:
        c = _find(conn, workspace_id=workspace_id, key=key, lock=True)
        status = _transition(c, "cancel")
        store.move_messages(
            conn,
            campaign_id=c.id,
            from_statuses=[store.QUEUED, store.HELD],
            to=store.SKIPPED,
            reason=rules.CANCELLED_REASON,
        )
        store.update(conn, campaign_id=c.id, now=now, status=status, launch_done=True, finished_at=now)
        return _find(conn, workspace_id=workspace_id, key=key)


@dataclass(frozen=True)
class Progress:
    campaign: store.Campaign
    queued: int
    held: int
    sending: int
    sent: int
    failed: int
    skipped: dict[str, int]

    @property
    def total(self) -> int:
        return self.queued + self.held + self.sending + self.sent + self.failed + sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipients": self.total,
            "queued": self.queued,
            "held": self.held,
            "sending": self.sending,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": dict(sorted(self.skipped.items())),
        }


def progress(engine: Engine, *, workspace_id: str, key: object) -> Progress:
    """What became of the campaign's messages, from their rows."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        c = _find(conn, workspace_id=workspace_id, key=key)
        rows = store.progress(conn, campaign_id=c.id)
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for status, reason, n in rows:
        if status == store.SKIPPED:
            skipped[reason or "unknown"] += n
        else:
            counts[status] += n
    return Progress(
        c,
        counts["queued"],
        counts["held"],
        counts["sending"],
        counts["sent"],
        counts["failed"],
        dict(skipped),
    )


@dataclass
class AudiencePreview:
    """Who the campaign would reach now, and why the others would not, before anything is sent."""

    recipients: int = 0  # after the audience's own exclusions, each profile once
    excluded: Counter[str] = field(default_factory=Counter)  # duplicate, excluded_list:<key>, ...
    will_skip: Counter[str] = field(default_factory=Counter)  # what the send-time guards will refuse
    sample: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipients": self.recipients,
            "will_send": self.recipients - sum(self.will_skip.values()),
            "excluded": dict(sorted(self.excluded.items())),
            "will_skip": dict(sorted(self.will_skip.items())),
            "sample": self.sample,
        }


def _guard_reason(channel: str, f: store.Facts) -> str | None:
    """The reason the send-time guards (domain/guards.py) will give, in their words."""
    if f.merged:
        return None  # counted under the profile it was merged into
    if f.suppressed:
        return guards.SUPPRESSED
    if (channel == "email" and not f.email) or (channel == "sms" and not f.phone):
        return guards.NO_ADDRESS
    if f.consent == guards.UNSUBSCRIBED:
        return guards.UNSUBSCRIBED
    if f.consent != guards.SUBSCRIBED:
        return guards.NO_CONSENT
    return None


def preview(
    engine: Engine,
    *,
    workspace_id: str,
    key: object,
    now: datetime,
    sample: int = 10,
    page: int = audience.PAGE,
) -> AudiencePreview:
    """Resolve the audience (streamed, in pages) and count every exclusion with its reason."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        c = _find(conn, workspace_id=workspace_id, key=key)
        d = launch.definition_of(c)
        resolver = audience.Resolver(conn, workspace_id=workspace_id, audience=d.audience, now=now, page=page)
        out = AudiencePreview()
        while True:
            taken = resolver.take(page)
            out.excluded.update(taken.excluded)
            out.recipients += len(taken.profile_ids)
            if len(out.sample) < sample:
                out.sample.extend(taken.profile_ids[: sample - len(out.sample)])
            facts = store.facts(
                conn, workspace_id=workspace_id, profile_ids=taken.profile_ids, channel=c.channel
            )
            for pid in taken.profile_ids:
                f = facts.get(pid)
                reason = "erased" if f is None else _guard_reason(c.channel, f)
                if reason is not None:
                    out.will_skip[reason] += 1
            if taken.exhausted:
                break
    return out


def calendar(engine: Engine, *, workspace_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Campaigns scheduled, sending or sent per day (UTC) from `start` to `end` (exclusive)."""
    if end <= start:
        raise rules.Invalid(
            [Problem("to", f"expected a time after from ({start.isoformat()}), got {end.isoformat()}")]
        )
    if end - start > timedelta(days=MAX_CALENDAR_DAYS):
        raise rules.Invalid([Problem("to", f"expected at most {MAX_CALENDAR_DAYS} days after from")])
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        found = store.all_campaigns(
            conn,
            workspace_id=workspace_id,
            launch_from=start,
            launch_to=end,
            statuses=[rules.SCHEDULED, rules.SENDING, rules.PAUSED, rules.SENT],
        )
    days: dict[str, list[dict[str, Any]]] = {}
    for c in found:
        assert c.launch_at is not None
        day = c.send_at.date() if c.schedule_kind == rules.LOCAL_TIME and c.send_at else c.launch_at.date()
        days.setdefault(day.isoformat(), []).append(
            {
                "key": c.key,
                "name": c.name,
                "channel": c.channel,
                "status": c.status,
                "launch_at": c.launch_at.isoformat(),
                "ends_at": c.ends_at.isoformat() if c.ends_at else None,
            }
        )
    return [{"date": day, "campaigns": days[day]} for day in sorted(days)]


def summary(c: store.Campaign) -> dict[str, Any]:
    """A campaign as the CLI's --json and the API show it."""
    extra: dict[str, Any] = {"utm": c.utm} if c.utm else {}
    if c.ab is not None:
        extra.update(ab=c.ab, winner=c.winner, winner_reason=c.winner_reason)
        extra["winner_at"] = c.winner_at.isoformat() if c.winner_at else None
    return {
        "key": c.key,
        "name": c.name,
        "channel": c.channel,
        "status": c.status,
        "template": c.template,
        "subject": c.subject,
        "audience": c.audience,
        "schedule": rules.dump(launch.definition_of(c))["schedule"],
        "launch_at": c.launch_at.isoformat() if c.launch_at else None,
        "ends_at": c.ends_at.isoformat() if c.ends_at else None,
        "per_hour": c.per_hour,
        "freeze_audience": c.freeze_audience,
        "recipients_queued": c.recipients,
        "launch_done": c.launch_done,
        "launched_at": c.launched_at.isoformat() if c.launched_at else None,
        "finished_at": c.finished_at.isoformat() if c.finished_at else None,
        "created_at": c.created_at.isoformat(),
        **extra,
    }
