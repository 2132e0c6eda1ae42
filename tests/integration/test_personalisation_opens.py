"""Machine opens (privacy proxies, prefetchers) are flagged and give neither engagement nor credit."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from shopflow.domain.machine_opens import is_machine_open
from shopflow.store import analytics, db, guard_facts
from tests.integration.test_tracking_endpoints import named, send, setup

GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
DESKTOP = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"


def test_heuristics() -> None:
    late = timedelta(minutes=3)
    assert is_machine_open(method="GET", user_agent=GMAIL, since_sent=late)
    assert is_machine_open(method="GET", user_agent="YahooMailProxy; https://help.yahoo.com", since_sent=late)
    assert is_machine_open(method="HEAD", user_agent=DESKTOP, since_sent=late)
    assert is_machine_open(method="GET", user_agent=DESKTOP, since_sent=timedelta(seconds=1))
    assert is_machine_open(method="GET", user_agent="", since_sent=late)
    assert not is_machine_open(method="GET", user_agent=DESKTOP, since_sent=late)
    assert not is_machine_open(method="GET", user_agent=DESKTOP, since_sent=None)


def test_proxy_head_and_instant_opens_are_flagged(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    _mid, html, _ = send(engine, clock, base=base, ws_id=ws_id, pid=pid, key="m1")
    [pixel] = re.findall(r'<img src="([^"]+/t/o/[^"]+\.gif)"', html)
    # At delivery, from an ordinary browser UA: a prefetch.
    assert httpx.get(pixel, headers={"User-Agent": DESKTOP}).status_code == 200
    clock.advance(timedelta(minutes=10))
    assert httpx.head(pixel, headers={"User-Agent": DESKTOP}).status_code == 200
    assert httpx.get(pixel, headers={"User-Agent": GMAIL}).status_code == 200
    opens = named(engine, ws_id, pid, "Opened Email")
    assert [o.properties.get("machine_open") for o in opens] == [True]  # same hour: deduped
    clock.advance(timedelta(minutes=2))
    # The person's own open is kept beside the machine's.
    assert httpx.get(pixel, headers={"User-Agent": DESKTOP}).status_code == 200
    opens = named(engine, ws_id, pid, "Opened Email")
    assert sorted(str(o.properties.get("machine_open")) for o in opens) == ["None", "True"]

    with db.reading(engine) as conn:
        facts = guard_facts.load(conn, workspace_id=ws_id, profile_ids=[pid], now=clock.now())
        touches = analytics.touches_for(
            conn,
            workspace_id=ws_id,
            profile_ids=[pid],
            since=clock.now() - timedelta(days=1),
            until=clock.now(),
        )
    assert facts.engagement[pid].opened_month == 1
    human = [o for o in opens if "machine_open" not in o.properties]
    assert [t.event_id for t in touches] == [human[0].id]


def test_only_machine_opens_give_no_engagement_or_touch(
    engine: Engine, clock: SimulatedClock, server_factory: Any
) -> None:
    base, ws_id, pid = setup(engine, clock, server_factory)
    _mid, html, _ = send(engine, clock, base=base, ws_id=ws_id, pid=pid, key="m1")
    [pixel] = re.findall(r'<img src="([^"]+/t/o/[^"]+\.gif)"', html)
    clock.advance(timedelta(minutes=10))
    assert httpx.get(pixel, headers={"User-Agent": GMAIL}).status_code == 200
    assert len(named(engine, ws_id, pid, "Opened Email")) == 1
    with db.reading(engine) as conn:
        facts = guard_facts.load(conn, workspace_id=ws_id, profile_ids=[pid], now=clock.now())
        touches = analytics.touches_for(
            conn,
            workspace_id=ws_id,
            profile_ids=[pid],
            since=clock.now() - timedelta(days=1),
            until=clock.now(),
        )
    assert pid not in facts.engagement or facts.engagement[pid].opened_month == 0
    assert touches == []
