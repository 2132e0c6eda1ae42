"""What a store's page sends with the public site key: its events, and "this browser is the person
who clicked" from the identity token of a tracked email link.

A browser is anyone: every field is checked, a message id is namespaced by the browser's
anonymous id (so it can never collide with, and so deduplicate away, an order from the shop), the
names the server alone records are refused (domain.onsite.RESERVED), and traits cannot change
consent (that takes a form with double opt-in: messaging/onsite/forms.py).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from shopflow import workspaces
from shopflow.domain import onsite
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.ingest.sources import segment
from shopflow.messaging.onsite import identity_links
from shopflow.messaging.tracking import links
from shopflow.store import db, profiles

SOURCE = "browser"
MAX_EVENTS = 50
MAX_TRAITS = 30
MAX_PAGE_TEXT = 2000
ANONYMOUS_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MESSAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
TYPES = ("track", "page", "identify")


class BrowserError(ValueError):
    """A refused browser request: the HTTP status and a message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Site:
    workspace: workspaces.Workspace
    config: onsite.Config


def site(engine: Engine, secret: bytes, *, key: str | None, origin: str | None) -> Site:
    """The workspace of a genuine site key, called from one of its store origins; else BrowserError."""
    if not key:
        raise BrowserError(401, "key: expected the site key (the script tag's data-key) as ?key=")
    ws = workspaces.by_site_key(engine, secret=secret, key=key)
    if ws is None:
        raise BrowserError(401, "key: unknown site key")
    cfg = onsite.config(ws.settings)
    if not cfg.origins:
        raise BrowserError(
            403,
            "onsite.origins: the workspace lists no store origin yet; "
            "run `shopflow onsite configure --workspace ID --origin https://your-store.example`",
        )
    if not origin:
        raise BrowserError(403, "Origin: required (the store page's origin, sent by the browser)")
    if not onsite.allows_origin(cfg, origin):
        raise BrowserError(
            403,
            f"Origin: {origin[:100]!r} is not one of the workspace's store origins ({', '.join(cfg.origins)})",
        )
    return Site(ws, cfg)


def anonymous_id(body: dict[str, Any], *, required: bool = True) -> str | None:
    value = body.get("anonymousId")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not ANONYMOUS_ID.fullmatch(value):
        raise BrowserError(
            400, f"anonymousId: expected 8 to 64 letters, digits, '-' or '_', got {str(value)[:80]!r}"
        )
    return value


def _page(context: Any, where: str) -> dict[str, Any]:
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise BrowserError(400, f"{where}context: expected an object")
    page = context.get("page")
    if page is None:
        return {}
    if not isinstance(page, dict):
        raise BrowserError(400, f"{where}context.page: expected an object")
    out: dict[str, Any] = {}
    for name in ("url", "path", "title", "referrer"):
        value = page.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > MAX_PAGE_TEXT:
            raise BrowserError(
                400, f"{where}context.page.{name}: expected a string of at most {MAX_PAGE_TEXT} characters"
            )
        out[name] = value
    return {"page": out}


def _message(item: Any, *, anon: str, sent_at: Any, n: int) -> dict[str, Any]:
    """One browser event as the Segment message the shared parser checks."""
    where = f"events[{n}]."
    if not isinstance(item, dict):
        raise BrowserError(400, f"events[{n}]: expected an object")
    kind = item.get("type")
    if kind not in TYPES:
        raise BrowserError(400, f"{where}type: expected one of {list(TYPES)}, got {str(kind)[:40]!r}")
    if "userId" in item:
        raise BrowserError(
            400, f"{where}userId: the site key cannot name a customer id; identify by email or phone traits"
        )
    mid = item.get("messageId")
    if not isinstance(mid, str) or not MESSAGE_ID.fullmatch(mid):
        raise BrowserError(
            400, f"{where}messageId: expected 1 to 64 letters, digits or '_.:-', got {str(mid)[:80]!r}"
        )
    msg: dict[str, Any] = {
        "type": kind,
        "anonymousId": anon,
        "messageId": f"web:{anon}:{mid}",
        "context": _page(item.get("context"), where),
    }
    for copied in ("timestamp", "properties"):
        if copied in item:
            msg[copied] = item[copied]
    if sent_at is not None:
        msg["sentAt"] = sent_at
    if kind == "track":
        name = item.get("event")
        if not isinstance(name, str) or not name.strip():
            raise BrowserError(400, f"{where}event: expected the event name (a non-empty string)")
        try:
            msg["event"] = onsite.browser_metric(name.strip())
        except ValueError as exc:
            raise BrowserError(400, f"{where}{exc}") from None
    if kind == "identify":
        traits = item.get("traits")
        if not isinstance(traits, dict) or not traits:
            raise BrowserError(
                400, f"{where}traits: expected an object of traits (email, phone, first_name ...)"
            )
        if len(traits) > MAX_TRAITS:
            raise BrowserError(400, f"{where}traits: expected at most {MAX_TRAITS}, got {len(traits)}")
        if "consent" in traits:
            raise BrowserError(
                400,
                f"{where}traits.consent: the site key cannot change consent; use a signup form (double opt-in)",
            )
        msg["traits"] = traits
    return msg


