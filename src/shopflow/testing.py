"""Helpers the tests and users share: databases for tests, a simulated clock, factories."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shopflow.domain.clock import SimulatedClock
from shopflow.messaging.channels.base import OutgoingEmail, SendResult
from shopflow.messaging.channels.push.webpush import OutgoingPush, PushResult
from shopflow.messaging.channels.sms.base import OutgoingSms
from shopflow.store import db, tables, workspaces

__all__ = ["SimulatedClock", "fresh_postgres_database", "make_workspace", "truncate_all"]

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday morning, the tests' usual start


def pg_admin_url() -> str:
    return os.environ.get("SHOPFLOW_TEST_PG_URL", DEFAULT_PG_URL)


def postgres_reachable() -> bool:
    engine = db.create_engine(pg_admin_url(), pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@contextmanager
def fresh_postgres_database(prefix: str = "shopflow_test", *, durable: bool = True) -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it afterwards.

    `durable=False` (the test suite's) turns off synchronous_commit for it: a commit returns before
    its WAL reaches the disk, which only a crash of the PostgreSQL server itself could lose. Tests
    kill workers, never the server, so every test means what it meant; benchmarks keep durable
    commits, as production has them."""
    admin_url = db.normalise_url(pg_admin_url())
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        if not durable:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def truncate_all(engine: Engine) -> None:
    """Empty every table (fast test isolation on a shared schema)."""
    names = [t.name for t in tables.metadata.sorted_tables]
    with engine.begin() as conn:
        if db.is_sqlite(engine):
            for name in reversed(names):
                conn.exec_driver_sql(f'DELETE FROM "{name}"')
        else:
            quoted = ", ".join(f'"{n}"' for n in names)
            conn.exec_driver_sql(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")


def make_workspace(
    engine: Engine, name: str = "Test Store", now: datetime = T0
) -> workspaces.CreatedWorkspace:
    with db.transaction(engine) as conn:
        return workspaces.create_workspace(conn, name=name, now=now)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The real ASGI server (uvicorn) on a loopback port, in a background thread."""

    def __init__(self, app: object, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")  # type: ignore[arg-type]
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import time

        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the test server on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)


class InMemoryEmailChannel:
    """The twin of messaging.channels.email.smtp.SmtpChannel: records what would have been sent.

    `fail_next(n, temporary=True)` makes the next n emails fail, as an SMTP 451 (or 550) would.
    """

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self._failures: list[bool] = []
        self.closed = False

    def fail_next(self, count: int = 1, *, temporary: bool = True) -> None:
        self._failures.extend([temporary] * count)

    def send(self, batch: Sequence[OutgoingEmail]) -> list[SendResult]:
        results: list[SendResult] = []
        for email in batch:
            if self._failures:
                temporary = self._failures.pop(0)
                code = "451 4.3.0 try later" if temporary else "550 5.1.1 no such user"
                results.append(
                    SendResult(email.message_id, ok=False, temporary=temporary, error=f"SMTP {code}")
                )
                continue
            self.sent.append(email)
            results.append(SendResult(email.message_id, ok=True, provider_message_id=email.header_message_id))
        return results

    def messages(self) -> list[EmailMessage]:
        """The sent emails parsed as email.message.EmailMessage."""
        import email.policy
        from email.parser import BytesParser

        parser = BytesParser(policy=email.policy.default)
        return [parser.parsebytes(e.raw) for e in self.sent]

    def close(self) -> None:
        self.closed = True


class InMemorySmsChannel:
    """The twin of the SMS providers (messaging/channels/sms/): records what would have been sent.

    `fail_next(n, temporary=True)` makes the next n SMS fail, as a Twilio 429 (or 400) would.
    """

    def __init__(self) -> None:
        self.sent: list[OutgoingSms] = []
        self._failures: list[bool] = []
        self.closed = False

    def fail_next(self, count: int = 1, *, temporary: bool = True) -> None:
        self._failures.extend([temporary] * count)

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        results: list[SendResult] = []
        for sms in batch:
            if self._failures:
                temporary = self._failures.pop(0)
                error = "HTTP 429 Too Many Requests" if temporary else "HTTP 400 Twilio 21211 invalid To"
                results.append(SendResult(sms.message_id, ok=False, temporary=temporary, error=error))
                continue
            self.sent.append(sms)
            sid = f"SM{len(self.sent):032x}"
            results.append(SendResult(sms.message_id, ok=True, provider_message_id=sid))
        return results

    def close(self) -> None:
        self.closed = True


class InMemoryPushChannel:
    """The twin of messaging.channels.push.webpush.WebPushChannel: records the pushes (payload in
    the clear); `answer(endpoint, status)` makes that endpoint answer like a push service would."""

    def __init__(self) -> None:
        self.sent: list[OutgoingPush] = []
        self.status: dict[str, int] = {}
        self.closed = False

    def answer(self, endpoint: str, status: int) -> None:
        self.status[endpoint] = status

    def send(self, batch: Sequence[OutgoingPush], *, now: datetime) -> list[PushResult]:
        results: list[PushResult] = []
        for push in batch:
            status = self.status.get(push.endpoint, 201)
            if status == 201:
                self.sent.append(push)
                results.append(PushResult(push.message_id, push.subscription_id, ok=True))
                continue
            results.append(
                PushResult(
                    push.message_id,
                    push.subscription_id,
                    ok=False,
                    gone=status in (404, 410),
                    temporary=status == 429 or status >= 500,
                    error=f"push service HTTP {status}",
                )
            )
        return results

    def close(self) -> None:
        self.closed = True
