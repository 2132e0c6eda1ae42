"""The admin UI's built files (web/dist, made by `make`) at /app: hashed assets cached for a year,
index.html for every client route, gzip for text. Without a build, /app says how to make one: the
Python package runs without Node."""

from __future__ import annotations

import functools
import gzip
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

import shopflow

PREFIX = "/app"
# The built bundle of a checkout (`make` runs `npm run build` in web/); SHOPFLOW_WEB_DIST overrides.
CHECKOUT_DIST = Path(shopflow.__file__).resolve().parents[2] / "web" / "dist"
GZIP_MIN = 1024
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shopflow admin: not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>The Shopflow admin UI is not built</h1>
<p>This server looks for the built files in <code>{dist}</code> and finds none.</p>
<p>Build them from a checkout (needs Node 20 and npm): <code>make web</code>
(or <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>), then reload this page.
Or set <code>SHOPFLOW_WEB_DIST</code> to a folder that holds a build.</p>
<p>The HTTP API works without it: <a href="/docs">/docs</a>.</p>
</body></html>
"""


def router(dist: Path) -> APIRouter:
    """The /app routes serving the build in `dist`."""
    files = APIRouter(include_in_schema=False)
    root = dist.resolve()

    @files.api_route(PREFIX, methods=["GET", "HEAD"])
    def app_root() -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)

    @files.api_route(PREFIX + "/{path:path}", methods=["GET", "HEAD"])
    def app_file(path: str, request: Request) -> Response:
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT.format(dist=_escape(str(root))), status_code=503)
        found = _inside(root, path)
        if found is None:
            if _looks_like_file(path):
                return PlainTextResponse(
                    f"path: no file {path[:200]!r} in the admin UI build", status_code=404
                )
            found = index  # a client route (/app/flows/12): the UI's router draws it
        immutable = found.parent == root / "assets"
        return _file(found, request.headers.get("accept-encoding", ""), immutable=immutable)

    return files


def _inside(root: Path, path: str) -> Path | None:
    if not path or "\x00" in path or "\\" in path or len(path) > 1024:
        return None
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _looks_like_file(path: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return path.startswith("assets/") or "." in last


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _file(path: Path, accept_encoding: str, *, immutable: bool) -> Response:
    stat = path.stat()
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if media_type == "text/html":
        headers.update(_SECURITY_HEADERS)
    body = _read(str(path), stat.st_mtime_ns, stat.st_size)
    wants_gzip = "gzip" in accept_encoding.lower()
    if wants_gzip and len(body) >= GZIP_MIN and media_type.startswith(_COMPRESSIBLE):
        body = _gzipped(str(path), stat.st_mtime_ns, stat.st_size)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=media_type, headers=headers)


@functools.lru_cache(maxsize=256)
def _read(path: str, _mtime_ns: int, _size: int) -> bytes:
    return Path(path).read_bytes()


@functools.lru_cache(maxsize=256)
def _gzipped(path: str, mtime_ns: int, size: int) -> bytes:
    return gzip.compress(_read(path, mtime_ns, size), compresslevel=6, mtime=0)
