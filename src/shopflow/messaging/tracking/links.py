"""Signed links in messages: open pixel, click redirect and unsubscribe.

A token is `<payload>.<signature>` (messaging/tracking/tokens.py). The payload names the kind,
workspace, message, profile and flow; the signature covers the payload and, for clicks, the target
URL too, so a token cannot be reused to redirect anywhere else.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from shopflow.messaging.tracking import tokens

OPEN = "o"
CLICK = "c"
UNSUBSCRIBE = "u"
_KINDS = (OPEN, CLICK, UNSUBSCRIBE)
MAX_TOKEN_CHARS = tokens.MAX_TOKEN_CHARS
InvalidToken = tokens.InvalidToken


@dataclass(frozen=True)
class LinkClaims:
    kind: str
    workspace_id: str
    message_id: int
    profile_id: int
    flow_id: int | None


def _bound(url: str | None) -> bytes:
    """A click token signs its target URL too, so it cannot redirect anywhere else."""
    return b"" if url is None else b"\n" + url.encode()


def make_token(secret: bytes, claims: LinkClaims, *, url: str | None = None) -> str:
    if claims.kind not in _KINDS:
        raise ValueError(f"kind: expected one of {_KINDS}, got {claims.kind!r}")
    if (claims.kind == CLICK) != (url is not None):
        raise ValueError("url: a click token needs its target URL, other tokens take none")
    flow = "" if claims.flow_id is None else str(claims.flow_id)
    fields = [claims.kind, claims.workspace_id, str(claims.message_id), str(claims.profile_id), flow]
    return tokens.seal(secret, fields, bound=_bound(url))


def verify(secret: bytes, token: str, *, kind: str, url: str | None = None) -> LinkClaims:
    """The claims of a genuine token of `kind` (and, for clicks, of exactly this URL), else InvalidToken."""
    parts = tokens.unseal(secret, token, bound=_bound(url if kind == CLICK else None))
    try:
        k, workspace_id, message_id, profile_id, flow = parts
        claims = LinkClaims(k, workspace_id, int(message_id), int(profile_id), int(flow) if flow else None)
    except ValueError:
        raise InvalidToken("token: malformed payload") from None
    if claims.kind != kind:
        raise InvalidToken(f"token: expected a {kind!r} token, got {claims.kind!r}")
    return claims


# --- URLs ---------------------------------------------------------------------------------


def open_url(public_url: str, secret: bytes, claims: LinkClaims) -> str:
    token = make_token(secret, _with_kind(claims, OPEN))
    return f"{public_url.rstrip('/')}/t/o/{token}.gif"


def click_url(public_url: str, secret: bytes, claims: LinkClaims, target: str) -> str:
    token = make_token(secret, _with_kind(claims, CLICK), url=target)
    return f"{public_url.rstrip('/')}/t/c/{token}?u={quote(target, safe='')}"


def unsubscribe_url(public_url: str, secret: bytes, claims: LinkClaims) -> str:
    token = make_token(secret, _with_kind(claims, UNSUBSCRIBE))
    return f"{public_url.rstrip('/')}/u/{token}"


def _with_kind(claims: LinkClaims, kind: str) -> LinkClaims:
    return LinkClaims(kind, claims.workspace_id, claims.message_id, claims.profile_id, claims.flow_id)


_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.I)
_BODY_END = re.compile(r"</body\s*>", re.I)


def utm_params(*, campaign: str, content: str | None, medium: str = "email") -> dict[str, str]:
    """The UTM parameters Shopflow adds to every tracked link of a message."""
    params = {"utm_source": "shopflow", "utm_medium": medium, "utm_campaign": campaign}
    if content:
        params["utm_content"] = content
    return params


def add_utm(url: str, utm: Mapping[str, str]) -> str:
    """`url` with each utm_* parameter added unless the link already sets that parameter."""
    parts = urlsplit(url)
    existing = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = [(k, v) for k, v in utm.items() if k not in existing]
    if not extra:
        return url
    query = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def track_html(
    html: str,
    *,
    public_url: str,
    secret: bytes,
    claims: LinkClaims,
    skip: set[str],
    utm: Mapping[str, str] | None = None,
) -> str:
    """Route every http(s) link through the click redirect and add the open pixel.

    Links in `skip` (the unsubscribe and preferences links) stay direct: following them is not
    engagement, and mail scanners that prefetch them must not count as clicks. `utm`: parameters
    added to each tracked target (never overriding a utm_* the link already has).
    """

    def rewrite(match: re.Match[str]) -> str:
        target = html_lib.unescape(match.group(3))
        if target in skip:
            return match.group(0)
        if utm:
            target = add_utm(target, utm)
        tracked = click_url(public_url, secret, claims, target)
        return f"{match.group(1)}{match.group(2)}{html_lib.escape(tracked)}{match.group(2)}"

    html = _HREF.sub(rewrite, html)
    pixel = (
        f'<img src="{html_lib.escape(open_url(public_url, secret, claims))}" width="1" height="1" '
        'alt="" style="display:block;border:0;width:1px;height:1px">'
    )
    found = _BODY_END.search(html)
    if found is None:
        return html + pixel
    return html[: found.start()] + pixel + html[found.start() :]
