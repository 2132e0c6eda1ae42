"""Signed links for double opt-in confirmation and the preference center (no login needed).

Same shape as messaging.tracking.links (`<payload>.<signature>`, urlsafe base64, HMAC-SHA256 truncated to
128 bits) but signed under its own domain-separation prefix, so a tracking token can never pass
for a consent token or the other way round. A confirmation link expires; a preferences link, which
sits in the footer of every email a person keeps, does not.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shopflow.messaging.tracking import links

CONFIRM = "s"
PREFERENCES = "p"
_KINDS = (CONFIRM, PREFERENCES)
_DOMAIN = b"shopflow-consent-v1\n"
CONFIRM_TTL = timedelta(days=7)


@dataclass(frozen=True)
class ConsentClaims:
    kind: str
    workspace_id: str
    profile_id: int
    ref: int  # CONFIRM: the "Subscription Requested" event id; PREFERENCES: 0
    issued_at: datetime


def _sign(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, _DOMAIN + payload.encode(), hashlib.sha256).digest()[:16]


def make_token(secret: bytes, claims: ConsentClaims) -> str:
    if claims.kind not in _KINDS:
        raise ValueError(f"kind: expected one of {_KINDS}, got {claims.kind!r}")
    issued = int(claims.issued_at.timestamp())
    raw = f"{claims.kind}|{claims.workspace_id}|{claims.profile_id}|{claims.ref}|{issued}"
    payload = links._b64(raw.encode())
    return f"{payload}.{links._b64(_sign(secret, payload))}"


def verify(secret: bytes, token: str, *, kind: str, now: datetime | None = None) -> ConsentClaims:
    """The claims of a genuine, unexpired token of `kind`; else links.InvalidToken."""
    if len(token) > links.MAX_TOKEN_CHARS:
        raise links.InvalidToken("token: too long")
    payload, dot, sig = token.partition(".")
    if not dot or not payload or not sig:
        raise links.InvalidToken("token: expected <payload>.<signature>")
    if not hmac.compare_digest(links._unb64(sig), _sign(secret, payload)):
        raise links.InvalidToken("token: signature does not match")
    try:
        k, workspace_id, profile_id, ref, issued = links._unb64(payload).decode("utf-8").split("|")
        claims = ConsentClaims(
            k, workspace_id, int(profile_id), int(ref), datetime.fromtimestamp(int(issued), UTC)
        )
    except (ValueError, UnicodeDecodeError, OverflowError, OSError):
        raise links.InvalidToken("token: malformed payload") from None
    if claims.kind != kind:
        raise links.InvalidToken(f"token: expected a {kind!r} token, got {claims.kind!r}")
    if kind == CONFIRM and now is not None and now - claims.issued_at > CONFIRM_TTL:
        raise links.InvalidToken("token: this confirmation link has expired; please subscribe again")
    return claims


def confirm_url(
    public_url: str,
    secret: bytes,
    *,
    workspace_id: str,
    profile_id: int,
    request_event_id: int,
    now: datetime,
) -> str:
    token = make_token(secret, ConsentClaims(CONFIRM, workspace_id, profile_id, request_event_id, now))
    return f"{public_url.rstrip('/')}/confirm/{token}"


def preferences_url(public_url: str, secret: bytes, *, workspace_id: str, profile_id: int) -> str:
    # issued_at is fixed so the link is the same in every email (stable, cacheable, dedupable).
    token = make_token(
        secret, ConsentClaims(PREFERENCES, workspace_id, profile_id, 0, datetime.fromtimestamp(0, UTC))
    )
    return f"{public_url.rstrip('/')}/preferences/{token}"
