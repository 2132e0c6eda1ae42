"""Delivery over real SMTP (the Sink on loopback) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.delivery import due
from shopflow.messaging.sink import Sink
from shopflow.messaging.templates import email as templates
from shopflow.store import consent, db, messages, profiles, suppressions, workspaces

SECRET = b"test-link-secret"
PUBLIC = "https://sf.example"
CART = {
    "event": {
        "abandoned_checkout_url": "https://shop.example/checkouts/c1",
        "currency": "USD",
        "products": [
            {"name": "Blue Mug", "price": "12.50", "quantity": 2, "url": "https://shop.example/mug"}
        ],
    }
}


def person(
    engine: Engine, ws_id: str, clock: SimulatedClock, email: str | None, status: str | None = "subscribed"
) -> int:
    identity = Identity(email=email) if email else Identity(external_id=f"ext-{clock.now().timestamp()}")
    changes = (ConsentChange("email", status, clock.now(), "test"),) if status else ()
    event = CanonicalEvent(
        message_id=f"id-{email}",
        source="test",
        identity=identity,
        time=clock.now(),
        traits={"first_name": "Ana"},
        consent=changes,
    )
    with db.transaction(engine) as conn:
        result = pipeline.accept(conn, workspace_id=ws_id, events=[event], now=clock.now())
    return result.profile_ids[0]


def queue(
    engine: Engine,
    ws_id: str,
    pid: int,
    clock: SimulatedClock,
    *,
    template: str = "cart-reminder-1h",
    key: str | None = None,
    transactional: bool = False,
    context: dict[str, Any] | None = None,
) -> int:
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="email",
            template=template,
            dedupe_key=key or f"k-{pid}-{template}-{transactional}",
            now=clock.now(),
            flow_id=9,
            transactional=transactional,
            context=CART if context is None else context,
        )
    assert mid is not None
    return mid


def row(engine: Engine, mid: int) -> dict[str, Any]:
    with db.reading(engine) as conn:
        found = messages.get(conn, message_id=mid)
    assert found is not None
    return found


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    with Sink(directory=tmp_path / "mail") as s:
        yield s


@pytest.fixture
def channel(sink: Sink) -> Iterator[SmtpChannel]:
    ch = SmtpChannel(f"smtp://127.0.0.1:{sink.port}")
    yield ch
    ch.close()


def deliver(engine: Engine, clock: SimulatedClock, channel: Any, **kw: Any) -> int:
    return due.email(engine, clock=clock, channel=channel, link_secret=SECRET, public_url=PUBLIC, **kw)


def test_queued_message_arrives_with_headers(
    engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel
) -> None:
    ws = testing.make_workspace(engine).workspace
    pid = person(engine, ws.id, clock, "ana@example.org")
    mid = queue(engine, ws.id, pid, clock)

    assert deliver(engine, clock, channel) == 1
    assert deliver(engine, clock, channel) == 0

    [mail] = sink.messages()
    domain = "example.com"  # the default from_email's domain
    assert mail["Message-ID"] == f"<shopflow.{ws.id}.{mid}@{domain}>"
    assert mail["From"] == "Example Store <store@example.com>"
    assert mail["To"] == "ana@example.org"
    assert mail["Subject"] == "Did you forget something, Ana?"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = str(mail["List-Unsubscribe"])
    assert (
        unsub.startswith(f"<{PUBLIC}/u/")
        and ">, <mailto:unsubscribe@example.com?subject=unsubscribe-" in unsub
    )
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "Blue Mug" in text.get_content() and "$12.50 USD" in text.get_content()
    html_src = html.get_content()
    assert f"{PUBLIC}/t/c/" in html_src and f"{PUBLIC}/t/o/" in html_src
    assert "1 Example Street, Springfield, USA" in html_src
    # The unsubscribe link in the footer is the one in the header, untracked.
    token_url = unsub[1 : unsub.index(">")]
    assert f'href="{token_url}"' in html_src

    stored = row(engine, mid)
    assert stored["status"] == "sent"
    assert stored["to_address"] == "ana@example.org"
    assert stored["subject"] == "Did you forget something, Ana?"
    assert stored["provider_message_id"] == mail["Message-ID"]
    assert stored["sent_at"] == clock.now()
    assert stored["attempts"] == 1
    assert len(list((sink.directory or Path()).joinpath("new").iterdir())) == 1


def test_transactional_has_no_unsubscribe_headers(
    engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel
) -> None:
    ws = testing.make_workspace(engine).workspace
    pid = person(engine, ws.id, clock, "t@example.org", status=None)
    mid = queue(engine, ws.id, pid, clock, transactional=True)
    deliver(engine, clock, channel)
    [mail] = sink.messages()
    assert mail["List-Unsubscribe"] is None and mail["List-Unsubscribe-Post"] is None
    assert row(engine, mid)["status"] == "sent"


def test_guards_skip_with_reason(
    engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel
) -> None:
    ws = testing.make_workspace(engine).workspace
    never = person(engine, ws.id, clock, "never@example.org", status=None)
    unsub = person(engine, ws.id, clock, "unsub@example.org", status="unsubscribed")
    supp = person(engine, ws.id, clock, "bounced@example.org", status="subscribed")
    nomail = person(engine, ws.id, clock, None, status="subscribed")
    ok = person(engine, ws.id, clock, "ok@example.org", status="subscribed")
    with db.transaction(engine) as conn:
        suppressions.suppress(
            conn, workspace_id=ws.id, profile_id=supp, channel="email", reason="hard_bounce", now=clock.now()
        )
    ids = {
        name: queue(engine, ws.id, pid, clock)
        for name, pid in [("never", never), ("unsub", unsub), ("supp", supp), ("nomail", nomail), ("ok", ok)]
    }
    # Transactional bypasses consent, never a suppression.
    t_never = queue(engine, ws.id, never, clock, transactional=True)
    t_unsub = queue(engine, ws.id, unsub, clock, transactional=True)
    t_supp = queue(engine, ws.id, supp, clock, transactional=True)

    assert deliver(engine, clock, channel) == 8
    got = {name: (row(engine, mid)["status"], row(engine, mid)["skip_reason"]) for name, mid in ids.items()}
    assert got == {
        "never": ("skipped", "no_consent"),
        "unsub": ("skipped", "unsubscribed"),
        "supp": ("skipped", "suppressed"),
        "nomail": ("skipped", "no_address"),
        "ok": ("sent", None),
    }
    assert [row(engine, m)["status"] for m in (t_never, t_unsub, t_supp)] == ["sent", "sent", "skipped"]
    assert row(engine, t_supp)["skip_reason"] == "suppressed"
    assert sorted(str(m["To"]) for m in sink.messages()) == [
        "never@example.org",
        "ok@example.org",
        "unsub@example.org",
    ]


def test_setting_allows_never_subscribed(
    engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel
) -> None:
    ws = testing.make_workspace(engine).workspace
    with db.transaction(engine) as conn:
        workspaces.update_settings(
            conn, workspace_id=ws.id, changes={"email_marketing_requires_subscribed": False}
        )
    never = queue(engine, ws.id, person(engine, ws.id, clock, "n@example.org", status=None), clock)
    unsub = queue(engine, ws.id, person(engine, ws.id, clock, "u@example.org", status="unsubscribed"), clock)
    deliver(engine, clock, channel)
    assert row(engine, never)["status"] == "sent"
    assert (row(engine, unsub)["status"], row(engine, unsub)["skip_reason"]) == ("skipped", "unsubscribed")


def test_temporary_failure_retries_later(
    engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel
) -> None:
    ws = testing.make_workspace(engine).workspace
    mid = queue(engine, ws.id, person(engine, ws.id, clock, "a@example.org"), clock)
    sink.reject_next(1, "451 4.3.0 Mailbox busy")

    assert deliver(engine, clock, channel) == 1
    stored = row(engine, mid)
    assert (stored["status"], stored["attempts"]) == ("queued", 1)
    assert stored["send_after"] == clock.now() + timedelta(minutes=1)
    assert stored["error"] == "SMTP 451 4.3.0 Mailbox busy"
    assert sink.count() == 0

    assert deliver(engine, clock, channel) == 0  # not due yet
    clock.advance(timedelta(minutes=1))
    assert deliver(engine, clock, channel) == 1
    stored = row(engine, mid)
    assert (stored["status"], stored["attempts"], stored["error"]) == ("sent", 2, None)
    assert sink.count() == 1


def test_permanent_failure_fails(
    engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel
) -> None:
    ws = testing.make_workspace(engine).workspace
    mid = queue(engine, ws.id, person(engine, ws.id, clock, "a@example.org"), clock)
    sink.reject_next(1, "550 5.1.1 No such user")
    deliver(engine, clock, channel)
    stored = row(engine, mid)
    assert (stored["status"], stored["error"]) == ("failed", "SMTP 550 5.1.1 No such user")


@pytest.mark.parametrize("connections", [1, 2])
def test_connections_are_reused_across_batches(
    engine: Engine, clock: SimulatedClock, sink: Sink, connections: int
) -> None:
    ws = testing.make_workspace(engine).workspace
    for i in range(50):
        queue(engine, ws.id, person(engine, ws.id, clock, f"p{i}@example.org"), clock, key=f"r{i}")
    channel = SmtpChannel(f"smtp://127.0.0.1:{sink.port}?connections={connections}")
    try:
        assert [deliver(engine, clock, channel, limit=20) for _ in range(4)] == [20, 20, 10, 0]
    finally:
        channel.close()
    assert sink.count() == 50
    assert sorted(str(m["To"]) for m in sink.messages()) == sorted(f"p{i}@example.org" for i in range(50))
    assert (sink.sessions(), channel.connections_opened) == (connections, connections)


def test_unreachable_server_retries_everything(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace
    mid = queue(engine, ws.id, person(engine, ws.id, clock, "a@example.org"), clock)
    dead = SmtpChannel(f"smtp://127.0.0.1:{testing.free_port()}")
    assert deliver(engine, clock, dead) == 1
    stored = row(engine, mid)
    assert stored["status"] == "queued" and "unreachable" in stored["error"]


def test_server_drop_reconnects(engine: Engine, clock: SimulatedClock, tmp_path: Path) -> None:
    ws = testing.make_workspace(engine).workspace
    first = Sink()
    first.start()
    port = first.port
    ch = SmtpChannel(f"smtp://127.0.0.1:{port}")
    queue(engine, ws.id, person(engine, ws.id, clock, "a@example.org"), clock, key="one")
    deliver(engine, clock, ch)
    first.stop()
    second = Sink(port=port)
    second.start()
    try:
        mid = queue(engine, ws.id, person(engine, ws.id, clock, "b@example.org"), clock, key="two")
        deliver(engine, clock, ch)
        assert row(engine, mid)["status"] == "sent"
        assert (second.count(), ch.connections_opened) == (1, 2)
    finally:
        ch.close()
        second.stop()


def test_stale_claim_of_a_crashed_worker_is_reclaimed(
    engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel
) -> None:
    ws = testing.make_workspace(engine).workspace
    mid = queue(engine, ws.id, person(engine, ws.id, clock, "a@example.org"), clock)
    with db.transaction(engine) as conn:  # a worker claims, then dies
        claimed = messages.claim_due(
            conn, now=clock.now(), limit=10, stale_before=clock.now() - timedelta(minutes=5)
        )
    assert [c.id for c in claimed] == [mid]
    assert deliver(engine, clock, channel) == 0
    clock.advance(timedelta(minutes=5))
    assert deliver(engine, clock, channel) == 1
    stored = row(engine, mid)
    assert (stored["status"], stored["attempts"]) == ("sent", 2)


def test_template_errors_fail_naming_the_template(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = testing.make_workspace(engine).workspace
    pid = person(engine, ws.id, clock, "a@example.org")
    (tmp_path / "typo.yaml").write_text("subject: Hi\nhtml: '{{ profile.frist_name }}'\n")
    (tmp_path / "syntax.yaml").write_text("subject: Hi\nhtml: '{% if %}'\n")
    typo = queue(engine, ws.id, pid, clock, template="typo")
    syntax = queue(engine, ws.id, pid, clock, template="syntax")
    missing = queue(engine, ws.id, pid, clock, template="absent")
    ch = testing.InMemoryEmailChannel()
    deliver(engine, clock, ch, library=templates.Library(tmp_path))
    assert ch.sent == []
    errors = {m: row(engine, m) for m in (typo, syntax, missing)}
    assert all(r["status"] == "failed" for r in errors.values())
    assert (
        errors[typo]["error"].startswith("template 'typo', html: ") and "frist_name" in errors[typo]["error"]
    )
    assert errors[syntax]["error"].startswith("template 'syntax', html: ")
    assert errors[missing]["error"].startswith("template 'absent': no file ")


def test_in_memory_twin_records(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace
    mid = queue(engine, ws.id, person(engine, ws.id, clock, "a@example.org"), clock)
    ch = testing.InMemoryEmailChannel()
    ch.fail_next(1)
    deliver(engine, clock, ch)
    assert row(engine, mid)["status"] == "queued"
    clock.advance(timedelta(minutes=1))
    deliver(engine, clock, ch)
    [mail] = ch.messages()
    assert mail["To"] == "a@example.org"
    assert row(engine, mid)["status"] == "sent"


def test_merged_profile_is_followed(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace
    pid = person(engine, ws.id, clock, "a@example.org")
    other = person(engine, ws.id, clock, None, status=None)  # a second profile, merged into the first
    with db.transaction(engine) as conn:
        profiles.merge(
            conn,
            workspace_id=ws.id,
            from_profile_id=other,
            into_profile_id=pid,
            reason="test",
            now=clock.now(),
        )
        assert consent.current(conn, workspace_id=ws.id, profile_ids=[pid], channel="email") == {
            pid: "subscribed"
        }
    mid = queue(engine, ws.id, int(other), clock)
    ch = testing.InMemoryEmailChannel()
    deliver(engine, clock, ch)
    assert row(engine, mid)["to_address"] == "a@example.org"


def test_batches_of_600_over_loopback_smtp_all_sent_once(engine: Engine, clock: SimulatedClock) -> None:
    """Three batches of 200 to a loopback SMTP server: every email arrives once and is recorded sent.
    (The speed is bench/email_delivery.py's to measure, never a test's to assert.)"""
    ws = testing.make_workspace(engine).workspace
    with db.transaction(engine) as conn:
        batch = [
            CanonicalEvent(
                message_id=f"p{i}",
                source="test",
                identity=Identity(email=f"p{i}@example.org"),
                time=clock.now(),
            )
            for i in range(600)
        ]
        pids = pipeline.accept(conn, workspace_id=ws.id, events=batch, now=clock.now()).profile_ids
        messages.enqueue_many(
            conn,
            [
                {
                    "workspace_id": ws.id,
                    "profile_id": pid,
                    "channel": "email",
                    "template": "cart-reminder-1h",
                    "transactional": True,
                    "dedupe_key": f"t{pid}",
                    "status": "queued",
                    "context": CART,
                    "send_after": clock.now(),
                    "created_at": clock.now(),
                }
                for pid in pids
            ],
        )
    with Sink() as sink:
        ch = SmtpChannel(f"smtp://127.0.0.1:{sink.port}")
        while deliver(engine, clock, ch, limit=200):
            pass
        ch.close()
        assert sink.count() == 600
    with db.reading(engine) as conn:
        assert messages.count_by_status(conn, workspace_id=ws.id) == {"sent": 600}


def test_marketing_template_without_footer_gets_one(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = testing.make_workspace(engine).workspace
    pid = person(engine, ws.id, clock, "a@example.org")
    (tmp_path / "bare.yaml").write_text("subject: Hi\nhtml: '<html><body><p>Sale!</p></body></html>'\n")
    queue(engine, ws.id, pid, clock, template="bare")
    queue(engine, ws.id, pid, clock, template="bare", transactional=True)
    ch = testing.InMemoryEmailChannel()
    deliver(engine, clock, ch, library=templates.Library(tmp_path))
    marketing, transactional = ch.messages()
    unsub = str(marketing["List-Unsubscribe"]).split(">")[0][1:]
    html = marketing.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = marketing.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert f'<a href="{unsub}">Unsubscribe</a><br>1 Example Street, Springfield, USA</p>' in html
    assert text.endswith(f"\n\nUnsubscribe: {unsub}\n1 Example Street, Springfield, USA\n")
    assert "Unsubscribe" not in transactional.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_two_workers_send_each_message_once(engine: Engine, clock: SimulatedClock, sink: Sink) -> None:
    import threading

    ws = testing.make_workspace(engine).workspace
    for i in range(60):
        queue(engine, ws.id, person(engine, ws.id, clock, f"w{i}@example.org"), clock, key=f"w{i}")
    errors: list[BaseException] = []

    def work() -> None:
        ch = SmtpChannel(f"smtp://127.0.0.1:{sink.port}?connections=1")
        try:
            while deliver(engine, clock, ch, limit=7):
                pass
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            ch.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    ids = [str(m["Message-ID"]) for m in sink.messages()]
    assert len(ids) == 60 and len(set(ids)) == 60
    with db.reading(engine) as conn:
        assert messages.count_by_status(conn, workspace_id=ws.id) == {"sent": 60}
