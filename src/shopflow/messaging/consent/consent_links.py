"""Signed links for double opt-in confirmation and the preference center (no login needed).

Same shape as messaging.tracking.links (`<payload>.<signature>`, urlsafe base64, HMAC-SHA256 truncated to
128 bits) but signed under its own domain-separation prefix, so a tracking token can never pass
for a consent token or the other way round. A confirmation link expires; a preferences link, which
sits in the footer of every email a person keeps, does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shopflow.messaging.tracking import links, tokens

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


def make_token(secret: bytes, claims: ConsentClaims) -> str:
    if claims.kind not in _KINDS:
        raise ValueError(f"kind: expected one of {_KINDS}, got {claims.kind!r}")
    issued = str(int(claims.issued_at.timestamp()))
    fields = [claims.kind, claims.workspace_id, str(claims.profile_id), str(claims.ref), issued]
    return tokens.seal(secret, fields, domain=_DOMAIN)


def verify(secret: bytes, token: str, *, kind: str, now: datetime | None = None) -> ConsentClaims:
    """The claims of a genuine, unexpired token of `kind`; else links.InvalidToken."""
    parts = tokens.unseal(secret, token, domain=_DOMAIN)
    try:
        k, workspace_id, profile_id, ref, issued = parts
        claims = ConsentClaims(
            k, workspace_id, int(profile_id), int(ref), datetime.fromtimestamp(int(issued), UTC)
        )
    except (ValueError, OverflowError, OSError):
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
