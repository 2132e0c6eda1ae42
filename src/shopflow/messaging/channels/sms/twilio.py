"""Twilio Programmable Messaging over its REST API (form-encoded POST, HTTP Basic auth).

POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json with To, From (or MessagingServiceSid),
Body and StatusCallback; the answer is JSON with the message's `sid`. Settings (workspace `sms`):
provider=twilio, account_sid, auth_token, from or messaging_service_sid, base_url (tests), rate, burst.

Twilio queues what it cannot send at once (a US long code sends 1 message/s; toll-free, short codes
and messaging services more) rather than refusing it, so `sms.rate` is off unless set; it is kept per
account and sender, which is how Twilio counts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from shopflow.domain import ratelimit as bucket_rules
from shopflow.messaging.channels import ratelimit
from shopflow.messaging.channels.base import SendResult
from shopflow.messaging.channels.sms.base import (
    ConcurrentSender,
    OutgoingSms,
    SmsConfigError,
    http_outcome,
    send_rate,
    setting,
)
from shopflow.messaging.channels.sms.base import concurrency as sms_concurrency

DEFAULT_BASE_URL = "https://api.twilio.com"
API_VERSION = "2010-04-01"


class TwilioChannel:
    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str = "",
        messaging_service_sid: str = "",
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 15.0,
        concurrency: int = 4,
        rate: bucket_rules.Rate = bucket_rules.UNLIMITED,
        buckets: ratelimit.Buckets | None = None,
    ) -> None:
        if not sender and not messaging_service_sid:
            raise SmsConfigError("sms.from: required (or sms.messaging_service_sid) for provider 'twilio'")
        self.account_sid = account_sid
        self.sender = sender
        self.messaging_service_sid = messaging_service_sid
        self.url = f"{base_url.rstrip('/')}/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        self._client = httpx.Client(auth=(account_sid, auth_token), timeout=timeout)
        key = ratelimit.bucket_key("sms", "twilio", account_sid, messaging_service_sid or sender)
        self._sender = ConcurrentSender(concurrency, ratelimit.limiter(buckets, key, rate))

    def __repr__(self) -> str:  # never show the token
        return f"TwilioChannel(account_sid={self.account_sid!r}, url={self.url!r})"

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        return self._sender.run(batch, self._send_one, provider="Twilio")

    def _send_one(self, sms: OutgoingSms) -> SendResult:
        form = {"To": sms.to, "Body": sms.body}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = sms.sender or self.sender
        if sms.status_callback:
            form["StatusCallback"] = sms.status_callback
        return _result(sms.message_id, self._client.post(self.url, data=form))

    def close(self) -> None:
        self._sender.close()
        self._client.close()


def _result(message_id: int, response: httpx.Response) -> SendResult:
    try:
        data: Any = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    sid = data.get("sid")
    detail = ""
    if response.status_code >= 300:
        # Twilio errors: {"code": 21211, "message": "The 'To' number ... is not a valid phone number."}
        detail = f"Twilio {data.get('code', '')} {data.get('message', response.reason_phrase)}".strip()
    return http_outcome(message_id, response.status_code, detail, str(sid) if sid else None)


def from_settings(config: Mapping[str, Any], buckets: ratelimit.Buckets | None = None) -> TwilioChannel:
    return TwilioChannel(
        account_sid=setting(config, "account_sid"),
        auth_token=setting(config, "auth_token"),
        sender=setting(config, "from", required=False),
        messaging_service_sid=setting(config, "messaging_service_sid", required=False),
        base_url=setting(config, "base_url", required=False) or DEFAULT_BASE_URL,
        concurrency=sms_concurrency(config),
        rate=send_rate(config),
        buckets=buckets,
    )


# --- request validation (X-Twilio-Signature) ------------------------------------------------------


def signature(auth_token: str, url: str, params: Mapping[str, Sequence[str]]) -> str:
    """Twilio's documented algorithm: the full URL, then each POST parameter sorted by name with its
    value appended (name + value, values sorted), HMAC-SHA1 keyed with the auth token, base64."""
    data = url
    for name in sorted(params):
        for value in sorted(set(params[name])):
            data += name + value
    digest = hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_and_without_port(url: str) -> list[str]:
    """Twilio may sign the URL with or without the default port (its own validator tries both)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = 443 if parts.scheme == "https" else 80
    bare = urlunsplit(parts._replace(netloc=host))
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default}"))
    return [url, bare, with_port]


def verify(auth_token: str, urls: Sequence[str], params: Mapping[str, Sequence[str]], given: str) -> bool:
    if not auth_token or not given:
        return False
    for url in urls:
        for candidate in _with_and_without_port(url):
            if hmac.compare_digest(signature(auth_token, candidate, params), given):
                return True
    return False
