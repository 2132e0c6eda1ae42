"""DKIM signing over real SMTP (the Sink on loopback), sender domains and the warm-up allowance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dkim
import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.messaging.deliverability import dkim as sf_dkim
from shopflow.messaging.deliverability import senders as sender_domains
from shopflow.messaging.delivery import due
from shopflow.messaging.sink import Sink
from shopflow.store import db, messages, senders, workspaces

SECRET = b"test-link-secret"
PUBLIC = "https://sf.example"
DOMAIN = "mail.shop.example"
CART = {"event": {"currency": "USD", "products": [{"name": "Blue Mug", "price": "12.50", "quantity": 2}]}}


def subscriber(engine: Engine, ws_id: str, clock: SimulatedClock, email: str) -> int:
    event = CanonicalEvent(
        message_id=f"id-{email}",
        source="test",
        identity=Identity(email=email),
        time=clock.now(),
        traits={"first_name": "Ana"},
        consent=(ConsentChange("email", "subscribed", clock.now(), "test"),),
    )
    with db.transaction(engine) as conn:
        return pipeline.accept(conn, workspace_id=ws_id, events=[event], now=clock.now()).profile_ids[0]


def queue(engine: Engine, ws_id: str, pid: int, clock: SimulatedClock, key: str) -> int:
    with db.transaction(engine) as conn:
        mid = messages.enqueue(
            conn,
            workspace_id=ws_id,
            profile_id=pid,
            channel="email",
            template="cart-reminder-1h",
            dedupe_key=key,
            now=clock.now(),
            flow_id=7,
            context=CART,
        )
    assert mid is not None
    return mid


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    with Sink(directory=tmp_path / "mail") as s:
        yield s


@pytest.fixture
def channel(sink: Sink) -> Iterator[SmtpChannel]:
    ch = SmtpChannel(f"smtp://127.0.0.1:{sink.port}")
    yield ch
    ch.close()


def add_domain_cli(
    database_url: str,
    ws_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> dict[str, Any]:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    assert cli.main(["senders", "add-domain", DOMAIN, "--workspace", ws_id, "--json", *extra]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def dns_for(records: list[dict[str, str]]) -> Any:
    """The test answers DNS: the DKIM TXT record the CLI told the store to publish, nothing else."""
    txt = {r["name"] + ".": r["value"].encode() for r in records if r["kind"] == "DKIM"}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return txt.get(name.decode())

    return lookup


@pytest.mark.parametrize("algorithm", [sf_dkim.RSA_SHA256, sf_dkim.ED25519_SHA256])
def test_sent_email_carries_a_dkim_signature_that_verifies(  # noqa: PLR0917 (pytest fixtures)
    engine: Engine,
    database_url: str,
    clock: SimulatedClock,
    sink: Sink,
    channel: SmtpChannel,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    algorithm: str,
) -> None:
    ws = testing.make_workspace(engine).workspace
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=ws.id, changes={"from_email": f"hello@{DOMAIN}"})
    out = add_domain_cli(
        database_url, ws.id, monkeypatch, capsys, "--algorithm", algorithm, "--selector", "s1"
    )
    assert [r["kind"] for r in out["records"]] == ["SPF", "DKIM", "DMARC"]
    assert out["records"][1]["name"] == f"s1._domainkey.{DOMAIN}"
    assert out["records"][2] == {
        "kind": "DMARC",
        "name": f"_dmarc.{DOMAIN}",
        "type": "TXT",
        "value": f"v=DMARC1; p=none; rua=mailto:dmarc@{DOMAIN}; adkim=r; aspf=r",
    }
    pid = subscriber(engine, ws.id, clock, "ana@example.org")
    queue(engine, ws.id, pid, clock, "m1")
    assert due.email(engine, clock=clock, channel=channel, link_secret=SECRET, public_url=PUBLIC) == 1

    [raw] = sink.raw_messages()
    assert raw.startswith(b"DKIM-Signature: v=1; a=" + algorithm.encode())
    lookup = dns_for(out["records"])
    assert dkim.verify(raw, dnsfunc=lookup) is True
    header = raw.split(b"\r\n\tb=", 1)[0]
    assert (
        b"h=from:to:subject:date:message-id:mime-version:content-type:list-unsubscribe:list-unsubscribe-post;"
        in header
    )
    assert f"t={int(clock.now().timestamp())};".encode() in header

    # Any signed header or the body altered in transit: the signature no longer verifies.
    for before, after in [
        (
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            b"List-Unsubscribe-Post: List-Unsubscribe=Two",
        ),
        (b"To: ana@example.org", b"To: eve@example.org"),
        (b"Blue Mug", b"Red Mug!"),
    ]:
        assert before in raw
        assert dkim.verify(raw.replace(before, after, 1), dnsfunc=lookup) is False
    # The wrong key published: fails too.
    other = sf_dkim.public_key_record(sf_dkim.generate_private_key(algorithm)).encode()
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: other) is False


def test_template_test_send_is_signed_like_a_real_send(  # noqa: PLR0917 (pytest fixtures)
    engine: Engine,
    database_url: str,
    clock: SimulatedClock,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = testing.make_workspace(engine).workspace
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=ws.id, changes={"from_email": f"hello@{DOMAIN}"})
    out = add_domain_cli(database_url, ws.id, monkeypatch, capsys, "--selector", "s1")
    monkeypatch.setenv("SHOPFLOW_SMTP_URL", f"smtp://127.0.0.1:{sink.port}")
    send = ["templates", "test-send", "welcome-1", "--workspace", ws.id, "--to", "qa@example.org"]
    assert cli.main(send) == 0, capsys.readouterr().err
    [raw] = sink.raw_messages()
    assert raw.startswith(b"DKIM-Signature: v=1; a=")
    assert dkim.verify(raw, dnsfunc=dns_for(out["records"])) is True


def test_no_sender_domain_means_no_signature(
    engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel
) -> None:
    ws = testing.make_workspace(engine).workspace
    pid = subscriber(engine, ws.id, clock, "ana@example.org")
    queue(engine, ws.id, pid, clock, "m1")
    due.email(engine, clock=clock, channel=channel, link_secret=SECRET, public_url=PUBLIC)
    [raw] = sink.raw_messages()
    assert b"DKIM-Signature" not in raw


def test_warmup_allowance_counts_todays_sends_from_the_domain(
    engine: Engine, clock: SimulatedClock, sink: Sink, channel: SmtpChannel
) -> None:
    ws = testing.make_workspace(engine).workspace
    with db.transaction(engine) as conn:
        workspaces.update_settings(conn, workspace_id=ws.id, changes={"from_email": f"hello@{DOMAIN}"})
        senders.add_domain(
            conn,
            workspace_id=ws.id,
            domain=DOMAIN,
            selector="s1",
            algorithm=sf_dkim.RSA_SHA256,
            private_key_pem=sf_dkim.generate_private_key(),
            now=clock.now(),
        )
        assert senders.warmup_allowance(conn, workspace_id=ws.id, domain=DOMAIN, now=clock.now()) == 50
        assert (
            senders.warmup_allowance(conn, workspace_id=ws.id, domain="other.example", now=clock.now())
            is None
        )
    for n in range(3):
        queue(engine, ws.id, subscriber(engine, ws.id, clock, f"p{n}@example.org"), clock, f"m{n}")
    due.email(engine, clock=clock, channel=channel, link_secret=SECRET, public_url=PUBLIC)
    with db.reading(engine) as conn:
        now = clock.now()
        assert senders.warmup_allowance(conn, workspace_id=ws.id, domain=DOMAIN, now=now) == 47
        # The next UTC day: a fresh, larger allowance; after the 30-day ramp, no limit at all.
        assert (
            senders.warmup_allowance(conn, workspace_id=ws.id, domain=DOMAIN, now=now + timedelta(days=1))
            == 100
        )
        assert (
            senders.warmup_allowance(conn, workspace_id=ws.id, domain=DOMAIN, now=now + timedelta(days=30))
            is None
        )


def test_cli_rejects_bad_domain_duplicates_and_bad_settings(
    engine: Engine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = testing.make_workspace(engine).workspace
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    assert cli.main(["senders", "add-domain", "not a domain", "--workspace", ws.id]) == 2
    assert (
        "domain: expected a domain name like mail.example.com, got 'not a domain'" in capsys.readouterr().err
    )
    assert cli.main(["senders", "add-domain", DOMAIN.upper(), "--workspace", ws.id]) == 0
    printed = capsys.readouterr().out
    assert (
        "(DKIM selector sf" in printed and "_domainkey." + DOMAIN in printed and "v=spf1 a mx ~all" in printed
    )
    assert cli.main(["senders", "add-domain", DOMAIN, "--workspace", ws.id]) == 2
    assert f"domain: {DOMAIN!r} is already a sender domain of {ws.id}" in capsys.readouterr().err
    assert cli.main(["senders", "add-domain", "b.example", "--workspace", "ws_missing"]) == 2
    assert "workspace_id: no workspace 'ws_missing'" in capsys.readouterr().err

    assert cli.main(["senders", "list", "--json", "--workspace", ws.id]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["domain"], listed["verified"], listed["algorithm"]) == (DOMAIN, False, "rsa-sha256")

    assert cli.main(["senders", "settings", ws.id, "colour=blue"]) == 2
    assert "setting: expected one of from_email" in capsys.readouterr().err
    assert cli.main(["senders", "settings", ws.id, "from_email=nobody"]) == 2
    assert "from_email: expected an address like shop@example.com, got 'nobody'" in capsys.readouterr().err
    assert (
        cli.main(["senders", "settings", ws.id, f"from_email=hi@{DOMAIN}", "postmark_webhook_password=pw"])
        == 0
    )
    shown = capsys.readouterr().out
    assert f"from_email                 hi@{DOMAIN}" in shown
    assert "postmark_webhook_password  (set)" in shown
    with db.reading(engine) as conn:
        stored = workspaces.get(conn, ws.id)
    assert stored is not None and stored.settings["from_email"] == f"hi@{DOMAIN}"


def test_verify_checks_the_published_records(engine: Engine, clock: SimulatedClock) -> None:
    ws = testing.make_workspace(engine).workspace
    added = sender_domains.add_domain(
        engine, workspace_id=ws.id, domain=DOMAIN, selector="s1", algorithm="rsa-sha256", now=clock.now()
    )
    [key] = [r.value for r in added.records if r.kind == "DKIM"]
    zone: dict[str, list[str]] = {DOMAIN: ["google-site-verification=x", "v=spf1 a mx ~all"]}

    def lookup(name: str) -> list[str]:
        return zone.get(name, [])

    def verified() -> bool:
        with db.reading(engine) as conn:
            stored = senders.get(conn, workspace_id=ws.id, domain=DOMAIN)
        assert stored is not None
        return stored.verified

    checks = sender_domains.verify_domain(engine, workspace_id=ws.id, domain=DOMAIN, lookup=lookup)
    assert [(c.kind, c.ok) for c in checks] == [("SPF", True), ("DKIM", False), ("DMARC", False)]
    # A stale key under the selector is not ours.
    zone[f"s1._domainkey.{DOMAIN}"] = [sf_dkim.public_key_record(sf_dkim.generate_private_key())]
    zone[f"_dmarc.{DOMAIN}"] = ["v=DMARC1; p=none"]
    checks = sender_domains.verify_domain(engine, workspace_id=ws.id, domain=DOMAIN, lookup=lookup)
    assert [c.ok for c in checks] == [True, False, True]
    assert verified() is False
    zone[f"s1._domainkey.{DOMAIN}"] = [key]
    zone[DOMAIN].append("v=spf1 include:other ~all")  # two SPF records are an error (RFC 7208 §4.5)
    checks = sender_domains.verify_domain(engine, workspace_id=ws.id, domain=DOMAIN, lookup=lookup)
    assert [c.ok for c in checks] == [False, True, True]
    zone[DOMAIN].pop()
    checks = sender_domains.verify_domain(engine, workspace_id=ws.id, domain=DOMAIN, lookup=lookup)
    assert all(c.ok for c in checks)
    assert verified() is True
