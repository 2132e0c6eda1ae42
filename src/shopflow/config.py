"""Settings, built once at an entry point and passed down (never read at import)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a value Shopflow cannot use; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///shopflow.db"
    # Where marketing email goes. The default is the embedded sink started by `shopflow sink`.
    smtp_url: str = "smtp://127.0.0.1:2525"
    # Signs tracking and unsubscribe links. Empty means: use the random key kept in the database.
    secret_key: str = ""
    # Public base URL of this server, used in links inside messages.
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # Ingest group commit: requests that arrive while a commit runs are written together in the next
    # one (no added latency when idle). A batch closes at this many events; ingest_batch_ms > 0 also
    # waits that long for company after the first request.
    ingest_batch_events: int = 2000
    ingest_batch_ms: int = 0
    # Run the scheduler and delivery worker inside the HTTP server process.
    embedded_worker: bool = True
    worker_poll_ms: int = 50
    # `shopflow worker` runs this many worker processes (one per core uses the machine: rendering
    # and DKIM signing are CPU work, and one Python process runs Python on one core at a time).
    worker_processes: int = 1
    # Delivery commits email results in groups of this many as the SMTP server accepts them
    # (1 = one commit per email; see messaging.delivery.results.Recorder for the trade).
    delivery_record_group: int = 16
    # Public endpoints (ingest, tracking, unsubscribe, subscribe, back in stock): requests a second
    # and burst per client address and per write key, per server process (api/limits.py); 0: off.
    public_rate_per_ip: int = 1000
    public_burst_per_ip: int = 2000
    public_rate_per_key: int = 2000
    public_burst_per_key: int = 4000
    log_level: str = "INFO"
    # json: one JSON object a line (request id, workspace id; emails and phones masked); text: the
    # same as a readable line; auto: text on a terminal, json otherwise (systemd, containers).
    log_format: str = "auto"
    # The admin UI's built files, served at /app. Empty: web/dist of this checkout (`make` builds it).
    web_dist: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


_ENV_PREFIX = "SHOPFLOW_"
LOG_FORMATS = ("auto", "json", "text")


def _coerce(name: str, raw: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}: expected a boolean (true/false), got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if isinstance(default, str):
        if not isinstance(raw, str):
            raise ConfigError(f"{name}: expected a string, got {raw!r}")
        return raw
    return raw


def load(environ: Mapping[str, str] | None = None, toml_path: str | Path | None = None) -> Settings:
    """Build settings: defaults, then the TOML file, then SHOPFLOW_* environment variables."""
    env = os.environ if environ is None else environ
    settings = Settings()
    names = {f.name for f in fields(Settings) if f.name != "extra"}
    path = toml_path or env.get("SHOPFLOW_CONFIG")
    values: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"SHOPFLOW_CONFIG: no such file {str(path)!r}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"SHOPFLOW_CONFIG: {path} is not valid TOML: {exc}") from None
        section = data.get("shopflow", data)
        for key, raw in section.items():
            if key not in names:
                raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(names))})")
            values[key] = _coerce(key, raw, getattr(settings, key))
    for name in names:
        env_name = _ENV_PREFIX + name.upper()
        if env_name in env:
            values[name] = _coerce(env_name, env[env_name], getattr(settings, name))
    loaded = replace(settings, **values)
    if loaded.log_format not in LOG_FORMATS:
        raise ConfigError(f"log_format: expected one of {', '.join(LOG_FORMATS)}, got {loaded.log_format!r}")
    return loaded
