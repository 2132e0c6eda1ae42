"""A local SMTP server that keeps what it receives, so a store owner (and the tests) can see the mail.

Messages are stored as files in a Maildir-like directory (`<dir>/new/<n>.eml`) when one is given,
in memory otherwise.
"""

from __future__ import annotations

import email.policy
import itertools
import os
import threading
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from shopflow.messaging import smtp_server

OnMessage = Callable[[Envelope, Path | None], None]


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_EHLO(  # noqa: N802 (aiosmtpd hook name)
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.sink._count_session()
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        reply = self.sink._take_rejection()
        if reply is not None:
            return reply
        self.sink._store(envelope)
        return "250 OK"


class Sink(smtp_server.SmtpServer):
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        directory: Path | None = None,
        on_message: OnMessage | None = None,
    ) -> None:
        # Lift aiosmtpd's small default limits: store newsletters can be large.
        super().__init__(_Handler(self), host=host, port=port, data_size_limit=50 * 1024 * 1024)
        self.directory = directory
        self.on_message = on_message
        self._lock = threading.Lock()
        self._memory: list[bytes] = []
        self._files: list[Path] = []
        self._count = 0
        self._sessions = 0
        self._rejections: list[str] = []
        self._seq = itertools.count(1)

    def start(self) -> None:
        if self.directory is not None:
            for sub in ("new", "cur", "tmp"):
                (self.directory / sub).mkdir(parents=True, exist_ok=True)
        super().start()

    # --- what was received ----------------------------------------------------------------

    def count(self) -> int:
        with self._lock:
            return self._count

    def sessions(self) -> int:
        """SMTP sessions greeted with EHLO: one per client connection (two with STARTTLS)."""
        with self._lock:
            return self._sessions

    def raw_messages(self) -> list[bytes]:
        with self._lock:
            if self.directory is None:
                return list(self._memory)
            files = list(self._files)
        return [f.read_bytes() for f in files]

    def messages(self) -> list[EmailMessage]:
        parser = BytesParser(policy=email.policy.default)
        return [parser.parsebytes(raw) for raw in self.raw_messages()]

    def reject_next(self, count: int = 1, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the next `count` messages with `reply` instead of accepting them (fault tests)."""
        with self._lock:
            self._rejections.extend([reply] * count)

    def clear_rejections(self) -> None:
        """Accept every message from now on (the end of a simulated outage)."""
        with self._lock:
            self._rejections.clear()

    # --- handler side ---------------------------------------------------------------------

    def _count_session(self) -> None:
        with self._lock:
            self._sessions += 1

    def _take_rejection(self) -> str | None:
        with self._lock:
            return self._rejections.pop(0) if self._rejections else None

    def _store(self, envelope: Envelope) -> None:
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        path: Path | None = None
        if self.directory is not None:
            seq = next(self._seq)
            name = f"{os.getpid()}.{seq:08d}.eml"
            tmp = self.directory / "tmp" / name
            tmp.write_bytes(data)
            path = self.directory / "new" / name
            # Maildir delivery: write to tmp/, then rename into new/ so readers never see half a file.
            os.replace(tmp, path)
        with self._lock:
            self._count += 1
            if path is None:
                self._memory.append(data)
            else:
                self._files.append(path)
        if self.on_message is not None:
            self.on_message(envelope, path)
