"""Every report counts a flow's entrants alike: the flow report (and the demo, which prints it),
the node report's entry node, and `shopflow flows report`, including runs the flow filter exits
before their first step (a shopper who orders right after starting a checkout)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.flows import queries
from tests.integration.test_flow_scenarios import install, process_events, tick, track


def test_entrants_agree_when_the_filter_exits_before_the_first_step(
    engine: Engine,
    database_url: str,
    clock: SimulatedClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = testing.make_workspace(engine).workspace.id
    flow_id = install(engine, ws, "cart-abandonment")
    for n in range(3):
        track(
            engine,
            clock,
            ws,
            email=f"s{n}@example.com",
            name="Checkout Started",
            mid=f"c{n}",
            checkout_id=f"k{n}",
        )
    assert process_events(engine, clock) == 3  # three runs, none stepped yet
    # Two of them order before the worker first steps their runs: the flow filter exits them there.
    for n in range(2):
        track(
            engine, clock, ws, email=f"s{n}@example.com", name="Placed Order", mid=f"o{n}", order_id=f"o{n}"
        )
    tick(engine, clock)

    report = queries.flow_report(engine, workspace_id=ws, flow_id=flow_id)
    nodes = queries.node_report(engine, workspace_id=ws, flow=flow_id)
    first, second = nodes["nodes"][0], nodes["nodes"][1]
    assert report["entrants"] == nodes["entrants"] == first["entered"] == 3
    assert (first["node_id"], first["exited"]) == (
        "wait-1h",
        {"flow_filter: not Placed Order since flow_start": 2},
    )
    assert (first["entered"] - sum(first["exited"].values()), first["waiting"]) == (1, 1)
    assert second["entered"] == 0

    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    assert cli.main(["flows", "report", "--workspace", ws, str(flow_id), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["entrants"], printed["nodes"][0]["entered"]) == (3, 3)
    assert cli.main(["flows", "report", "--workspace", ws, str(flow_id)]) == 0
    text = capsys.readouterr().out
    assert "Abandoned cart (3 entrants)" in text
    assert text.splitlines()[2].split()[:4] == ["wait-1h", "delay", "3", "1"]
