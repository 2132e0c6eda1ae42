"""The reports API over real HTTP and `shopflow report`: the same numbers, CSV, OpenAPI schemas,
and malformed, oversized and hostile queries answered with a 400 naming the parameter."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow import config, testing
from shopflow.api.app import create_app
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from tests.integration.test_analytics_attribution import Shop
from tests.integration.test_analytics_report_fixture import build


@pytest.fixture
def built(engine: Engine) -> tuple[Shop, int]:
    return build(engine)


@pytest.fixture
def api(
    built: tuple[Shop, int], clock: SimulatedClock, server_factory: Any
) -> tuple[str, dict[str, str], int, Shop]:
    shop, flow = built
    base = server_factory(create_app(config.load(environ={}), engine=shop.engine, clock=clock))
    return base, {"Authorization": f"Bearer {shop.private_key}"}, flow, shop


def test_reports_over_http(api: tuple[str, dict[str, str], int, Shop]) -> None:
    base, auth, flow, _ = api
    url = f"{base}/api/v1/reports"
    assert httpx.get(f"{url}/flows").status_code == 401
    flows = httpx.get(f"{url}/flows", headers=auth)
    assert flows.status_code == 200
    body = flows.json()
    assert body["currency"] == "USD" and body["metric"] == "attributed_revenue"
    (row,) = body["flows"]
    assert (row["flow_id"], row["attributed_revenue"], row["incremental_revenue"]) == (
        flow,
        "220.00",
        "870.00",
    )
    assert (row["incremental_revenue_low"], row["incremental_revenue_high"]) == ("444.49", "1295.51")

    detail = httpx.get(f"{url}/flows/{flow}", headers=auth).json()
    assert detail["nodes"]["email-1"]["assisted_revenue_time_decay"] == "186.67"
    assert detail["incremental"]["incremental_revenue_interval"] == ["444.49", "1295.51"]
    assert (
        httpx.get(f"{url}/flows/{flow}", headers=auth, params={"from": "2026-01-20"}).json()["conversions"]
        == 0
    )

    store = httpx.get(f"{url}/store", headers=auth, params={"interval": "month"}).json()
    assert store["periods"] == {
        "month": [
            {"period": "2026-01", "orders": 25, "revenue": "1250.00", "automation_revenue": "220.00",
             "automation_share": "0.1760"}
        ]
    }  # fmt: skip
    assert store["cohorts"] == [{"month": "2026-01", "customers": 23, "revenue": "1250.00", "ltv": "54.35"}]


def test_csv_export_of_every_table(api: tuple[str, dict[str, str], int, Shop]) -> None:
    base, auth, flow, _ = api
    url = f"{base}/api/v1/reports"
    got = httpx.get(f"{url}/flows", headers=auth, params={"format": "csv"})
    assert got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [(r["key"], r["attributed_revenue"], r["incremental_revenue"]) for r in rows] == [
        ("cart-abandonment", "220.00", "870.00")
    ]
    nodes = list(csv.DictReader(io.StringIO(httpx.get(f"{url}/flows/{flow}?format=csv", headers=auth).text)))
    assert [(n["node_id"], n["sent"], n["exits"]) for n in nodes] == [
        ("email-1", "5", "unsubscribed=1"),
        ("email-2", "3", "completed=1;flow_filter=1"),
    ]
    periods = list(
        csv.DictReader(io.StringIO(httpx.get(f"{url}/store?format=csv&interval=day", headers=auth).text))
    )
    assert [(p["period"], p["revenue"]) for p in periods] == [
        ("2026-01-07", "1220.00"),
        ("2026-01-25", "30.00"),
    ]
    cohorts = httpx.get(f"{url}/store?format=csv&table=cohorts", headers=auth).text
    assert cohorts == "month,customers,revenue,ltv\r\n2026-01,23,1250.00,54.35\r\n"


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("flows", {"metric": "vibes"}, "metric: unknown metric 'vibes'"),
        ("flows", {"from": "2026-02-01", "to": "2026-01-01"}, "to: must be after from"),
        ("flows", {"from": "2026-01-01", "to": "2026-01-01T00:00:00"}, "to: must be after from"),
        ("flows", {"window": "PT0S"}, "window: must be at least PT1M"),
        ("flows", {"window": "P0D"}, "window: must be at least PT1M"),
        ("flows", {"window": "forever"}, "window: 'forever' is not an ISO 8601 duration"),
        ("flows", {"window": "P1000D"}, "window: must be at most P90D"),
        ("flows", {"from": "yesterday"}, "from: expected a date (YYYY-MM-DD) or an ISO 8601 time"),
        ("flows", {"to": "2026-13-45"}, "to: expected a date"),
        ("flows", {"from": "9" * 5000}, "from: too long (5000 characters)"),
        ("flows", {"from": "2026-01-01'; DROP TABLE events; --"}, "from: expected a date"),
        ("flows", {"format": "xml"}, "format: expected json or csv"),
        ("flows", {"nonsense": "1"}, "nonsense: unknown parameter"),
        ("store", {"interval": "fortnight"}, "interval: expected one of day, week, month"),
        ("store", {"table": "secrets"}, "table: expected one of periods, cohorts"),
        ("flows/1", {"metric": "x" * 300}, "metric: unknown metric"),
    ],
)
def test_bad_queries_get_a_400_naming_the_parameter(
    api: tuple[str, dict[str, str], int, Shop], path: str, params: dict[str, str], message: str
) -> None:
    base, auth, flow, _ = api
    path = path.replace("flows/1", f"flows/{flow}")
    got = httpx.get(f"{base}/api/v1/reports/{path}", headers=auth, params=params)
    assert got.status_code == 400, got.text
    assert got.json()["error"].startswith(message)
    assert len(got.json()["error"]) < 600  # a hostile value is not echoed back in full


def test_repeated_parameters_and_bad_ids(api: tuple[str, dict[str, str], int, Shop], engine: Engine) -> None:
    base, auth, flow, _ = api
    url = f"{base}/api/v1/reports"
    got = httpx.get(f"{url}/flows?from=2026-01-01&from=2026-01-02", headers=auth)
    assert (got.status_code, got.json()["error"]) == (400, "from: expected one value, got 2")
    assert httpx.get(f"{url}/flows/abc", headers=auth).status_code == 400
    assert httpx.get(f"{url}/flows/{flow + 999}", headers=auth).status_code == 404
    # Another workspace's flow is not found, whatever it holds.
    other = testing.make_workspace(engine, name="Other")
    foreign = httpx.get(f"{url}/flows/{flow}", headers={"Authorization": f"Bearer {other.private_key}"})
    assert (foreign.status_code, foreign.json()) == (
        404,
        {"error": f"flow_id: no flow {flow} in this workspace"},
    )
    empty = httpx.get(f"{url}/flows", headers={"Authorization": f"Bearer {other.private_key}"}).json()
    assert empty["flows"] == []


def test_openapi_describes_the_reports(api: tuple[str, dict[str, str], int, Shop]) -> None:
    base, _, _, _ = api
    spec = httpx.get(f"{base}/openapi.json").json()
    flows = spec["paths"]["/api/v1/reports/flows"]["get"]
    assert flows["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FlowsReport"
    }
    assert flows["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert {p["name"] for p in flows["parameters"]} == {"from", "to", "metric", "window", "format"}
    node = spec["components"]["schemas"]["NodeReport"]["properties"]
    assert {"median_time_to_conversion_seconds", "exits", "complaint_rate"} <= set(node)
    assert "incremental_revenue_interval" in spec["components"]["schemas"]["Incremental"]["properties"]
    assert "/api/v1/reports/flows/{flow_id}" in spec["paths"] and "/api/v1/reports/store" in spec["paths"]


def test_the_cli_prints_the_same_numbers(
    built: tuple[Shop, int],
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop, flow = built
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    assert cli.main(["report", "flows", "--workspace", shop.ws, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["flows"]
    assert (row["attributed_revenue"], row["incremental_revenue"]) == ("220.00", "870.00")
    assert cli.main(["report", "flows", str(flow), "--workspace", shop.ws]) == 0
    text = capsys.readouterr().out
    lines = {
        line.split("  ")[1].strip(): line.rsplit("  ", 1)[-1].strip() for line in text.splitlines()[1:18]
    }
    assert lines["attributed_revenue"] == "220.00"
    assert "incremental_revenue (95 % CI)" in text and "870.00 [444.49, 1295.51]" in text
    assert cli.main(["report", "flows", "--workspace", shop.ws]) == 0
    assert "870.00 [444.49, 1295.51]" in capsys.readouterr().out
    assert (
        cli.main(
            [
                "report",
                "store",
                "--workspace",
                shop.ws,
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-31",
                "--json",
            ]
        )
        == 0
    )
    store = json.loads(capsys.readouterr().out)
    assert (store["revenue"], store["flow_revenue_share"], store["from"]) == (
        "1250.00",
        "0.1760",
        "2026-01-01T00:00:00+00:00",
    )
    assert cli.main(["report", "store", "--workspace", shop.ws, "--csv", "--table", "cohorts"]) == 0
    assert capsys.readouterr().out == "month,customers,revenue,ltv\r\n2026-01,23,1250.00,54.35\r\n"
    assert cli.main(["report", "store", "--workspace", shop.ws]) == 0
    assert "repeat_purchase_rate   0.0435" in capsys.readouterr().out

    for argv, message in [
        (
            ["report", "flows", "--workspace", shop.ws, "--metric", "vibes"],
            "--metric: unknown metric 'vibes'",
        ),
        (["report", "flows", "--workspace", shop.ws, "--window", "PT0S"], "--window: must be at least PT1M"),
        (
            ["report", "store", "--workspace", shop.ws, "--from", "2026-02-01", "--to", "2026-01-01"],
            "--to: must be after from",
        ),
        (["report", "store", "--workspace", shop.ws, "--from", "x" * 1000], "--from: too long"),
        (["report", "flows", str(flow + 999), "--workspace", shop.ws], f"FLOW: no flow {flow + 999}"),
        (["report", "store", "--workspace", "ws_missing"], "--workspace: no workspace 'ws_missing'"),
    ]:
        assert cli.main(argv) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["report", "flows", "nope", "--workspace", shop.ws])
    capsys.readouterr()
