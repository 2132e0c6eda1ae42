"""GET /metrics: Prometheus text format (api/metrics.py). Counts across workspaces, no personal
data; expose it on a private network or behind the proxy's access rules."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shopflow.api import metrics

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
def scrape(request: Request) -> Response:
    """Ingest rate and lag, queue depths, the outbox by state and reason, worker heartbeats and
    HTTP latency histograms."""
    registry: metrics.Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=metrics.CONTENT_TYPE)
