"""Bounce and complaint webhooks: Amazon SES via SNS, and Postmark.

Nothing is stored until the sender is proven: an SNS signature checked against the AWS signing
certificate, or Postmark's HTTP Basic credentials configured on the workspace.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shopflow.api import credentials, deps, schemas
from shopflow.ingest import safe_json
from shopflow.messaging.inbound import bounces, feedback, sns

router = APIRouter(tags=["feedback"])

MAX_BODY_BYTES = 256 * 1024  # the SNS message size limit; Postmark bodies are smaller
CERT_FETCHER = "sns_cert_fetcher"  # ctx.services keys: tests inject their own
SNS_CONFIRM = "sns_confirm"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"body: {len(body)} bytes, expected at most {MAX_BODY_BYTES}")
    try:
        parsed = safe_json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"body: expected JSON ({exc})")
    if not isinstance(parsed, dict):
        return _error(400, f"body: expected a JSON object, got {type(parsed).__name__}")
    return parsed


async def _apply(
    request: Request,
    items: list[bounces.Feedback],
    *,
    workspace_id: str | None = None,
    topic_arn: str | None = None,
) -> JSONResponse:
    """Apply a report's items (feedback.apply_all) and answer with each one's outcome."""
    ctx = deps.context(request)
    outcomes = await asyncio.to_thread(
        feedback.apply_all,
        ctx.engine,
        items,
        now=ctx.clock.now(),
        link_secret=ctx.link_secret,
        workspace_id=workspace_id,
        topic_arn=topic_arn,
    )
    return JSONResponse(
        {
            "results": [
                {"status": o.status, "message_id": o.message_id, "suppressed": o.suppressed} for o in outcomes
            ]
        }
    )


@router.post("/webhooks/ses", openapi_extra=schemas.body(schemas.SES_NOTIFICATION))
async def ses_webhook(request: Request) -> JSONResponse:
    ctx = deps.context(request)
    message = await _json_body(request)
    if isinstance(message, JSONResponse):
        return message
    fetch: sns.CertFetcher = ctx.services.setdefault(CERT_FETCHER, sns.HttpCertFetcher())
    try:
        await asyncio.to_thread(sns.verify, message, fetch)
    except sns.SnsMalformed as exc:
        return _error(400, str(exc))
    except sns.SnsForged as exc:
        return _error(403, str(exc))
    except OSError as exc:  # the certificate could not be fetched: SNS retries later
        return _error(503, f"SigningCertURL: could not fetch the certificate ({exc})")
    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        confirm = ctx.services.get(SNS_CONFIRM, sns.confirm_subscription)
        try:
            await asyncio.to_thread(confirm, str(message.get("SubscribeURL")))
        except sns.SnsForged as exc:
            return _error(403, str(exc))
        return JSONResponse({"status": "subscribed", "topic": message.get("TopicArn")})
    if kind == "UnsubscribeConfirmation":
        return JSONResponse({"status": "ignored"})
    try:
        notification = safe_json.loads(message["Message"])
        if not isinstance(notification, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        return _error(400, f"Message: expected the JSON object of an SES notification ({exc})")
    try:
        items = bounces.parse_ses(notification)
    except bounces.ReportError as exc:
        return _error(400, str(exc))
    return await _apply(request, items, topic_arn=str(message["TopicArn"]))


def _basic(request: Request) -> tuple[str, str] | None:
    try:
        given = credentials.basic(request.headers.get("authorization", ""))
    except credentials.Malformed:
        return None
    if given is None or given.password is None:
        return None
    return given.user, given.password


_CHALLENGE = {"WWW-Authenticate": 'Basic realm="shopflow-postmark"'}


@router.post("/webhooks/postmark/{workspace_id}", openapi_extra=schemas.body(schemas.POSTMARK_WEBHOOK))
async def postmark_webhook(workspace_id: str, request: Request) -> JSONResponse:
    given = _basic(request)
    if given is None:
        return _error(401, "Authorization: expected HTTP Basic credentials", _CHALLENGE)
    ws = await asyncio.to_thread(deps.workspace_by_id, request, workspace_id)
    access = feedback.postmark_credentials(ws, user=given[0], password=given[1])
    if access == feedback.POSTMARK_NOT_CONFIGURED:
        return _error(
            403,
            "workspace: Postmark webhooks are not configured (set postmark_webhook_user and postmark_webhook_password)",
        )
    if access != feedback.POSTMARK_OK:
        return _error(401, "Authorization: wrong Postmark webhook credentials", _CHALLENGE)
    payload = await _json_body(request)
    if isinstance(payload, JSONResponse):
        return payload
    try:
        items = bounces.parse_postmark(payload)
    except bounces.ReportError as exc:
        return _error(400, str(exc))
    return await _apply(request, items, workspace_id=workspace_id)
