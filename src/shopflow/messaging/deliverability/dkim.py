"""DKIM signing (RFC 6376, relaxed/relaxed) with RSA-SHA256 or Ed25519-SHA256 (RFC 8463).

Canonicalisation comes from `dkimpy`; the private-key operation from `cryptography` (OpenSSL).
dkimpy's own signer does RSA in pure Python (~130 signatures/s on one core) and reads the wall
clock for `t=`; OpenSSL signs ~4,000/s per core and `t=` here comes from the caller's clock.
Receivers verify with any DKIM implementation; the tests verify with `dkim.verify`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils
from dkim import canonicalization
from sqlalchemy.engine import Connection

from shopflow.store import senders

RSA_SHA256 = "rsa-sha256"
ED25519_SHA256 = "ed25519-sha256"
ALGORITHMS = (RSA_SHA256, ED25519_SHA256)

# Signed when present. From is mandatory (RFC 6376 §5.4); List-Unsubscribe and its -Post partner
# must be signed for RFC 8058 one-click unsubscribe to be honoured by mailbox providers.
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "list-unsubscribe",
    "list-unsubscribe-post",
)

_RELAXED = canonicalization.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_TRAILING_WSP = re.compile(rb"[\t ]+\r\n")
_WSP_TO_COMPRESS = re.compile(rb"\t[\t ]*| [\t ]+")  # a run that is not already one space


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4 relaxed body canonicalization; the same bytes as dkimpy's, faster.

    Why: dkimpy replaces every whitespace run, single spaces included, and that was a tenth of the
    CPU of sending an email. Our bodies are quoted-printable (no trailing whitespace, few runs), so
    C-speed `in` checks skip most of the work. tests/unit/test_dkim_canonical.py checks equality
    with dkimpy on generated bodies.
    """
    if b" \r\n" in body or b"\t\r\n" in body:
        body = _TRAILING_WSP.sub(b"\r\n", body)
    if b"\t" in body or b"  " in body:
        body = _WSP_TO_COMPRESS.sub(b" ", body)
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    if end == 0:
        return b""  # an empty body (or only empty lines) canonicalizes to nothing
    return body[:end] + b"\r\n"


PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class DkimError(ValueError):
    """A key or message DKIM cannot work with; the message names which."""


def generate_private_key(algorithm: str = RSA_SHA256) -> str:
    """A new private key as PKCS#8 PEM: RSA-2048 (what every receiver verifies) or Ed25519."""
    key: PrivateKey
    if algorithm == RSA_SHA256:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == ED25519_SHA256:
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise DkimError(f"algorithm: expected one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


@functools.lru_cache(maxsize=256)
def load_private_key(pem: str) -> PrivateKey:
    """Parse once per process: loading an RSA key checks it, which costs milliseconds."""
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise DkimError(f"private_key_pem: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise DkimError(f"private_key_pem: expected an RSA or Ed25519 key, got {type(key).__name__}")
    return key


def algorithm_of(pem: str) -> str:
    return ED25519_SHA256 if isinstance(load_private_key(pem), ed25519.Ed25519PrivateKey) else RSA_SHA256


def public_key_record(pem: str) -> str:
    """The TXT record value to publish at `<selector>._domainkey.<domain>` (RFC 6376 §3.6.1)."""
    key = load_private_key(pem)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _split(raw: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Header fields (name, value including folds and final CRLF) and the body."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise DkimError("message: expected CRLF line endings and a blank line after the header")
    headers: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + line + b"\r\n")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or b" " in name:
            raise DkimError(f"message: malformed header line {line[:60]!r}")
        headers.append((name, value + b"\r\n"))
    return headers, body


@dataclass(frozen=True)
class Signer:
    """Signs with one domain's key; `sign` returns the message with a DKIM-Signature prepended."""

    domain: str
    selector: str
    private_key_pem: str

    def sign(self, raw: bytes, *, now: datetime) -> bytes:
        key = load_private_key(self.private_key_pem)
        algorithm = ED25519_SHA256 if isinstance(key, ed25519.Ed25519PrivateKey) else RSA_SHA256
        headers, body = _split(raw)
        present = {name.lower() for name, _ in headers}
        include = [h.encode() for h in SIGNED_HEADERS if h.encode() in present]
        if b"from" not in include:
            raise DkimError("message: a DKIM signature needs a From header (RFC 6376 §5.4)")
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        value = (
            f" v=1; a={algorithm}; c=relaxed/relaxed; d={self.domain}; s={self.selector};"
            f" t={int(now.timestamp())};\r\n\th={':'.join(h.decode() for h in include)};"
            f"\r\n\tbh={body_hash.decode()};\r\n\tb="
        ).encode("ascii")
        # RFC 6376 §5.4.2: each listed header once, the last occurrence first.
        last = {name.lower(): (name, value) for name, value in headers}  # later ones win
        chosen = _RELAXED.canonicalize_headers([last[name] for name in include])
        [(sig_name, sig_value)] = _RELAXED.canonicalize_headers([(b"DKIM-Signature", value)])
        hasher = hashlib.sha256()
        for cname, cvalue in chosen:
            hasher.update(cname + b":" + cvalue)
        # The signature header itself is hashed without its b= value and without the final CRLF.
        hasher.update(sig_name + b":" + sig_value.rstrip(b"\r\n"))
        digest = hasher.digest()
        if isinstance(key, ed25519.Ed25519PrivateKey):
            signature = key.sign(digest)  # RFC 8463 §3: Ed25519 over the SHA-256 hash
        else:
            signature = key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        return b"DKIM-Signature:" + value + base64.b64encode(signature) + b"\r\n" + raw


def signers(conn: Connection, *, workspace_ids: Sequence[str]) -> dict[tuple[str, str], Signer]:
    """(workspace id, From domain) -> its signer, for every sender domain of these workspaces.

    A domain signs as soon as it is added, verified or not: a receiver that cannot find the key
    treats the signature as absent, so signing early costs nothing and works the moment DNS does.
    """
    return {
        (s.workspace_id, s.domain): Signer(s.domain, s.selector, s.private_key_pem)
        for s in senders.for_workspaces(conn, workspace_ids=workspace_ids)
    }


def signer_for(signers: Mapping[tuple[str, str], Signer], workspace_id: str, domain: str) -> Signer | None:
    """The From domain's signer, else its nearest parent's: d=shop.example may sign for
    news.shop.example (DMARC relaxed alignment, RFC 7489 §3.1.1)."""
    labels = domain.lower().rstrip(".").split(".")
    for start in range(len(labels) - 1):
        found = signers.get((workspace_id, ".".join(labels[start:])))
        if found is not None:
            return found
    return None
