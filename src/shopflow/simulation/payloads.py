"""Simulated actions as Segment HTTP API payloads (track / identify, e-commerce spec v2 names).

Money is sent as JSON numbers with at most two decimals (a float prints back as the same
decimal), so ingest, which parses JSON numbers as Decimal, keeps the amounts exact.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shopflow.simulation import activity

# Segment e-commerce spec v2 event names; "Subscribed" is our own (the welcome series trigger).
EVENT_NAMES: dict[str, str] = {
    activity.VIEW: "Product Viewed",
    activity.ADD_TO_CART: "Product Added",
    activity.CHECKOUT: "Checkout Started",
    activity.ORDER: "Order Completed",
    activity.REFUND: "Order Refunded",
    activity.CANCEL: "Order Cancelled",
    activity.SUBSCRIBE: "Subscribed",
}

_CONTEXT = {"library": {"name": "shopflow-simulation", "version": "1"}}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _timestamp(action: activity.Action) -> str:
    return action.time.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_ingestable(action: activity.Action) -> bool:
    """Opens and clicks go through the tracking endpoints, not the Segment API."""
    return action.kind == activity.IDENTIFY or action.kind in EVENT_NAMES


def to_segment(action: activity.Action) -> dict[str, Any]:
    """The Segment payload for an action (messageId = the action's deterministic id)."""
    base: dict[str, Any] = {
        "userId": action.user_id,
        "messageId": action.id,
        "timestamp": _timestamp(action),
        "context": _CONTEXT,
    }
    if action.kind == activity.IDENTIFY:
        # traits: email, first_name, timezone and, for opt-ins, {"consent": {"email": "subscribed"}}
        return {"type": "identify", **base, "traits": _plain(action.properties)}
    name = EVENT_NAMES.get(action.kind)
    if name is None:
        raise ValueError(
            f"action.kind: {action.kind!r} is not a Segment event (expected one of "
            f"{', '.join(sorted([activity.IDENTIFY, *EVENT_NAMES]))}); send opens and clicks to the tracking endpoints"
        )
    props = dict(action.properties)
    if action.kind in (activity.CHECKOUT, activity.ORDER):
        # The spec names the order amount `revenue` (and `total`); we send both, plus `value`.
        props["revenue"] = props["total"] = props["value"]
    elif action.kind in (activity.REFUND, activity.CANCEL):
        props["total"] = props["value"]
    return {"type": "track", **base, "event": name, "properties": _plain(props)}
