"""One worker loop: events -> triggers, due runs -> steps, due messages -> delivery."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.analytics import operations
from shopflow.campaigns import launch as campaigns
from shopflow.domain.clock import Clock
from shopflow.flows import alerts, scheduler, sweeps, webhooks
from shopflow.ingest import retention
from shopflow.messaging.channels.base import Channel
from shopflow.messaging.channels.push.webpush import PushChannel
from shopflow.messaging.channels.sms.base import SmsChannel
from shopflow.messaging.deliverability import hygiene
from shopflow.messaging.delivery import pipeline, registry, results
from shopflow.messaging.delivery.base import Setup
from shopflow.segments import backfill, queries, scores, sweeper
from shopflow.store import db, queues
from shopflow.workers import events

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


@dataclass
class WorkerCounts:
    events: int = 0
    steps: int = 0
    messages: int = 0
    swept: int = 0  # runs created by time-based triggers
    segments: int = 0  # profiles evaluated by segment backfills, memberships changed by the sweeper
    campaigns: int = 0  # campaigns launched, ended or finished and their message rows written

    def total(self) -> int:
        return self.events + self.steps + self.messages + self.swept + self.segments + self.campaigns


@dataclass
class Worker:
    engine: Engine
    clock: Clock
    channel: Channel
    link_secret: bytes
    public_url: str
    event_batch: int = 2000
    step_batch: int = 500
    delivery_batch: int = 200
    # A 'sending' claim older than this is a dead worker's and is sent again.
    delivery_stale: timedelta = pipeline.STALE_CLAIM
    # Email results are committed in groups of this many as the SMTP server accepts them.
    delivery_record_group: int = results.RECORD_GROUP
    # SMS and push go through each workspace's configured provider unless these replace them
    # (tests, the in-memory twins in shopflow.testing).
    sms_channel: SmsChannel | None = None
    push_channel: PushChannel | None = None
    # Providers of other registered channels (messaging/delivery/registry.py), by channel name.
    providers: dict[str, Any] = field(default_factory=dict)
    counts: WorkerCounts = field(default_factory=WorkerCounts)
    # List hygiene (sunset: 180 days without engagement), the bounce/complaint-rate alert over
    # the last day, data retention (ingest/retention.py) and lifecycle stages and RFM scores
    # (segments/scores.py) run this often, by the clock.
    maintenance_every: timedelta = timedelta(days=1)
    _last_maintenance: datetime | None = None
    # Segments whose rules change with time alone are swept this often (a day turns at 00:00 UTC).
    segment_sweep_every: timedelta = timedelta(seconds=sweeper.EVERY_SECONDS)
    _last_segment_sweep: datetime | None = None
    # Campaigns: launches due, running launches continued, flash sales ended (campaigns/launch.py).
    campaign_every: timedelta = timedelta(seconds=10)
    _last_campaigns: datetime | None = None
    _campaigns_busy: bool = False

    def maintain(self) -> bool:
        """Run the periodic jobs when they are due; True if they ran."""
        now = self.clock.now()
        if self._last_maintenance is not None and now - self._last_maintenance < self.maintenance_every:
            return False
        self._last_maintenance = now
        hygiene.run_daily(self.engine, clock=self.clock)
        retention.run(self.engine, now=now)
        scores.refresh_all(self.engine, now=now)
        return True

    def sweep_segments(self) -> int:
        """The segment time sweep, when due by the clock; memberships it changed."""
        now = self.clock.now()
        last = self._last_segment_sweep
        if last is not None and now - last < self.segment_sweep_every:
            return 0
        self._last_segment_sweep = now
        changed = sweeper.run(self.engine, now=now)
        queries.record_sizes(self.engine, now=now)  # size over time: a row per segment per hour
        return changed

    def _provider(self, channel: str) -> Any:
        """The provider every workspace's `channel` messages go through; None: each workspace's own."""
        built_in = {"email": self.channel, "sms": self.sms_channel, "push": self.push_channel}
        return built_in.get(channel, self.providers.get(channel))

    def run_campaigns(self) -> int:
        """The campaign job, when due by the clock or while a launch is still queueing."""
        now = self.clock.now()
        last = self._last_campaigns
        if not self._campaigns_busy and last is not None and now - last < self.campaign_every:
            return 0
        self._last_campaigns = now
        work = campaigns.run_due(self.engine, now=now)
        self._campaigns_busy = work > 0
        return work

    def tick(self) -> WorkerCounts:
        """One pass over every stage, in data-flow order; returns the work done.

        One read first asks which stages have anything to do (store.queues): an idle pass costs one
        statement instead of a transaction per stage. A stage also runs when an earlier stage of
        this pass did work, since that work may have made it some (events -> runs -> messages).
        """
        done = WorkerCounts()
        self.maintain()
        now = self.clock.now()
        with db.reading(self.engine) as conn:
            due = queues.due_work(
                conn,
                now=now,
                stale_before=now - min(self.delivery_stale, pipeline.STALE_CLAIM),
                channels=registry.CHANNELS,
            )
        if due.events:
            done.events = events.process_pending(self.engine, clock=self.clock, limit=self.event_batch)
        if due.sweeps:
            done.swept = sweeps.run_sweeps(self.engine, clock=self.clock, limit=self.step_batch)
        done.segments = self.sweep_segments()
        if due.backfills:
            done.segments += backfill.run_pending(self.engine, now=now)
        if due.runs or done.events or done.swept:
            done.steps = scheduler.run_due(self.engine, clock=self.clock, limit=self.step_batch)
        done.campaigns = self.run_campaigns()
        fresh = bool(done.events or done.swept or done.steps or done.campaigns)
        for name in registry.CHANNELS:
            if name in due.channels or fresh:
                done.messages += pipeline.deliver_due(
                    self.engine,
                    name,
                    clock=self.clock,
                    setup=Setup(
                        public_url=self.public_url,
                        link_secret=self.link_secret,
                        provider=self._provider(name),
                    ),
                    limit=self.delivery_batch,
                    stale_claim=self.delivery_stale,
                    record_group=self.delivery_record_group,
                )
        # Flow webhooks (outbound deliveries too) go out after the step that queued them committed.
        if due.webhooks or fresh:
            done.messages += webhooks.deliver_due(self.engine, clock=self.clock, limit=self.delivery_batch)
        # Staff alerts written by `alert` steps go to the workspace's staff_email, also after commit.
        if due.alerts or fresh:
            done.messages += alerts.deliver_due(
                self.engine, clock=self.clock, channel=self.channel, limit=self.delivery_batch
            )
        self.counts.events += done.events
        self.counts.steps += done.steps
        self.counts.messages += done.messages
        return done

    def run_until_idle(self, max_ticks: int = 10_000) -> WorkerCounts:
        """Tick until a pass finds nothing to do (the simulated clock does not move meanwhile)."""
        total = WorkerCounts()
        for _ in range(max_ticks):
            done = self.tick()
            total.events += done.events
            total.steps += done.steps
            total.messages += done.messages
            total.swept += done.swept
            total.segments += done.segments
            total.campaigns += done.campaigns
            if done.total() == 0:
                break
        return total

    def run_forever(self, stop: threading.Event, *, poll_seconds: float = 0.05) -> None:
        """Tick until `stop` is set; sleep only when a pass found nothing to do. Every few
        seconds the loop writes its heartbeat (worker_heartbeats; /metrics reports it)."""
        heart = _Heart(self.engine, self.clock)
        while not stop.is_set():
            heart.maybe_beat()
            try:
                done = self.tick()
            except db.DatabaseUnavailable as exc:
                log.warning("database unavailable, retrying: %s", exc)
                stop.wait(1.0)
                continue
            except Exception:
                log.exception("worker pass failed; retrying")
                stop.wait(1.0)
                continue
            if done.total() == 0:
                stop.wait(poll_seconds)


class _Heart:
    """This process's heartbeat: at most one write per HEARTBEAT_SECONDS, never failing the loop."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"[:200]
        self.started_at = clock.now()
        self.passes = 0
        self._last = float("-inf")

    def maybe_beat(self) -> None:
        self.passes += 1
        if time.monotonic() - self._last < HEARTBEAT_SECONDS:
            return
        self._last = time.monotonic()
        try:
            operations.beat(
                self.engine,
                worker_id=self.worker_id,
                started_at=self.started_at,
                now=self.clock.now(),
                passes=self.passes,
            )
        except Exception as exc:  # the loop's own retry handles a database that is down
            log.debug("heartbeat not written: %s", exc)


def start_thread(worker: Worker, *, poll_seconds: float = 0.05) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run_forever,
        args=(stop,),
        kwargs={"poll_seconds": poll_seconds},
        name="shopflow-worker",
        daemon=True,
    )
    thread.start()
    return thread, stop
