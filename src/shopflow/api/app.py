"""The FastAPI application, built from settings by `create_app`."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopflow import __version__
from shopflow.api import deps, limits, metrics, requests, schemas, urls, webapp
from shopflow.api.routes import health
from shopflow.api.routes import metrics as metrics_routes
from shopflow.config import Settings
from shopflow.domain.clock import Clock, SystemClock
from shopflow.domain.ratelimit import Rate
from shopflow.store import db, workspaces

RETRY_AFTER_SECONDS = "5"

log = logging.getLogger(__name__)

# Async start/stop hooks for long-lived services (ingest writer, embedded worker): each gets the
# context on start and returns a stop coroutine function.
Lifecycle = Callable[[deps.AppContext], Any]


def _public_limits(settings: Settings) -> limits.Limits:
    def rate(per_second: int, burst: int) -> Rate:
        return Rate(float(max(0, per_second)), max(1, burst))

    return limits.Limits(
        per_ip=rate(settings.public_rate_per_ip, settings.public_burst_per_ip),
        per_key=rate(settings.public_rate_per_key, settings.public_burst_per_key),
    )


def _link_secret(settings: Settings, engine: Engine) -> bytes:
    # A configured key needs no database: the app starts, and answers 503, while it is down.
    if settings.secret_key:
        return settings.secret_key.encode()
    with db.transaction(engine) as conn:
        return workspaces.link_secret(conn, configured=settings.secret_key)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    lifecycles: list[Lifecycle] | None = None,
) -> FastAPI:
    engine = engine or db.create_engine(settings.database_url)
    ctx = deps.AppContext(
        settings=settings,
        engine=engine,
        clock=clock or SystemClock(),
        link_secret=_link_secret(settings, engine),
    )
    hooks = [_ingest_writer, *(lifecycles or [])]

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stops = []
        for hook in hooks:
            stops.append(await hook(ctx))
        try:
            yield
        finally:
            for stop in reversed(stops):
                await stop()

    app = FastAPI(title="Shopflow", version=__version__, lifespan=lifespan, docs_url="/docs")
    app.state.ctx = ctx
    app.state.metrics = metrics.Metrics(engine, ctx.clock)
    # The last added runs first: every request is logged and timed, a refused one (429) too, and
    # an unhandled error reaches them as the JSON 500 AnswerUnhandled (innermost) made of it.
    app.add_middleware(AnswerUnhandled)
    app.add_middleware(urls.StorableUrl)
    app.add_middleware(limits.PublicLimits, limits=_public_limits(settings))
    app.add_middleware(requests.RequestMiddleware, metrics=app.state.metrics)
    schemas.publish(app)
    _install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    for router in _routers():
        app.include_router(router)
    app.include_router(webapp.router(Path(settings.web_dist) if settings.web_dist else webapp.CHECKOUT_DIST))
    return app


async def _ingest_writer(ctx: deps.AppContext) -> Callable[[], Any]:
    """Start the group-commit ingest writer; routes find it in ctx.services["ingest"]."""
    from shopflow.ingest.writer import IngestWriter

    writer = IngestWriter(
        ctx.engine,
        ctx.clock,
        max_events=ctx.settings.ingest_batch_events,
        max_wait_ms=ctx.settings.ingest_batch_ms,
    )
    await writer.start()
    ctx.services["ingest"] = writer

    async def stop() -> None:
        ctx.services.pop("ingest", None)
        await writer.stop()

    return stop


def _routers() -> list[Any]:
    """Routers of the other packages; one line each."""
    from shopflow.api.routes import browser as browser_routes
    from shopflow.api.routes import campaigns as campaign_routes
    from shopflow.api.routes import feedback as feedback_routes
    from shopflow.api.routes import flows, ingest, profiles, tracking, webhooks
    from shopflow.api.routes import library as library_routes
    from shopflow.api.routes import reports as report_routes
    from shopflow.api.routes import session as session_routes
    from shopflow.api.routes import short_links as short_link_routes
    from shopflow.api.routes import stock as stock_routes

    return [
        session_routes.router,
        flows.router,
        library_routes.router,
        ingest.router,
        webhooks.router,
        profiles.router,
        tracking.router,
        short_link_routes.router,
        feedback_routes.router,
        stock_routes.router,
        browser_routes.router,
        report_routes.router,
        _twilio_routes(),
        _push_routes(),
        _consent_routes(),
        _privacy_routes(),
        _template_routes(),
        _segment_routes(),
        campaign_routes.router,
    ]


def _segment_routes() -> Any:
    from shopflow.api.routes import segments

    return segments.router


def _consent_routes() -> Any:
    from shopflow.api.routes import consent

    return consent.router


def _template_routes() -> Any:
    from shopflow.api.routes import templates

    return templates.router


def _privacy_routes() -> Any:
    from shopflow.api.routes import privacy

    return privacy.router


def _twilio_routes() -> Any:
    from shopflow.api.routes import twilio

    return twilio.router


def _push_routes() -> Any:
    from shopflow.api.routes import push

    return push.router


class AnswerUnhandled:
    """An unhandled exception answers its own request with a JSON 500, and nothing else is lost.

    Starlette's outermost ServerErrorMiddleware answers 500 and then re-raises, and uvicorn closes the
    connection: a keep-alive client's next request on it is reset. Here the error stops at the
    request that caused it (logged with its traceback), and the connection stays open.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if started:  # half an answer has gone out: the connection cannot be saved
                raise
            log.exception("unhandled error answering %s %s", scope.get("method"), scope.get("path"))
            answer = JSONResponse(
                {"error": "internal error; the server log has the details"}, status_code=500
            )
            await answer(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    async def _db_down(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": "database unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    # A database that cannot be reached answers 503 + Retry-After, whichever layer noticed it.
    app.add_exception_handler(db.DatabaseUnavailable, _db_down)
    app.add_exception_handler(sa.exc.OperationalError, _db_down)

    # Every refusal has one shape, {"error": ...}: FastAPI's own HTTPException answers (a body it
    # cannot parse, a missing key, a viewer's write) too, not {"detail": ...}.
    @app.exception_handler(StarletteHTTPException)
    async def _refused(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "body: not valid JSON (or not the content type the route takes)"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                # The field's own name: "flow_id", "limit", "items[0]" (not "path.flow_id").
                "field": _field(err.get("loc", ())),
                "error": err.get("msg", ""),
            }
            for err in exc.errors()
        ]
        message = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
        return JSONResponse({"error": message, "errors": errors}, status_code=400)


def _field(loc: Any) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "path", "query", "header"):
        parts = parts[1:]
    return ".".join(str(p) for p in parts)
