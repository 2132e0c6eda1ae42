"""VAPID keys and claims, and the checks on a browser's subscription."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from shopflow.messaging import push_subscriptions
from shopflow.messaging.channels.push import vapid


def test_generated_keys_are_a_p256_pair_usable_by_pywebpush() -> None:
    keys = vapid.generate()
    assert len(vapid.b64url_decode(keys.private_key)) == 32
    public = vapid.b64url_decode(keys.public_key)
    assert len(public) == 65 and public[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    assert vapid.public_from_private(keys.private_key) == keys.public_key
    header = Vapid02.from_string(private_key=keys.private_key).sign(
        vapid.claims("https://fcm.googleapis.com/fcm/send/x", subject="mailto:a@b.c", now=datetime.now(UTC))
    )
    assert header["Authorization"].endswith(f",k={keys.public_key}")
    assert vapid.generate() != keys


def test_claims_use_the_push_service_origin_and_the_given_clock() -> None:
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert vapid.claims(
        "https://updates.push.services.mozilla.com:443/wpush/v2/abc", subject="mailto:x@y.z", now=now
    ) == {
        "aud": "https://updates.push.services.mozilla.com:443",
        "exp": int(now.timestamp()) + 12 * 3600,
        "sub": "mailto:x@y.z",
    }


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://web.push.apple.com/QGx",
        "https://8.8.8.8/x",
    ],
)
def test_public_https_endpoints_pass(endpoint: str) -> None:
    assert push_subscriptions.check_endpoint(endpoint, allow_insecure=False) == endpoint


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/x",
        "https://169.254.169.254/latest/meta-data",
        "https://192.168.1.1/x",
        "https://[fd00::1]/x",
        "https://metadata.internal/x",
        "https://printer.local/x",
        "https://localhost:8000/x",
        "ftp://push.example/x",
        "https:///nohost",
        "https://push.example:99999/x",
        "",
        None,
        42,
    ],
)
def test_internal_or_odd_endpoints_fail(endpoint: object) -> None:
    with pytest.raises(push_subscriptions.InvalidSubscription) as caught:
        push_subscriptions.check_endpoint(endpoint, allow_insecure=False)
    assert str(caught.value).startswith("subscription.endpoint: ")


def test_insecure_endpoints_only_when_the_workspace_allows_them() -> None:
    assert (
        push_subscriptions.check_endpoint("http://127.0.0.1:9/p", allow_insecure=True)
        == "http://127.0.0.1:9/p"
    )
    with pytest.raises(push_subscriptions.InvalidSubscription):
        push_subscriptions.check_endpoint("file:///etc/passwd", allow_insecure=True)
