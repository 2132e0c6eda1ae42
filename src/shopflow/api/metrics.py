"""Prometheus metrics (prometheus-client): HTTP request latency measured in this process
(api/requests.py feeds `Metrics.requests`), and what
the instance is doing, read from the database at scrape time (analytics/operations.py), so one
scrape of any `shopflow serve` covers every worker process.

Each app has its own registry (tests build many apps in one process). Totals are across
workspaces: a scrape names no workspace and no person.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from shopflow.analytics import operations
from shopflow.domain.clock import Clock

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A scrape reads the database at most this often; scrapes in between get the last snapshot.
SNAPSHOT_SECONDS = 5.0


class _OperationsCollector(Collector):
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, operations.Snapshot] | None = None

    def _snapshot(self) -> operations.Snapshot:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= SNAPSHOT_SECONDS:
                self._cached = (time.monotonic(), operations.snapshot(self.engine, now=self.clock.now()))
            return self._cached[1]

    def collect(self) -> Iterable[Metric]:
        s = self._snapshot()
        stored = CounterMetricFamily("shopflow_events_stored", "Events stored since the install began")
        stored.add_metric([], s.events_stored)
        yield stored
        depth = GaugeMetricFamily(
            "shopflow_queue_depth", "Rows waiting per queue (capped at 1,000,000)", labels=["queue"]
        )
        for queue, n in sorted(s.queues.items()):
            depth.add_metric([queue], n)
        yield depth
        lag = GaugeMetricFamily(
            "shopflow_ingest_lag_seconds", "Age of the oldest committed event not yet processed (0: none)"
        )
        lag.add_metric([], s.lag_seconds)
        yield lag
        outbox = GaugeMetricFamily(
            "shopflow_messages",
            "Messages by channel, state and skip reason (queued, sending, sent, skipped, failed)",
            labels=["channel", "status", "reason"],
        )
        for channel, status, reason, n in s.outbox:
            outbox.add_metric([channel, status, reason], n)
        yield outbox
        age = GaugeMetricFamily(
            "shopflow_worker_heartbeat_age_seconds",
            "Seconds since each worker process's last heartbeat (workers seen in the last 15 min)",
            labels=["worker"],
        )
        passes = CounterMetricFamily(
            "shopflow_worker_passes", "Passes each worker loop made", labels=["worker"]
        )
        for w in s.workers:
            age.add_metric([w.worker_id], max(0.0, (s.at - w.beat_at).total_seconds()))
            passes.add_metric([w.worker_id], w.passes)
        yield age
        yield passes
        workers = GaugeMetricFamily(
            "shopflow_workers", "Worker processes with a heartbeat in the last minute"
        )
        workers.add_metric([], sum(1 for w in s.workers if (s.at - w.beat_at).total_seconds() <= 60))
        yield workers


class Metrics:
    """One app's registry: the request histogram (fed by `middleware`) and the operations collector."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Histogram(
            "shopflow_http_request_duration_seconds",
            "HTTP request latency by method, route and status class",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.registry.register(_OperationsCollector(engine, clock))

    def render(self) -> bytes:
        return generate_latest(self.registry)
