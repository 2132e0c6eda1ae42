"""`shopflow db backup` / `restore` on a real database of each kind: a backup taken while data is
there, more data written after it, a restore brings back exactly the backed-up state; bad input is
refused without touching anything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.store import db, tables


@pytest.fixture(params=["sqlite", "postgresql"])
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own: a restore replaces everything in it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    request.getfixturevalue("pg_url")  # skips or fails (SHOPFLOW_REQUIRE_PG) without PostgreSQL
    with testing.fresh_postgres_database("shopflow_backup") as url:
        yield url


def _events(url: str, ws: str, ids: range) -> None:
    engine = db.create_engine(url)
    batch = [
        CanonicalEvent(
            message_id=f"m{i}",
            source="test",
            identity=Identity(email=f"p{i}@example.com"),
            time=testing.T0 + timedelta(minutes=i),
            name="Viewed Product",
            properties={"i": i},
        )
        for i in ids
    ]
    with db.transaction(engine) as conn:
        pipeline.accept(conn, workspace_id=ws, events=batch, now=testing.T0)
    engine.dispose()


def _stored(url: str) -> list[str]:
    engine = db.create_engine(url)
    with db.reading(engine) as conn:
        found = sorted(conn.execute(sa.select(tables.events.c.message_id)).scalars())
    engine.dispose()
    return found


def test_backup_then_restore_brings_back_the_backed_up_state(
    own_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", own_database)
    engine = db.create_engine(own_database)
    db.upgrade(engine)
    ws = testing.make_workspace(engine).workspace.id
    engine.dispose()
    _events(own_database, ws, range(0, 30))
    backup = tmp_path / "shop.backup"

    assert cli.main(["db", "backup", str(backup)]) == 0
    assert "backed up" in capsys.readouterr().out
    _events(own_database, ws, range(30, 45))  # written after the backup
    assert len(_stored(own_database)) == 45

    assert cli.main(["db", "backup", str(backup)]) == 2  # never overwrites
    assert "exists already" in capsys.readouterr().err
    assert cli.main(["db", "restore", str(backup)]) == 2  # not without --yes
    assert "--yes" in capsys.readouterr().err
    assert len(_stored(own_database)) == 45

    assert cli.main(["db", "restore", str(backup), "--yes"]) == 0
    assert _stored(own_database) == sorted(f"m{i}" for i in range(30))
    _events(own_database, ws, range(30, 32))  # and the restored database takes writes again
    assert len(_stored(own_database)) == 32


def test_restore_refuses_what_is_not_a_backup(
    own_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", own_database)
    engine = db.create_engine(own_database)
    db.upgrade(engine)
    ws = testing.make_workspace(engine).workspace.id
    engine.dispose()
    _events(own_database, ws, range(3))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 64 + b"DROP TABLE events;")
    alien = tmp_path / "alien.db"
    import sqlite3

    sqlite3.connect(alien).execute("CREATE TABLE t (x)").connection.commit()
    for path, message in [
        (tmp_path / "missing.backup", "no such file"),
        (junk, "not a"),
        (alien, "not a" if "postgresql" in own_database else "not a Shopflow one"),
    ]:
        assert cli.main(["db", "restore", str(path), "--yes"]) == 2
        assert message in capsys.readouterr().err
    assert len(_stored(own_database)) == 3  # nothing touched
