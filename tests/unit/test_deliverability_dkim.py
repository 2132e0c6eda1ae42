"""DKIM keys, records and what cannot be signed (signing over SMTP: tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime

import dkim
import pytest

from shopflow.messaging.deliverability import dkim as sf_dkim


def test_records_and_bad_keys() -> None:
    rsa_pem = sf_dkim.generate_private_key()
    assert sf_dkim.public_key_record(rsa_pem).startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    assert sf_dkim.algorithm_of(rsa_pem) == "rsa-sha256"
    ed_pem = sf_dkim.generate_private_key("ed25519-sha256")
    assert sf_dkim.public_key_record(ed_pem).startswith("v=DKIM1; k=ed25519; p=")
    assert sf_dkim.algorithm_of(ed_pem) == "ed25519-sha256"
    with pytest.raises(
        sf_dkim.DkimError, match="algorithm: expected one of rsa-sha256, ed25519-sha256, got 'dsa'"
    ):
        sf_dkim.generate_private_key("dsa")
    with pytest.raises(sf_dkim.DkimError, match="private_key_pem: not an unencrypted PEM private key"):
        sf_dkim.load_private_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_signing_refuses_messages_it_cannot_sign() -> None:
    signer = sf_dkim.Signer("shop.example", "s1", sf_dkim.generate_private_key("ed25519-sha256"))
    now = datetime(2026, 1, 5, tzinfo=UTC)
    with pytest.raises(sf_dkim.DkimError, match="needs a From header"):
        signer.sign(b"To: a@b.example\r\nSubject: x\r\n\r\nbody\r\n", now=now)
    with pytest.raises(sf_dkim.DkimError, match="expected CRLF line endings"):
        signer.sign(b"From: a@b.example\nSubject: x\n\nbody\n", now=now)
    signed = signer.sign(b"From: a@shop.example\r\nSubject:  spaced   out \r\n\r\nbody  \r\n\r\n", now=now)
    record = sf_dkim.public_key_record(signer.private_key_pem).encode()
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: record) is True


def test_signer_for_falls_back_to_the_parent_domain() -> None:
    parent = sf_dkim.Signer("shop.example", "s1", "pem-a")
    exact = sf_dkim.Signer("mail.other.example", "s1", "pem-b")
    signers = {("ws_1", "shop.example"): parent, ("ws_1", "mail.other.example"): exact}
    assert sf_dkim.signer_for(signers, "ws_1", "News.Shop.Example") is parent
    assert sf_dkim.signer_for(signers, "ws_1", "shop.example") is parent
    assert sf_dkim.signer_for(signers, "ws_1", "mail.other.example") is exact
    assert sf_dkim.signer_for(signers, "ws_1", "other.example") is None  # never a child for its parent
    assert sf_dkim.signer_for(signers, "ws_2", "shop.example") is None  # never another workspace's key
    assert sf_dkim.signer_for({("ws_1", "example"): parent}, "ws_1", "shop.example") is None  # no TLD keys
