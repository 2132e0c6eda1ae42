"""Amazon SNS message signatures (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).

The signing certificate is fetched from the URL in the message, so that URL is checked first: only
https://sns.<region>.amazonaws.com/... .pem (AWS documents exactly this check). The fetcher is
injected; tests sign with a locally generated certificate and supply it.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CertFetcher = Callable[[str], bytes]

_HOST = re.compile(r"^sns\.[a-z0-9-]{1,30}\.amazonaws\.com(\.cn)?$")
_MAX_CERT_BYTES = 16 * 1024

# Fields signed per message type, in this order (AWS "Verifying the signatures of Amazon SNS messages").
_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
TYPES = {
    "Notification": _NOTIFICATION,
    "SubscriptionConfirmation": _SUBSCRIPTION,
    "UnsubscribeConfirmation": _SUBSCRIPTION,
}


class SnsMalformed(ValueError):
    """The body is not an SNS message: answer 400."""


class SnsForged(ValueError):
    """Signature, certificate URL or certificate wrong: answer 403."""


def aws_url_allowed(url: str) -> bool:
    """https, an sns.<region>.amazonaws.com host, no user info or port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.hostname is not None
        and bool(_HOST.match(parts.hostname))
        and port is None
        and parts.username is None
        and "@" not in parts.netloc
    )


def cert_url_allowed(url: str) -> bool:
    return aws_url_allowed(url) and urlsplit(url).path.endswith(".pem")


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    kind = message.get("Type")
    if not isinstance(kind, str) or kind not in TYPES:  # a dict or list here is not hashable
        raise SnsMalformed(f"Type: expected one of {', '.join(TYPES)}, got {kind!r}")
    lines: list[str] = []
    for key in TYPES[str(kind)]:
        value = message.get(key)
        if value is None and key == "Subject":
            continue  # Subject is signed only when present
        if not isinstance(value, str):
            raise SnsMalformed(f"{key}: expected a string, got {type(value).__name__}")
        lines.extend((key, value))
    return ("\n".join(lines) + "\n").encode("utf-8")


def verify(message: Mapping[str, Any], fetch: CertFetcher) -> None:
    """Raise SnsMalformed or SnsForged unless `message` is signed by the certificate it names."""
    data = string_to_sign(message)
    version = message.get("SignatureVersion")
    if version not in ("1", "2"):
        raise SnsMalformed(f"SignatureVersion: expected '1' or '2', got {version!r}")
    url = message.get("SigningCertURL")
    if not isinstance(url, str) or not cert_url_allowed(url):
        raise SnsForged(f"SigningCertURL: expected https://sns.<region>.amazonaws.com/....pem, got {url!r}")
    signature_b64 = message.get("Signature")
    if not isinstance(signature_b64, str):
        raise SnsMalformed("Signature: expected a base64 string")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        raise SnsForged("Signature: not valid base64") from None
    try:
        certificate = x509.load_pem_x509_certificate(fetch(url))
    except ValueError as exc:
        raise SnsForged(f"SigningCertURL: not a PEM certificate ({exc})") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsForged("SigningCertURL: expected an RSA certificate")
    digest: hashes.HashAlgorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    try:
        key.verify(signature, data, padding.PKCS1v15(), digest)
    except InvalidSignature:
        raise SnsForged("Signature: does not match the message") from None


class HttpCertFetcher:
    """Production fetcher: AWS hosts only, small bodies, cached per URL (SNS rotates rarely)."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._timeout = timeout
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        if not cert_url_allowed(url):
            raise SnsForged(f"SigningCertURL: refusing to fetch {url!r}")
        with self._lock:
            if url in self._cache:
                return self._cache[url]
        import httpx

        response = httpx.get(url, timeout=self._timeout, follow_redirects=False)
        if response.status_code != 200 or len(response.content) > _MAX_CERT_BYTES:
            raise SnsForged(f"SigningCertURL: {url} answered {response.status_code}")
        with self._lock:
            self._cache[url] = response.content
        return response.content


def confirm_subscription(url: str, timeout: float = 5.0) -> None:
    """Visit the SubscribeURL of a verified SubscriptionConfirmation (AWS hosts only)."""
    if not aws_url_allowed(url):
        raise SnsForged(f"SubscribeURL: expected https://sns.<region>.amazonaws.com/..., got {url!r}")
    import httpx

    httpx.get(url, timeout=timeout, follow_redirects=False).raise_for_status()
