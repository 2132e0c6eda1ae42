"""Process entry points: `shopflow serve` (HTTP + embedded worker) and `shopflow worker`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.api import deps
from shopflow.config import Settings
from shopflow.domain.clock import Clock, SystemClock
from shopflow.messaging import delivery
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.store import db
from shopflow.workers.embedded import Worker, start_thread

log = logging.getLogger(__name__)


def delivery_stale(environ: Mapping[str, str]) -> timedelta:
    """SHOPFLOW_DELIVERY_STALE_SECONDS: when a 'sending' claim counts as a dead worker's (default 300)."""
    raw = environ.get("SHOPFLOW_DELIVERY_STALE_SECONDS", "").strip()
    if not raw:
        return delivery.STALE_CLAIM
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86_400:
        raise ValueError(
            f"SHOPFLOW_DELIVERY_STALE_SECONDS: expected seconds between 0 and 86400, got {raw!r}"
        )
    return timedelta(seconds=seconds)


def build_worker(settings: Settings, *, engine: Engine, clock: Clock, link_secret: bytes) -> Worker:
    return Worker(
        engine=engine,
        clock=clock,
        channel=SmtpChannel(settings.smtp_url),
        link_secret=link_secret,
        public_url=settings.public_url,
        delivery_stale=delivery_stale(os.environ),
    )


async def embedded_worker(ctx: deps.AppContext) -> Callable[[], Awaitable[None]]:
    """App lifecycle hook: run the worker in a thread of the server process."""
    worker = build_worker(ctx.settings, engine=ctx.engine, clock=ctx.clock, link_secret=ctx.link_secret)
    thread, stop = start_thread(worker, poll_seconds=ctx.settings.worker_poll_ms / 1000)
    ctx.services["worker"] = worker

    async def stop_worker() -> None:
        stop.set()
        await asyncio.to_thread(thread.join, 10)
        worker.channel.close()

    return stop_worker


def serve(settings: Settings, *, host: str, port: int, with_worker: bool) -> int:
    import uvicorn

    from shopflow.api.app import create_app

    engine = db.create_engine(settings.database_url)
    db.upgrade(engine)
    hooks: list[Any] = [embedded_worker] if with_worker else []
    app = create_app(settings, engine=engine, lifecycles=hooks)
    log.info("Shopflow on http://%s:%d (worker %s)", host, port, "embedded" if with_worker else "off")
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
    return 0


def run_worker(settings: Settings) -> int:
    from shopflow.api.app import link_secret

    engine = db.create_engine(settings.database_url)
    db.upgrade(engine)
    worker = build_worker(
        settings, engine=engine, clock=SystemClock(), link_secret=link_secret(settings, engine)
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("worker started on %s", engine.url.render_as_string(hide_password=True))
    worker.run_forever(stop, poll_seconds=settings.worker_poll_ms / 1000)
    worker.channel.close()
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    return serve(
        settings,
        host=args.host or settings.host,
        port=args.port or settings.port,
        with_worker=not args.no_worker,
    )


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    return run_worker(settings)


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the HTTP server (with an embedded worker unless --no-worker)")
    p.add_argument("--host", help="address to listen on (default: SHOPFLOW_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: SHOPFLOW_PORT or 8000)")
    p.add_argument("--no-worker", action="store_true", help="serve HTTP only; run `shopflow worker` apart")
    p.set_defaults(handler=_serve)
    p = sub.add_parser("worker", help="run the worker loop (events, flow steps, delivery) in the foreground")
    p.set_defaults(handler=_worker)
