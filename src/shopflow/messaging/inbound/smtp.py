"""An inbound SMTP endpoint for bounces (RFC 3464), complaints (RFC 5965 feedback loops) and
RFC 2369 mailto: unsubscribes.

Point the Return-Path / bounce domain's MX and the mailbox providers' feedback loops here
(`shopflow inbound-smtp --port 2526`). Every message is accepted once read, even one that is not
a report (an auto-reply): refusing it would only send a bounce back to an auto-responder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from email.parser import HeaderParser

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import Engine

from shopflow.domain.clock import Clock
from shopflow.messaging import smtp_server
from shopflow.messaging.inbound import bounces, feedback
from shopflow.messaging.tracking import links, signing
from shopflow.store import db

log = logging.getLogger(__name__)

OnReport = Callable[[bytes, list[feedback.Outcome], str | None], None]


class _Handler:
    def __init__(self, server: InboundServer) -> None:
        self.server = server

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode("utf-8")
        loop = asyncio.get_running_loop()
        # Parsing and the database write run off the SMTP event loop: other sessions keep flowing.
        return await loop.run_in_executor(None, self.server.handle, raw)


class InboundServer(smtp_server.SmtpServer):
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock,
        link_secret: bytes | None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_report: OnReport | None = None,
    ) -> None:
        super().__init__(_Handler(self), host=host, port=port, data_size_limit=bounces.MAX_REPORT_BYTES)
        self.engine = engine
        self.clock = clock
        self.link_secret = link_secret
        self.on_report = on_report

    def handle(self, raw: bytes) -> str:
        """Parse and apply one received message; the SMTP reply to give."""
        claims = self._unsubscribe_request(raw)
        if claims is not None:
            with db.transaction(self.engine) as conn:
                outcome = feedback.unsubscribe_by_mail(conn, claims, now=self.clock.now())
            if self.on_report is not None:
                self.on_report(raw, [outcome], None)
            return f"250 2.0.0 Unsubscribe {outcome.status}"
        try:
            items = bounces.parse_email_report(raw)
        except bounces.ReportError as exc:
            log.info("inbound message is not a usable report: %s", exc)
            if self.on_report is not None:
                self.on_report(raw, [], str(exc))
            return f"250 2.0.0 Accepted, not a report: {exc}"[:500]
        outcomes = feedback.apply_all(self.engine, items, now=self.clock.now(), link_secret=self.link_secret)
        if self.on_report is not None:
            self.on_report(raw, outcomes, None)
        summary = ", ".join(o.status for o in outcomes) or "nothing to record"
        return f"250 2.0.0 Report accepted: {summary}"

    def _unsubscribe_request(self, raw: bytes) -> links.LinkClaims | None:
        """RFC 2369: List-Unsubscribe's mailto: sends "unsubscribe-<signed token>" as the subject."""
        if not self.link_secret:
            return None
        head = raw.split(b"\r\n\r\n", 1)[0][:20_000]
        subject = HeaderParser().parsestr(head.decode("utf-8", "replace"), headersonly=True).get("Subject")
        return feedback.unsubscribe_token(str(subject), self.link_secret) if subject else None


def open_server(
    engine: Engine,
    *,
    clock: Clock,
    configured_secret: str,
    host: str,
    port: int,
    on_report: OnReport | None = None,
) -> InboundServer:
    """An inbound server (not yet started) that verifies links with the instance's signing key."""
    secret = signing.link_secret(engine, configured=configured_secret)
    return InboundServer(engine, clock=clock, link_secret=secret, host=host, port=port, on_report=on_report)
