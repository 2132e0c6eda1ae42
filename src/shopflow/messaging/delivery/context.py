"""The variables a template sees (profile, event, items, store, links, send time), for every channel
and for previews (messaging.templates.preview)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shopflow.store import messages, workspaces


def _items(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = event.get("products") or event.get("line_items") or []
    items: list[dict[str, Any]] = []
    if not isinstance(raw, list):
        return items
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        quantity = entry.get("quantity", 1)
        items.append(
            {
                "name": entry.get("name") or entry.get("title") or "",
                "price": _decimal(entry.get("price")),
                "quantity": quantity if isinstance(quantity, int) else _int(quantity),
                "url": entry.get("url"),
                "image_url": entry.get("image_url") or entry.get("image"),
            }
        )
    return items


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 1


def _points(properties: Mapping[str, Any]) -> int:
    for key in ("points", "loyalty_points"):
        value = properties.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float | Decimal) or (isinstance(value, str) and value.strip()):
            try:
                return int(Decimal(str(value)))
            except (InvalidOperation, ValueError):
                continue
    return 0


def render_context(
    msg: messages.ClaimedMessage,
    *,
    person: messages.Recipient,
    workspace: workspaces.Workspace,
    unsubscribe_url: str,
    preferences_url: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The variables a template sees (documented in the template format: profile, event, items, ...).

    `send_time` (when `now` is given): the moment of delivery as `epoch` seconds and ISO `date`, so
    a template can show a date relative to the send (an offer's expiry:
    `{{ send_time.epoch | plus: 1209600 | date: "%B %-d, %Y" }}` is two weeks on)."""
    settings = workspace.settings
    ctx = msg.context
    raw_event = ctx.get("event", ctx)
    event: dict[str, Any] = dict(raw_event) if isinstance(raw_event, Mapping) else {}
    store_currency = str(settings.get("currency") or "USD")
    return {
        "profile": {
            "email": person.email,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "phone": person.phone,
            "properties": person.properties,
            "order_count": person.order_count,
            "total_spent": person.total_spent,
            "timezone": person.timezone,
            # `| local_date` shows it in the profile's zone; nil for someone who never ordered.
            "last_order_date": person.last_order_at,
            # Loyalty as the store records it: properties.vip (the vip-loyalty flow sets it) and
            # properties.points or loyalty_points (from a loyalty app's traits).
            "vip": person.properties.get("vip") in (True, "true", "yes", 1),
            "points": _points(person.properties),
        },
        "event": event,
        "items": _items(event),
        "currency": str(event.get("currency") or store_currency),
        "store": {
            "name": settings.get("store_name") or settings.get("from_name") or workspace.name,
            "url": settings.get("store_url") or "",
            "postal_address": settings.get("postal_address") or "",
            "currency": store_currency,
            "timezone": str(settings.get("timezone") or "UTC"),
        },
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "message": {"id": msg.id},
        **(
            {}
            if now is None
            else {"send_time": {"epoch": int(now.timestamp()), "date": now.date().isoformat()}}
        ),
    }


def text_context(
    msg: messages.ClaimedMessage,
    *,
    person: messages.Recipient,
    workspace: workspaces.Workspace,
    now: datetime | None = None,
) -> dict[str, Any]:
    """`render_context` for a short text (SMS, push): no unsubscribe or preferences link, since
    the way out is STOP or the browser's own notification setting."""
    return render_context(
        msg, person=person, workspace=workspace, unsubscribe_url="", preferences_url="", now=now
    )
