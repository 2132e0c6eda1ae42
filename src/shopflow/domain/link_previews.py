"""Is a fetch of a short link a person tapping it, or a messaging app building a link preview?

iMessage, WhatsApp, Telegram, Slack and others fetch a link as soon as the message is shown, to draw
a preview card; counting that as a click would credit orders to texts nobody tapped. They announce
themselves in the User-Agent (iMessage borrows Facebook's and Twitter's crawler names).
"""

from __future__ import annotations

# Substrings (lower case) of User-Agents of link-preview fetchers and crawlers.
PREVIEW_AGENTS = (
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "whatsapp",
    "telegrambot",
    "slackbot",
    "discordbot",
    "skypeuripreview",
    "linkedinbot",
    "googlebot",
    "bingpreview",
    "embedly",
    "viber",
)


def is_preview(*, method: str, user_agent: str | None) -> bool:
    """True for a HEAD request (a browser following a link uses GET), a missing User-Agent, or a
    known preview fetcher's."""
    if method.upper() == "HEAD":
        return True
    ua = (user_agent or "").strip().lower()
    return not ua or any(marker in ua for marker in PREVIEW_AGENTS)
