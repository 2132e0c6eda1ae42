"""A fake Twilio REST API on loopback that checks the wire format of what Shopflow sends."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    received: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # wire-format violations seen
    # Queued answers (status, JSON body) for the next requests; default 201 with a new sid.
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTwilio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                status, body = fake.handle(self.path, dict(self.headers.items()), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        lower = {k.lower(): v for k, v in headers.items()}
        expected_path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if path != expected_path:
            self.problems.append(f"path {path!r}, expected {expected_path!r}")
            return 404, {"code": 20404, "message": "not found"}
        token = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if lower.get("authorization") != f"Basic {token}":
            self.problems.append(f"authorization {lower.get('authorization')!r}")
            return 401, {"code": 20003, "message": "Authenticate"}
        if lower.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
            self.problems.append(f"content-type {lower.get('content-type')!r}")
            return 400, {"code": 21600, "message": "bad content type"}
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), strict_parsing=True).items()}
        for name in ("To", "Body"):
            if not form.get(name):
                self.problems.append(f"missing {name}")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            self.problems.append("missing From")
        unknown = set(form) - {"To", "From", "Body", "StatusCallback", "MessagingServiceSid"}
        if unknown:
            self.problems.append(f"unknown fields {sorted(unknown)}")
        with self._lock:  # requests arrive in parallel
            self.received.append(form)
            if self.answers:
                return self.answers.pop(0)
            sid = f"SM{len(self.received):032x}"
        return 201, {"sid": sid, "status": "queued", "to": form.get("To"), "num_segments": "1"}
