"""`shopflow worker --processes 2`: two worker processes share the queue, each email goes out once,
a worker that dies is started again, and SIGTERM stops them all."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.messaging.sink import Sink
from tests.acceptance.test_worker_crash import start_live_flow, state, unsent

PROFILES = 150
FLOW = {
    "id": "processes-test",
    "name": "Processes test",
    "trigger": {"type": "event", "event": "Processes Test"},
    "holdout_percent": 0,
    "entry": "send",
    "nodes": [
        {"id": "send", "type": "send", "template": "welcome-1", "transactional": True, "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


def children(pid: int) -> list[int]:
    """The worker processes of the supervisor `pid` (Linux /proc; multiprocessing's resource
    tracker, also a child, is left out)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command:
                found.append(int(child))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def worker_command(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from shopflow.cli import main; sys.exit(main.main(sys.argv[1:]))",
        *args,
    ]


@pytest.mark.slow(
    reason="a `shopflow worker --processes 2` supervisor and its workers deliver a flow to a real SMTP sink"
)
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_two_worker_processes_share_the_queue(engine: Engine, database_url: str, tmp_path: Path) -> None:
    ws = testing.make_workspace(engine).workspace.id
    now = datetime.now(UTC)
    start_live_flow(engine, ws, FLOW, PROFILES, now=now)
    log = tmp_path / "worker.log"
    with Sink() as sink, log.open("ab") as out:
        env = {
            **os.environ,
            "SHOPFLOW_DATABASE_URL": database_url,
            "SHOPFLOW_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
            "SHOPFLOW_WORKER_POLL_MS": "20",
            "SHOPFLOW_LOG_LEVEL": "WARNING",
        }
        supervisor = subprocess.Popen(
            worker_command("worker", "--processes", "2"), env=env, cwd=tmp_path, stdout=out, stderr=out
        )
        try:
            wait_for(lambda: len(children(supervisor.pid)) == 2, "two worker processes")
            first = children(supervisor.pid)
            wait_for(lambda: unsent(engine) == 0 and sink.count() >= PROFILES, state(engine, log))
            # A worker that dies is replaced; the other one keeps running.
            os.kill(first[0], signal.SIGKILL)
            wait_for(
                lambda: len(children(supervisor.pid)) == 2 and first[0] not in children(supervisor.pid),
                "the killed worker to be restarted",
            )
            assert first[1] in children(supervisor.pid)
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(30) == 0, log.read_text()

            # A supervisor killed outright leaves no orphan sending on its own.
            supervisor = subprocess.Popen(
                worker_command("worker", "--processes", "2"), env=env, cwd=tmp_path, stdout=out, stderr=out
            )
            wait_for(lambda: len(children(supervisor.pid)) == 2, "two worker processes again")
            orphans = children(supervisor.pid)
            supervisor.kill()
            supervisor.wait(10)
            wait_for(lambda: not any(alive(pid) for pid in orphans), "the orphaned workers to stop", 15)
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
                supervisor.wait(10)
        received = collections.Counter(str(m["Message-ID"]) for m in sink.messages())
    assert len(received) == PROFILES
    assert set(received.values()) == {1}, "an email went out twice without any crash"
    assert not any(alive(pid) for pid in first)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--processes", "0"], {}, "--processes: expected 1 to 64 worker processes, got 0"),
        (["--processes", "65"], {}, "--processes: expected 1 to 64"),
        (["--processes", "two"], {}, "--processes: invalid int value"),
        ([], {"SHOPFLOW_WORKER_PROCESSES": "-1"}, "SHOPFLOW_WORKER_PROCESSES: expected 1 to 64"),
        ([], {"SHOPFLOW_WORKER_PROCESSES": "many"}, "SHOPFLOW_WORKER_PROCESSES: expected an integer"),
        ([], {"SHOPFLOW_DELIVERY_RECORD_GROUP": "0"}, "SHOPFLOW_DELIVERY_RECORD_GROUP: expected 1 to 1000"),
    ],
)
def test_bad_worker_settings_are_refused(
    args: list[str],
    env: dict[str, str],
    expected: str,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        code = cli.main(["worker", *args])
    except SystemExit as exc:  # argparse refusing a non-integer
        code = int(exc.code or 0)
    assert code != 0
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists(), "nothing is started or created on bad settings"