def events(site: Site, body: dict[str, Any], *, now: datetime) -> list[CanonicalEvent]:
    """The canonical events of a browser batch, or BrowserError naming the first bad field."""
    anon = anonymous_id(body)
    assert anon is not None
    if site.config.require_consent and body.get("consent") is not True:
        raise BrowserError(
            400,
            "consent: this workspace requires the visitor's consent before tracking "
            "(the page calls shopflow.consent(true) when its banner says yes)",
        )
    items = body.get("events")
    if not isinstance(items, list) or not items:
        raise BrowserError(400, "events: expected a non-empty array of events")
    if len(items) > MAX_EVENTS:
        raise BrowserError(413, f"events: {len(items)} events, the limit is {MAX_EVENTS} a request")
    out: list[CanonicalEvent] = []
    for n, item in enumerate(items):
        msg = _message(item, anon=anon, sent_at=body.get("sentAt"), n=n)
        try:
            parsed = segment.parse_message(msg, kind=None, now=now, where=f"events[{n}].")
        except segment.PayloadError as exc:
            raise BrowserError(400, str(exc)) from None
        if parsed is not None:
            out.append(dataclasses.replace(parsed, source=SOURCE))
    return out


def _someone_else(conn: Connection, *, workspace_id: str, anon: str, profile_id: int) -> bool:
    """Whether the browser's anonymous id already belongs to another known person (a shared
    computer): merging would make two customers one, so the browser starts a new id instead."""
    found = profiles.find(conn, workspace_id=workspace_id, kind="anonymous_id", value=anon)
    if not found:
        return False
    target = profiles.survivors(conn, workspace_id=workspace_id, profile_ids=[profile_id]).get(profile_id)
    row = found[0]
    return int(row.id) != target and bool(row.email or row.phone or row.external_id)


def identify(
    engine: Engine, secret: bytes, site: Site, body: dict[str, Any], *, now: datetime
) -> tuple[int, str | None]:
    """Merge the browser's anonymous id into the person the link's token names: (their profile id,
    the new anonymous id the browser must use when its old one was another known person's)."""
    anon = anonymous_id(body)
    assert anon is not None
    try:
        claims = identity_links.verify(secret, body.get("token"), now=now)  # type: ignore[arg-type]
    except links.InvalidToken as exc:
        raise BrowserError(400, str(exc)) from None
    if claims.workspace_id != site.workspace.id:
        raise BrowserError(400, "token: issued for another workspace")
    if site.config.require_consent and body.get("consent") is not True:
        raise BrowserError(400, "consent: this workspace requires the visitor's consent before identifying")
    with db.transaction(engine) as conn:
        fresh = None
        if _someone_else(conn, workspace_id=site.workspace.id, anon=anon, profile_id=claims.profile_id):
            fresh = anon = "sf-" + secrets.token_hex(12)
        event = CanonicalEvent(
            message_id=f"web-identify:{anon}:{claims.profile_id}",
            source=SOURCE,
            identity=Identity(profile_id=claims.profile_id, anonymous_id=anon),
            time=now,
        )
        try:
            result = pipeline.accept(conn, workspace_id=site.workspace.id, events=[event], now=now)
        except LookupError:
            raise BrowserError(404, "token: the person this link was sent to no longer exists") from None
    return result.profile_ids[0], fresh
