"""A/B tests of a flow's random split, built through the product (flow saved, shoppers tracked,
runs stepped by the scheduler, email delivered, opens, clicks and orders ingested and credited)
and read over real HTTP and `shopflow report experiments`, on both databases.

The shop: 60 shoppers join; the 50/50 split sends branch 1 to email-a and branch 2 to email-b.
In branch 1 the first 10 recipients (by profile id) open, the first 4 click and the first 5 order
$20.00; in branch 2 the first 20 open, the first 10 click and the first 12 order $30.00. Which
runs take which branch is the step's hash of the run id, so the expected figures are computed from
the branch sizes the run log records, with the formulas written out here (not the module's).
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from scipy import stats
from scipy.special import betaln
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.domain.flows import load_flow
from shopflow.flows import manage, scheduler
from shopflow.ingest import pipeline
from shopflow.messaging.delivery import due
from shopflow.store import db, tables
from shopflow.workers import events as event_worker

SHOPPERS = 60
FLOW = {
    "id": "ab-test",
    "name": "A/B welcome",
    "trigger": {"type": "event", "event": "Joined"},
    "holdout_percent": 0,
    "entry": "split",
    "nodes": [
        {
            "id": "split",
            "type": "random",
            "branches": [{"percent": 50, "next": "email-a"}, {"percent": 50, "next": "email-b"}],
        },
        {"id": "email-a", "type": "send", "template": "welcome-1", "transactional": True, "next": "done"},
        {"id": "email-b", "type": "send", "template": "welcome-2", "transactional": True, "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}
PLAN = {"email-a": (10, 4, 5, Decimal("20.00")), "email-b": (20, 10, 12, Decimal("30.00"))}


def _accept(engine: Engine, ws: str, clock: SimulatedClock, events: list[CanonicalEvent]) -> None:
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=events, now=clock.now())
    while event_worker.process_pending(engine, clock=clock):
        pass


def _event(n: int, name: str, clock: SimulatedClock, tag: str, **extra: Any) -> CanonicalEvent:
    return CanonicalEvent(
        message_id=f"{tag}-{n}",
        source="test",
        identity=Identity(email=f"p{n}@example.com"),
        time=clock.now(),
        name=name,
        **extra,
    )


@pytest.fixture
def shop(engine: Engine, clock: SimulatedClock) -> dict[str, Any]:
    return build_shop(engine, clock)


def join(engine: Engine, clock: SimulatedClock, ws: str, shoppers: range) -> None:
    """New shoppers join; their runs are created and stepped (the split assigns them)."""
    _accept(engine, ws, clock, [_event(n, "Joined", clock, "join") for n in shoppers])
    scheduler.run_all_due(engine, clock=clock)


def build_shop(engine: Engine, clock: SimulatedClock) -> dict[str, Any]:
    """The shop of this module's docstring; its workspace, key, flow, branch sizes and revenue per run."""
    created = testing.make_workspace(engine)
    ws = created.workspace.id
    flow_id = manage.save_definition(
        engine, workspace_id=ws, definition=load_flow(FLOW), status="live", now=clock.now()
    ).flow.id
    join(engine, clock, ws, range(SHOPPERS))
    channel = testing.InMemoryEmailChannel()
    while due.email(
        engine, clock=clock, channel=channel, link_secret=b"s" * 32, public_url="http://localhost"
    ):
        pass
    m, p = tables.messages, tables.profiles
    with db.reading(engine) as conn:
        sent = conn.execute(
            sa.select(m.c.id, m.c.node_id, p.c.email)
            .join(p, p.c.id == m.c.profile_id)
            .where(m.c.workspace_id == ws, m.c.status == "sent")
            .order_by(m.c.profile_id)
        ).all()
    assert len(sent) == SHOPPERS
    clock.advance(timedelta(hours=1))
    later: list[CanonicalEvent] = []
    sizes: dict[str, int] = {}
    revenue: dict[str, list[Decimal]] = {}
    for node, (opens, clicks, orders, amount) in PLAN.items():
        mine = [r for r in sent if r.node_id == node]
        sizes[node] = len(mine)
        revenue[node] = [amount if i < orders else Decimal(0) for i in range(len(mine))]
        for i, r in enumerate(mine):
            n = int(r.email[1:].split("@")[0])
            props = {"message_id": r.id, "flow_id": flow_id}
            if i < opens:
                later.append(_event(n, "Opened Email", clock, "open", properties=props))
            if i < clicks:
                later.append(_event(n, "Clicked Email", clock, "click", properties=props))
    _accept(engine, ws, clock, later)
    clock.advance(timedelta(hours=1))
    placed = []
    for node, (_, _, orders, amount) in PLAN.items():
        mine = [r for r in sent if r.node_id == node][:orders]
        for r in mine:
            n = int(r.email[1:].split("@")[0])
            placed.append(
                _event(
                    n,
                    "Placed Order",
                    clock,
                    "order",
                    properties={"order_id": f"o{n}"},
                    value=amount,
                    currency="USD",
                )
            )
    _accept(engine, ws, clock, placed)
    return {"ws": ws, "key": created.private_key, "flow": flow_id, "sizes": sizes, "revenue": revenue}


