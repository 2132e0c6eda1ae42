"""One-click unsubscribe -> the next marketing send is refused, on SQLite and PostgreSQL.
How fast ("within 1 s") is bench/unsubscribe_latency.py's figure, never asserted here."""

from __future__ import annotations

from bench import unsubscribe_latency
from sqlalchemy.engine import Engine


def test_unsubscribe_refuses_the_next_marketing_send(engine: Engine, database_url: str) -> None:
    result = unsubscribe_latency.measure(database_url, trials=5)
    assert len(result.refused_seconds) == 5
    assert all(seconds >= 0 for seconds in result.refused_seconds)
