"""Deliver the due messages of a built-in channel, typed: what the worker, benchmarks and tests call.
Each is `pipeline.deliver_due` with that channel's setup."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from shopflow.domain.clock import Clock
from shopflow.messaging.channels.base import Channel
from shopflow.messaging.channels.push.webpush import PushChannel
from shopflow.messaging.channels.sms.base import SmsChannel
from shopflow.messaging.delivery import pipeline, results
from shopflow.messaging.delivery.base import Setup
from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates import text as text_templates


def email(
    engine: Engine,
    *,
    clock: Clock,
    channel: Channel,
    link_secret: bytes,
    public_url: str,
    limit: int = 200,
    library: templates.Library | None = None,
    stale_claim: timedelta = pipeline.STALE_CLAIM,
    record_group: int = results.RECORD_GROUP,
    record_group_ms: float = results.RECORD_GROUP_MS,
) -> int:
    """Deliver up to `limit` due emails through `channel`; how many were claimed (0: none due)."""
    return pipeline.deliver_due(
        engine,
        "email",
        clock=clock,
        setup=Setup(public_url=public_url, link_secret=link_secret, provider=channel, library=library),
        limit=limit,
        stale_claim=stale_claim,
        record_group=record_group,
        record_group_ms=record_group_ms,
    )


def sms(
    engine: Engine,
    *,
    clock: Clock,
    public_url: str,
    limit: int = 200,
    library: text_templates.TextLibrary | None = None,
    channel: SmsChannel | None = None,
    stale_claim: timedelta = pipeline.STALE_CLAIM,
) -> int:
    """Deliver up to `limit` due SMS. `channel`: send every workspace's SMS through it; None: each
    workspace's configured provider."""
    setup = Setup(public_url=public_url, provider=channel, library=library)
    return pipeline.deliver_due(engine, "sms", clock=clock, setup=setup, limit=limit, stale_claim=stale_claim)


def push(
    engine: Engine,
    *,
    clock: Clock,
    limit: int = 200,
    library: text_templates.TextLibrary | None = None,
    channel: PushChannel | None = None,
    public_url: str | None = None,
    stale_claim: timedelta = pipeline.STALE_CLAIM,
) -> int:
    """Deliver up to `limit` due push messages. `public_url`: where short tracked links point
    (clicks earn attribution); None sends the click URL as rendered, untracked."""
    setup = Setup(public_url=public_url, provider=channel, library=library)
    return pipeline.deliver_due(
        engine, "push", clock=clock, setup=setup, limit=limit, stale_claim=stale_claim
    )
