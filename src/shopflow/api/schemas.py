"""What /openapi.json publishes for routes that read their body themselves (to bound its size and
depth and name the field in errors): the real request bodies, and the error every route answers
with (400 naming the field, never FastAPI's 422)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder

from shopflow.api import deps

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "the field path, the value and what was expected"},
        "errors": {"type": "array", "description": "every problem, when there are several"},
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def exact(value: Any) -> Any:
    """`value` in JSON's types with money exact: a Decimal becomes its decimal string, never a float."""
    return jsonable_encoder(value, custom_encoder={Decimal: str})


# For `responses=` of a route: {404: schemas.error_response("no such flow")}.


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


_BAD_INPUT = {
    "description": "Bad input: the error names the field path, the value and what was expected",
    "content": {"application/json": {"schema": _ERROR_REF}},
}

ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": deps.MAX_ID}
_TEXT = {"type": "string", "maxLength": 200}
_OBJECT = {"type": "object"}
_EVENT = {"type": "object", "description": "a sample trigger event: name, properties, value"}

# One Segment HTTP API message (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/).
SEGMENT_MESSAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"enum": ["track", "identify", "page", "screen", "alias", "group"]},
        "userId": _TEXT,
        "anonymousId": _TEXT,
        "messageId": _TEXT,
        "event": {"type": "string", "minLength": 1, "maxLength": 200},
        "name": _TEXT,
        "previousId": _TEXT,
        "properties": _OBJECT,
        "traits": {
            "type": "object",
            "properties": {
                "email": {"type": "string", "maxLength": 320},
                "phone": {"type": "string", "maxLength": 64},
                "consent": {
                    "type": "object",
                    "additionalProperties": {"enum": ["subscribed", "unsubscribed", "never_subscribed"]},
                },
            },
        },
        "context": _OBJECT,
        "timestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "writeKey": {"type": "string"},
    },
}
SEGMENT_BATCH: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "maxItems": 2500, "items": SEGMENT_MESSAGE},
        "context": _OBJECT,
        "writeKey": {"type": "string"},
    },
}
FLOW_DEFINITION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "trigger", "entry", "nodes"],
    "description": "a flow definition: id, name, trigger, entry and nodes (see docs and the library)",
    "properties": {
        "id": _TEXT,
        "name": _TEXT,
        "trigger": {"type": "object", "required": ["type"]},
        "entry": _TEXT,
        "nodes": {"type": "array", "items": {"type": "object", "required": ["id", "type"]}},
    },
}
FLOW_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "additionalProperties": False,
    "properties": {"status": {"enum": ["draft", "manual", "live", "paused"]}},
}
DECISION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "either message_ids or all: true",
    "properties": {
        "message_ids": {"type": "array", "minItems": 1, "maxItems": 10_000, "items": ID},
        "all": {"type": "boolean"},
    },
}
MIGRATION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"to_version": ID},
}
DRY_RUN: dict[str, Any] = {
    "type": "object",
    "required": ["profile_id"],
    "additionalProperties": False,
    "properties": {"profile_id": ID, "event": _EVENT},
}
PREVIEW: dict[str, Any] = {
    "type": "object",
    "required": ["profile_id"],
    "properties": {"profile_id": ID, "event": _EVENT},
}
TEST_SEND: dict[str, Any] = {
    "type": "object",
    "required": ["to"],
    "properties": {"to": {"type": "string", "format": "email"}, "profile_id": ID, "event": _EVENT},
}
SUBSCRIBE: dict[str, Any] = {
    "type": "object",
    "required": ["email", "consent_text"],
    "properties": {
        "email": {"type": "string", "maxLength": 320},
        "list": _TEXT,
        "form": _TEXT,
        "consent_text": {"type": "string"},
        "ip": {"type": "string", "maxLength": 64},
    },
}
PUSH_SUBSCRIPTION: dict[str, Any] = {
    "type": "object",
    "required": ["subscription"],
    "properties": {
        "subscription": {
            "type": "object",
            "required": ["endpoint", "keys"],
            "properties": {
                "endpoint": {"type": "string", "format": "uri"},
                "keys": {
                    "type": "object",
                    "required": ["p256dh", "auth"],
                    "properties": {"p256dh": {"type": "string"}, "auth": {"type": "string"}},
                },
            },
        },
        "writeKey": {"type": "string"},
        "userId": _TEXT,
        "anonymousId": _TEXT,
        "email": {"type": "string", "maxLength": 320},
    },
}
BACK_IN_STOCK: dict[str, Any] = {
    "type": "object",
    "required": ["product_id"],
    "properties": {
        "product_id": _TEXT,
        "variant_id": _TEXT,
        "email": {"type": "string", "maxLength": 320},
        "phone": {"type": "string", "maxLength": 32},
        "userId": _TEXT,
        "anonymousId": _TEXT,
        "writeKey": {"type": "string"},
    },
}
SHOPIFY_WEBHOOK: dict[str, Any] = {
    "type": "object",
    "description": "the topic's Shopify payload, HMAC-signed in X-Shopify-Hmac-Sha256",
}
WOOCOMMERCE_WEBHOOK: dict[str, Any] = {
    "type": "object",
    "description": "the topic's WooCommerce REST v3 resource (order, customer, product, coupon), HMAC-signed"
    " in X-WC-Webhook-Signature; the ping sent when a webhook is saved is the unsigned form body"
    " webhook_id=N",
}


SES_NOTIFICATION: dict[str, Any] = {
    "type": "object",
    "required": ["Type"],
    "description": "an Amazon SNS message (signed) carrying an SES bounce or complaint notification",
}
POSTMARK_WEBHOOK: dict[str, Any] = {
    "type": "object",
    "description": "a Postmark bounce or spam complaint webhook (HTTP Basic credentials)",
}
TWILIO_CALLBACK: dict[str, Any] = {
    "type": "object",
    "description": "Twilio's form parameters (MessageSid, MessageStatus or Body, From, ...), signed"
    " in X-Twilio-Signature",
    "additionalProperties": {"type": "string"},
}
FORM = "application/x-www-form-urlencoded"


def body(
    schema: dict[str, Any], *, required: bool = True, media_type: str = "application/json"
) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself: `@router.post(..., openapi_extra=...)`."""
    return {"requestBody": {"required": required, "content": {media_type: {"schema": schema}}}}


def publish(app: FastAPI) -> None:
    """Serve an /openapi.json that answers what the app answers: 400 with the Error body where
    FastAPI would document 422, and a 400 on every operation (each route refuses bad input so)."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI's, built once and cached; adjusted in place (idempotent)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                responses.setdefault("400", _BAD_INPUT)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Error"] = ERROR_SCHEMA
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
