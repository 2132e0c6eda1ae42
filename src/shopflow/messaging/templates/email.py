"""Email templates: one YAML file per template (subject, html, optional text), each Liquid source.

Rendering is sandboxed (no file loader, loop and output limits), strict about unknown variables so a
typo fails loudly, and cached: a template is parsed once per process.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import css_inline
import liquid
import mjml  # type: ignore[import-untyped]
import yaml
from liquid import BoundTemplate, Environment, StrictDefaultUndefined
from liquid.exceptions import LiquidError

from shopflow.messaging.templates import filters

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "flows" / "library" / "templates"


class TemplateError(ValueError):
    """A template cannot be loaded or rendered; the message names the template and the part."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def money(value: object, currency: object = "USD") -> str:
    """Decimal or string -> "$12.50 USD"; the code keeps amounts unambiguous across stores.

    ISO 4217 minor units: "JPY" shows no decimals. Templates get the context-aware
    `filters.money`, which defaults to the message's / workspace's currency."""
    code = "USD" if isinstance(currency, liquid.Undefined) or not currency else str(currency)
    return filters.format_money(value, code)


class _Sandbox(Environment):
    # A template is store-owner content: bound its work so one bad template cannot stall delivery.
    loop_iteration_limit: ClassVar[int | None] = 10_000
    output_stream_limit: ClassVar[int | None] = 1_000_000
    context_depth_limit: ClassVar[int] = 20


def _environment(*, autoescape: bool) -> Environment:
    env = _Sandbox(undefined=StrictDefaultUndefined, autoescape=autoescape, strict_filters=True)
    env.add_filter("money", filters.money)
    env.add_filter("local_date", filters.local_date)
    env.add_filter("discount", filters.discount)
    env.add_filter("countdown", filters.countdown)
    return env


_HTML_ENV = _environment(autoescape=True)
_TEXT_ENV = _environment(autoescape=False)


@dataclass(frozen=True)
class Template:
    name: str
    subject: BoundTemplate
    html: BoundTemplate
    text: BoundTemplate | None
    source: str = ""  # all parts' Liquid source: what a template mentions decides what is loaded

    def mentions(self, word: str) -> bool:
        return word in self.source

    def render(self, context: Mapping[str, Any]) -> RenderedEmail:
        subject = _render(self.name, "subject", self.subject, context)
        html = inline_css(_render(self.name, "html", self.html, context))
        text = _render(self.name, "text", self.text, context) if self.text else html_to_text(html)
        return RenderedEmail(subject=" ".join(subject.split()), html=html, text=text)


def _render(name: str, part: str, template: BoundTemplate, context: Mapping[str, Any]) -> str:
    try:
        return template.render(**context)
    except LiquidError as exc:
        raise TemplateError(f"template {name!r}, {part}: {exc}") from None


def _parse(name: str, part: str, source: object, env: Environment) -> BoundTemplate:
    if not isinstance(source, str):
        raise TemplateError(f"template {name!r}: {part!r} must be a string of Liquid, got {source!r}")
    try:
        return env.from_string(source)
    except LiquidError as exc:
        raise TemplateError(f"template {name!r}, {part}: {exc}") from None


def compile_template(name: str, data: Mapping[str, Any]) -> Template:
    """Parse one template's parts, with errors that name the template and the part."""
    unknown = set(data) - {"subject", "html", "mjml", "text"}
    if unknown:
        raise TemplateError(
            f"template {name!r}: unknown keys {sorted(unknown)} (expected subject, html or mjml, text)"
        )
    if "subject" not in data:
        raise TemplateError(f"template {name!r}: missing 'subject'")
    if "html" not in data and "mjml" not in data:
        raise TemplateError(f"template {name!r}: missing 'html' (or 'mjml')")
    if "html" in data and "mjml" in data:
        raise TemplateError(f"template {name!r}: expected one of 'html' and 'mjml', got both")
    if "mjml" in data:
        if not isinstance(data["mjml"], str):
            raise TemplateError(f"template {name!r}: 'mjml' must be a string of MJML, got {data['mjml']!r}")
        html_source: object = compile_mjml(name, data["mjml"])
    else:
        html_source = data["html"]
    text = data.get("text")
    return Template(
        name=name,
        subject=_parse(name, "subject", data["subject"], _TEXT_ENV),
        html=_parse(name, "html", html_source, _HTML_ENV),
        text=_parse(name, "text", text, _TEXT_ENV) if text is not None else None,
        source="\n".join(str(part) for part in (data["subject"], html_source, text) if part is not None),
    )


