"""The action nodes of a flow: what a step does to the world (send, update the profile, lists and
audiences, webhooks, staff alerts, another flow, consent) and `exit`.

`domain/nodes.py` gathers every node type; `domain/step.py` executes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal, TypeAlias, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from shopflow.domain import node_fields
from shopflow.domain.durations import NodeId

CHANNELS = ("email", "sms", "push")
# The preference center's topics (store/preferences.py): a send node may name one, and a profile
# that opted out of it is skipped on every channel (domain/guards.py).
Topic: TypeAlias = Literal["promotional", "product_news", "educational"]
TOPICS: tuple[str, ...] = get_args(Topic)
# How long a run waits at a webhook node for its delivery (every retry included) before it gives up.
WEBHOOK_MAX_WAIT = timedelta(hours=6)

_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


class SendNode(BaseModel):
    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["send"]
    channel: Literal["email", "sms", "push"] = "email"
    template: str = Field(min_length=1, max_length=200)
    next: NodeId
    # Transactional messages bypass marketing consent, caps and smart sending (the guards decide).
    transactional: bool = False
    # A preference-center topic: a profile that opted out of it is skipped (any channel).
    topic: Topic | None = None
    # False: this message ignores smart sending (a reply the person is waiting for, such as an
    # order follow-up); frequency caps and consent still apply.
    smart_sending: bool | None = None  # None: the default, true

    @field_validator("topic")
    @classmethod
    def _topic_is_marketing(cls, topic: Topic | None, info: ValidationInfo) -> Topic | None:
        if topic is not None and info.data.get("transactional"):
            # Preferences never stop a transactional message, so its topic would silently do nothing.
            raise ValueError("a transactional message ignores topics; remove topic or transactional")
        return topic


def _property_names(names: list[str] | Mapping[str, Any]) -> None:
    for name in names:
        if not _PROPERTY.match(name):
            raise ValueError(f"{name!r} is not a property name (letters, digits, _; at most 100)")


class UpdateProfileNode(BaseModel):
    """Set, unset or increment custom properties of the profile (`properties.<name>`)."""

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["update_profile"]
    set: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)
    unset: list[str] = Field(default_factory=list, max_length=50)
    increment: dict[str, int | Decimal] = Field(default_factory=dict, max_length=50)
    next: NodeId

    @model_validator(mode="after")
    def _sensible(self) -> UpdateProfileNode:
        if not (self.set or self.unset or self.increment):
            raise ValueError("an update_profile node needs at least one of set, unset, increment")
        for names in (self.set, self.unset, self.increment):
            _property_names(names)
        seen: dict[str, str] = {}
        for op, names in (
            ("set", list(self.set)),
            ("unset", self.unset),
            ("increment", list(self.increment)),
        ):
            for name in names:
                if name in seen and seen[name] != op:
                    raise ValueError(f"property {name!r} is both in {seen[name]} and in {op}")
                seen[name] = op
        return self


class ListNode(BaseModel):
    """Add the profile to a list (a "Joined List" event follows) or remove it."""

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["list"]
    action: Literal["add", "remove"]
    list: node_fields.Key
    next: NodeId


class AudienceNode(BaseModel):
    """Add or remove the profile from a named ad audience (exported with consent respected)."""

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["audience"]
    action: Literal["add", "remove"]
    audience: node_fields.Key
    next: NodeId


class WebhookNode(BaseModel):
    """A signed HTTP request; the run waits for its answer (retries included), then goes on.

    The response (`status`, `ok`, `body`) is the run document's `webhooks.<node id>`: later
    conditions read it with `{run: {property: webhooks.<id>.body.x, ...}}`, templates as
    `webhooks.<id>.body.x`. A failure (4xx, or 5xx/timeouts after every retry) takes `on_failure`.
    """

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["webhook"]
    url: str = Field(min_length=8, max_length=2000)
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    body: dict[str, Any] = Field(default_factory=dict)
    next: NodeId
    on_failure: NodeId | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c in url for c in " \r\n"):
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url


class AlertNode(BaseModel):
    """Tell the store's staff (a row in staff_alerts, shown to them; message at most 500 chars)."""

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["alert"]
    message: str = Field(min_length=1, max_length=500)
    next: NodeId


class StartFlowNode(BaseModel):
    """Hand the profile to another flow (by its key); that flow's run has trigger key from:<run id>."""

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["start_flow"]
    flow: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    next: NodeId


class ConsentNode(BaseModel):
    """Change the profile's consent for a channel (evidence source "flow", with run and `reason`);
    `suppress: true` (only with `unsubscribed`) also adds a suppression with reason "sunset"."""

    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["consent"]
    channel: Literal["email", "sms", "push"]
    status: Literal["unsubscribed", "subscribed"]
    reason: str = Field(min_length=1, max_length=200)
    suppress: bool = False
    next: NodeId

    @model_validator(mode="after")
    def _suppress_only_unsubscribes(self) -> ConsentNode:
        if self.suppress and self.status != "unsubscribed":
            raise ValueError(f"suppress: true goes only with status unsubscribed, got status {self.status!r}")
        return self


class ExitNode(BaseModel):
    model_config = node_fields.STRICT

    id: NodeId
    type: Literal["exit"]
    reason: str = Field(default="completed", min_length=1, max_length=64)
