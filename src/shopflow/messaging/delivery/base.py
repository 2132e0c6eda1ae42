"""What a channel gives the delivery pipeline: a renderer and a sender, built per batch.

A channel is one module (email.py, sms.py, push.py) with its renderer and its sender adaptor, and
one line in registry.CHANNELS. The pipeline owns everything else: claim, audience, guards, the
order of render and send, and recording every outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Engine

from shopflow.messaging.channels.base import OnResult, SendResult
from shopflow.messaging.delivery.audience import Audience
from shopflow.messaging.delivery.results import Ready
from shopflow.store import messages


@dataclass(frozen=True)
class Setup:
    """What a batch is delivered with: the worker's settings and, in tests, the twins."""

    public_url: str | None = None  # where tracked links point (None: push sends its URL untracked)
    link_secret: bytes = b""
    provider: Any = None  # the channel's provider; None: the one each workspace configures
    library: Any = None  # the channel's template library; None: its default


@dataclass(frozen=True)
class Failed:
    """A message that cannot be rendered (template error, too long): failed, never sent."""

    message_id: int
    error: str


@dataclass(frozen=True)
class Refusal:
    skip: str | None = None  # skipped with this reason
    error: str | None = None  # failed with this error


@dataclass(frozen=True)
class Batch:
    """One claimed batch of one channel, as the renderer is given it."""

    engine: Engine
    setup: Setup
    audiences: Mapping[str, Audience]  # by workspace id
    claimed: Sequence[messages.ClaimedMessage]
    now: datetime


class Renderer(Protocol):
    """A channel's rendering of one batch.

    `batched`: False, each draft is finished (and sent) as soon as it is rendered, so sending
    overlaps rendering; True, `finish` sees the whole batch at once (short links are issued in
    one transaction before anything is sent)."""

    batched: bool

    def address(self, msg: messages.ClaimedMessage, audience: Audience) -> str | None:
        """Where this message would go (email address, phone, a browser): what the guards check."""
        ...

    def render(self, msg: messages.ClaimedMessage, audience: Audience) -> Any:
        """A draft of the message; raises TemplateError or ValueError (the message fails)."""
        ...

    def finish(self, drafts: list[Any]) -> list[Ready | Failed]:
        """The drafts as sent (or why not)."""
        ...


class Sender(Protocol):
    """A channel's provider, as one batch sees it; a context manager around the sends.

    Leaving the `with` block waits for every send. `results` then holds one result per message
    added (a message without one is retried). `streaming`: results are also given to `on_result`
    as they come, so the pipeline commits them in groups."""

    streaming: bool

    def claim_limit(self, wanted: int) -> int: ...

    def __enter__(self) -> Sender: ...

    def __exit__(self, kind: object, *exc: object) -> None: ...

    def add(self, item: Any, on_result: OnResult) -> None: ...

    def results(self) -> list[SendResult]: ...

    def record(self, conn: Connection, results: list[SendResult]) -> None:
        """The channel's own rows, in the batch's last transaction (SMS cost, gone browsers)."""
        ...

    def refuse(self, msg: messages.ClaimedMessage, audience: Audience) -> Refusal | None:
        """Before rendering an allowed message: why this workspace cannot send it (no provider
        configured, no push keys: skipped; a broken configuration: failed), or None."""
        ...


RendererFactory = Callable[[Batch], Renderer]
SenderFactory = Callable[[Engine, Setup, datetime], Sender]


@dataclass(frozen=True)
class Pair:
    renderer: RendererFactory
    sender: SenderFactory
