"""Segment-compatible HTTP tracking API: existing Segment clients work unchanged."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import zlib
from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shopflow.api import credentials, deps, schemas
from shopflow.domain.events import CanonicalEvent
from shopflow.ingest import pipeline
from shopflow.ingest.sources import segment

router = APIRouter(tags=["ingest"])

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500


class IngestError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes before reading them all (and after gunzip)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise IngestError(413, f"body: {declared} bytes, the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise IngestError(413, f"body: more than {limit} bytes, the limit is {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise IngestError(415, f"Content-Encoding: expected gzip or deflate, got {encoding!r}")
    # Decompress at most limit+1 bytes: a gzip bomb stops here, not after filling memory.
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | (16 if "gzip" in encoding else 0))
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise IngestError(400, f"body: not valid {encoding} data ({exc})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise IngestError(413, f"body: more than {limit} bytes once decompressed, the limit is {limit} bytes")
    if not inflater.eof:
        raise IngestError(400, f"body: truncated {encoding} data")
    return out


def _basic_key(request: Request) -> str | None:
    """The write key sent as HTTP Basic user name (`base64("KEY:")`), if any."""
    try:
        given = credentials.basic(request.headers.get("authorization", ""))
    except credentials.Malformed:
        raise IngestError(401, "Authorization: expected Basic base64('WRITE_KEY:')") from None
    return given.user or None if given is not None else None


async def _workspace(request: Request, key: str | None) -> deps.Workspace:
    if not key:
        raise IngestError(401, "writeKey: expected the write key in the body or as the HTTP Basic user name")
    ctx = deps.context(request)
    # Known keys are remembered per app: a lookup per request would cost a round trip each.
    # (Keys cannot be rotated yet; when they can, rotation must clear this cache.)
    cache: dict[str, deps.Workspace] = ctx.services.setdefault("ingest.write_keys", {})
    digest = hashlib.sha256(key.encode()).hexdigest()  # the cache holds no key in clear
    ws = cache.get(digest)
    if ws is None:
        found = await asyncio.to_thread(deps.workspace_by_key, request, key)
        if found is None:
            raise IngestError(401, "writeKey: unknown write key")
        ws = found[0]
        if len(cache) > 10_000:
            cache.clear()
        cache[digest] = ws
    return ws


async def _store(
    request: Request, workspace_id: str, events: Sequence[CanonicalEvent]
) -> pipeline.AcceptResult:
    ctx = deps.context(request)
    writer = ctx.services.get("ingest")
    if writer is not None:
        result: pipeline.AcceptResult = await writer.submit(workspace_id, events)
        return result
    accept = functools.partial(
        pipeline.accept_events, ctx.engine, workspace_id=workspace_id, events=events, clock=ctx.clock
    )
    return await asyncio.to_thread(accept)


async def _handle(request: Request, kind: str | None) -> JSONResponse:
    limit = MAX_BATCH_BYTES if kind is None else MAX_EVENT_BYTES
    try:
        header_key = _basic_key(request)
        # A wrong key in the header is refused before the body is even read.
        ws = await _workspace(request, header_key) if header_key else None
        raw = await read_body(request, limit)
        if not raw.strip():
            raise IngestError(400, "body: expected a JSON object, got an empty body")
        try:
            body = segment.loads(raw)
        except segment.PayloadError as exc:
            raise IngestError(400, str(exc)) from None
        if not isinstance(body, dict):
            raise IngestError(400, "body: expected a JSON object")
        if ws is None:
            key = body.get("writeKey")
            ws = await _workspace(request, key if isinstance(key, str) else None)
        now = deps.context(request).clock.now()
        events: list[CanonicalEvent] = []
        try:
            if kind is None:
                batch = body.get("batch")
                if not isinstance(batch, list):
                    raise segment.PayloadError("batch: expected an array of messages")
                if len(batch) > MAX_BATCH_EVENTS:
                    raise IngestError(413, f"batch: {len(batch)} messages, the limit is {MAX_BATCH_EVENTS}")
                context = body.get("context")
                for n, msg in enumerate(batch):
                    size = len(json.dumps(msg, default=str, separators=(",", ":")).encode())
                    if size > MAX_EVENT_BYTES:
                        raise IngestError(
                            413, f"batch[{n}]: event is {size} bytes, the limit is {MAX_EVENT_BYTES} bytes"
                        )
                    item = msg
                    if isinstance(msg, dict) and isinstance(context, dict) and "context" not in msg:
                        item = {**msg, "context": context}
                    event = segment.parse_message(item, kind=None, now=now, where=f"batch[{n}].")
                    if event is not None:
                        events.append(event)
            else:
                event = segment.parse_message(body, kind=kind, now=now)
                if event is not None:
                    events.append(event)
        except segment.PayloadError as exc:
            raise IngestError(400, str(exc)) from None
    except IngestError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
    if events:
        await _store(request, ws.id, events)
    return JSONResponse({"success": True})


@router.post("/v1/track", openapi_extra=schemas.body(schemas.SEGMENT_MESSAGE))
async def track(request: Request) -> JSONResponse:
    """Record an action (Segment `track`)."""
    return await _handle(request, "track")


@router.post("/v1/identify", openapi_extra=schemas.body(schemas.SEGMENT_MESSAGE))
async def identify(request: Request) -> JSONResponse:
    """Tie a user to their traits (Segment `identify`)."""
    return await _handle(request, "identify")


@router.post("/v1/page", openapi_extra=schemas.body(schemas.SEGMENT_MESSAGE))
async def page(request: Request) -> JSONResponse:
    """Record a page view (stored as Viewed Page)."""
    return await _handle(request, "page")


@router.post("/v1/screen", openapi_extra=schemas.body(schemas.SEGMENT_MESSAGE))
async def screen(request: Request) -> JSONResponse:
    """Record a mobile screen view (stored as Viewed Screen)."""
    return await _handle(request, "screen")


@router.post("/v1/alias", openapi_extra=schemas.body(schemas.SEGMENT_MESSAGE))
async def alias(request: Request) -> JSONResponse:
    """Say that previousId and userId are the same person."""
    return await _handle(request, "alias")


@router.post("/v1/group", openapi_extra=schemas.body(schemas.SEGMENT_MESSAGE))
async def group(request: Request) -> JSONResponse:
    """Accepted for compatibility and ignored: Shopflow has no accounts."""
    return await _handle(request, "group")


@router.post("/v1/batch", openapi_extra=schemas.body(schemas.SEGMENT_BATCH))
async def batch(request: Request) -> JSONResponse:
    """Many messages of any type in one request (at most 500 KB, 32 KB each)."""
    return await _handle(request, None)
