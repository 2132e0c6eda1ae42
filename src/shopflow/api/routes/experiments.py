"""Experiments API (private key): the A/B test of each random split of a flow, and the workspace's
experiment settings (confidence, minimum conversions per variant, Thompson sampling, automatic winner).

A bad parameter or setting gets a 400 naming it; p-values and probabilities are decimal strings.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from shopflow.analytics import experiments, report_views
from shopflow.api import deps, schemas
from shopflow.api.routes import ingest as ingest_routes
from shopflow.domain import experiment_settings
from shopflow.domain import experiments as rules
from shopflow.ingest.sources import segment

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
MAX_BODY_BYTES = 4096


class Settings(BaseModel):
    confidence: float = Field(description="0.5 to 0.9999 (0.95 = 95 %)")
    min_conversions: int = Field(description="conversions every variant needs before a winner is named")
    thompson: bool = Field(description="splits in mode thompson shift traffic to better branches")
    auto_winner: bool = Field(description="once a winner is named, new entrants all take its branch")
    weights_every_minutes: int = Field(description="how often Thompson weights are recomputed")


class VariantReport(BaseModel):
    variant: str
    next: str
    percent: int
    recipients: int = Field(description="runs that took this branch")
    opens: int
    clicks: int
    conversions: int
    revenue: str
    value: str = Field(description="the metric: a rate (fraction) or revenue per recipient")
    difference: str | None
    relative_lift: str | None
    p_value: str | None = Field(description="against the first branch (the control)")
    probability_best: str
    conversions_needed: int


class Assignment(BaseModel):
    basis: str = Field(description="thompson | winner | fixed: what new entrants are assigned by")
    weights: list[str] = Field(description="a fraction per branch")
    winner: str | None
    computed_at: str


class SplitReport(BaseModel):
    node_id: str
    mode: str
    status: str = Field(description="winner | no_winner_yet | not_enough_data")
    winner: str | None
    leader: str
    reason: str
    conversions_needed: int
    variants: list[VariantReport]
    assignment: Assignment | None = Field(description="the cached weights, once the runtime computed them")


class ExperimentsReport(BaseModel):
    flow_id: int
    key: str
    name: str
    currency: str
    metric: str
    from_: str | None = Field(alias="from")
    to: str | None
    settings: Settings
    splits: list[SplitReport]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


_COMMON: dict[int | str, dict[str, Any]] = {
    400: schemas.error_response("Bad input: the error names the parameter or setting"),
    401: schemas.error_response("No or an unknown private key"),
}


@router.get(
    "/flows/{flow_id}/experiments",
    response_model=None,
    responses={200: {"model": ExperimentsReport}, 404: schemas.error_response("No such flow"), **_COMMON},
)
def flow_experiments(
    flow_id: deps.Id,
    request: Request,
    *,
    metric: str | None = Query(None, description=f"one of {', '.join(rules.METRICS)} (default placed_order)"),
    from_: str | None = Query(None, alias="from", description="runs that took the split from this time"),
    to: str | None = Query(None, description="a date (that whole day included) or ISO 8601 time"),
    format: str | None = Query(None, description="json (default) or csv: a row per split and branch"),
    ws: deps.Workspace = Depends(deps.private_workspace),
) -> Any:
    """Each random split of the flow as an A/B test: per branch the metric, p-value against the
    first branch, probability to be best, and whether a winner may be named yet."""
    params: dict[str, str | None] = {}
    for name in request.query_params:
        values = request.query_params.getlist(name)
        if len(values) != 1:
            return _error(400, f"{name[:64]}: expected one value, got {len(values)}")
        params[name] = values[0]
    try:
        chosen, since, until, fmt = experiments.parse_query(params)
        report = experiments.flow_experiments(
            deps.context(request).engine,
            workspace_id=ws.id,
            flow_id=flow_id,
            metric=chosen,
            since=since,
            until=until,
        )
    except report_views.QueryError as exc:
        return _error(400, str(exc))
    except LookupError:
        return _error(404, f"flow_id: no flow {flow_id} in this workspace")
    if fmt == "csv":
        return Response(
            experiments.csv_table(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="flow-{flow_id}-experiments.csv"'},
        )
    return JSONResponse(schemas.exact(report))


@router.get("/experiments/settings", response_model=Settings, responses=_COMMON)
def get_settings(request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """The workspace's experiment settings (defaults for any not set)."""
    return experiments.settings(deps.context(request).engine, workspace_id=ws.id).to_json()


_SETTINGS_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {k: {} for k in experiment_settings.KEYS},
}


@router.patch(
    "/experiments/settings",
    response_model=Settings,
    responses=_COMMON,
    openapi_extra=schemas.body(_SETTINGS_BODY),
)
async def patch_settings(request: Request, ws: deps.Workspace = Depends(deps.private_workspace)) -> Any:
    """Change some experiment settings; the others keep their values. Nothing changes on a 400."""
    try:
        raw = await ingest_routes.read_body(request, MAX_BODY_BYTES)
        body = segment.loads(raw) if raw.strip() else None
    except ingest_routes.IngestError as exc:
        return _error(exc.status, exc.message)
    except segment.PayloadError as exc:
        return _error(400, str(exc))
    if not isinstance(body, dict):
        return _error(400, "body: expected a JSON object of experiment settings")
    update = functools.partial(
        experiments.update_settings, deps.context(request).engine, workspace_id=ws.id, changes=body
    )
    try:
        saved = await asyncio.to_thread(update)
    except experiment_settings.SettingsError as exc:
        return _error(400, str(exc))
    return JSONResponse(saved.to_json())
