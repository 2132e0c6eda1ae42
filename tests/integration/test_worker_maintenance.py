from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.workers.embedded import Worker


def test_maintenance_runs_once_per_period_by_the_clock(engine: Engine, clock: SimulatedClock) -> None:
    testing.make_workspace(engine)
    worker = Worker(
        engine=engine,
        clock=clock,
        channel=testing.InMemoryEmailChannel(),
        link_secret=b"k",
        public_url="http://127.0.0.1:8000",
    )
    assert worker.maintain() is True
    assert worker.maintain() is False
    clock.advance(timedelta(hours=23, minutes=59))
    assert worker.maintain() is False
    clock.advance(timedelta(minutes=1))
    assert worker.maintain() is True
    # A whole pass runs the jobs too and does nothing else on an empty store.
    clock.advance(timedelta(days=1))
    assert worker.tick().total() == 0
    assert worker.maintain() is False
