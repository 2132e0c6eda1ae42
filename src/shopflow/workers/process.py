"""The worker processes: `shopflow worker` (one or a supervised group) and the worker that
`shopflow serve` embeds in a thread."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from sqlalchemy.engine import Engine

from shopflow.config import Settings
from shopflow.domain.clock import Clock, SystemClock
from shopflow.messaging.channels import ratelimit
from shopflow.messaging.channels.email import smtp
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.delivery import pipeline
from shopflow.store import db, workspaces
from shopflow.workers.embedded import Worker, start_thread

log = logging.getLogger(__name__)


def delivery_stale(environ: Mapping[str, str]) -> timedelta:
    """SHOPFLOW_DELIVERY_STALE_SECONDS: when a 'sending' claim counts as a dead worker's (default 300)."""
    raw = environ.get("SHOPFLOW_DELIVERY_STALE_SECONDS", "").strip()
    if not raw:
        return pipeline.STALE_CLAIM
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
    check_record_group(settings)  # `shopflow serve`'s embedded worker is built here as well
    # The SMTP URL's ?rate= is shared with every other worker process through the database.
    channel = SmtpChannel(settings.smtp_url, buckets=ratelimit.DatabaseBuckets(engine))
    stale = delivery_stale(os.environ)
    # A rate-limited batch may hold its claim while it waits for tokens and the server answers;
    # a shorter stale time would let another worker take it for a dead worker's and send it twice.
    held = timedelta(seconds=smtp.MAX_BATCH_WAIT + 2 * channel.config.timeout)
    if channel.limiter is not None and stale < held:
        raise ValueError(
            f"SHOPFLOW_DELIVERY_STALE_SECONDS: expected at least {held.total_seconds():.0f} with an SMTP "
            f"rate limit (a batch may wait that long), got {stale.total_seconds():g}"
        )
    return Worker(
        engine=engine,
        clock=clock,
        channel=channel,
        link_secret=link_secret,
        public_url=settings.public_url,
        delivery_stale=stale,
        delivery_record_group=settings.delivery_record_group,
    )


def start_embedded(
    settings: Settings, *, engine: Engine, clock: Clock, link_secret: bytes
) -> tuple[Worker, Callable[[], Awaitable[None]]]:
    """Run the worker in a thread of this (the HTTP server's) process; the worker and its stop."""
    worker = build_worker(settings, engine=engine, clock=clock, link_secret=link_secret)
    thread, stop = start_thread(worker, poll_seconds=settings.worker_poll_ms / 1000)

    async def stop_worker() -> None:
        stop.set()
        await asyncio.to_thread(thread.join, 10)
        worker.channel.close()

    return worker, stop_worker


MAX_PROCESSES = 64
# A worker that ran this long before exiting was not crash-looping: its restart pause starts over.
STEADY_SECONDS = 300.0


def check_worker_settings(settings: Settings, processes: int | None = None) -> int:
    """The number of worker processes to run; ValueError naming the setting when out of range."""
    count = settings.worker_processes if processes is None else processes
    name = "--processes" if processes is not None else "SHOPFLOW_WORKER_PROCESSES"
    if not 1 <= count <= MAX_PROCESSES:
        raise ValueError(f"{name}: expected 1 to {MAX_PROCESSES} worker processes, got {count}")
    check_record_group(settings)  # here too: refused before any process starts
    return count


def check_record_group(settings: Settings) -> None:
    if not 1 <= settings.delivery_record_group <= 1000:
        raise ValueError(
            "SHOPFLOW_DELIVERY_RECORD_GROUP: expected 1 to 1000 results per commit, "
            f"got {settings.delivery_record_group}"
        )


def run_workers(settings: Settings, processes: int) -> int:
    """Run `processes` worker processes and keep them running until SIGTERM/SIGINT.

    Workers share nothing but the database (claims are SKIP LOCKED batches on PostgreSQL and
    single-writer transactions on SQLite), so N processes are N times the CPU for rendering and
    signing. A worker that dies is started again after a pause that doubles up to a minute; the
    supervisor itself does no work, so there is nothing in it to crash.
    """
    if processes == 1:
        return run_worker(settings)
    # Migrate and create the instance's link secret once, here: N processes doing it at the same
    # moment would race (SQLite refuses a second writer; two secrets would be drawn).
    engine = db.create_engine(settings.database_url)
    db.upgrade(engine)
    _link_secret(settings, engine)
    engine.dispose()
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no engine or thread crosses
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    children: list[multiprocessing.process.BaseProcess] = []
    started: list[float] = []
    pauses = [1.0] * processes

    def start(index: int) -> None:
        child = ctx.Process(
            target=run_supervised_worker, args=(settings, os.getpid()), name=f"shopflow-worker-{index}"
        )
        child.start()
        if index < len(children):
            children[index], started[index] = child, time.monotonic()
        else:
            children.append(child)
            started.append(time.monotonic())

    for index in range(processes):
        start(index)
    log.info("%d worker processes started", processes)
    while not stop.wait(0.5):
        for index, child in enumerate(children):
            if child.is_alive():
                continue
            if time.monotonic() - started[index] > STEADY_SECONDS:
                pauses[index] = 1.0  # it had been running fine: a new failure, not a crash loop
            log.warning(
                "worker %d exited with %s; restarting in %.0f s", index, child.exitcode, pauses[index]
            )
            if stop.wait(pauses[index]):
                break
            pauses[index] = min(pauses[index] * 2, 60.0)
            start(index)
    for child in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    return 0


def run_supervised_worker(settings: Settings, supervisor_pid: int) -> int:
    """A worker process under `run_workers`: it stops when its supervisor is gone, even after a
    SIGKILL that gave the supervisor no chance to stop it (an orphan would keep sending)."""

    def watch() -> None:
        while os.getppid() == supervisor_pid:
            time.sleep(1.0)
        log.warning("supervisor %d is gone; stopping", supervisor_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="shopflow-supervisor-watch", daemon=True).start()
    return run_worker(settings, migrate=False)


def _link_secret(settings: Settings, engine: Engine) -> bytes:
    with db.transaction(engine) as conn:
        return workspaces.link_secret(conn, configured=settings.secret_key)


def run_worker(settings: Settings, migrate: bool = True) -> int:
    engine = db.create_engine(settings.database_url)
    if migrate:
        db.upgrade(engine)
    worker = build_worker(
        settings, engine=engine, clock=SystemClock(), link_secret=_link_secret(settings, engine)
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("worker started on %s", engine.url.render_as_string(hide_password=True))
    worker.run_forever(stop, poll_seconds=settings.worker_poll_ms / 1000)
    worker.channel.close()
    return 0
