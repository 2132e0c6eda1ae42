"""Reports API (private key): every flow's summary, one flow per node, the store; JSON or CSV.

Parameters: from, to (a date, whose whole day is included, or an ISO 8601 time), metric (what
/flows ranks by), window (the holdout window, ISO 8601), interval (day | week | month, /store),
format (json | csv), table (periods | cohorts, /store CSV). A wrong one gets a 400 naming it.
Money is a decimal string in the workspace currency; rates are fractions (0.1234 = 12.34 %).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from shopflow.analytics import report_views
from shopflow.api import deps, schemas

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

Money = str  # a decimal string, e.g. "133.33"


class Performance(BaseModel):
    """What a flow, a node or a campaign earned: the fields every report shares."""

    conversions: int
    conversion_rate: str
    attributed_revenue: Money
    revenue_per_recipient: Money
    revenue_per_message: Money
    assisted_revenue_linear: Money
    assisted_revenue_time_decay: Money


class FlowSummary(Performance):
    flow_id: int
    key: str
    name: str
    entrants: int
    holdout_entrants: int
    recipients: int
    messages_sent: int
    incremental_status: str = Field(description="ready | not_enough_data")
    incremental_revenue: Money | None
    incremental_revenue_low: Money | None
    incremental_revenue_high: Money | None
    entrants_still_needed: int | None


class FlowsReport(BaseModel):
    from_: str | None = Field(alias="from")
    to: str | None
    currency: str
    metric: str
    flows: list[FlowSummary]


class NodeReport(Performance):
    entrants: int
    recipients: int
    sent: int
    opened: int
    clicked: int
    open_rate: str
    click_rate: str
    median_time_to_conversion_seconds: int | None
    unsubscribe_rate: str
    bounce_rate: str
    complaint_rate: str
    exits: dict[str, int] = Field(description="runs that ended at this node, by reason")


class ChannelReport(BaseModel):
    sent: int
    clicked: int
    conversions: int
    attributed_revenue: Money


class Arm(BaseModel):
    entrants: int
    conversions: int
    conversion_rate: str
    revenue: Money
    revenue_per_entrant: Money


class Incremental(BaseModel):
    status: str = Field(description="ready | not_enough_data")
    reason: str | None
    window_seconds: int
    treated: Arm
    holdout: Arm
    holdout_entrants_needed: int | None
    entrants_still_needed: int | None
    orders_without_exchange_rate: int
    conversion_rate_difference: str | None = None
    conversion_rate_interval: list[str] | None = None
    relative_lift: str | None = None
    conversion_p_value: str | None = None
    revenue_per_entrant_difference: Money | None = None
    revenue_per_entrant_interval: list[Money] | None = None
    revenue_p_value: str | None = None
    incremental_revenue: Money | None = None
    incremental_revenue_interval: list[Money] | None = None
    significant: bool | None = None


class FlowReport(Performance):
    from_: str | None = Field(alias="from")
    to: str | None
    flow_id: int
    key: str
    name: str
    currency: str
    entrants: int
    holdout_entrants: int
    recipients: int
    messages_sent: int
    skipped: dict[str, int]
    opens: int
    clicks: int
    open_rate: str
    click_rate: str
    unconverted_revenue: dict[str, Money]
    median_time_to_conversion_seconds: int | None
    unsubscribe_rate: str
    bounce_rate: str
    complaint_rate: str
    nodes: dict[str, NodeReport]
    channels: dict[str, ChannelReport]
    incremental: Incremental


class Period(BaseModel):
    period: str
    orders: int
    revenue: Money
    automation_revenue: Money
    automation_share: str


class Cohort(BaseModel):
    month: str
    customers: int
    revenue: Money
    ltv: Money


class StoreReport(BaseModel):
    from_: str | None = Field(alias="from")
    to: str | None
    currency: str
    orders: int
    cancelled_orders: int
    gross_revenue: Money
    revenue: Money
    unconverted_revenue: dict[str, Money]
    attributed_conversions: int
    attributed_revenue: Money
    flow_revenue: Money
    flow_revenue_share: str
    customers: int
    repeat_customers: int
    repeat_purchase_rate: str
    periods: dict[str, list[Period]]
    cohorts: list[Cohort]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _query(request: Request) -> report_views.ReportQuery | JSONResponse:
    params: dict[str, str | None] = {}
    for name in request.query_params:
        values = request.query_params.getlist(name)
        if len(values) != 1:
            return _error(400, f"{name[:64]}: expected one value, got {len(values)}")
        params[name] = values[0]
    try:
        return report_views.parse_query(params)
    except report_views.QueryError as exc:
        return _error(400, str(exc))


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


_COMMON: dict[int | str, dict[str, Any]] = {
    400: schemas.error_response("Bad input: the error names the parameter"),
    401: schemas.error_response("No or an unknown private key"),
}
_FROM = Query(None, alias="from", description="a date (YYYY-MM-DD) or ISO 8601 time; from this on")
_TO = Query(None, description="a date (that whole day included) or ISO 8601 time; before this")
_WINDOW = Query(None, description="holdout window, ISO 8601 (default: the workspace's, P5D)")
_FORMAT = Query(None, description="json (default) or csv")


@router.get("/flows", response_model=None, responses={200: {"model": FlowsReport}, **_COMMON})
def flows(
    request: Request,
    *,
    from_: str | None = _FROM,
    to: str | None = _TO,
    metric: str | None = Query(None, description=f"rank by: {', '.join(report_views.FLOW_METRICS)}"),
    window: str | None = _WINDOW,
    format: str | None = _FORMAT,
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Every flow: entrants, sends, conversions, attributed, assisted and incremental revenue."""
    query = _query(request)
    if isinstance(query, JSONResponse):
        return query
    report = report_views.flows_report(deps.context(request).engine, workspace_id=ws.id, query=query)
    if query.format == "csv":
        return _csv(report_views.flows_csv(report), "flows")
    return JSONResponse(schemas.exact(report))


