"""The SMTP sink (library and `shopflow sink`) and `shopflow outbox list`."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.messaging.sink import Sink
from shopflow.store import db, messages

MAIL = b"From: a@b.c\r\nTo: d@e.f\r\nSubject: Hello\r\n\r\nbody line\r\n"


def test_sink_stores_maildir_files(tmp_path: Path) -> None:
    with Sink(directory=tmp_path / "mail") as sink:
        with smtplib.SMTP("127.0.0.1", sink.port) as client:
            client.sendmail("a@b.c", ["d@e.f"], MAIL)
            client.sendmail("a@b.c", ["g@h.i"], MAIL.replace(b"Hello", b"Again"))
        assert sink.count() == 2
        assert [m["Subject"] for m in sink.messages()] == ["Hello", "Again"]
    files = sorted((tmp_path / "mail" / "new").iterdir())
    assert len(files) == 2 and files[0].read_bytes() == MAIL
    assert list((tmp_path / "mail" / "tmp").iterdir()) == []


def test_sink_in_memory_and_rejections() -> None:
    with Sink() as sink:
        sink.reject_next(1, "451 4.3.0 Later")
        with smtplib.SMTP("127.0.0.1", sink.port) as client:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail("a@b.c", ["d@e.f"], MAIL)
            assert refused.value.smtp_code == 451
            client.sendmail("a@b.c", ["d@e.f"], MAIL)
        assert sink.count() == 1
        assert sink.raw_messages() == [MAIL]
        assert sink.sessions() == 1


def test_shopflow_sink_command_prints_each_message(tmp_path: Path) -> None:
    port = testing.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shopflow.cli", "sink", "--port", str(port), "--dir", str(tmp_path / "m")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"SMTP sink listening on 127.0.0.1:{port}" in first
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("a@b.c", ["d@e.f"], MAIL)
            client.sendmail(
                "a@b.c", ["x@y.z"], MAIL.replace(b"Hello", b"=?utf-8?q?Caf=C3=A9?=\r\n =?utf-8?q?_au_lait?=")
            )
        assert proc.stdout.readline().startswith("a@b.c -> d@e.f  Hello  [")
        assert proc.stdout.readline().startswith("a@b.c -> x@y.z  Café au lait  [")
        assert len(list((tmp_path / "m" / "new").iterdir())) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_help() -> None:
    for argv in (["sink", "--help"], ["outbox", "--help"], ["outbox", "list", "--help"]):
        with pytest.raises(SystemExit) as done:
            cli.main(argv)
        assert done.value.code == 0


def test_outbox_list(
    engine: Engine,
    clock: SimulatedClock,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = testing.make_workspace(engine).workspace
    with db.transaction(engine) as conn:
        queued = messages.enqueue(
            conn,
            workspace_id=ws.id,
            profile_id=1,
            channel="email",
            template="welcome-1",
            dedupe_key="a",
            now=clock.now(),
        )
        skipped = messages.enqueue(
            conn,
            workspace_id=ws.id,
            profile_id=2,
            channel="email",
            template="welcome-2",
            dedupe_key="b",
            now=clock.now(),
            status="skipped",
            skip_reason="holdout",
        )
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)

    assert cli.main(["outbox", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["status"], r["template"], r["skip_reason"]) for r in rows] == [
        (skipped, "skipped", "welcome-2", "holdout"),
        (queued, "queued", "welcome-1", None),
    ]
    assert rows[0]["send_after"] == clock.now().isoformat()

    assert cli.main(["outbox", "list", "--status", "skipped"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "status", "channel", "template", "to", "reason", "time"]
    assert out[1].split()[:6] == [str(skipped), "skipped", "email", "welcome-2", "-", "holdout"]
    assert len(out) == 2

    assert cli.main(["outbox", "list", "--status", "failed"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "(no messages)"

    with pytest.raises(SystemExit) as bad:
        cli.main(["outbox", "list", "--limit", "0"])
    assert bad.value.code == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err
