"""What the reports API and `shopflow report` answer: the query checked (each error names its
parameter), one read per report, and CSV for every table. Each function opens its own read."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from shopflow import workspaces
from shopflow.analytics import reports, store_reports
from shopflow.analytics import settings as attribution_settings
from shopflow.domain import attribution_settings as config
from shopflow.store import db
from shopflow.store import flows as store_flows

# What /reports/flows can rank by (highest first).
FLOW_METRICS = (
    "attributed_revenue",
    "assisted_revenue_linear",
    "assisted_revenue_time_decay",
    "incremental_revenue",
    "conversions",
    "conversion_rate",
    "entrants",
    "messages_sent",
    "revenue_per_recipient",
    "revenue_per_message",
)
FORMATS = ("json", "csv")
STORE_TABLES = ("periods", "cohorts")
MAX_PARAM = 64


class QueryError(ValueError):
    """A report parameter is wrong: `param` names it, the message says what was expected."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


@dataclass(frozen=True)
class ReportQuery:
    since: datetime | None = None
    until: datetime | None = None
    metric: str = "attributed_revenue"
    window: timedelta | None = None  # the holdout window, when not the workspace's
    interval: str | None = None
    format: str = "json"
    table: str = "periods"


def _time(param: str, raw: str, *, end: bool) -> datetime:
    """A date (a `to` date includes that whole day) or an ISO 8601 time (UTC when it has no offset)."""
    if len(raw) > MAX_PARAM:
        raise QueryError(param, f"too long ({len(raw)} characters); expected a date like 2026-12-01")
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            at = datetime.combine(day, time(), tzinfo=UTC)
            return at + timedelta(days=1) if end else at
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise QueryError(param, f"expected a date (YYYY-MM-DD) or an ISO 8601 time, got {raw!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_query(params: Mapping[str, str | None]) -> ReportQuery:
    """Check the report parameters: from, to, metric, window, interval, format, table."""
    known = {"from", "to", "metric", "window", "interval", "format", "table"}
    for name in params:
        if name not in known:
            raise QueryError(name, f"unknown parameter; expected one of {', '.join(sorted(known))}")
    raw_from, raw_to = params.get("from"), params.get("to")
    since = _time("from", raw_from, end=False) if raw_from else None
    until = _time("to", raw_to, end=True) if raw_to else None
    if since is not None and until is not None and until <= since:
        raise QueryError("to", f"must be after from ({raw_to!r} is not after {raw_from!r})")
    metric = params.get("metric") or "attributed_revenue"
    if metric not in FLOW_METRICS:
        raise QueryError(
            "metric", f"unknown metric {metric[:MAX_PARAM]!r}; expected one of {', '.join(FLOW_METRICS)}"
        )
    window = None
    if params.get("window"):
        try:
            window = config.parse({"holdout_window": params["window"]}, path="").holdout_window
        except config.SettingsError as exc:
            raise QueryError("window", str(exc).split(": ", 1)[1]) from None
    interval = params.get("interval") or None
    if interval is not None and interval not in store_reports.INTERVALS:
        raise QueryError(
            "interval", f"expected one of {', '.join(store_reports.INTERVALS)}, got {interval[:MAX_PARAM]!r}"
        )
    fmt = params.get("format") or "json"
    if fmt not in FORMATS:
        raise QueryError("format", f"expected json or csv, got {fmt[:MAX_PARAM]!r}")
    table = params.get("table") or "periods"
    if table not in STORE_TABLES:
        raise QueryError("table", f"expected one of {', '.join(STORE_TABLES)}, got {table[:MAX_PARAM]!r}")
    return ReportQuery(since, until, metric, window, interval, fmt, table)


def _range(query: ReportQuery) -> dict[str, str | None]:
    return {
        "from": query.since.isoformat() if query.since else None,
        "to": query.until.isoformat() if query.until else None,
    }


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    inc = report["incremental"]
    interval = inc.get("incremental_revenue_interval") or [None, None]
    return {
        "flow_id": report["flow_id"],
        "key": report["key"],
        "name": report["name"],
        **{
            k: report[k]
            for k in (
                "entrants",
                "holdout_entrants",
                "recipients",
                "messages_sent",
                "conversions",
                "conversion_rate",
                "attributed_revenue",
                "revenue_per_recipient",
                "revenue_per_message",
                "assisted_revenue_linear",
                "assisted_revenue_time_decay",
            )
        },
        "incremental_status": inc["status"],
        "incremental_revenue": inc.get("incremental_revenue"),
        "incremental_revenue_low": interval[0],
        "incremental_revenue_high": interval[1],
        "entrants_still_needed": inc["entrants_still_needed"],
    }


def flows_report(engine: Engine, *, workspace_id: str, query: ReportQuery) -> dict[str, Any]:
    """Every flow's summary (attributed, assisted and incremental revenue), ranked by `metric`."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        flows = store_flows.list_flows(conn, workspace_id=workspace_id)
        rows = [
            _summary(
                reports.flow_report(
                    conn,
                    workspace_id=workspace_id,
                    flow_id=f.id,
                    since=query.since,
                    until=query.until,
                    holdout_window=query.window,
                )
            )
            for f in flows
        ]
        currency = attribution_settings.currency(conn, workspace_id=workspace_id)
    rows.sort(
        key=lambda r: (-(r[query.metric] if r[query.metric] is not None else Decimal(-1)), r["flow_id"])
    )
    return {**_range(query), "currency": currency, "metric": query.metric, "flows": rows}


def flow_report(engine: Engine, *, workspace_id: str, flow_id: int, query: ReportQuery) -> dict[str, Any]:
    """One flow's full report, per node; LookupError naming flow_id for another workspace's flow."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        report = reports.flow_report(
            conn,
            workspace_id=workspace_id,
            flow_id=flow_id,
            since=query.since,
            until=query.until,
            holdout_window=query.window,
        )
    return {**_range(query), **report}