@router.get(
    "/flows/{flow_id}",
    response_model=None,
    responses={
        200: {"model": FlowReport},
        404: schemas.error_response("No such flow in this workspace"),
        **_COMMON,
    },
)
def flow(
    flow_id: deps.Id,
    request: Request,
    *,
    from_: str | None = _FROM,
    to: str | None = _TO,
    window: str | None = _WINDOW,
    format: str | None = _FORMAT,
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """One flow, overall and per node, with the holdout's lift and incremental revenue."""
    query = _query(request)
    if isinstance(query, JSONResponse):
        return query
    try:
        report = report_views.flow_report(
            deps.context(request).engine, workspace_id=ws.id, flow_id=flow_id, query=query
        )
    except LookupError:
        return _error(404, f"flow_id: no flow {flow_id} in this workspace")
    if query.format == "csv":
        return _csv(report_views.flow_csv(report), f"flow-{flow_id}")
    return JSONResponse(schemas.exact(report))


@router.get("/store", response_model=None, responses={200: {"model": StoreReport}, **_COMMON})
def store(
    request: Request,
    *,
    from_: str | None = _FROM,
    to: str | None = _TO,
    interval: str | None = Query(None, description="day | week | month (default: all three)"),
    format: str | None = _FORMAT,
    table: str | None = Query(None, description="CSV table: periods (default) or cohorts"),
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Store revenue and the automation's share per period, repeat purchase rate, cohort LTV."""
    query = _query(request)
    if isinstance(query, JSONResponse):
        return query
    report = report_views.store_report(deps.context(request).engine, workspace_id=ws.id, query=query)
    if query.format == "csv":
        return _csv(report_views.store_csv(report, table=query.table), f"store-{query.table}")
    return JSONResponse(schemas.exact(report))