@pytest.fixture
def api(
    shop: dict[str, Any], engine: Engine, clock: SimulatedClock, server_factory: Any
) -> tuple[str, dict[str, str]]:
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    return base, {"Authorization": f"Bearer {shop['key']}"}


def _p6(x: float) -> str:
    return str(Decimal(repr(x)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def _z_p(s1: int, n1: int, s2: int, n2: int) -> float:
    pooled = (s1 + s2) / (n1 + n2)
    z = (s1 / n1 - s2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(z)))


def _p_b_beats_a(s_a: int, n_a: int, s_b: int, n_b: int) -> float:
    """Evan Miller's closed form for P(pB > pA) under Beta(1 + s, 1 + n - s) posteriors."""
    a1, b1, a2, b2 = 1 + s_a, 1 + n_a - s_a, 1 + s_b, 1 + n_b - s_b
    return sum(
        math.exp(betaln(a1 + i, b1 + b2) - math.log(b2 + i) - betaln(1 + i, b2) - betaln(a1, b1))
        for i in range(a2)
    )


def test_the_split_as_an_ab_test_over_http(shop: dict[str, Any], api: tuple[str, dict[str, str]]) -> None:
    base, auth = api
    n_a, n_b = shop["sizes"]["email-a"], shop["sizes"]["email-b"]
    assert n_a + n_b == SHOPPERS and min(n_a, n_b) >= 20
    url = f"{base}/api/v1/reports/flows/{shop['flow']}/experiments"
    got = httpx.get(url, headers=auth)
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["metric"], body["currency"], body["key"]) == ("placed_order", "USD", "ab-test")
    assert body["settings"] == {
        "auto_winner": False,
        "confidence": 0.95,
        "min_conversions": 250,
        "thompson": False,
        "weights_every_minutes": 60,
    }
    (split,) = body["splits"]
    assert (split["node_id"], split["status"], split["winner"], split["conversions_needed"]) == (
        "split",
        "not_enough_data",
        None,
        245 + 238,
    )
    assert split["reason"] == (
        "not enough data yet: each variant needs 250 conversions (branch 1 needs 245 more, branch 2 needs 238 more)"
    )
    a, b = split["variants"]
    assert (a["variant"], a["next"], a["percent"], a["recipients"]) == ("branch 1", "email-a", 50, n_a)
    assert (a["opens"], a["clicks"], a["conversions"], a["revenue"]) == (10, 4, 5, "100.00")
    assert (b["opens"], b["clicks"], b["conversions"], b["revenue"]) == (20, 10, 12, "360.00")
    assert a["value"] == str((Decimal(5) / n_a).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
    assert (a["p_value"], b["p_value"]) == (None, _p6(_z_p(12, n_b, 5, n_a)))
    assert b["probability_best"] == _p6(_p_b_beats_a(5, n_a, 12, n_b))
    assert (a["conversions_needed"], b["conversions_needed"]) == (245, 238)

    table = httpx.get(url, headers=auth, params={"format": "csv"})
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [
        (r["node_id"], r["variant"], r["next"], r["conversions"], r["p_value"], r["status"]) for r in rows
    ] == [
        ("split", "branch 1", "email-a", "5", "", "not_enough_data"),
        ("split", "branch 2", "email-b", "12", _p6(_z_p(12, n_b, 5, n_a)), "not_enough_data"),
    ]

    # Lower the bar (a setting): the verdict follows the figures.
    changed = httpx.patch(
        f"{base}/api/v1/reports/experiments/settings", headers=auth, json={"min_conversions": 5}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["min_conversions"] == 5
    split = httpx.get(url, headers=auth).json()["splits"][0]
    p_best = _p_b_beats_a(5, n_a, 12, n_b)
    expected = "winner" if p_best >= 0.95 and _z_p(12, n_b, 5, n_a) <= 0.05 else "no_winner_yet"
    assert (split["status"], split["leader"], split["conversions_needed"]) == (expected, "branch 2", 0)

    # Clicks and revenue per recipient (Welch on the per-run revenue, zeros included).
    clicks = httpx.get(url, headers=auth, params={"metric": "click"}).json()["splits"][0]["variants"][1]
    assert clicks["p_value"] == _p6(_z_p(10, n_b, 4, n_a))
    rpr = httpx.get(url, headers=auth, params={"metric": "revenue_per_recipient"}).json()["splits"][0]
    welch = stats.ttest_ind(
        [float(v) for v in shop["revenue"]["email-b"]],
        [float(v) for v in shop["revenue"]["email-a"]],
        equal_var=False,
    ).pvalue
    assert rpr["variants"][1]["p_value"] == _p6(float(welch))
    assert rpr["variants"][1]["value"] == str(
        (Decimal(360) / n_b).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"confidence": 95}, "experiments.confidence: expected a fraction from 0.5 to 0.9999"),
        ({"min_conversions": -1}, "experiments.min_conversions: expected a whole number from 1 to 1,000,000"),
        ({"min_conversions": "250"}, "experiments.min_conversions: expected a whole number"),
        ({"thompson": "on"}, "experiments.thompson: expected true or false, got 'on'"),
        ({"auto_winner": None}, "experiments.auto_winner: expected true or false, got None"),
        ({"x" * 1000: 1}, "experiments." + "x" * 64 + ": unknown setting"),
        ([1, 2], "body: expected a JSON object"),
        ("nope", "body: expected a JSON object"),
    ],
)
def test_bad_settings_get_a_400_naming_the_field(
    engine: Engine, clock: SimulatedClock, server_factory: Any, body: Any, message: str
) -> None:
    base = server_factory(create_app(config.load(environ={}), engine=engine, clock=clock))
    auth = {"Authorization": f"Bearer {testing.make_workspace(engine).private_key}"}
    url = f"{base}/api/v1/reports/experiments/settings"
    got = httpx.patch(url, headers=auth, json=body)
    assert got.status_code == 400, got.text
    assert got.json()["error"].startswith(message)
    assert len(got.json()["error"]) < 300
    assert httpx.get(url, headers=auth).json()["min_conversions"] == 250  # nothing changed


