"""Shared bench helpers: the machine's description, medians, a fresh database of each dialect, and
`shopflow` server and worker processes."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from shopflow import testing
from shopflow.store import db


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


@contextmanager
def database(dialect: str) -> Iterator[str]:
    """A fresh, migrated database URL of `dialect` ('sqlite' or 'postgresql'), removed afterwards."""
    if dialect == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            engine = db.create_engine(url)
            db.upgrade(engine)
            engine.dispose()
            yield url
        return
    with testing.fresh_postgres_database(prefix="shopflow_bench") as url:
        engine = db.create_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url


def shopflow(*args: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start `shopflow ARGS...` from this venv with `env` on top of this process's environment."""
    exe = Path(sys.executable).with_name("shopflow")
    return subprocess.Popen([str(exe), *args], env={**os.environ, **env})


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the server at `base` answers /healthz with 200; kill it if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server at {base} did not start")
