"""SMS and web push templates: YAML files of short Liquid texts, one directory per channel.

flows/library/templates/sms/<name>.yaml holds `body`; .../push/<name>.yaml holds `title`, `body`
and optional `url` and `icon`. Same sandbox as email (loop and output limits, strict undefined),
no HTML escaping: these are plain text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from liquid import BoundTemplate, Environment, StrictDefaultUndefined
from liquid.exceptions import LiquidError

from shopflow.messaging.templates import email as templates
from shopflow.messaging.templates.email import TemplateError

_PARTS = {"sms": (("body",), ()), "push": (("title", "body"), ("url", "icon"))}


class _Sandbox(Environment):
    loop_iteration_limit: ClassVar[int | None] = 10_000
    output_stream_limit: ClassVar[int | None] = 100_000
    context_depth_limit: ClassVar[int] = 20


def _environment() -> Environment:
    env = _Sandbox(undefined=StrictDefaultUndefined, autoescape=False, strict_filters=True)
    env.add_filter("money", templates.money)
    return env


_ENV = _environment()


@dataclass(frozen=True)
class TextTemplate:
    channel: str
    name: str
    parts: dict[str, BoundTemplate]

    def render(self, context: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for part, template in self.parts.items():
            try:
                out[part] = template.render(**context).strip()
            except LiquidError as exc:
                raise TemplateError(f"{self.channel} template {self.name!r}, {part}: {exc}") from None
        return out


def compile_template(channel: str, name: str, data: Mapping[str, Any]) -> TextTemplate:
    required, optional = _PARTS[channel]
    unknown = set(data) - set(required) - set(optional)
    if unknown:
        raise TemplateError(
            f"{channel} template {name!r}: unknown keys {sorted(unknown)} "
            f"(expected {', '.join(required + optional)})"
        )
    parts: dict[str, BoundTemplate] = {}
    for key in required + optional:
        source = data.get(key)
        if source is None:
            if key in required:
                raise TemplateError(f"{channel} template {name!r}: missing {key!r}")
            continue
        if not isinstance(source, str):
            raise TemplateError(f"{channel} template {name!r}: {key!r} must be a string of Liquid")
        try:
            parts[key] = _ENV.from_string(source)
        except LiquidError as exc:
            raise TemplateError(f"{channel} template {name!r}, {key}: {exc}") from None
    return TextTemplate(channel, name, parts)


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


class TextLibrary:
    """`<directory>/<channel>/<name>.yaml`, each parsed once and cached."""

    def __init__(self, directory: Path = templates.TEMPLATES_DIR) -> None:
        self.directory = directory
        self._cache: dict[tuple[str, str], TextTemplate] = {}
        self._lock = threading.Lock()

    def get(self, channel: str, name: str) -> TextTemplate:
        if channel not in _PARTS:
            raise TemplateError(f"channel: expected one of {sorted(_PARTS)}, got {channel!r}")
        cached = self._cache.get((channel, name))
        if cached is not None:
            return cached
        if not _NAME.match(name):
            raise TemplateError(f"template {name!r}: expected a name of lowercase letters, digits, - and _")
        path = self.directory / channel / f"{name}.yaml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TemplateError(f"{channel} template {name!r}: no file {path}") from None
        except yaml.YAMLError as exc:
            raise TemplateError(f"{channel} template {name!r}: {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise TemplateError(f"{channel} template {name!r}: {path} must hold a mapping")
        template = compile_template(channel, name, data)
        with self._lock:
            self._cache[(channel, name)] = template
        return template


_default: TextLibrary | None = None


def default_library() -> TextLibrary:
    global _default
    if _default is None:
        _default = TextLibrary()
    return _default
