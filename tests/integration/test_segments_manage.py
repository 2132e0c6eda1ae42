"""The segment use cases the interfaces call, on SQLite and PostgreSQL: concurrent edits cannot
make a cycle, size history, install all or none, status rules."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow import testing, workspaces
from shopflow.segments import install, manage, queries
from shopflow.store import db, segment_admin
from shopflow.store import segments as segment_store
from tests.integration import segment_api_support as support

NOW = support.NOW


def test_an_edit_waits_for_a_concurrent_one_and_then_sees_its_cycle(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    manage.create(engine, workspace_id=ws, key="a", name="A", rule=support.BUYERS, now=NOW)
    manage.create(engine, workspace_id=ws, key="b", name="B", rule={"consent": "email"}, now=NOW)
    outcome: list[Any] = []

    def edit_b() -> None:
        try:
            manage.edit(engine, workspace_id=ws, key="b", rule={"segment": "a"}, now=NOW)
            outcome.append("saved")
        except manage.Invalid as exc:
            outcome.append(exc.messages())

    # Another edit (a includes b) holds the definitions while b's edit starts; b's edit checks the
    # include graph only once that one has committed, and so sees the cycle.
    with db.transaction(engine) as conn:
        segment_admin.lock_definitions(conn, workspace_id=ws)
        segment_store.update_rule(
            conn, workspace_id=ws, key="a", rule={"segment": "b"}, includes=["b"], now=NOW
        )
        other = threading.Thread(target=edit_b)
        other.start()
        if not db.is_sqlite(engine):
            _until_waiting_for_a_lock(engine, other)
    other.join()
    assert outcome == [["rule.segment: including 'a' would make a cycle: b -> a -> b"]]
    assert queries.get(engine, workspace_id=ws, key="b").version == 1


def _until_waiting_for_a_lock(engine: Engine, thread: threading.Thread) -> None:
    """Until another session of this database waits for a lock (or the thread ended without)."""
    with engine.connect() as watch:
        for _ in range(3000):
            if not thread.is_alive():
                return
            waiting = watch.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            time.sleep(0.01)


def test_record_sizes_one_row_an_hour_for_live_and_paused_segments(engine: Engine) -> None:
    one, two = (
        testing.make_workspace(engine).workspace.id,
        testing.make_workspace(engine, name="Two").workspace.id,
    )
    ids = support.people(engine, one, 3)
    live = manage.create(engine, workspace_id=one, key="live", name="L", rule=support.BUYERS, now=NOW)
    paused = manage.create(engine, workspace_id=one, key="paused", name="P", rule=support.BUYERS, now=NOW)
    manage.create(
        engine, workspace_id=one, key="draft", name="D", rule=support.BUYERS, now=NOW, status="draft"
    )
    manage.create(engine, workspace_id=one, key="gone", name="G", rule=support.BUYERS, now=NOW)
    manage.create(engine, workspace_id=two, key="live", name="L2", rule=support.BUYERS, now=NOW)
    support.enter(engine, one, live.id, ids)
    support.enter(engine, one, paused.id, ids[:1])
    manage.change_status(engine, workspace_id=one, key="paused", action="pause", now=NOW)
    manage.change_status(engine, workspace_id=one, key="gone", action="archive", now=NOW)

    assert queries.record_sizes(engine, now=NOW + timedelta(minutes=59, seconds=59)) == 3
    assert queries.record_sizes(engine, now=NOW) == 0
    assert queries.record_sizes(engine, now=NOW + timedelta(hours=1)) == 3
    assert queries.sizes(engine, workspace_id=one, key="live") == [(NOW, 3), (NOW + timedelta(hours=1), 3)]
    assert queries.sizes(engine, workspace_id=one, key="paused", limit=1) == [(NOW, 1)]
    assert queries.sizes(engine, workspace_id=one, key="draft") == []
    assert queries.sizes(engine, workspace_id=two, key="live") == [(NOW, 0), (NOW + timedelta(hours=1), 0)]
    with pytest.raises(manage.Invalid, match="limit: expected a whole number from 1 to 10000, got 0"):
        queries.sizes(engine, workspace_id=one, key="live", limit=0)


def test_install_is_all_or_none_and_needs_a_workspace(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    with pytest.raises(install.NotInLibrary) as err:
        install.install(engine, workspace_id=ws, keys=["vip", "nope"], now=NOW)
    assert err.value.key == "nope" and "vip" in err.value.available
    assert queries.list_segments(engine, workspace_id=ws) == []
    with pytest.raises(workspaces.NoWorkspace):
        install.install(engine, workspace_id="ws_missing", keys=["vip"], now=NOW)
    done = install.install(engine, workspace_id=ws, keys=["vip", "vip", "dormant"], now=NOW, live=True)
    assert [(d.key, d.status, d.created) for d in done] == [("vip", "live", True), ("dormant", "live", True)]


def test_status_changes_and_the_backfill_they_restart(engine: Engine) -> None:
    ws = testing.make_workspace(engine).workspace.id
    draft = manage.create(
        engine, workspace_id=ws, key="d", name="D", rule=support.BUYERS, now=NOW, status="draft"
    )
    assert (draft.status, draft.backfill_status) == ("draft", "pending")
    with pytest.raises(manage.Conflict, match="only a live segment can be paused"):
        manage.change_status(engine, workspace_id=ws, key="d", action="pause", now=NOW)
    change = manage.change_status(engine, workspace_id=ws, key="d", action="resume", now=NOW)
    assert (change.old, change.new, change.segment.status) == ("draft", "live", "live")
    with pytest.raises(manage.Invalid, match="action: expected one of pause, resume, archive, got 'delete'"):
        manage.change_status(engine, workspace_id=ws, key="d", action="delete", now=NOW)
    with pytest.raises(manage.SegmentNotFound, match="key: no segment 'zz' in this workspace"):
        manage.change_status(engine, workspace_id=ws, key="zz", action="pause", now=NOW)
    with pytest.raises(manage.Invalid, match="status: expected one of draft, live, got 'paused'"):
        manage.create(
            engine, workspace_id=ws, key="p", name="P", rule=support.BUYERS, now=NOW, status="paused"
        )
