"""Unique coupon codes: pools from CSV or generated, one code per message, assigned at render."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain import coupons as rules
from shopflow.domain.clock import SimulatedClock
from shopflow.messaging.delivery import due
from shopflow.messaging.templates import email as templates
from shopflow.store import coupons, db, messages
from tests.integration.test_messaging_delivery import person, queue

SECRET = b"test-link-secret"
PUBLIC = "https://sf.example"
TEMPLATE = "subject: 'Your code {{ coupon.SPRING }}'\nhtml: '<p>Use {{ coupon.SPRING }} at checkout</p>'\n"


def library(tmp_path: Path) -> templates.Library:
    (tmp_path / "offer.yaml").write_text(TEMPLATE, encoding="utf-8")
    (tmp_path / "plain.yaml").write_text("subject: Hi\nhtml: '<p>Hello</p>'\n", encoding="utf-8")
    return templates.Library(tmp_path)


def deliver(engine: Engine, clock: SimulatedClock, lib: templates.Library) -> testing.InMemoryEmailChannel:
    channel = testing.InMemoryEmailChannel()
    due.email(engine, clock=clock, channel=channel, link_secret=SECRET, public_url=PUBLIC, library=lib)
    return channel


def test_generated_codes_are_unique_and_unambiguous() -> None:
    codes = rules.generate(500, prefix="SAVE")
    assert len(set(codes)) == 500
    assert all(re.fullmatch(r"SAVE-[ACDEFGHJKMNPQRTUVWXY34679]{8}", c) for c in codes)
    with pytest.raises(ValueError, match="count: expected 1 to 1000000, got 0"):
        rules.generate(0)
    with pytest.raises(ValueError, match="prefix: expected letters"):
        rules.generate(1, prefix="a b")


def test_csv_parsing_names_bad_lines() -> None:
    assert rules.parse_csv("code,value\nA1,10\n\nB2,10\nA1,5\n") == ["A1", "B2"]
    assert rules.parse_csv("X-1\nX-2\n") == ["X-1", "X-2"]
    with pytest.raises(ValueError, match=r"line 3: code: expected .* got 'bad code'"):
        rules.parse_csv("code\nok\nbad code\n")
    with pytest.raises(ValueError, match="pool: expected"):
        rules.check_pool_name("spring-sale; drop")


def test_one_code_per_message_idempotent_and_empty_pool_fails(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = testing.make_workspace(engine).workspace
    lib = library(tmp_path)
    with db.transaction(engine) as conn:
        pool = coupons.ensure_pool(conn, workspace_id=ws.id, name="SPRING", now=clock.now())
        assert (
            coupons.add_codes(conn, workspace_id=ws.id, pool=pool, codes=["AAA", "BBB"], now=clock.now()) == 2
        )
        assert coupons.add_codes(conn, workspace_id=ws.id, pool=pool, codes=["BBB"], now=clock.now()) == 0
    people = [person(engine, ws.id, clock, f"p{i}@example.org") for i in range(3)]
    mids = [queue(engine, ws.id, pid, clock, template="offer", transactional=True) for pid in people]
    channel = deliver(engine, clock, lib)
    subjects = sorted(str(m["Subject"]) for m in channel.messages())
    assert subjects == ["Your code AAA", "Your code BBB"]
    with db.reading(engine) as conn:
        rows = {mid: messages.get(conn, message_id=mid) for mid in mids}
        again = coupons.assign(
            conn, workspace_id=ws.id, name="SPRING", message_id=mids[0], profile_id=people[0], now=clock.now()
        )
        counts = coupons.counts(conn, workspace_id=ws.id, name="SPRING")
    assert [rows[m]["status"] for m in mids] == ["sent", "sent", "failed"]  # type: ignore[index]
    assert "coupon pool 'SPRING' has no free codes left" in rows[mids[2]]["error"]  # type: ignore[index]
    assert again == "AAA"  # a re-render of the same message gets the same code
    assert counts == coupons.PoolCounts(total=2, free=0)


def test_templates_without_coupon_pay_nothing_and_missing_pool_is_named(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = testing.make_workspace(engine).workspace
    lib = library(tmp_path)
    pid = person(engine, ws.id, clock, "ana@example.org")
    plain = queue(engine, ws.id, pid, clock, template="plain", transactional=True)
    offer = queue(engine, ws.id, pid, clock, template="offer", transactional=True)
    deliver(engine, clock, lib)
    with db.reading(engine) as conn:
        assert messages.get(conn, message_id=plain)["status"] == "sent"  # type: ignore[index]
        failed = messages.get(conn, message_id=offer)
    assert failed is not None and failed["status"] == "failed"
    assert "coupon pool 'SPRING' does not exist" in failed["error"]


def test_cli_upload_and_generate(
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    ws = testing.make_workspace(engine).workspace
    csv_file = tmp_path / "codes.csv"
    csv_file.write_text("code\nWELCOME-1\nWELCOME-2\nWELCOME-2\n", encoding="utf-8")
    assert cli.main(["coupons", "upload", "WELCOME", str(csv_file), "--workspace", ws.id]) == 0
    assert json.loads(capsys.readouterr().out) == {"pool": "WELCOME", "added": 2, "total": 2, "free": 2}
    argv = ["coupons", "generate", "WELCOME", "--workspace", ws.id, "--count", "5", "--prefix", "SAVE"]
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out) == {"pool": "WELCOME", "added": 5, "total": 7, "free": 7}
    bad = tmp_path / "bad.csv"
    bad.write_text("code\nok\n'; DROP TABLE x\n", encoding="utf-8")
    assert cli.main(["coupons", "upload", "WELCOME", str(bad), "--workspace", ws.id]) == 2
    assert "line 3: code: expected" in capsys.readouterr().err
    assert cli.main(["coupons", "upload", "WELCOME", str(tmp_path / "none.csv"), "--workspace", ws.id]) == 2
    assert "file: cannot read" in capsys.readouterr().err
    assert cli.main(["coupons", "generate", "P", "--workspace", "nope", "--count", "1"]) == 2
    assert "workspace: no workspace 'nope'" in capsys.readouterr().err
    with db.reading(engine) as conn:
        assert coupons.counts(conn, workspace_id=ws.id, name="WELCOME") == coupons.PoolCounts(7, 7)


def test_concurrent_assignments_skip_locked_codes(engine: Engine, clock: SimulatedClock) -> None:
    """Two open transactions hand out two different codes; on PostgreSQL neither waits (SKIP LOCKED)."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time; the row-lock path is PostgreSQL's")
    ws = testing.make_workspace(engine).workspace
    with db.transaction(engine) as conn:
        pool = coupons.ensure_pool(conn, workspace_id=ws.id, name="P", now=clock.now())
        coupons.add_codes(conn, workspace_id=ws.id, pool=pool, codes=["C1", "C2"], now=clock.now())
    with db.transaction(engine) as first:
        one = coupons.assign(first, workspace_id=ws.id, name="P", message_id=1, profile_id=1, now=clock.now())
        with db.transaction(engine) as second:
            second.exec_driver_sql("SET LOCAL lock_timeout = '2s'")  # a wait would fail, not hang
            two = coupons.assign(
                second, workspace_id=ws.id, name="P", message_id=2, profile_id=2, now=clock.now()
            )
    assert (one, two) == ("C1", "C2")
