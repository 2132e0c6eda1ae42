"""Segment HTTP tracking API payloads (track, identify, page, screen, alias, group) -> CanonicalEvents.

Wire format: https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/
E-commerce names follow the Segment e-commerce spec v2.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shopflow.domain import events as ev
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import safe_json

SOURCE = "segment"
TYPES = frozenset({"track", "identify", "page", "screen", "alias", "group"})
MAX_NAME = 200
MAX_ID = 200
# Property keys holding money: kept as exact decimal strings, never floats.
MONEY_KEYS = frozenset({"revenue", "total", "value", "subtotal", "tax", "shipping", "discount", "price"})
PRODUCT_KEYS = (
    "product_id",
    "sku",
    "name",
    "category",
    "brand",
    "variant",
    "price",
    "quantity",
    "url",
    "image_url",
)


class PayloadError(ValueError):
    """A message does not follow the wire format; the text names the field, value and expectation."""


def loads(raw: bytes) -> Any:
    """Parse JSON keeping every non-integer number an exact Decimal; nesting and strings checked."""
    try:
        return safe_json.loads(raw, parse_float=Decimal)
    except safe_json.JsonError as exc:
        raise PayloadError(str(exc)) from None
    except UnicodeDecodeError:
        raise PayloadError("body: expected UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"body: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError:  # an integer past Python's 4,300-digit limit (int_max_str_digits)
        raise PayloadError("body: expected numbers of at most 4300 digits") from None


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _object(msg: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = msg.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where}{key}: expected an object, got {_type_name(value)} {_describe(value)}")
    return value


def _id(msg: dict[str, Any], key: str, where: str) -> str | None:
    value = msg.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"{where}{key}: expected a string, got {_type_name(value)} {_describe(value)}")
    text = str(value)
    if len(text) > MAX_ID:
        raise PayloadError(f"{where}{key}: expected at most {MAX_ID} characters, got {len(text)}")
    return text


def _time(msg: dict[str, Any], key: str, where: str) -> datetime | None:
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(
            f"{where}{key}: expected an ISO 8601 time string, got {_type_name(value)} {_describe(value)}"
        )
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(
            f"{where}{key}: expected an ISO 8601 time like 2026-01-05T09:00:00Z, got {value!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def money(value: Any, field: str) -> Decimal | None:
    """An exact amount from a JSON number or numeric string."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str | float):
        raise PayloadError(f"{field}: expected a number, got {_type_name(value)} {_describe(value)}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PayloadError(f"{field}: expected a number, got {value!r}") from None
    if not amount.is_finite() or abs(amount) >= Decimal("1e14"):
        raise PayloadError(f"{field}: expected a finite amount below 10^14, got {value!r}")
    return amount


def _plain(value: Any) -> Any:
    """JSON-ready properties: money stays an exact string, other decimals become numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, dict):
        return {
            str(k): (str(v) if k in MONEY_KEYS and isinstance(v, Decimal) else _plain(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def message_id_for(msg: dict[str, Any]) -> str:
    """A deterministic id for a message without one, so a retried request is stored once."""
    body = {k: v for k, v in msg.items() if k not in ("writeKey", "sentAt")}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return "auto-" + digest[:40]


def _products(props: dict[str, Any], where: str) -> list[dict[str, Any]] | None:
    items = props.get("products")
    if items is None:
        return None
    if not isinstance(items, list):
        raise PayloadError(f"{where}properties.products: expected an array, got {_type_name(items)}")
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise PayloadError(f"{where}properties.products[{n}]: expected an object, got {_type_name(item)}")
        product = {**item}
        if product.get("product_id") is None and product.get("id") is not None:
            product["product_id"] = product.pop("id")
        if product.get("product_id") is not None:
            product["product_id"] = str(product["product_id"])
        price = money(product.get("price"), f"{where}properties.products[{n}].price")
        if price is not None:
            product["price"] = str(price)
        quantity = product.get("quantity")
        if quantity is not None:
            if isinstance(quantity, bool) or not isinstance(quantity, int | Decimal):
                raise PayloadError(
                    f"{where}properties.products[{n}].quantity: expected an integer, got {_describe(quantity)}"
                )
            product["quantity"] = int(quantity)
        out.append(_plain(product))
    return out


CONSENT_CHANNELS = ("email", "sms", "push")
CONSENT_STATUSES = ("subscribed", "unsubscribed", "never_subscribed")


def _consent(value: Any, *, when: datetime, context: dict[str, Any], where: str) -> tuple[ConsentChange, ...]:
    """The `consent` trait, e.g. {"email": "subscribed", "sms": "unsubscribed"}, as consent changes.

    The evidence kept with each change: the source (this API), the time, and the client's IP and
    page when the library sent them.
    """
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise PayloadError(
            f'{where}traits.consent: expected an object like {{"email": "subscribed"}}, got {_type_name(value)}'
        )
    details: dict[str, Any] = {}
    if isinstance(context.get("ip"), str):
        details["ip"] = context["ip"]
    page = context.get("page")
    if isinstance(page, dict) and isinstance(page.get("url"), str):
        details["form_url"] = page["url"]
    changes = []
    for channel, status in value.items():
        if channel not in CONSENT_CHANNELS:
            raise PayloadError(
                f"{where}traits.consent: expected channels {list(CONSENT_CHANNELS)}, got {_describe(channel)}"
            )
        if status not in CONSENT_STATUSES:
            raise PayloadError(
                f"{where}traits.consent.{channel}: expected one of {list(CONSENT_STATUSES)}, got {_describe(status)}"
            )
        changes.append(
            ConsentChange(channel=channel, status=status, occurred_at=when, source=SOURCE, details=details)
        )
    return tuple(changes)


MAX_EMAIL = 320  # RFC 5321: a 64-character local part, "@" and a 255-character domain
MAX_PHONE = 64


def _identifier_traits(traits: dict[str, Any], where: str) -> None:
    """`email` and `phone` identify the person: one that cannot be used is an error, not dropped."""
    email = traits.get("email")
    if email is not None and email != "":
        if not isinstance(email, str):
            raise PayloadError(
                f"{where}email: expected an email address (a string), got {_type_name(email)} {_describe(email)}"
            )
        if len(email) > MAX_EMAIL:
            raise PayloadError(f"{where}email: expected at most {MAX_EMAIL} characters, got {len(email)}")
    phone = traits.get("phone")
    if phone is not None and phone != "":
        if isinstance(phone, bool) or not isinstance(phone, str | int):
            raise PayloadError(
                f"{where}phone: expected a phone number (a string), got {_type_name(phone)} {_describe(phone)}"
            )
        if len(str(phone)) > MAX_PHONE:
            raise PayloadError(
                f"{where}phone: expected at most {MAX_PHONE} characters, got {len(str(phone))}"
            )


def parse_message(msg: Any, *, kind: str | None, now: datetime, where: str = "") -> CanonicalEvent | None:
    """One wire message -> a canonical event (None for `group`, which Shopflow ignores).

    `kind` is the endpoint's type (None inside /v1/batch, where each message names its own);
    `where` prefixes field names in errors ("batch[3].").
    """
    if not isinstance(msg, dict):
        raise PayloadError(f"{where or 'body'}: expected a JSON object, got {_type_name(msg)}")
    msg_type = msg.get("type", kind)
    if (kind is None or "type" in msg) and (not isinstance(msg_type, str) or msg_type not in TYPES):
        raise PayloadError(f"{where}type: expected one of {sorted(TYPES)}, got {_describe(msg_type)}")
    assert isinstance(msg_type, str)
    if kind is not None and msg_type != kind:
        raise PayloadError(f"{where}type: this endpoint takes {kind!r} messages, got {msg_type!r}")
    user_id = _id(msg, "userId", where)
    anonymous_id = _id(msg, "anonymousId", where)
    if user_id is None and anonymous_id is None:
        raise PayloadError(f"{where}userId: expected userId or anonymousId (a non-empty string), got neither")
    message_id = _id(msg, "messageId", where) or message_id_for(msg)
    context = _object(msg, "context", where)
    traits = dict(_object(msg, "traits", where))
    context_traits = context.get("traits")
    if isinstance(context_traits, dict):
        _identifier_traits(context_traits, f"{where}context.traits.")
        traits = {**context_traits, **traits}
    _identifier_traits(_object(msg, "traits", where), f"{where}traits.")
    properties = dict(_object(msg, "properties", where))

    # Segment's clock-skew correction: the device clock is off by (sentAt - now).
    when = _time(msg, "timestamp", where) or _time(msg, "originalTimestamp", where) or now
    sent_at = _time(msg, "sentAt", where)
    if sent_at is not None:
        try:
            when = now - (sent_at - when)
        except OverflowError:  # e.g. sentAt in year 1 and timestamp in 9999
            raise PayloadError(
                f"{where}sentAt: expected a time near timestamp (their difference corrects the device's"
                f" clock), got sentAt {_describe(msg.get('sentAt'))} for timestamp"
                f" {_describe(msg.get('timestamp', msg.get('originalTimestamp')))}"
            ) from None

    consent = _consent(traits.pop("consent", None), when=when, context=context, where=where)
    email = traits.get("email")
    phone = traits.get("phone")
    identity = Identity(
        external_id=user_id,
        email=email if isinstance(email, str) else None,
        phone=phone if isinstance(phone, str) else None,
        anonymous_id=anonymous_id,
    )
    base: dict[str, Any] = {
        "message_id": message_id,
        "source": SOURCE,
        "identity": identity,
        "time": when,
        "traits": _plain(traits) if msg_type == "identify" else {},
        "consent": consent,
    }
    if msg_type == "group":
        return None
    if msg_type == "identify":
        return CanonicalEvent(**base)
    if msg_type == "alias":
        previous = _id(msg, "previousId", where)
        if previous is None:
            raise PayloadError(f"{where}previousId: expected the previous id (a non-empty string)")
        if user_id is None:
            raise PayloadError(f"{where}userId: alias needs the new userId")
        return CanonicalEvent(**base, previous_id=previous)
    if msg_type in ("page", "screen"):
        name = msg.get("name")
        if name is not None and not isinstance(name, str):
            raise PayloadError(f"{where}name: expected a string, got {_type_name(name)} {_describe(name)}")
        if name:
            properties.setdefault("name", name)
        category = msg.get("category")
        if isinstance(category, str) and category:
            properties.setdefault("category", category)
        page = context.get("page")
        if isinstance(page, dict):
            for key in ("url", "path", "title", "referrer"):
                if key in page and key not in properties:
                    properties[key] = page[key]
        metric = ev.VIEWED_PAGE if msg_type == "page" else "Viewed Screen"
        return CanonicalEvent(**base, name=metric, properties=_plain(properties))

    event_name = msg.get("event")
    if not isinstance(event_name, str) or not event_name.strip():
        raise PayloadError(
            f"{where}event: expected the event name (a non-empty string), got {_describe(event_name)}"
        )
    if len(event_name) > MAX_NAME:
        raise PayloadError(f"{where}event: expected at most {MAX_NAME} characters, got {len(event_name)}")
    metric = ev.SEGMENT_ECOMMERCE.get(event_name, event_name)
    value: Decimal | None = None
    for key in ("revenue", "total", "value"):
        if properties.get(key) is not None:
            value = money(properties[key], f"{where}properties.{key}")
            break
    currency = properties.get("currency")
    if currency is not None and (not isinstance(currency, str) or len(currency.strip()) != 3):
        raise PayloadError(
            f"{where}properties.currency: expected a 3-letter ISO 4217 code, got {_describe(currency)}"
        )
    products = _products(properties, where)
    out = _plain(properties)
    if products is not None:
        out["products"] = products
    if metric != event_name:
        out.setdefault("segment_event", event_name)
    for key in ("order_id", "checkout_id", "product_id"):
        if out.get(key) is not None:
            out[key] = str(out[key])
    return CanonicalEvent(
        **base,
        name=metric,
        properties=out,
        value=value,
        currency=currency.strip().upper() if isinstance(currency, str) else None,
    )
