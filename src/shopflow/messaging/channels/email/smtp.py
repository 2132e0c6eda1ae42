"""SMTP delivery over one reused connection (smtp:// or smtps://, optional user:pass, STARTTLS)."""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from shopflow.domain import ratelimit as bucket_rules
from shopflow.messaging.channels import ratelimit
from shopflow.messaging.channels.base import (
    PROVIDER_RATE_LIMIT,
    PROVIDER_THROTTLED,
    OnResult,
    OutgoingEmail,
    SendResult,
)

# A batch waits at most this long for rate-limit tokens; the rest of it goes back to the queue
# (deferred, not a failed attempt). Short, so a stopping worker is not held up and other work in the
# worker's pass is not starved, and far under delivery's STALE_CLAIM (5 min), after which another
# worker would take the still-claimed messages for a dead worker's and send them twice.
MAX_BATCH_WAIT = 10.0
# RFC 5321 421 "service not available" (Gmail: "4.7.0 Try again later, closing connection") and
# 454 (Amazon SES: "Throttling failure: Maximum sending rate exceeded"): the server wants us slower.
THROTTLE_CODES = frozenset({421, 454})


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool  # smtps://
    starttls: bool  # smtp://...?starttls=true
    username: str | None
    password: str | None
    connections: int = 2
    timeout: float = 30.0
    # Emails per second to this host:port across every worker (`?rate=50&burst=5`); 0: unlimited.
    rate: bucket_rules.Rate = bucket_rules.UNLIMITED

    @property
    def rate_key(self) -> str:
        return ratelimit.bucket_key("smtp", self.host, str(self.port))


