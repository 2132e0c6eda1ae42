"""Structured logs: one JSON object per line, with the request id and workspace id of the request
being served, and no personal data (email addresses and phone numbers are masked in the message
and in tracebacks).

The request context is a mutable holder in a ContextVar: FastAPI runs sync routes and
dependencies in a thread pool with a *copy* of the context, so a value set there would not reach
the middleware's access line; writing the workspace into the shared holder does.
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass
class RequestContext:
    request_id: str
    workspace_id: str | None = None


current: ContextVar[RequestContext | None] = ContextVar("shopflow_request", default=None)

# local@domain: the local part is masked but its first character, the domain is kept (it tells an
# operator which mailbox provider a bounce came from).
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")
# E.164 numbers (+ and 8 to 15 digits, optionally grouped): all but the last two digits masked.
_PHONE = re.compile(r"\+\d(?:[ \-.]?\d){6,14}")


def mask(text: str) -> str:
    """The text with email addresses and phone numbers masked."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: "+" + "*" * (len(re.sub(r"\D", "", m.group(0))) - 2) + m.group(0)[-2:], text)


def set_workspace(workspace_id: str) -> None:
    """Name the workspace of the request being served (its lines carry it from here on)."""
    ctx = current.get()
    if ctx is not None:
        ctx.workspace_id = workspace_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = current.get()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
            "request_id": ctx.request_id if ctx else None,
            "workspace_id": ctx.workspace_id if ctx else None,
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update({k: mask(v) if isinstance(v, str) else v for k, v in extra.items()})
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a terminal (`SHOPFLOW_LOG_FORMAT=text`): the same masking, one readable line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ctx = current.get()
        text = mask(super().format(record))
        if ctx is not None:
            text += f" [request {ctx.request_id}" + (
                f" workspace {ctx.workspace_id}]" if ctx.workspace_id else "]"
            )
        return text


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs on stderr (its class tells it from anyone else's)."""


def configure(level: str, fmt: str) -> None:
    """Send every log line (Shopflow's, uvicorn's, SQLAlchemy's) through one handler on stderr.

    Like logging.basicConfig, it leaves a logging set-up it did not make alone (pytest's, an
    application embedding Shopflow); calling it again replaces its own handler."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _Stderr)]
    if root.handlers and not ours:
        return
    for old in ours:
        root.removeHandler(old)
    handler = _Stderr()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Migrations run at every start; their step-by-step INFO lines are noise to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