def store_report(engine: Engine, *, workspace_id: str, query: ReportQuery) -> dict[str, Any]:
    """The store report; `interval` keeps one of the day/week/month series."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        report = store_reports.store_report(
            conn, workspace_id=workspace_id, since=query.since, until=query.until
        )
    if query.interval is not None:
        report["periods"] = {query.interval: report["periods"][query.interval]}
    return {**_range(query), **report}


def plain(value: Any) -> Any:
    """The report as JSON-ready data: money as decimal strings, so it stays exact."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def flows_csv(report: dict[str, Any]) -> str:
    columns = list(report["flows"][0]) if report["flows"] else list(_summary_columns())
    return _csv(report["flows"], columns)


def _summary_columns() -> tuple[str, ...]:
    return (
        "flow_id", "key", "name", "entrants", "holdout_entrants", "recipients", "messages_sent",
        "conversions", "conversion_rate", "attributed_revenue", "revenue_per_recipient",
        "revenue_per_message", "assisted_revenue_linear", "assisted_revenue_time_decay",
        "incremental_status", "incremental_revenue", "incremental_revenue_low",
        "incremental_revenue_high", "entrants_still_needed",
    )  # fmt: skip


def flow_csv(report: dict[str, Any]) -> str:
    """The flow's per-node table."""
    rows = [{"node_id": node, **values} for node, values in report["nodes"].items()]
    return _csv(rows, list(rows[0]) if rows else ["node_id"])


def store_csv(report: dict[str, Any], *, table: str) -> str:
    """The store's periods (every interval it holds, one row each) or cohorts table."""
    if table == "cohorts":
        return _csv(report["cohorts"], ["month", "customers", "revenue", "ltv"])
    rows = [{"interval": interval, **row} for interval, series in report["periods"].items() for row in series]
    return _csv(rows, ["interval", "period", "orders", "revenue", "automation_revenue", "automation_share"])
