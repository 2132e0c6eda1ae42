"""Short tracked links for SMS and push: every http(s) URL becomes `{public_url}/s/{code}`.

Email can afford a signed click URL (messaging.tracking.links); an SMS pays per 153-character segment and a
push payload has 4 KB, so these channels store the target and send a short random code instead. The
code is 9 base62 characters (62**9 > 2**53), drawn from `secrets`, so nobody can enumerate links.
Clicks come back through api/routes/short_links.py to `follow`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import events as ev
from shopflow.domain import link_previews
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.messaging.tracking import engagement, links
from shopflow.store import db, messages
from shopflow.store import short_links as store

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CODE_LENGTH = 9
# What the redirect accepts: room to lengthen codes later without breaking links already sent.
MIN_CODE_CHARS, MAX_CODE_CHARS = 6, 22
_CODE = re.compile(f"[0-9A-Za-z]{{{MIN_CODE_CHARS},{MAX_CODE_CHARS}}}")
MAX_TARGET_CHARS = 4000  # as the email click redirect (api/routes/tracking.py)
_ATTEMPTS = 5
CLICK_METRICS = {"sms": ev.CLICKED_SMS, "push": ev.CLICKED_PUSH}

# A URL in plain text runs to the next space; punctuation that ends a sentence is not part of it.
_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\")]}"


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def is_code(text: str) -> bool:
    return _CODE.fullmatch(text) is not None


def short_url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/s/{code}"


def _trim(url: str) -> str:
    while url and url[-1] in _TRAILING:
        closer = url[-1]
        opener = {")": "(", "]": "[", "}": "{"}.get(closer)
        if opener is not None and url.count(opener) >= url.count(closer):
            break  # a balanced bracket belongs to the URL (Wikipedia-style paths)
        url = url[:-1]
    return url


def _is_url(url: str) -> bool:
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:  # e.g. a malformed IPv6 host
        return False


def urls_in(text: str) -> list[str]:
    """The http(s) URLs of a plain text, each once, in order of first appearance."""
    found: list[str] = []
    for match in _URL.finditer(text):
        url = _trim(match.group(0))
        if _is_url(url) and url not in found:
            found.append(url)
    return found


def rewrite(text: str, replacements: Mapping[str, str]) -> str:
    """`text` with each URL found by `urls_in` that has a replacement replaced."""

    def swap(match: re.Match[str]) -> str:
        url = _trim(match.group(0))
        return replacements.get(url, url) + match.group(0)[len(url) :]

    return _URL.sub(swap, text)


@dataclass(frozen=True)
class Wanted:
    """One link to shorten: `url` as written in the rendered message."""

    msg: messages.ClaimedMessage
    profile_id: int  # the recipient (the survivor of merges), credited with the click
    url: str


def target(msg: messages.ClaimedMessage, url: str, *, medium: str) -> str:
    """Where the short link leads: `url` with the UTM parameters email links get, medium = channel."""
    campaign = msg.flow_key or str(msg.context.get("campaign") or msg.template)
    return links.add_utm(url, links.utm_params(campaign=campaign, content=msg.node_id, medium=medium))


def trackable(url: str, *, public_url: str) -> bool:
    """Shopflow's own links stay as they are, and so does a target too long to store."""
    return not url.startswith(public_url.rstrip("/") + "/") and len(url) <= MAX_TARGET_CHARS


def issue(
    conn: Connection, *, wanted: Iterable[Wanted], public_url: str, now: datetime
) -> dict[tuple[int, str], str]:
    """Create (or find, for a retried message) the short link of each wanted URL.

    Returns (message id, url as written) -> short URL. Runs in the caller's transaction, which must
    commit before the message is sent, so a link works as soon as it arrives.
    """
    by_key: dict[tuple[int, str], tuple[Wanted, str]] = {}
    for w in wanted:
        if not trackable(w.url, public_url=public_url):
            continue
        full = target(w.msg, w.url, medium=w.msg.channel)
        if len(full) > MAX_TARGET_CHARS:
            continue
        by_key[(w.msg.id, store.url_hash(full))] = (w, full)
    if not by_key:
        return {}
    message_ids = {mid for mid, _ in by_key}
    codes = store.codes_for(conn, message_ids=message_ids)
    for attempt in range(_ATTEMPTS + 1):
        missing = [key for key in by_key if key not in codes]
        if not missing:
            break
        if attempt == _ATTEMPTS:
            raise RuntimeError(f"short_links: no free code after {_ATTEMPTS} attempts")
        store.insert(conn, rows=[_row(*by_key[key], now=now) for key in missing])
        # A row still missing after the insert lost a code collision (odds ~1e-16): a new code.
        codes = store.codes_for(conn, message_ids=message_ids)
    return {(w.msg.id, w.url): short_url(public_url, codes[key]) for key, (w, _) in by_key.items()}


def issue_committed(
    engine: Engine, *, wanted: Iterable[Wanted], public_url: str, now: datetime
) -> dict[int, dict[str, str]]:
    """`issue` in its own transaction, committed before anything is sent (a link must work the
    moment it arrives). Returns message id -> {url as written: short URL}."""
    wanted = list(wanted)
    if not wanted:
        return {}
    with db.transaction(engine) as conn:
        issued = issue(conn, wanted=wanted, public_url=public_url, now=now)
    by_message: dict[int, dict[str, str]] = {}
    for (message_id, url), link in issued.items():
        by_message.setdefault(message_id, {})[url] = link
    return by_message


def _row(w: Wanted, full: str, *, now: datetime) -> dict[str, object]:
    return {
        "workspace_id": w.msg.workspace_id,
        "code": new_code(),
        "message_id": w.msg.id,
        "profile_id": w.profile_id,
        "flow_id": w.msg.flow_id,
        "channel": w.msg.channel,
        "url": full,
        "url_hash": store.url_hash(full),
        "created_at": now,
    }


def _click(link: store.ShortLink, now: datetime) -> CanonicalEvent | None:
    name = CLICK_METRICS.get(link.channel)
    if name is None:
        return None
    return CanonicalEvent(
        # Per link and hour: a double tap counts once, a return visit days later (which the
        # attribution window cares about) counts again.
        message_id=f"{link.channel}-click:{link.message_id}:{link.id}:{now:%Y%m%d%H}",
        source=engagement.SOURCE,
        identity=Identity(profile_id=link.profile_id),
        time=now,
        name=name,
        properties={
            "message_id": link.message_id,
            "flow_id": link.flow_id,
            "url": link.url,
            "channel": link.channel,
        },
    )


def follow(engine: Engine, *, code: str, method: str, user_agent: str | None, now: datetime) -> str | None:
    """The target of a well-formed `code`, its click recorded; None for no such (live) link."""
    with db.reading(engine) as conn:
        link = store.find(conn, code=code)
    if link is None or not link.url.startswith(("https://", "http://")):
        return None
    # A messaging app drawing a preview card is not the person: redirect, record nothing.
    event = None if link_previews.is_preview(method=method, user_agent=user_agent) else _click(link, now)
    if event is not None and not engagement.record(
        engine, workspace_id=link.workspace_id, event=event, now=event.time
    ):
        return None  # the workspace was deleted
    return link.url
