"""A generic JSON-over-HTTP SMS gateway: most SMS APIs are one POST with the number and the text.

Settings (workspace `sms`): provider=http, url, headers (e.g. {"Authorization": "Bearer ..."}),
body (a JSON template whose strings may hold {to}, {from}, {body}, {message_id}, {status_callback};
default {"to": "{to}", "from": "{from}", "text": "{body}"}), id_field (dotted path of the provider's
id in the JSON answer, default "id"), rate and burst (a limit kept per gateway URL, without its query).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

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

DEFAULT_BODY: dict[str, Any] = {"to": "{to}", "from": "{from}", "text": "{body}"}


def fill(template: Any, values: Mapping[str, str]) -> Any:
    """Substitute placeholders in the template's strings only; values never become JSON syntax."""
    if isinstance(template, str):
        out = template
        for name, value in values.items():
            out = out.replace("{" + name + "}", value)
        return out
    if isinstance(template, Mapping):
        return {str(k): fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def _dig(data: Any, path: str) -> str | None:
    for part in path.split("."):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return None if data is None or isinstance(data, dict | list) else str(data)


class HttpSmsChannel:
    def __init__(
        self,
        *,
        url: str,
        sender: str = "",
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        id_field: str = "id",
        timeout: float = 15.0,
        concurrency: int = 4,
        rate: bucket_rules.Rate = bucket_rules.UNLIMITED,
        buckets: ratelimit.Buckets | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise SmsConfigError(f"sms.url: expected an http:// or https:// URL, got {url!r}")
        self.url = url
        self.sender = sender
        self.body = DEFAULT_BODY if body is None else body
        self.id_field = id_field
        self._client = httpx.Client(headers=dict(headers or {}), timeout=timeout)
        # The query may carry an API key: the bucket (a database row) is named without it.
        parts = urlsplit(url)
        key = ratelimit.bucket_key("sms", "http", f"{parts.hostname}:{parts.port or ''}{parts.path}")
        self._sender = ConcurrentSender(concurrency, ratelimit.limiter(buckets, key, rate))

    def __repr__(self) -> str:  # headers carry credentials: never shown
        return f"HttpSmsChannel(url={self.url!r})"

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        return self._sender.run(batch, self._send_one, provider="SMS gateway")

    def _send_one(self, sms: OutgoingSms) -> SendResult:
        payload = fill(
            self.body,
            {
                "to": sms.to,
                "from": sms.sender or self.sender,
                "body": sms.body,
                "message_id": str(sms.message_id),
                "status_callback": sms.status_callback or "",
            },
        )
        response = self._client.post(self.url, json=payload)
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        detail = response.text[:200] if response.status_code >= 300 else ""
        return http_outcome(sms.message_id, response.status_code, detail, _dig(data, self.id_field))

    def close(self) -> None:
        self._sender.close()
        self._client.close()


def from_settings(config: Mapping[str, Any], buckets: ratelimit.Buckets | None = None) -> HttpSmsChannel:
    headers = config.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise SmsConfigError("sms.headers: expected an object of header names to string values")
    body = config.get("body")
    if body is not None and not isinstance(body, dict | list):
        raise SmsConfigError("sms.body: expected a JSON object (or array) template")
    return HttpSmsChannel(
        url=setting(config, "url"),
        sender=setting(config, "from", required=False),
        headers=headers,
        body=body,
        id_field=setting(config, "id_field", required=False) or "id",
        concurrency=sms_concurrency(config),
        rate=send_rate(config),
        buckets=buckets,
    )
