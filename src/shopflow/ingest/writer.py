"""Group commit: requests arriving together are written in one transaction, answered after COMMIT.

One fsync per group instead of one per request; a request's future resolves only once its data is
durable, so a 2xx answer never covers data that could be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.domain.clock import Clock
from shopflow.domain.events import CanonicalEvent
from shopflow.ingest import pipeline
from shopflow.store import db

log = logging.getLogger(__name__)

# Failures that mean "the database is not there now": every waiting request gets them (-> 503).
UNAVAILABLE = (db.DatabaseUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError)


@dataclass
class _Request:
    workspace_id: str
    events: Sequence[CanonicalEvent]
    future: asyncio.Future[pipeline.AcceptResult]


class IngestWriter:
    def __init__(self, engine: Engine, clock: Clock, *, max_events: int, max_wait_ms: int) -> None:
        if max_events < 1:
            raise ValueError(f"max_events: expected at least 1, got {max_events}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms: expected 0 or more, got {max_wait_ms}")
        self._engine = engine
        self._clock = clock
        self._max_events = max_events
        self._max_wait = max_wait_ms / 1000
        self._queue: asyncio.Queue[_Request | None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is not None:
            return
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="ingest-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None or self._queue is None:
            return
        await self._queue.put(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, workspace_id: str, events: Sequence[CanonicalEvent]) -> pipeline.AcceptResult:
        if self._queue is None or self._task is None or self._task.done():
            raise RuntimeError("the ingest writer is not running (call start() first)")
        future: asyncio.Future[pipeline.AcceptResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(workspace_id, events, future))
        return await asyncio.shield(future)

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await queue.get()
            if first is None:
                break
            group = [first]
            size = len(first.events)
            deadline = loop.time() + self._max_wait
            while size < self._max_events:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        break
                if item is None:
                    stopping = True
                    break
                group.append(item)
                size += len(item.events)
            await self._write_group(group)

    async def _write_group(self, group: list[_Request]) -> None:
        try:
            results = await asyncio.to_thread(self._write, group)
        except UNAVAILABLE as exc:
            # Every waiting request answers 503 + Retry-After (the app maps DatabaseUnavailable).
            error = exc if isinstance(exc, db.DatabaseUnavailable) else db.DatabaseUnavailable(str(exc))
            for req in group:
                if not req.future.done():
                    req.future.set_exception(error)
            return
        except Exception:
            # One bad request must not fail the others: write each alone.
            log.exception("ingest group of %d requests failed; retrying one by one", len(group))
            for req in group:
                try:
                    (result,) = await asyncio.to_thread(self._write, [req])
                except Exception as exc:
                    if not req.future.done():
                        req.future.set_exception(exc)
                else:
                    if not req.future.done():
                        req.future.set_result(result)
            return
        for req, result in zip(group, results, strict=True):
            if not req.future.done():
                req.future.set_result(result)

    def _write(self, group: list[_Request]) -> list[pipeline.AcceptResult]:
        by_workspace: dict[str, list[int]] = {}
        for n, req in enumerate(group):
            by_workspace.setdefault(req.workspace_id, []).append(n)
        results: list[pipeline.AcceptResult | None] = [None] * len(group)
        with db.transaction(self._engine) as conn:
            now = self._clock.now()
            # One pass per workspace, in a stable order so two writers lock workspaces alike.
            for workspace_id in sorted(by_workspace):
                positions = by_workspace[workspace_id]
                batch_results = pipeline.accept_many(
                    conn, workspace_id=workspace_id, batches=[group[n].events for n in positions], now=now
                )
                for n, result in zip(positions, batch_results, strict=True):
                    results[n] = result
        return [r for r in results if r is not None]
