"""The two evaluators give one answer: compiled SQL membership == in-memory membership, for random
rules over random profiles and events, on SQLite and PostgreSQL (issue 9)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from shopflow.domain.segments import dimensions, evaluate
from shopflow.segments import audience, snapshot
from shopflow.store import db, segment_reads
from tests.integration import segments_support as support

pytestmark = pytest.mark.slow(
    reason="hypothesis: 35 random rules over a random population, each counted in SQL and in memory"
)


def _memberships(engine: Engine, world: support.World, rule_data: list[dict[str, Any]]) -> None:
    with db.reading(engine) as conn:
        snaps = snapshot.load(conn, workspace_id=world.workspace_id, profile_ids=world.profile_ids)
        assert sorted(snaps) == sorted(world.profile_ids)
        for data in rule_data:
            rule = support.parse_or_none(data)
            if rule is None:
                continue
            in_sql = audience.member_ids(conn, rule, workspace_id=world.workspace_id, now=support.NOW)
            in_memory = sorted(p for p, s in snaps.items() if evaluate.evaluate(rule, s, support.NOW))
            assert in_sql == in_memory, data
            assert audience.count(conn, rule, workspace_id=world.workspace_id, now=support.NOW) == len(in_sql)
            if in_sql:
                page = audience.member_ids(
                    conn, rule, workspace_id=world.workspace_id, now=support.NOW, after_id=in_sql[0], limit=2
                )
                assert page == in_sql[1:3]


@settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
)
@given(world=support.WORLDS, rule_data=st.lists(support.RULES, min_size=4, max_size=8))
def test_compiled_sql_and_in_memory_agree(engine: Engine, world: support.World, rule_data: list[Any]) -> None:
    stored = support.ingest(engine, world)
    _memberships(engine, stored, rule_data)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(world=support.WORLDS)
def test_stored_rollups_are_the_sum_of_the_events(engine: Engine, world: support.World) -> None:
    stored = support.ingest(engine, world)
    events = [
        {
            "profile_id": pid,
            "name": e["name"],
            "time": support.NOW.replace(hour=e["hour"]) - timedelta(days=e["days_ago"]),
            "properties": e["properties"],
            "value": e["value"],
        }
        for person, pid in zip(stored.people, stored.profile_ids, strict=True)
        for e in person.events
    ]
    expected = dimensions.aggregate(events)
    with db.reading(engine) as conn:
        metric_rows = segment_reads.metric_rollups(
            conn, workspace_id=stored.workspace_id, profile_ids=stored.profile_ids
        )
        dimension_rows = segment_reads.dimension_rollups(
            conn, workspace_id=stored.workspace_id, profile_ids=stored.profile_ids
        )
    assert {(p, m, d): dimensions.Totals(c, n, s) for p, m, d, c, n, s in metric_rows} == expected.metrics
    assert {
        (p, m, dim, v, d): dimensions.Totals(c, n, s) for p, m, dim, v, d, c, n, s in dimension_rows
    } == expected.dimensions