def parse_url(url: str) -> SmtpConfig:
    """`smtp://[user:pass@]host[:port][?starttls=true&connections=2&rate=50&burst=5]` or `smtps://...`
    (implicit TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"SHOPFLOW_SMTP_URL: expected smtp:// or smtps://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"SHOPFLOW_SMTP_URL: expected a host name in {url!r}")
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["false"])[-1].lower() in ("1", "true", "yes", "on")
    raw_connections = query.get("connections", ["2"])[-1]
    if not raw_connections.isdigit() or not 1 <= int(raw_connections) <= 32:
        raise ValueError(f"SHOPFLOW_SMTP_URL: connections: expected 1 to 32, got {raw_connections!r}")
    rate = bucket_rules.parse(
        query.get("rate", ["0"])[-1],
        query.get("burst", [""])[-1],
        name="SHOPFLOW_SMTP_URL: ",
        unit="emails",
    )
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise ValueError(f"SHOPFLOW_SMTP_URL: expected a numeric port in {url!r}") from None
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        implicit_tls=parts.scheme == "smtps",
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        connections=int(raw_connections),
        rate=rate,
    )


class _Session:
    """One SMTP connection, opened on first use and kept open; reconnects once if the server dropped it."""

    def __init__(self, channel: SmtpChannel) -> None:
        self._channel = channel
        self._smtp: smtplib.SMTP | None = None

    def send(
        self, batch: Sequence[OutgoingEmail], on_result: OnResult | None = None, deadline: float | None = None
    ) -> list[SendResult]:
        results: list[SendResult] = []
        limiter = self._channel.limiter
        for index, email in enumerate(batch):
            if limiter is not None and not limiter.acquire(deadline):
                # The provider's rate leaves no room for the rest of this batch now: back to the queue.
                cfg = self._channel.config
                error = f"SMTP {cfg.host}:{cfg.port} rate limit ({cfg.rate.per_second:g}/s): sent later"
                results.extend(
                    SendResult(
                        e.message_id, ok=False, temporary=True, error=error, deferred=PROVIDER_RATE_LIMIT
                    )
                    for e in batch[index:]
                )
                break
            try:
                result = self._send_one(email)
            except (OSError, smtplib.SMTPException) as exc:
                # The server cannot be reached: the rest of the batch waits for the retry, unsent.
                cfg = self._channel.config
                error = f"SMTP {cfg.host}:{cfg.port} unreachable: {exc}"
                results.extend(
                    SendResult(e.message_id, ok=False, temporary=True, error=error) for e in batch[index:]
                )
                break
            results.append(result)
            if limiter is not None and _throttled(result):
                limiter.throttled()
            if on_result is not None:
                # Before the next email: at most one accepted-but-unrecorded email per session.
                on_result(result)
        return results

    def _send_one(self, email: OutgoingEmail) -> SendResult:
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._channel._connect()
            try:
                self._smtp.sendmail(email.from_address, [email.to_address], email.raw)
                return SendResult(email.message_id, ok=True, provider_message_id=email.header_message_id)
            except smtplib.SMTPServerDisconnected:
                # An idle connection the server closed: reconnect once, then give up on this batch.
                self._drop()
                if attempt == 2:
                    raise
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                return _refused(email, code, text)
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                return _refused(email, exc.smtp_code, exc.smtp_error)
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            finally:
                self._drop()


class SmtpChannel:
    """Sends over `connections` SMTP sessions kept open across batches (default 2, `?connections=N`).

    Each email costs several round trips (MAIL, RCPT, DATA, body); two sessions in parallel keep
    both ends busy and roughly double throughput on loopback. A batch is split between them.
    """

    def __init__(
        self,
        url: str,
        *,
        connections: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        buckets: ratelimit.Buckets | None = None,
    ) -> None:
        """`buckets`: where the `?rate=` bucket lives; DatabaseBuckets shares it between processes
        (workers/process.py), None keeps it in this channel."""
        self.config = parse_url(url)
        count = connections if connections is not None else self.config.connections
        if not 1 <= count <= 32:
            raise ValueError(f"connections: expected 1 to 32, got {count}")
        self._ssl = ssl_context or ssl.create_default_context()
        self.limiter = ratelimit.limiter(buckets, self.config.rate_key, self.config.rate)
        self._sessions = [_Session(self) for _ in range(count)]
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.connections_opened = 0

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.implicit_tls:
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self._ssl)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            smtp.ehlo()
            if cfg.starttls:
                smtp.starttls(context=self._ssl)
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
        except BaseException:
            smtp.close()
            raise
        with self._lock:
            self.connections_opened += 1
        return smtp

    @property
    def connections(self) -> int:
        return len(self._sessions)

    def send_each(self, batch: Sequence[OutgoingEmail], on_result: OnResult) -> list[SendResult]:
        """`send`, calling `on_result` (from a session thread) as soon as each email has its result."""
        return self.send(batch, on_result=on_result)

    def claim_limit(self, wanted: int) -> int:
        """How many emails a batch should claim: no more than the rate lets out in MAX_BATCH_WAIT,
        so a slow provider does not hold claimed messages (and the worker) for long."""
        if self.limiter is None:
            return wanted
        return max(
            1, min(wanted, int(self.limiter.rate.per_second * MAX_BATCH_WAIT) + self.limiter.rate.burst)
        )

    def send(self, batch: Sequence[OutgoingEmail], on_result: OnResult | None = None) -> list[SendResult]:
        deadline = time.monotonic() + MAX_BATCH_WAIT if self.limiter is not None else None
        # Small batches are not worth a second connection.
        used = min(len(self._sessions), max(1, len(batch) // 8))
        if used == 1:
            return self._sessions[0].send(batch, on_result, deadline)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(self._sessions), thread_name_prefix="smtp")
        size = -(-len(batch) // used)
        chunks = [batch[i * size : (i + 1) * size] for i in range(used)]
        futures = [
            self._pool.submit(session.send, chunk, on_result, deadline)
            for session, chunk in zip(self._sessions, chunks, strict=False)
        ]
        return [result for future in futures for result in future.result()]

    def close(self) -> None:
        for session in self._sessions:
            session.close()
        if self.limiter is not None:
            self.limiter.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _throttled(result: SendResult) -> bool:
    return result.deferred == PROVIDER_THROTTLED


def _refused(email: OutgoingEmail, code: int, text: bytes | str) -> SendResult:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    # RFC 5321 §4.2.1: 4yz is a transient failure, 5yz permanent.
    return SendResult(
        email.message_id,
        ok=False,
        temporary=400 <= code < 500,
        error=f"SMTP {code} {message}".strip(),
        deferred=PROVIDER_THROTTLED if code in THROTTLE_CODES else None,
    )
