"""/app serves the admin UI's build: files, the index.html fallback for client routes, gzip,
caching; nothing outside the build; and without a build, a page that says how to make one."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from shopflow import config
from shopflow.api.app import create_app
from shopflow.domain.clock import SimulatedClock

INDEX = '<!doctype html><html><head><script type="module" src="/app/assets/index-abc123.js"></script></head></html>'
SCRIPT = "console.log('shopflow');\n" * 200


def _build(folder: Path) -> Path:
    dist = folder / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc123.js").write_text(SCRIPT)
    (folder / "secret.txt").write_text("outside the build")
    return dist


def _serve(server_factory: Any, engine: Engine, clock: SimulatedClock, dist: Path) -> str:
    settings = config.load(environ={"SHOPFLOW_WEB_DIST": str(dist)})
    return str(server_factory(create_app(settings, engine=engine, clock=clock)))


def test_app_serves_the_build_with_a_fallback_gzip_and_caching(
    engine: Engine, clock: SimulatedClock, server_factory: Any, tmp_path: Path
) -> None:
    base = _serve(server_factory, engine, clock, _build(tmp_path))
    root = httpx.get(f"{base}/app", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/app/"
    for path in ("/app/", "/app/flows", "/app/library/welcome-series", "/app/index.html"):
        page = httpx.get(base + path)
        assert page.status_code == 200, path
        assert page.text == INDEX
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["x-frame-options"] == "DENY"
    raw = httpx.get(f"{base}/app/assets/index-abc123.js", headers={"Accept-Encoding": "gzip"})
    assert raw.status_code == 200
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert raw.headers["vary"] == "Accept-Encoding"
    assert int(raw.headers["content-length"]) < len(SCRIPT) / 10
    assert raw.text == SCRIPT  # httpx undoes the gzip
    with httpx.stream("GET", f"{base}/app/assets/index-abc123.js", headers={"Accept-Encoding": "gzip"}) as s:
        assert gzip.decompress(b"".join(s.iter_raw())).decode() == SCRIPT
    plain = httpx.get(f"{base}/app/assets/index-abc123.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == SCRIPT
    head = httpx.head(f"{base}/app/flows")
    assert head.status_code == 200


def test_app_refuses_paths_outside_the_build_and_missing_files(
    engine: Engine, clock: SimulatedClock, server_factory: Any, tmp_path: Path
) -> None:
    base = _serve(server_factory, engine, clock, _build(tmp_path))
    for path in ("/app/assets/nope.js", "/app/favicon.ico", "/app/assets/", "/app/%2e%2e/secret.txt"):
        answer = httpx.get(base + path)
        assert answer.status_code == 404, path
        assert "outside the build" not in answer.text
    for path in (
        "/app/..%2fsecret.txt",
        "/app/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/app/a%00b",
        "/app/" + "x" * 3000,
    ):
        answer = httpx.get(base + path)
        assert answer.status_code in (200, 404), path
        assert "outside the build" not in answer.text and "[project]" not in answer.text
    assert httpx.post(f"{base}/app/flows").status_code == 405


def test_without_a_build_app_says_how_to_make_one(
    engine: Engine, clock: SimulatedClock, server_factory: Any, tmp_path: Path
) -> None:
    base = _serve(server_factory, engine, clock, tmp_path / "no-build-here")
    for path in ("/app/", "/app/flows"):
        answer = httpx.get(base + path)
        assert answer.status_code == 503
        assert "The Shopflow admin UI is not built" in answer.text
        assert "make web" in answer.text and str(tmp_path / "no-build-here") in answer.text
    # The API does not need the UI.
    assert httpx.get(f"{base}/healthz").status_code == 200
