"""Provider registry: a provider is one file under channels/<kind>/ and one line here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shopflow.messaging.channels import ratelimit
from shopflow.messaging.channels.sms import http as sms_http
from shopflow.messaging.channels.sms import twilio
from shopflow.messaging.channels.sms.base import SmsChannel, SmsConfigError

# A factory is given the settings and where `sms.rate` buckets live (None: this channel only).
SmsFactory = Callable[[Mapping[str, Any], ratelimit.Buckets | None], SmsChannel]

SMS_PROVIDERS: dict[str, SmsFactory] = {
    "twilio": twilio.from_settings,
    "http": sms_http.from_settings,
}


def sms_channel(config: Mapping[str, Any], *, buckets: ratelimit.Buckets | None = None) -> SmsChannel:
    """Build the SMS provider a workspace's `sms` settings name; `buckets` shares its `sms.rate`
    with every worker process (DatabaseBuckets)."""
    name = config.get("provider")
    factory = SMS_PROVIDERS.get(name) if isinstance(name, str) else None
    if factory is None:
        raise SmsConfigError(f"sms.provider: expected one of {sorted(SMS_PROVIDERS)}, got {name!r}")
    return factory(config, buckets)