# --- MJML and CSS inlining -----------------------------------------------------------------------

# MJML compiles in pure Python at ~10 ms a template, so it runs once per template version (keyed by
# the source's hash) and the Liquid inside it is rendered per message afterwards.
_MJML_CACHE: dict[str, str] = {}
_MJML_LOCK = threading.Lock()


def compile_mjml(name: str, source: str) -> str:
    """MJML (with Liquid inside) -> HTML (Liquid still inside), cached per source version."""
    key = hashlib.sha256(source.encode("utf-8")).hexdigest()
    cached = _MJML_CACHE.get(key)
    if cached is not None:
        return cached
    try:
        result = mjml.mjml_to_html(source)
    except Exception as exc:  # the compiler raises assorted parser errors on bad markup
        raise TemplateError(f"template {name!r}, mjml: cannot compile: {exc}") from None
    if result.errors:
        raise TemplateError(f"template {name!r}, mjml: {result.errors}")
    html = str(result.html)
    with _MJML_LOCK:
        _MJML_CACHE[key] = html
    return html


def _inliner() -> css_inline.CSSInliner:
    # Remote stylesheets stay off: rendering must never make a network request a template names.
    try:
        # Keep @media rules (responsive MJML layouts) in a <style> block; older versions lack the option.
        return css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
    except TypeError:
        return css_inline.CSSInliner(load_remote_stylesheets=False)


_INLINER: css_inline.CSSInliner | None = None
_STYLED = re.compile(r"<(style|link)\b", re.I)


def inline_css(html: str) -> str:
    """Move <style> rules into style attributes (after rendering, so Liquid output is styled too)."""
    global _INLINER
    if not _STYLED.search(html):
        return html  # nothing to inline: skip the parse, which keeps plain templates fast
    if _INLINER is None:
        _INLINER = _inliner()
    try:
        return str(_INLINER.inline(html))
    except ValueError as exc:
        raise TemplateError(f"cannot inline CSS: {exc}") from None


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


class Library:
    """Templates loaded from a directory of `<name>.yaml` files, each parsed once and cached."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.directory = directory
        self._cache: dict[str, Template] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Template:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        if not _NAME.match(name):
            raise TemplateError(f"template {name!r}: expected a name of lowercase letters, digits, - and _")
        path = self.directory / f"{name}.yaml"
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateError(f"template {name!r}: no file {path}") from None
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise TemplateError(f"template {name!r}: {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise TemplateError(f"template {name!r}: {path} must hold a mapping with subject and html")
        template = compile_template(name, data)
        with self._lock:
            self._cache[name] = template
        return template

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.yaml"))


_default_library: Library | None = None


def default_library() -> Library:
    global _default_library
    if _default_library is None:
        _default_library = Library()
    return _default_library


def render(name: str, context: Mapping[str, Any], *, library: Library | None = None) -> RenderedEmail:
    return (library or default_library()).get(name).render(context)


# --- HTML to text -----------------------------------------------------------------------------

_LINK = re.compile(r"<a\b[^>]*?href\s*=\s*[\"']([^\"']*)[\"'][^>]*>(.*?)</a>", re.I | re.S)
_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|tr|table|ul|ol)\s*>|<br\s*/?>", re.I)
_DROP = re.compile(r"<(style|script|head)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def html_to_text(html: str) -> str:
    """A readable plain-text part for clients that do not show HTML (links kept as "label (url)")."""

    def link(match: re.Match[str]) -> str:
        url = html_lib.unescape(match.group(1)).strip()
        label = _TAG.sub("", match.group(2)).strip()
        if not label or label == url:
            return url
        return f"{label} ({url})"

    text = _DROP.sub("", html)
    text = _LINK.sub(link, text)
    text = _BLOCK_END.sub("\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"
