"""Load ProfileSnapshots for a batch of profiles, so the in-memory evaluator runs on real ones."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Connection

from shopflow.domain.segments import rules
from shopflow.domain.segments.dependencies import Dependencies
from shopflow.domain.segments.dimensions import Totals
from shopflow.domain.segments.profile import Engagement, ProfileSnapshot, SentMessage
from shopflow.store import segment_reads

# Sends kept per channel when no rule says how many it needs (the largest `of_last` allowed).
ALL_MESSAGES = rules.MAX_ENGAGEMENT_MESSAGES


def load(
    conn: Connection,
    *,
    workspace_id: str,
    profile_ids: Iterable[int],
    needs: Dependencies | None = None,
) -> dict[int, ProfileSnapshot]:
    """Snapshots of the live (not merged) profiles among `profile_ids`, batched.

    With `needs` (domain.segments.dependencies of the rules to evaluate) only what they read is
    loaded: the rollups of their metrics, the sends when a rule counts them.
    """
    ids = sorted(set(profile_ids))
    rows = segment_reads.profiles(conn, workspace_id=workspace_id, profile_ids=ids)
    live = [int(r["id"]) for r in rows]
    metrics = None if needs is None else needs.metrics
    per_metric: dict[int, dict[str, dict[int, Totals]]] = defaultdict(lambda: defaultdict(dict))
    per_dimension: dict[int, dict[tuple[str, str, str], dict[int, Totals]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    if metrics is None or metrics:
        for pid, name, day, count, valued, total in segment_reads.metric_rollups(
            conn, workspace_id=workspace_id, profile_ids=live, metrics=metrics
        ):
            per_metric[pid][name][day] = Totals(count, valued, total)
        for pid, name, dim, value, day, count, valued, total in segment_reads.dimension_rollups(
            conn, workspace_id=workspace_id, profile_ids=live, metrics=metrics
        ):
            per_dimension[pid][(name, dim, value)][day] = Totals(count, valued, total)
    lists: dict[int, set[str]] = defaultdict(set)
    for pid, key in segment_reads.list_keys(conn, workspace_id=workspace_id, profile_ids=live):
        lists[pid].add(key)
    members: dict[int, set[str]] = defaultdict(set)
    for pid, key in segment_reads.segment_keys(conn, workspace_id=workspace_id, profile_ids=live):
        members[pid].add(key)
    consent: dict[int, dict[str, str]] = defaultdict(dict)
    for pid, channel, status in segment_reads.consents(conn, workspace_id=workspace_id, profile_ids=live):
        consent[pid][channel] = status
    suppressed: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for pid, channel, reason in segment_reads.suppressions(conn, workspace_id=workspace_id, profile_ids=live):
        suppressed[pid].add((channel, reason))
    sends = _sends(conn, workspace_id=workspace_id, profile_ids=live, needs=needs)
    engaged: dict[int, dict[int, Engagement]] = defaultdict(dict)
    by_message: dict[int, Engagement] = {}
    message_ids = [m for sent in sends.values() for m, _, _ in sent]
    for pid, message_id, channel, opened, clicked in segment_reads.engagement(
        conn, workspace_id=workspace_id, profile_ids=live, message_ids=message_ids
    ):
        # A row counts for "engaged within" on the profile it is recorded for, and for "of the
        # last 10" on the message's profile.
        by_message[message_id] = engaged[pid][message_id] = Engagement(channel, opened, clicked)
    out = {}
    for row in rows:
        pid = int(row["id"])
        out[pid] = ProfileSnapshot(
            workspace_id=workspace_id,
            profile_id=pid,
            columns={c: row[c] for c in segment_reads.COLUMNS},
            properties=dict(row["properties"] or {}),
            metrics={k: dict(v) for k, v in per_metric.get(pid, {}).items()},
            dimensions={k: dict(v) for k, v in per_dimension.get(pid, {}).items()},
            lists=frozenset(lists.get(pid, ())),
            segments=frozenset(members.get(pid, ())),
            consent=dict(consent.get(pid, {})),
            suppressions=frozenset(suppressed.get(pid, ())),
            messages=tuple(
                SentMessage(m, channel, at, by_message.get(m)) for m, channel, at in sends.get(pid, [])
            ),
            engagement=dict(engaged.get(pid, {})),
        )
    return out


def _sends(
    conn: Connection, *, workspace_id: str, profile_ids: list[int], needs: Dependencies | None
) -> dict[int, list[tuple[int, str, Any]]]:
    per_channel = ALL_MESSAGES if needs is None else needs.largest_of_last
    out: dict[int, list[tuple[int, str, Any]]] = defaultdict(list)
    if per_channel == 0 or not profile_ids:
        return out
    for pid, message_id, channel, sent_at in segment_reads.sent_messages(
        conn, workspace_id=workspace_id, profile_ids=profile_ids, per_channel=per_channel
    ):
        out[pid].append((message_id, channel, sent_at))
    return out
