"""`shopflow campaigns ...` through the entry point, on SQLite and PostgreSQL: the lifecycle with
the progress bar, the report and calendar, and bad definition files (exit 2, nothing queued)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.store import db
from tests.integration import campaigns_support as support

FAR = "2030-01-07T10:00:00Z"  # the CLI runs on the system clock: a time still to come


@pytest.fixture
def cli_db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    yield engine
    engine.dispose()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _rows(engine: Any) -> int:
    with db.reading(engine) as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM messages")).scalar_one())


def test_create_schedule_send_report_calendar(
    cli_db: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    s = support.shop(cli_db, SimulatedClock(testing.T0))
    s.add_list("newsletter", [s.person(n) for n in ("ana", "ben", "cy")])
    yaml_file = _write(
        tmp_path,
        "bf.yaml",
        "key: bf\nname: Black Friday\naudience: {include: {lists: [newsletter]}}\n"
        f"template: seasonal-offer-1\nschedule: {{kind: at, at: '{FAR}'}}\n",
    )
    code, out, err = run(capsys, "campaigns", "create", yaml_file, "--workspace", s.ws)
    assert (code, out, err) == (0, "created bf (draft)\n", "")
    assert run(capsys, "campaigns", "schedule", "bf", "--workspace", s.ws)[1] == "bf: scheduled\n"
    code, out, _ = run(
        capsys, "campaigns", "calendar", "--workspace", s.ws, "--from", "2030-01-01", "--to", "2030-02-01"
    )
    assert out == "2030-01-07\t10:00\tbf\tscheduled\temail\tBlack Friday\n"
    code, out, err = run(capsys, "campaigns", "send", "bf", "--workspace", s.ws, "--batch", "2")
    assert (code, out) == (0, "bf: sending, 3 messages queued\n")
    assert "queueing bf" in err and "3 recipients" in err  # the progress bar, on stderr
    code, out, _ = run(capsys, "campaigns", "report", "bf", "--workspace", s.ws, "--json")
    reported = json.loads(out)
    assert reported.pop("results")["sent"] == 0
    assert reported == {
        "key": "bf", "status": "sending", "recipients": 3, "queued": 3, "held": 0, "sending": 0, "sent": 0,
        "failed": 0, "skipped": {},
    }  # fmt: skip
    assert run(capsys, "campaigns", "pause", "bf", "--workspace", s.ws)[1] == "bf: paused\n"
    assert run(capsys, "campaigns", "resume", "bf", "--workspace", s.ws)[1] == "bf: sending\n"
    assert run(capsys, "campaigns", "cancel", "bf", "--workspace", s.ws)[1] == "bf: cancelled\n"
    code, out, _ = run(capsys, "campaigns", "show", "bf", "--workspace", s.ws, "--json", "--audience")
    shown = json.loads(out)
    assert (shown["status"], shown["progress"]["skipped"]) == ("cancelled", {"campaign_cancelled": 3})
    assert shown["audience_preview"]["recipients"] == 3
    code, out, _ = run(capsys, "campaigns", "list", "--workspace", s.ws)
    assert out.startswith("bf\tcancelled\temail\t")
    code, _, err = run(capsys, "campaigns", "resume", "bf", "--workspace", s.ws)
    assert (code, err) == (2, "shopflow: status: a cancelled campaign cannot resume (only paused)\n")


def test_bad_files_exit_2_naming_the_field(
    cli_db: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    s = support.shop(cli_db, SimulatedClock(testing.T0))
    s.add_list("newsletter", [s.person("ana")])

    def refused(path: str, *extra: str) -> str:
        code, out, err = run(capsys, "campaigns", "create", path, "--workspace", s.ws, *extra)
        assert (code, out) == (2, "")
        return err

    past = support.definition(schedule={"kind": "at", "at": "2020-01-01T00:00:00Z"})
    assert "  - schedule.at: 2020-01-01T00:00:00+00:00 is in the past" in refused(
        _write(tmp_path, "p.json", past)
    )
    sms = support.definition(channel="sms", template="no-such-sms")
    assert "  - template: 'no-such-sms' does not render for profile" in refused(
        _write(tmp_path, "s.json", sms)
    )
    assert refused(str(tmp_path / "missing.json")).endswith(
        "FILE " + repr(str(tmp_path / "missing.json")) + ": no such file\n"
    )
    assert "not valid JSON or YAML" in refused(_write(tmp_path, "b.json", "{nope"))
    assert "expected a JSON object, got list" in refused(_write(tmp_path, "l.yaml", "- 1\n- 2\n"))
    (tmp_path / "big.json").write_bytes(b" " * 1_000_001)
    assert "more than 1000000 bytes" in refused(str(tmp_path / "big.json"))
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8 text" in refused(str(tmp_path / "bin.json"))
    assert (
        "--workspace: no workspace 'ws_nope'"
        in run(
            capsys,
            "campaigns",
            "create",
            _write(tmp_path, "ok.json", support.definition()),
            "--workspace",
            "ws_nope",
        )[2]
    )
    code, _, err = run(capsys, "campaigns", "send", "bf", "--workspace", s.ws, "--batch", "0")
    assert (code, err) == (2, "shopflow: --batch: expected a whole number from 1 to 50000, got 0\n")
    code, _, err = run(capsys, "campaigns", "show", "../../etc", "--workspace", s.ws)
    assert (code, err) == (2, "shopflow: key: no campaign '../../etc' in this workspace\n")
    code, _, err = run(capsys, "campaigns", "calendar", "--workspace", s.ws, "--from", "soon")
    assert code == 2 and "--from: expected an ISO 8601 date or time" in err
    assert _rows(cli_db) == 0


@pytest.mark.parametrize(
    "command",
    ["create", "list", "show", "schedule", "send", "pause", "resume", "cancel", "report", "calendar"],
)
def test_every_campaigns_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["campaigns", command, "--help"])
    assert done.value.code == 0
    assert "usage: shopflow campaigns" in capsys.readouterr().out
