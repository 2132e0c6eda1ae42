"""A campaign's A/B test: each recipient's variant at launch (a deterministic test share, split
evenly across the variants in turn; the rest held), the per-variant figures and the experiments
verdict, and the winner sent to the held rest: automatically after the test window
(domain.experiments.evaluate; without a significant winner the control, variant 1, with
`winner_reason: not_significant`) or by hand (`pick`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow.analytics import settings as analytics_settings
from shopflow.campaigns import content
from shopflow.domain import campaigns as rules
from shopflow.domain import experiments
from shopflow.store import campaigns as store
from shopflow.store import db

SIGNIFICANT = "significant"
MANUAL = "manual"


def test_of(c: store.Campaign) -> rules.AbTest | None:
    """The stored test (validated when stored)."""
    if c.ab is None:
        return None
    parsed = rules.parse({"key": "x", "template": "x", "audience": {"include": {"lists": ["x"]}}, "ab": c.ab})
    return parsed.ab


def split(
    c: store.Campaign, test: rules.AbTest, profile_ids: list[int]
) -> tuple[dict[tuple[str | None, bool], list[int]], int]:
    """Recipients by (variant key, whether of the rest): (None, True) is the held rest; and how
    many were tested. A recipient is in the test share by its hash (rules.in_test); tested
    recipients take the variants in turn, counted over the whole launch (c.ab_tested), so the
    split is even to one recipient. Once there is a winner, the rest goes straight to it."""
    groups: dict[tuple[str | None, bool], list[int]] = {}
    tested = 0
    for pid in profile_ids:
        if not rules.in_test(test, c.id, pid):
            group: tuple[str | None, bool] = (c.winner, True)
        else:
            group = (test.variants[(c.ab_tested + tested) % len(test.variants)].key, False)
            tested += 1
        groups.setdefault(group, []).append(pid)
    return groups, tested


def figures(
    conn: Connection, c: store.Campaign, test: rules.AbTest
) -> tuple[list[dict[str, Any]], experiments.Verdict]:
    """Per variant (in the definition's order): sent, opens, clicks, conversions, revenue, and
    the experiments verdict on the test's metric (the workspace's experiment settings)."""
    attribution = analytics_settings.load(conn, workspace_id=c.workspace_id)
    found = store.variant_figures(
        conn, campaign_id=c.id, exclude_machine_opens=attribution.exclude_machine_opens, rest=False
    )
    settings = analytics_settings.experiments(conn, workspace_id=c.workspace_id)
    rows: list[dict[str, Any]] = []
    units: list[experiments.Variant] = []
    for v in test.variants:
        got = found.get(v.key, {})
        sent = int(got.get("sent", 0))
        conversions = min(int(got.get("conversions", 0)), sent)
        rows.append(
            {
                "key": v.key,
                "subject": v.subject,
                "template": v.template,
                "sent": sent,
                "opened": int(got.get("opened", 0)),
                "clicked": int(got.get("clicked", 0)),
                "conversions": conversions,
                "revenue": str(got.get("revenue", 0)),
            }
        )
        units.append(
            experiments.Variant(
                name=v.key,
                recipients=sent,
                opens=min(int(got.get("opened", 0)), sent),
                clicks=min(int(got.get("clicked", 0)), sent),
                conversions=conversions,
                revenue=got.get("revenue", 0),
                revenue_squares=got.get("squares", 0),
            )
        )
    return rows, experiments.evaluate(units, metric=test.metric, settings=settings)


def _send_winner(
    conn: Connection, c: store.Campaign, test: rules.AbTest, *, winner: str, reason: str, now: datetime
) -> int:
    definition = content.definition_of(c)
    variant = test.variant(winner)
    store.update(conn, campaign_id=c.id, now=now, winner=winner, winner_reason=reason, winner_at=now)
    return store.release_rest(
        conn,
        campaign_id=c.id,
        template=content.variant_template(definition, variant),
        context=content.message_context(c.id, definition, variant, rest=True),
    )


def decide(engine: Engine, campaign_id: int, *, now: datetime) -> int:
    """After the window of an automatic test: the winner (or the control, not significant) sent
    to the held rest; work done (1 + rows released), 0 when not yet due."""
    with db.transaction(engine) as conn:
        c = store.by_id(conn, campaign_id=campaign_id, lock=True)
        test = test_of(c) if c is not None else None
        if c is None or test is None or c.winner is not None or c.status != rules.SENDING:
            return 0
        if test.winner != "auto" or c.launched_at is None or c.launched_at + test.window_span > now:
            return 0
        _rows, verdict = figures(conn, c, test)
        if verdict.status == experiments.WINNER and verdict.winner is not None:
            winner, reason = verdict.winner, SIGNIFICANT
        else:
            winner, reason = test.variants[0].key, rules.NOT_SIGNIFICANT
        return 1 + _send_winner(conn, c, test, winner=winner, reason=reason, now=now)


def pick(conn: Connection, c: store.Campaign, variant: object, *, now: datetime) -> int:
    """A winner picked by hand (inside the caller's transaction, the campaign locked): rows
    released. ValueError naming the field when refused."""
    test = test_of(c)
    if test is None:
        raise ValueError("ab: this campaign has no A/B test")
    if c.winner is not None:
        raise ValueError(f"winner: already {c.winner!r} ({c.winner_reason})")
    if c.status != rules.SENDING:
        raise ValueError(f"status: a {c.status} campaign cannot take a winner (only sending)")
    if not isinstance(variant, str) or test.variant(variant) is None:
        keys = ", ".join(v.key for v in test.variants)
        raise ValueError(f"variant: expected one of {keys}, got {rules.show(variant)}")
    return _send_winner(conn, c, test, winner=variant, reason=MANUAL, now=now)
