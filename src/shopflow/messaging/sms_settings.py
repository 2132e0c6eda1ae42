"""A workspace's SMS provider settings: checked KEY=VALUE changes, stored; shown with secrets masked.

The auth token never comes as a KEY=VALUE assignment (the command reads it from standard input,
not the command line, where it would show in the process list and the shell history).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.domain import sms as sms_rules
from shopflow.messaging.channels import registry
from shopflow.store import db, workspaces

TEXT_KEYS = frozenset(
    {
        "provider",
        "account_sid",
        "from",
        "messaging_service_sid",
        "base_url",
        "url",
        "id_field",
        "help_text",
        "opt_out_text",
        "stop_reply",
        "start_reply",
        "price_per_segment",
        "rate",
        "burst",
    }
)
JSON_KEYS = frozenset({"headers", "body"})
INT_KEYS = frozenset({"max_segments", "concurrency"})
BOOL_KEYS = frozenset({"smart_encoding"})
SECRET_KEYS = frozenset({"auth_token", "headers"})


def masked(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as shown to people: secrets replaced by a marker."""
    return {k: ("<set>" if k in SECRET_KEYS and v else v) for k, v in sorted(config.items())}


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"{pair!r}: expected key=value")
        if key in TEXT_KEYS:
            changes[key] = value
        elif key in INT_KEYS:
            top = 16 if key == "concurrency" else 50
            if not value.isdigit() or not 1 <= int(value) <= top:
                raise ValueError(f"{key}: expected a whole number from 1 to {top}, got {value!r}")
            changes[key] = int(value)
        elif key in BOOL_KEYS:
            if value not in ("true", "false"):
                raise ValueError(f"{key}: expected true or false, got {value!r}")
            changes[key] = value == "true"
        elif key in JSON_KEYS:
            try:
                changes[key] = json.loads(value)
            except ValueError:
                raise ValueError(f"{key}: expected JSON, got {value[:60]!r}") from None
        elif key == "auth_token":
            raise ValueError(
                "auth_token: pass it on standard input with --auth-token-stdin, not as an argument"
            )
        else:
            known = sorted(TEXT_KEYS | JSON_KEYS | INT_KEYS | BOOL_KEYS)
            raise ValueError(f"{key!r}: unknown SMS setting (known: {', '.join(known)})")
    if "price_per_segment" in changes:
        sms_rules.parse_price(changes["price_per_segment"])
    return changes


def configure(engine: Engine, *, workspace_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `changes` into the workspace's `sms` settings (the result must build a provider);
    the settings as shown to people."""
    with db.transaction(engine) as conn:
        ws = workspaces.get(conn, workspace_id)
        if ws is None:
            raise LookupError(f"--workspace: no workspace {workspace_id!r}")
        current = ws.settings.get("sms")
        config = {**(current if isinstance(current, dict) else {}), **changes}
        config = {k: v for k, v in config.items() if v != ""}  # key= clears a setting
        if config.get("provider"):
            registry.sms_channel(config).close()  # raises SmsConfigError naming the setting
        workspaces.update_settings(conn, workspace_id=workspace_id, changes={"sms": config})
    return masked(config)


def show(engine: Engine, *, workspace_id: str) -> dict[str, Any]:
    """The workspace's `sms` settings as shown to people (secrets masked)."""
    with db.reading(engine) as conn:
        ws = workspaces.get(conn, workspace_id)
    if ws is None:
        raise LookupError(f"--workspace: no workspace {workspace_id!r}")
    raw = ws.settings.get("sms")
    return masked(raw if isinstance(raw, dict) else {})
