"""A fake web push service on loopback: verifies the VAPID JWT (RFC 8292) and decrypts the
aes128gcm body (RFC 8291) with the browser's private key, as a browser's push service would."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A browser's subscription keys: an ECDH P-256 pair and a 16-byte auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes


@dataclass
class FakePushService:
    vapid_public_key: str  # the key the workspace advertises; the JWT's k must be it
    subject: str
    expected_exp: int
    browsers: dict[str, Browser] = field(default_factory=dict)  # path -> keys
    answers: dict[str, int] = field(default_factory=dict)  # path -> status (default 201)
    problems: list[str] = field(default_factory=list)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (path, decrypted JSON)
    claims: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakePushService:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = fake.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                if status == 201:
                    self.send_header("Location", f"{fake.origin}/m/{len(fake.received)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _check_vapid(self, authorization: str) -> None:
        scheme, _, params = authorization.partition(" ")
        if scheme != "vapid":
            self.problems.append(f"authorization scheme {scheme!r}")
            return
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        token, key = fields.get("t", ""), fields.get("k", "")
        if key != self.vapid_public_key:
            self.problems.append(f"k {key!r} is not the workspace's VAPID key")
            return
        header_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(b64d(header_b64))
        if header != {"typ": "JWT", "alg": "ES256"}:
            self.problems.append(f"JWT header {header}")
        signature = b64d(sig_b64)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(key))
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            self.problems.append("JWT signature does not verify")
        claims = json.loads(b64d(claims_b64))
        self.claims.append(claims)
        expected = {"aud": self.origin, "exp": self.expected_exp, "sub": self.subject}
        if claims != expected:
            self.problems.append(f"claims {claims}, expected {expected}")

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        self._check_vapid(headers.get("authorization", ""))
        if headers.get("content-encoding") != "aes128gcm":
            self.problems.append(f"content-encoding {headers.get('content-encoding')!r}")
        if not headers.get("ttl", "").isdigit():
            self.problems.append(f"ttl {headers.get('ttl')!r}")
        browser = self.browsers.get(path)
        if browser is None:
            return 404
        status = self.answers.get(path, 201)
        if status == 201:
            plain = http_ece.decrypt(
                body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
            )
            self.received.append((path, json.loads(plain)))
        return status
