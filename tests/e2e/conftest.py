"""End-to-end fixtures: a real `shopflow serve` on a loopback port over a fresh SQLite file, its
first people made with `shopflow users create`, and headless Debian Chromium driven by Playwright.

`make test` sets SHOPFLOW_REQUIRE_WEB=1: there a missing build or browser fails the run; a plain
`pytest` skips these tests instead (the Makefile is what builds web/dist and installs chromium).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopflow import testing
from shopflow.api import webapp

CHROMIUM = Path(os.environ.get("SHOPFLOW_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
SHOPFLOW = Path(sys.executable).with_name("shopflow")
OWNER = ("owner@example.com", "owner password 1234")
VIEWER = ("viewer@example.com", "viewer password 1234")


def _missing_ui() -> str | None:
    if not (webapp.CHECKOUT_DIST / "index.html").is_file():
        return f"the admin UI is not built ({webapp.CHECKOUT_DIST}): run `make web`"
    built = (webapp.CHECKOUT_DIST / "index.html").stat().st_mtime
    sources = webapp.CHECKOUT_DIST.parent / "src"
    if sources.is_dir() and any(p.stat().st_mtime > built for p in sources.rglob("*") if p.is_file()):
        return f"the admin UI build in {webapp.CHECKOUT_DIST} is older than web/src: run `make web`"
    return None


def _missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM}: `apt-get install chromium` (make test does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: `make install`"
    return None


def _skip_or_fail(reason: str | None) -> None:
    if reason is None:
        return
    if os.environ.get("SHOPFLOW_REQUIRE_WEB") == "1":
        pytest.fail(f"{reason} (and SHOPFLOW_REQUIRE_WEB=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _needs_browser() -> None:
    _skip_or_fail(_missing())


@pytest.fixture(scope="session")
def _needs_build() -> None:
    """The admin UI's tests need its build (the storefront tests do not)."""
    _skip_or_fail(_missing_ui())


@dataclass
class Served:
    base: str
    workspace_id: str
    private_key: str
    write_key: str
    database_url: str


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    """Run a `shopflow` command in this process (as the operator would, minus the interpreter's
    start-up seconds); its output."""
    from shopflow.cli import main as cli

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setattr("sys.stdin", io.StringIO(stdin))
        with contextlib.redirect_stdout(out):
            code = cli.main(list(args))
    assert code == 0, f"shopflow {' '.join(args)} exited {code}"
    return out.getvalue()


@pytest.fixture(scope="module")
def served(_needs_build: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("e2e")
    env = {
        "SHOPFLOW_DATABASE_URL": f"sqlite:///{folder / 'shopflow.db'}",
        "SHOPFLOW_LOG_LEVEL": "WARNING",
        "SHOPFLOW_SECRET_KEY": "e2e-secret-key",
    }
    created = json.loads(_cli(env, "workspaces", "create", "Acme Shoes", "--json"))
    ws = created["workspace_id"]
    for (email, password), role in ((OWNER, "owner"), (VIEWER, "viewer")):
        _cli(
            env, "users", "create", "--workspace", ws, "--email", email, "--role", role, stdin=password + "\n"
        )
    port = testing.free_port()
    log = (folder / "serve.log").open("w")
    server = subprocess.Popen(
        [str(SHOPFLOW), "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"shopflow serve did not start: {(folder / 'serve.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield Served(base, ws, created["private_key"], created["write_key"], env["SHOPFLOW_DATABASE_URL"])
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    from playwright.sync_api import expect

    # A loaded 2-core machine can take seconds to answer; the waits are upper bounds, not timings.
    expect.set_options(timeout=15_000)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield opened
    context.close()
    # An uncaught error in the app fails the test even when the page happened to look right.
    # (The browser logs each 4xx answer the tests provoke; those are expected.)
    assert [e for e in errors if not e.startswith("Failed to load resource:")] == []


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """build/screenshots/NAME.png; `full_page=False` for pages with their own scrolling panes
    (a full-page capture re-lays the page out at its whole height, which resets inner scrolling)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
