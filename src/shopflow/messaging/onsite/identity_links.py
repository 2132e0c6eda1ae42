"""The short-lived identity token a tracked email click hands to the store's page (`?_sf=`).

The click redirect (api/routes/tracking.py) appends it to links that go to one of the store's own
origins, so the snippet there can tell Shopflow "this browser is the person who clicked". Same
shape as the other signed links (`<payload>.<signature>`, HMAC-SHA256 truncated to 128 bits) under
its own domain-separation prefix, so no other token passes for it; it expires after TTL, so a
forwarded or bookmarked link stops identifying anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.engine import Engine

from shopflow.domain import onsite
from shopflow.messaging.tracking import links, tokens
from shopflow.store import db, workspaces

PARAM = "_sf"
TTL = timedelta(minutes=30)
_DOMAIN = b"shopflow-onsite-identity-v1\n"


@dataclass(frozen=True)
class IdentityClaims:
    workspace_id: str
    profile_id: int
    issued_at: datetime


def make_token(secret: bytes, *, workspace_id: str, profile_id: int, now: datetime) -> str:
    fields = [workspace_id, str(profile_id), str(int(now.timestamp()))]
    return tokens.seal(secret, fields, domain=_DOMAIN)


def verify(secret: bytes, token: str, *, now: datetime) -> IdentityClaims:
    """The claims of a genuine, unexpired token; else links.InvalidToken naming what is wrong."""
    if not isinstance(token, str) or not token:
        raise links.InvalidToken("token: expected the _sf token from the page's URL")
    parts = tokens.unseal(secret, token, domain=_DOMAIN)
    try:
        workspace_id, profile_id, issued = parts
        claims = IdentityClaims(workspace_id, int(profile_id), datetime.fromtimestamp(int(issued), UTC))
    except (ValueError, OverflowError, OSError):
        raise links.InvalidToken("token: malformed payload") from None
    if now - claims.issued_at > TTL:
        raise links.InvalidToken(f"token: expired (valid for {int(TTL.total_seconds() // 60)} minutes)")
    return claims


def with_token(url: str, token: str) -> str:
    """`url` with `_sf=<token>` added (replacing one already there)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != PARAM]
    query.append((PARAM, token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def redirect_target(
    engine: Engine, secret: bytes, *, claims: links.LinkClaims, url: str, now: datetime
) -> str:
    """Where a click on `url` goes: with the identity token when `url` is on one of the store's
    origins (never to another site, which could use it), else unchanged."""
    with db.reading(engine) as conn:
        ws = workspaces.get(conn, claims.workspace_id)
    if ws is None or onsite.origin(url) not in onsite.config(ws.settings).origins:
        return url
    token = make_token(secret, workspace_id=claims.workspace_id, profile_id=claims.profile_id, now=now)
    return with_token(url, token)
