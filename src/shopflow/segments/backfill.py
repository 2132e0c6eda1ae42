"""Background backfill: a new or edited segment (backfill_status 'pending') gets its membership
computed in chunks of profiles by id, with its progress on the segment's row.

Each chunk is one transaction: the rule compiled to SQL for profiles in (after_id, last id of the
chunk], compared with the stored membership of that range, the differences written. Entry (and
exit) events fire for the backfill only if the owner asked (`fire_on_backfill`); the real-time stage
keeps a profile current once the backfill has passed it (segment_jobs.LiveSegment.settled).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from shopflow.segments import compile, membership
from shopflow.store import db, event_writes, rollups, segment_jobs, segment_reads
from shopflow.store import segments as segment_store
from shopflow.store.segment_jobs import LiveSegment

CHUNK = 5000


def run_pending(engine: Engine, *, now: datetime, chunk: int = CHUNK, max_chunks: int = 20) -> int:
    """Advance every pending or running backfill by up to `max_chunks` chunks in all; returns the
    number of profiles evaluated."""
    with db.reading(engine) as conn:
        pending = segment_jobs.pending_backfills(conn)
    done = 0
    chunks = 0
    while pending and chunks < max_chunks:
        still = []
        for seg in pending:
            with db.transaction(engine) as conn:
                n = step(conn, seg=seg, now=now, chunk=chunk)
            chunks += 1
            if n is not None:
                done += n
                still.append(seg)
            if chunks >= max_chunks:
                break
        pending = still
    return done


def step(conn: Connection, *, seg: LiveSegment, now: datetime, chunk: int = CHUNK) -> int | None:
    """One chunk of a segment's backfill; the profiles evaluated, or None when it is finished (or
    another worker holds it, or its rule changed meanwhile)."""
    if not segment_jobs.lock_segment(conn, segment_id=seg.id, version=seg.version):
        return None
    state = segment_jobs.backfill_state(conn, segment_id=seg.id)
    if state["backfill_status"] not in ("pending", "running"):
        return None
    ws = seg.workspace_id
    started = state["backfill_status"] == "pending"
    if started:
        _new_dimensions(conn, seg=seg, now=now)
    after = 0 if started else int(state["backfill_after_id"] or 0)
    done = 0 if started else int(state["backfill_done"] or 0)
    total = segment_jobs.count_live_profiles(conn, workspace_id=ws) if started else state["backfill_total"]
    found = segment_jobs.live_profile_range(conn, workspace_id=ws, after_id=after, limit=chunk)
    if found is None:
        # Memberships of profiles past the last live one (merged away since) end too.
        _apply(conn, seg=seg, after=after, until=None, now=now)
        segment_jobs.backfill_progress(
            conn, segment_id=seg.id, status="done", after_id=after, done=done, total=total, now=now,
            started=started, finished=True,
        )  # fmt: skip
        return None
    n, last = found
    _apply(conn, seg=seg, after=after, until=last, now=now)
    segment_jobs.backfill_progress(
        conn, segment_id=seg.id, status="running", after_id=last, done=done + n, total=total, now=now,
        started=started,
    )  # fmt: skip
    return n


def _new_dimensions(conn: Connection, *, seg: LiveSegment, now: datetime) -> None:
    """Roll up from the stored events the (metric, dimension) pairs this rule filters on that no
    finished segment tracked before (ingest only kept their cells from the segment's creation)."""
    (compiled,) = membership.compile_segments([seg])
    wanted = segment_store.rule_dimensions(compiled.rule)
    if not wanted:
        return
    kept: set[tuple[str, str]] = set()
    for other in segment_jobs.tracking_segments(conn, workspace_id=seg.workspace_id, except_id=seg.id):
        (c,) = membership.compile_segments([other])
        kept |= segment_store.rule_dimensions(c.rule)
    missing = sorted(wanted - kept)
    if missing:
        event_writes.lock_workspace(conn, workspace_id=seg.workspace_id)
    for metric, dimension in missing:
        rollups.rebuild_dimension(
            conn, workspace_id=seg.workspace_id, metric=metric, dimension=dimension, now=now
        )


def _apply(conn: Connection, *, seg: LiveSegment, after: int, until: int | None, now: datetime) -> None:
    (compiled,) = membership.compile_segments([seg])
    ws = seg.workspace_id
    segment_reads.for_whole_workspace(conn)
    query = compile.members(compiled.rule, workspace_id=ws, now=now, dialect=conn.dialect.name)
    pid = query.selected_columns[0]
    query = query.where(pid > after)
    if until is not None:
        query = query.where(pid <= until)
    members = {int(i) for i in conn.execute(query.order_by(pid)).scalars()}
    stored = set(
        segment_jobs.stored_members(conn, workspace_id=ws, segment_id=seg.id, after_id=after, until_id=until)
    )
    came, left = segment_store.record_membership(
        conn,
        workspace_id=ws,
        segment_id=seg.id,
        entered=sorted(members - stored),
        exited=sorted(stored - members),
        now=now,
    )
    if not came and not left:
        return
    changes = [membership.Change(seg, came, left)]
    # Segments including this one follow its new members (those the backfill has reached).
    includers = [
        c
        for c in membership.compile_segments(segment_jobs.live_segments(conn, workspace_ids=[ws]))
        if c.segment.id != seg.id
    ]
    direct = {c.segment.id: set(came) | set(left) for c in includers if seg.key in _closure(c, includers)}
    if direct:
        changes += membership.evaluate(conn, workspace_id=ws, segments=includers, direct=direct, now=now)
    if seg.fire_on_backfill:
        cause = f"backfill{seg.id}.{seg.version}"
        causes = {p: cause for c in changes for p in (*c.entered, *c.exited)}
        membership.emit(conn, workspace_id=ws, changes=changes, causes=causes, now=now)


def _closure(c: membership.Compiled, segments: list[membership.Compiled]) -> set[str]:
    """Every segment key `c` includes, directly or through others."""
    by_key = {s.segment.key: s for s in segments}
    seen: set[str] = set()
    todo = list(c.segment.includes)
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        if key in by_key:
            todo.extend(by_key[key].segment.includes)
    return seen
