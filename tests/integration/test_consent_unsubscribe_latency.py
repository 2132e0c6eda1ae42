"""The figure "one-click unsubscribe -> the next marketing send is refused within 1 s", held as a
test on SQLite and PostgreSQL (bench/unsubscribe_latency.py measures it with more trials)."""

from __future__ import annotations

from bench import unsubscribe_latency
from sqlalchemy.engine import Engine


def test_unsubscribe_is_honoured_within_a_second(engine: Engine, database_url: str) -> None:
    result = unsubscribe_latency.measure(database_url, trials=5)
    assert len(result.refused_seconds) == 5
    assert max(result.refused_seconds) < 1.0
