"""`shopflow serve` (HTTP, with the worker embedded in a thread) and `shopflow worker`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from shopflow.api import deps
from shopflow.cli import common
from shopflow.config import Settings
from shopflow.workers import process

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the HTTP server (with an embedded worker unless --no-worker)")
    p.add_argument("--host", help="address to listen on (default: SHOPFLOW_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: SHOPFLOW_PORT or 8000)")
    p.add_argument("--no-worker", action="store_true", help="serve HTTP only; run `shopflow worker` apart")
    p.set_defaults(handler=_serve)
    p = sub.add_parser("worker", help="run the worker loop (events, flow steps, delivery) in the foreground")
    p.add_argument(
        "--processes",
        type=int,
        help="worker processes to run (default: SHOPFLOW_WORKER_PROCESSES or 1; one per core for volume)",
    )
    p.set_defaults(handler=_worker)


async def embedded_worker(ctx: deps.AppContext) -> Callable[[], Awaitable[None]]:
    """App lifecycle hook: run the worker in a thread of the server process."""
    worker, stop = process.start_embedded(
        ctx.settings, engine=ctx.engine, clock=ctx.clock, link_secret=ctx.link_secret
    )
    ctx.services["worker"] = worker
    return stop


def serve(settings: Settings, *, host: str, port: int, with_worker: bool) -> int:
    import uvicorn

    from shopflow.api.app import create_app

    engine = common.engine(settings)
    hooks: list[Any] = [embedded_worker] if with_worker else []
    app = create_app(settings, engine=engine, lifecycles=hooks)
    log.info("Shopflow on http://%s:%d (worker %s)", host, port, "embedded" if with_worker else "off")
    # Uvicorn's own handlers and access log are off: its lines go through the one handler
    # (shopflow/logs.py), and the API writes its own access line with the request id (api/requests.py).
    uvicorn.run(
        app, host=host, port=port, log_level=settings.log_level.lower(), log_config=None, access_log=False
    )
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    return serve(
        settings,
        host=args.host or settings.host,
        port=args.port or settings.port,
        with_worker=not args.no_worker,
    )


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    processes = process.check_worker_settings(settings, args.processes)
    return process.run_workers(settings, processes)