def test_hostile_requests(api: tuple[str, dict[str, str]], shop: dict[str, Any], engine: Engine) -> None:
    base, auth = api
    url = f"{base}/api/v1/reports/flows/{shop['flow']}/experiments"
    settings_url = f"{base}/api/v1/reports/experiments/settings"
    for params, message in [
        ({"metric": "ctr"}, "metric: unknown metric 'ctr'; expected one of open, click, placed_order"),
        ({"metric": "x" * 5000}, "metric: unknown metric"),
        ({"from": "yesterday"}, "from: expected a date"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to: must be after from"),
        ({"window": "P1D"}, "window: unknown parameter; expected one of format, from, metric, to"),
        ({"format": "xml"}, "format: expected json or csv, got 'xml'"),
    ]:
        got = httpx.get(url, headers=auth, params=params)
        assert (got.status_code, got.json()["error"][: len(message)]) == (400, message)
        assert len(got.json()["error"]) < 300
    assert httpx.get(f"{url}?metric=open&metric=click", headers=auth).json()["error"] == (
        "metric: expected one value, got 2"
    )
    assert httpx.get(url).status_code == 401
    assert httpx.patch(settings_url, json={"min_conversions": 1}).status_code == 401
    missing = httpx.get(f"{base}/api/v1/reports/flows/{shop['flow'] + 999}/experiments", headers=auth)
    assert (missing.status_code, missing.json()["error"]) == (
        404,
        f"flow_id: no flow {shop['flow'] + 999} in this workspace",
    )
    other = testing.make_workspace(engine, name="Other")
    foreign = httpx.get(url, headers={"Authorization": f"Bearer {other.private_key}"})
    assert foreign.status_code == 404
    big = httpx.patch(
        settings_url, headers=auth, content=b'{"confidence": 0.9, "pad": "' + b"x" * 10_000 + b'"}'
    )
    assert big.status_code == 413
    bad_json = httpx.patch(settings_url, headers=auth, content=b'{"confidence": ')
    assert bad_json.status_code == 400
    deep = httpx.patch(settings_url, headers=auth, content=b"[" * 2000 + b"]" * 2000)
    assert deep.status_code == 400
    assert httpx.get(settings_url, headers=auth).json()["confidence"] == 0.95
    spec = httpx.get(f"{base}/openapi.json").json()
    op = spec["paths"]["/api/v1/reports/flows/{flow_id}/experiments"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExperimentsReport"
    }
    assert {p["name"] for p in op["parameters"]} >= {"metric", "from", "to"}


def test_the_cli_prints_the_same_numbers(
    shop: dict[str, Any],
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    n_a, n_b = shop["sizes"]["email-a"], shop["sizes"]["email-b"]
    args = ["report", "experiments", "--workspace", shop["ws"], "--flow", str(shop["flow"])]
    assert cli.main([*args, "--json"]) == 0
    (split,) = json.loads(capsys.readouterr().out)["splits"]
    assert split["status"] == "not_enough_data"
    assert split["variants"][1]["p_value"] == _p6(_z_p(12, n_b, 5, n_a))
    assert cli.main([*args, "--metric", "open", "--set", "min_conversions=5", "--set", "confidence=0.9"]) == 0
    text = capsys.readouterr().out
    assert "metric open, confidence 0.9, at least 5 conversions per variant" in text
    assert _p6(_z_p(20, n_b, 10, n_a)) in text
    assert cli.main([*args, "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("node_id,variant,next,percent,recipients")
    assert lines[2].startswith(f"split,branch 2,email-b,50,{n_b},20,10,12,360.00,")
    assert cli.main([*args, "--metric", "ctr"]) == 2
    assert "--metric: unknown metric 'ctr'" in capsys.readouterr().err
    assert cli.main([*args, "--set", "confidence=2"]) == 2
    assert "experiments.confidence: expected a fraction" in capsys.readouterr().err
    assert cli.main([*args[:-1], str(shop["flow"] + 999)]) == 2
    assert f"--flow: no flow {shop['flow'] + 999}" in capsys.readouterr().err
