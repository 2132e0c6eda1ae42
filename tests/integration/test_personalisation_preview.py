"""Preview with a chosen profile and test send (CLI and API), over real SMTP to the Sink on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.cli import main as cli
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.messaging.sink import Sink
from tests.integration.test_messaging_delivery import person

SECRET = "test-link-secret"
EVENT = {
    "abandoned_checkout_url": "https://shop.example/c/9",
    "products": [{"name": "Teapot", "price": "30"}],
}


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    with Sink(directory=tmp_path / "mail") as s:
        yield s


def test_cli_preview_and_test_send(  # noqa: PLR0917
    engine: Engine,
    database_url: str,
    clock: SimulatedClock,
    sink: Sink,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("SHOPFLOW_SMTP_URL", f"smtp://127.0.0.1:{sink.port}")
    monkeypatch.setenv("SHOPFLOW_SECRET_KEY", SECRET)
    ws = testing.make_workspace(engine).workspace
    pid = person(engine, ws.id, clock, "ana@example.org")
    out_html = tmp_path / "preview.html"
    argv = ["templates", "preview", "cart-reminder-1h", "--workspace", ws.id, "--profile", str(pid)]
    assert cli.main([*argv, "--event", json.dumps(EVENT), "--html", str(out_html)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Subject: ")
    assert "Hi Ana" in printed and "Teapot" in printed
    assert "https://shop.example/c/9" in out_html.read_text(encoding="utf-8")
    assert sink.count() == 0  # a preview sends nothing

    assert cli.main([*argv, "--event", "[1, 2]"]) == 2
    assert "event: expected a JSON object, got list" in capsys.readouterr().err
    assert cli.main([*argv[:-1], "999999"]) == 2
    assert "profile: no profile 999999" in capsys.readouterr().err
    assert cli.main(["templates", "preview", "no-such", "--workspace", ws.id, "--profile", str(pid)]) == 2
    assert "template 'no-such': no file" in capsys.readouterr().err

    send = ["templates", "test-send", "welcome-1", "--workspace", ws.id, "--to", "qa@example.org"]
    assert cli.main(send) == 0
    assert json.loads(capsys.readouterr().out)["sent_to"] == "qa@example.org"
    [mail] = sink.messages()
    assert str(mail["To"]) == "qa@example.org"
    assert str(mail["Subject"]).startswith("[TEST] Welcome to ")
    assert mail["List-Unsubscribe"] is None  # sent transactional-flagged
    assert cli.main([*send[:-1], "not an address"]) == 2
    assert "to: expected an email address" in capsys.readouterr().err


def test_api_preview_and_test_send(
    engine: Engine, clock: SimulatedClock, sink: Sink, server_factory: Any
) -> None:
    settings = Settings(
        database_url=str(engine.url), secret_key=SECRET, smtp_url=f"smtp://127.0.0.1:{sink.port}"
    )
    base = server_factory(create_app(settings, engine=engine, clock=clock))
    created = testing.make_workspace(engine)
    other = testing.make_workspace(engine, name="Other")
    pid = person(engine, created.workspace.id, clock, "ana@example.org")
    auth = {"Authorization": f"Bearer {created.private_key}"}
    url = f"{base}/api/v1/templates/cart-reminder-1h/preview"

    answer = httpx.post(url, json={"profile_id": pid, "event": EVENT}, headers=auth)
    assert answer.status_code == 200
    body = answer.json()
    assert "Ana" in body["text"] and "Teapot" in body["text"]
    assert "https://shop.example/c/9" in body["html"]

    assert httpx.post(url, json={"profile_id": pid}).status_code == 401
    wrong = {"Authorization": f"Bearer {other.private_key}"}
    missing = httpx.post(url, json={"profile_id": pid}, headers=wrong)
    assert missing.status_code == 404 and "profile: no profile" in missing.json()["error"]
    bad = httpx.post(url, json={"profile_id": "1; drop"}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"].startswith(
        "profile_id: expected a positive integer"
    )
    assert httpx.post(url, content=b"{nope", headers=auth).status_code == 400
    huge = httpx.post(url, content=b"{" + b" " * 200_000 + b"}", headers=auth)
    assert huge.status_code == 413
    unknown = httpx.post(f"{base}/api/v1/templates/zzz/preview", json={"profile_id": pid}, headers=auth)
    assert unknown.status_code == 400 and "template 'zzz': no file" in unknown.json()["error"]

    sent = httpx.post(
        f"{base}/api/v1/templates/welcome-1/test-send", json={"to": "qa@example.org"}, headers=auth
    )
    assert sent.status_code == 200 and sent.json()["sent_to"] == "qa@example.org"
    [mail] = sink.messages()
    assert str(mail["Subject"]).startswith("[TEST] Welcome to ")
    refused = httpx.post(f"{base}/api/v1/templates/welcome-1/test-send", json={"to": 5}, headers=auth)
    assert refused.status_code == 400 and refused.json()["error"] == "to: expected an email address, got '5'"
    assert sink.count() == 1
