"""Is an email open a person, or a machine (privacy proxy, prefetcher, security scanner)?

Apple Mail Privacy Protection's IP ranges are not available offline, so this relies on what the
request itself shows: proxy User-Agents (Gmail's GoogleImageProxy, Yahoo's YMail proxies, ...), a
HEAD request (no mail client shows an image with HEAD), and timing — an open within seconds of
delivery is a prefetch at arrival, not a person reading.
"""

from __future__ import annotations

from datetime import timedelta

# Substrings (lower case) of User-Agents that fetch images on the reader's behalf or ahead of them.
PROXY_AGENTS = (
    "googleimageproxy",
    "ggpht.com",
    "yahoomailproxy",
    "ymailproxy",
    "ymail",
    "yahoo! slurp",
    "outlook-iosandroid",
    "microsoft office/16.0 (microsoft outlook mail",
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "python-requests",
    "curl/",
    "wget/",
    "go-http-client",
)
PREFETCH_WINDOW = timedelta(seconds=2)


def is_proxy_agent(user_agent: str | None) -> bool:
    ua = (user_agent or "").lower()
    return any(marker in ua for marker in PROXY_AGENTS)


def is_machine_open(*, method: str, user_agent: str | None, since_sent: timedelta | None) -> bool:
    """True for a HEAD request, a known proxy/scanner User-Agent, a missing User-Agent, or an
    open within PREFETCH_WINDOW of the send (a fetch at delivery, e.g. Apple MPP)."""
    if method.upper() == "HEAD":
        return True
    if not (user_agent or "").strip():
        return True
    if is_proxy_agent(user_agent):
        return True
    return since_sent is not None and timedelta(0) <= since_sent < PREFETCH_WINDOW
