"""`shopflow segments ...` through the entry point, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.segments import install, queries
from shopflow.store import db
from tests.integration import segment_api_support as support


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


def test_count_preview_and_validate_rule_files(
    cli_db: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = testing.make_workspace(cli_db).workspace.id
    support.people(cli_db, ws, 5)
    rule_json = tmp_path / "buyers.json"  # all time: the CLI's clock is the real one
    rule_json.write_text(json.dumps({"where": {"metric": "Placed Order"}}))
    rule_yaml = tmp_path / "us.yaml"
    rule_yaml.write_text("all:\n  - {location: {country: US}}\n  - {not: {where: {metric: Placed Order}}}\n")

    assert run(capsys, "segments", "count", str(rule_json), "--workspace", ws) == (0, "3\n", "")
    assert run(capsys, "segments", "count", str(rule_yaml), "--workspace", ws) == (0, "2\n", "")
    code, out, _ = run(
        capsys, "segments", "preview", str(rule_json), "--workspace", ws, "--sample", "2", "--json"
    )
    preview = json.loads(out)
    assert (code, preview["count"], [m["email"] for m in preview["sample"]]) == (
        0,
        3,
        ["p0@example.com", "p2@example.com"],
    )
    code, out, _ = run(capsys, "segments", "preview", str(rule_yaml), "--workspace", ws)
    assert (code, out.splitlines()[0]) == (0, "2 profile(s)")

    assert run(capsys, "segments", "validate", str(rule_yaml)) == (
        0, f"{rule_yaml}: valid rule (shape only; give --workspace to check the names it uses)\n", "",
    )  # fmt: skip
    assert (
        run(capsys, "segments", "validate", str(rule_yaml), "--workspace", ws)[1]
        == f"{rule_yaml}: valid rule (4 conditions)\n"
    )

    missing = tmp_path / "missing.json"
    assert run(capsys, "segments", "count", str(missing), "--workspace", ws) == (
        2, "", f"shopflow: RULE {str(missing)!r}: no such file\n",
    )  # fmt: skip
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"where": {"metric": "Placed Order"},}')
    code, _, err = run(capsys, "segments", "count", str(bad_json), "--workspace", ws)
    assert (code, err) == (
        2,
        f"shopflow: RULE {str(bad_json)!r}: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 38 (char 37)\n",
    )
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("all: [ {consent: email}\n")
    code, _, err = run(capsys, "segments", "count", str(bad_yaml), "--workspace", ws)
    assert (code, err.splitlines()[0]) == (2, f"shopflow: {bad_yaml}: invalid segment rule:")
    assert "  - rule: not valid JSON or YAML" in err
    bad_rule = tmp_path / "typo.yaml"
    bad_rule.write_text("all:\n  - {consent: email}\n  - {list: vip}\n  - {where: {metric: Placed Ordr}}\n")
    for command in ("count", "preview", "validate"):
        code, _, err = run(capsys, "segments", command, str(bad_rule), "--workspace", ws)
        assert (code, err) == (
            2,
            f"shopflow: {bad_rule}: invalid segment rule:\n"
            "  - rule.all[1].list: unknown list 'vip'\n"
            "  - rule.all[2].where.metric: unknown metric 'Placed Ordr' (did you mean 'Placed Order'?)\n",
        ), command
    shape = tmp_path / "shape.json"
    shape.write_text(
        json.dumps(
            {"all": [{"property": "email", "value": "a\u0000"}, {"where": {"metric": "X"}, "within": "PT1H"}]}
        )
    )
    code, _, err = run(capsys, "segments", "validate", str(shape))
    assert (code, err.splitlines()[1:]) == (2, ["  - rule.all[0].value: NUL characters are not allowed"])
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"any": [{"consent": "email"}] * 10_000}))
    assert run(capsys, "segments", "count", str(huge), "--workspace", ws)[2].endswith(
        "  - rule: more than 200 conditions\n"
    )
    deep = tmp_path / "deep.json"
    deep.write_text('{"not": ' * 3000 + '{"consent": "email"}' + "}" * 3000)
    assert (
        run(capsys, "segments", "count", str(deep), "--workspace", ws)[2]
        == f"shopflow: RULE {str(deep)!r}: nested too deeply\n"
    )
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not UTF-8 text" in run(capsys, "segments", "count", str(binary), "--workspace", ws)[2]
    big = tmp_path / "big.yaml"
    big.write_text("x" * 1_000_001)
    assert (
        run(capsys, "segments", "count", str(big), "--workspace", ws)[2]
        == f"shopflow: RULE {str(big)!r}: more than 1000000 bytes\n"
    )
    assert run(capsys, "segments", "count", str(tmp_path), "--workspace", ws)[0] == 2  # a directory
    assert run(capsys, "segments", "count", str(rule_json), "--workspace", "ws_missing") == (
        2, "", "shopflow: --workspace: no workspace 'ws_missing'\n",
    )  # fmt: skip


def test_create_edit_members_export_sizes_and_status(
    cli_db: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = testing.make_workspace(cli_db).workspace.id
    ids = support.people(cli_db, ws, 3)
    rule = tmp_path / "buyers.yaml"
    rule.write_text("{where: {metric: Placed Order}, within: P30D}\n")

    code, out, _ = run(
        capsys, "segments", "create", "buyers", str(rule), "--workspace", ws, "--name", "Buyers"
    )
    assert (code, out) == (0, "created segment buyers (live v1); backfill pending\n")
    code, _, err = run(capsys, "segments", "create", "buyers", str(rule), "--workspace", ws)
    assert (code, err) == (2, "shopflow: key: segment 'buyers' already exists; edit it instead\n")
    code, _, err = run(capsys, "segments", "create", "bad key!", str(rule), "--workspace", ws)
    assert (code, err.splitlines()[0]) == (2, "shopflow: invalid input:")
    segment = queries.get(cli_db, workspace_id=ws, key="buyers")
    support.enter(cli_db, ws, segment.id, [ids[0], ids[2]])

    code, out, _ = run(capsys, "segments", "list", "--workspace", ws, "--json")
    listed = json.loads(out)
    assert [(s["key"], s["status"], s["version"], s["members"], s["backfill"]["status"]) for s in listed] == [
        ("buyers", "live", 1, 2, "pending")
    ]
    code, out, _ = run(capsys, "segments", "list", "--workspace", ws)
    assert out.splitlines()[-1] == "1 segment(s)"
    code, out, _ = run(capsys, "segments", "show", "buyers", "--workspace", ws, "--json")
    assert json.loads(out)["rule"]["within"] == "P30D"

    week = tmp_path / "week.json"
    week.write_text(json.dumps({**support.BUYERS, "within": "P7D"}))
    assert (
        run(capsys, "segments", "edit", "buyers", "--workspace", ws, "--rule", str(week))[1]
        == "segment buyers: version 2; backfill pending\n"
    )
    assert (
        run(capsys, "segments", "edit", "buyers", "--workspace", ws, "--rule", str(week))[1]
        == "segment buyers: rule unchanged (version 2)\n"
    )
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"where": {"metric": "Placed Ordr"}}))
    code, _, err = run(
        capsys, "segments", "edit", "buyers", "--workspace", ws, "--rule", str(typo), "--name", "New"
    )
    assert (code, err.splitlines()[1]) == (
        2,
        "  - rule.where.metric: unknown metric 'Placed Ordr' (did you mean 'Placed Order'?)",
    )
    kept = queries.get(cli_db, workspace_id=ws, key="buyers")
    assert (kept.version, kept.name, kept.rule["within"]) == (2, "Buyers", "P7D")
    assert run(capsys, "segments", "edit", "buyers", "--workspace", ws)[0] == 2
    assert run(capsys, "segments", "show", "nope", "--workspace", ws) == (
        2,
        "",
        "shopflow: key: no segment 'nope' in this workspace\n",
    )

    code, out, _ = run(capsys, "segments", "members", "buyers", "--workspace", ws, "--limit", "1", "--json")
    assert json.loads(out)["members"][0]["profile_id"] == ids[0] and json.loads(out)["next_after"] == ids[0]
    code, out, _ = run(capsys, "segments", "members", "buyers", "--workspace", ws, "--after", str(ids[0]))
    assert out.splitlines() == [f"{ids[2]:>10}  {'p2@example.com':40} entered 2026-01-05T09:00:00+00:00"]
    assert run(capsys, "segments", "members", "buyers", "--workspace", ws, "--limit", "0")[2].startswith(
        "shopflow: limit: expected a whole number from 1 to 1000, got 0"
    )

    code, out, _ = run(capsys, "segments", "export", "buyers", "--workspace", ws)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [
        ["profile_id", "email", "phone", "external_id", "first_name", "last_name", "entered_at"],
        [str(ids[0]), "p0@example.com", "+15550000000", "p0", "First0", "", "2026-01-05T09:00:00+00:00"],
        [str(ids[2]), "p2@example.com", "+15550000002", "p2", "First2", "", "2026-01-05T09:00:00+00:00"],
    ]
    target = tmp_path / "out.csv"
    assert (
        run(capsys, "segments", "export", "buyers", "--workspace", ws, "-o", str(target))[2]
        == f"wrote 2 member(s) to {target}\n"
    )
    assert target.read_bytes().decode() == out

    queries.record_sizes(cli_db, now=support.NOW)
    code, out, _ = run(capsys, "segments", "sizes", "buyers", "--workspace", ws, "--json")
    assert json.loads(out) == [{"at": "2026-01-05T09:00:00+00:00", "members": 2}]
    assert run(capsys, "segments", "sizes", "buyers", "--workspace", ws, "--since", "2026-01-06")[1] == ""
    assert run(capsys, "segments", "sizes", "buyers", "--workspace", ws, "--since", "soon")[2].startswith(
        "shopflow: --since: expected"
    )

    assert (
        run(capsys, "segments", "pause", "buyers", "--workspace", ws)[1] == "segment buyers: live -> paused\n"
    )
    assert (
        run(capsys, "segments", "resume", "buyers", "--workspace", ws)[1]
        == "segment buyers: paused -> live\n"
    )
    assert (
        run(capsys, "segments", "archive", "buyers", "--workspace", ws)[1]
        == "segment buyers: live -> archived\n"
    )
    code, _, err = run(capsys, "segments", "resume", "buyers", "--workspace", ws)
    assert (code, err) == (
        2,
        "shopflow: status: segment 'buyers' is archived; archived segments cannot be resumed\n",
    )


def test_library_and_install(cli_db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ws = testing.make_workspace(cli_db).workspace.id
    keys = [s.key for s in install.library()]
    code, out, _ = run(capsys, "segments", "library", "--json")
    assert (code, [s["key"] for s in json.loads(out)]) == (0, keys)
    code, out, _ = run(capsys, "segments", "install", "vip", "dormant", "--workspace", ws)
    assert (code, out) == (0, run_ids(cli_db, ws, ["vip", "dormant"]))
    code, out, _ = run(capsys, "segments", "install", "--all", "--workspace", ws, "--live")
    lines = out.splitlines()
    assert (code, len(lines)) == (0, 16)
    assert sum(line.endswith("; left as it is") for line in lines) == 2
    assert {s.key: s.status for s in queries.list_segments(cli_db, workspace_id=ws)} == {
        k: ("draft" if k in ("vip", "dormant") else "live") for k in keys
    }
    assert run(capsys, "segments", "install", "--all", "--workspace", ws)[1].count("left as it is") == 16
    code, _, err = run(capsys, "segments", "install", "vip", "teleport", "--workspace", ws)
    assert (code, err) == (
        2,
        f"shopflow: segment 'teleport': not in the library; available: {', '.join(keys)}\n",
    )
    assert (
        run(capsys, "segments", "install", "--workspace", ws)[2]
        == "shopflow: KEY: give built-in segment keys or --all\n"
    )
    assert (
        run(capsys, "segments", "install", "vip", "--workspace", "ws_missing")[2]
        == "shopflow: --workspace: no workspace 'ws_missing'\n"
    )


def run_ids(engine: Any, ws: str, keys: list[str]) -> str:
    found = {s.key: s.id for s in queries.list_segments(engine, workspace_id=ws)}
    return "".join(f"installed {k} as segment {found[k]} (draft)\n" for k in keys)


@pytest.mark.parametrize(
    "command",
    ["list", "show", "create", "edit", "validate", "count", "preview", "members", "export", "sizes",
     "pause", "resume", "archive", "library", "install"],
)  # fmt: skip
def test_every_segments_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["segments", command, "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: shopflow segments {command}")
