"""`shopflow demo`: a simulated store lives through D days with the seed flows live.

Everything goes through Shopflow's public interfaces, on loopback: customers' behaviour is posted
to the Segment-compatible `/v1/batch` endpoint of a real HTTP server; the worker triggers flows,
steps them and delivers email over real SMTP to the embedded sink; simulated customers "open"
and "click" by requesting the tracking links found in the emails the sink received. Only the
clock is simulated, so 30 days pass in well under a minute.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import httpx
import sqlalchemy as sa
from tqdm import tqdm

from shopflow import testing
from shopflow.api.app import create_app
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.flows import library
from shopflow.messaging.channels.email.smtp import SmtpChannel
from shopflow.simulation import activity, model, payloads
from shopflow.store import db, tables, workspaces
from shopflow.store import flows as store_flows
from shopflow.workers.embedded import Worker

DEMO_FLOWS = ("welcome-series", "cart-abandonment")
TICK = timedelta(minutes=30)
MAX_BATCH_EVENTS = 400
START = datetime(2026, 10, 1, tzinfo=UTC)
_MESSAGE_ID = re.compile(r"<shopflow\.[^.]+\.(\d+)@")
_LINK = re.compile(r"""(?:src|href)=["']([^"']+/t/([oc])/[^"']+)["']""")


@dataclass
class Delivered:
    message_id: int
    to_address: str
    open_url: str | None
    click_url: str | None


class _Inbox:
    """Reads what the sink (a separate `shopflow sink` process) stored: message ids and links."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.by_id: dict[int, Delivered] = {}

    def take_new(self) -> list[Delivered]:
        """Messages stored since the last call; each is moved from new/ to cur/ once read (Maildir)."""
        new: list[Delivered] = []
        folder, done = self.directory / "new", self.directory / "cur"
        if not folder.exists():
            return new
        for path in sorted(folder.iterdir()):
            item = _parse(path.read_bytes())
            path.rename(done / path.name)
            if item is not None:
                self.by_id[item.message_id] = item
                new.append(item)
        return new


_TO = re.compile(rb"^To:[ \t]*(.+?)\r?$", re.M)
_SOFT_BREAK = re.compile(rb"=\r?\n")


def _parse(raw: bytes) -> Delivered | None:
    """Message id, recipient and tracking links, read straight off the bytes (the sink wrote them).

    Shopflow's own messages are simple: plain headers and quoted-printable parts, so undoing soft
    line breaks and `=3D` is enough to find the links; a full MIME parse costs ten times more.
    """
    head, _, body = raw.partition(b"\r\n\r\n")
    match = _MESSAGE_ID.search(head.decode("ascii", "replace"))
    to = _TO.search(head)
    if match is None or to is None:
        return None
    text = _SOFT_BREAK.sub(b"", body).replace(b"=3D", b"=").decode("utf-8", "replace")
    open_url = click_url = None
    for found, kind in _LINK.findall(text):
        url = found.replace("&amp;", "&")
        if kind == "o" and open_url is None:
            open_url = url
        elif kind == "c" and click_url is None:
            click_url = url
    return Delivered(int(match.group(1)), to.group(1).decode().strip(), open_url, click_url)


class _SinkProcess:
    """`shopflow sink` in its own process, so SMTP delivery runs on the other core."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = testing.free_port()
        exe = Path(sys.executable).with_name("shopflow")
        command = [str(exe), "sink", "--port", str(self.port), "--dir", str(directory)]
        self._proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self._proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the SMTP sink did not start on port {self.port}")

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def run(
    settings: Settings,
    *,
    customers: int = 5000,
    days: int = 30,
    seed: int = 7,
    out: TextIO = sys.stdout,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the simulation and print the report; returns the report's figures."""
    clock = SimulatedClock(START)
    for noisy in ("httpx", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    engine = db.create_engine(settings.database_url)
    db.upgrade(engine)
    mail_dir = Path(tempfile.mkdtemp(prefix="shopflow-demo-mail-"))
    inbox = _Inbox(mail_dir)
    sink = _SinkProcess(mail_dir)
    server: testing.LiveServer | None = None
    channel = SmtpChannel(f"smtp://127.0.0.1:{sink.port}")
    try:
        port = testing.free_port()
        public_url = f"http://127.0.0.1:{port}"
        # One simulated client stands for thousands of shoppers: the per-address flood guard is off.
        app_settings = Settings(
            **{
                **settings.__dict__,
                "public_url": public_url,
                "embedded_worker": False,
                "public_rate_per_ip": 0,
                "public_rate_per_key": 0,
            }
        )
        with db.transaction(engine) as conn:
            created = workspaces.create_workspace(
                conn,
                name=f"Demo store (simulation, seed {seed})",
                now=clock.now(),
                settings={
                    "store_url": "https://demo-store.example",
                    "from_email": "hello@demo-store.example",
                    # The simulated shoppers live at example.com (RFC 2606); their mail goes to
                    # the SMTP sink, so let the guards send to the reserved domain.
                    "deliver_to_reserved_domains": True,
                },
            )
            ws = created.workspace.id
            flow_ids = {
                name: library.install(conn, workspace_id=ws, name=name, now=clock.now(), live=True)
                for name in DEMO_FLOWS
            }
        app = create_app(app_settings, engine=engine, clock=clock)
        # The simulated store makes tens of thousands of requests: one access line each would bury
        # the demo's own report.
        logging.getLogger("shopflow.access").setLevel(logging.WARNING)
        server = testing.LiveServer(app, port=port)
        server.start()
        worker = Worker(
            engine=engine,
            clock=clock,
            channel=channel,
            link_secret=app.state.ctx.link_secret,
            public_url=public_url,
        )
        store = model.Store(seed=seed, customers=customers, start=START, days=days)
        auth = "Basic " + base64.b64encode(f"{created.write_key}:".encode()).decode()
        with httpx.Client(base_url=public_url, timeout=60, headers={"Authorization": auth}) as http:
            _simulate(
                store,
                clock=clock,
                worker=worker,
                inbox=inbox,
                http=http,
                engine=engine,
                days=days,
                progress=progress,
            )
        report = _report(engine, ws, flow_ids, store)
        _print(
            report,
            out,
            customers=customers,
            days=days,
            seed=seed,
            database=engine.url.render_as_string(hide_password=True),
        )
        return report
    finally:
        if server is not None:
            server.stop()
        channel.close()
        sink.stop()
        shutil.rmtree(mail_dir, ignore_errors=True)
        engine.dispose()


def _simulate(
    store: model.Store,
    *,
    clock: SimulatedClock,
    worker: Worker,
    inbox: _Inbox,
    http: httpx.Client,
    engine: sa.Engine,
    days: int,
    progress: bool,
) -> None:
    ticks = int(timedelta(days=days) / TICK)
    t = START
    bar = tqdm(
        total=ticks, desc="simulating (SIMULATION)", unit="tick", disable=not progress, file=sys.stderr
    )
    templates: dict[int, str] = {}
    by_email: dict[str, int] = {}
    for _ in range(ticks):
        t_next = t + TICK
        clock.set(t_next)
        actions = store.actions_between(t, t_next)
        _post(http, [payloads.to_segment(a) for a in actions if payloads.is_ingestable(a)])
        for action in actions:
            if action.kind in (activity.EMAIL_OPEN, activity.EMAIL_CLICK):
                _track(http, inbox, action)
        worker.run_until_idle()
        delivered = inbox.take_new()
        if delivered:
            templates.update(_templates(engine, [d.message_id for d in delivered]))
            for item in delivered:
                address = item.to_address.lower()
                if address not in by_email:
                    by_email = {c.email.lower(): i for i, c in enumerate(store.customers)}
                customer_id = by_email.get(address)
                if customer_id is not None:
                    store.react_to_email(
                        customer_id, templates.get(item.message_id, ""), t_next, ref=item.message_id
                    )
        t = t_next
        bar.update(1)
    bar.close()


def _post(http: httpx.Client, batch: list[dict[str, Any]]) -> None:
    for start in range(0, len(batch), MAX_BATCH_EVENTS):
        chunk = batch[start : start + MAX_BATCH_EVENTS]
        response = http.post(
            "/v1/batch", content=json.dumps({"batch": chunk}), headers={"Content-Type": "application/json"}
        )
        if response.status_code != 200:
            raise RuntimeError(f"/v1/batch answered {response.status_code}: {response.text}")


def _track(http: httpx.Client, inbox: _Inbox, action: activity.Action) -> None:
    ref = action.properties.get("ref")
    delivered = inbox.by_id.get(int(ref)) if ref is not None else None
    if delivered is None:
        return
    url = delivered.open_url if action.kind == activity.EMAIL_OPEN else delivered.click_url
    if url is None:
        return
    response = http.get(url, follow_redirects=False)
    if response.status_code not in (200, 302, 303, 307):
        raise RuntimeError(f"tracking link {url} answered {response.status_code}")


def _templates(engine: sa.Engine, message_ids: list[int]) -> dict[int, str]:
    m = tables.messages
    with db.reading(engine) as conn:
        rows = conn.execute(sa.select(m.c.id, m.c.template).where(m.c.id.in_(message_ids)))
        return {int(r.id): str(r.template) for r in rows}


def _report(engine: sa.Engine, ws: str, flow_ids: dict[str, int], store: model.Store) -> dict[str, Any]:
    from shopflow.analytics import reports

    with db.reading(engine) as conn:
        flows = {
            name: reports.flow_report(conn, workspace_id=ws, flow_id=fid) for name, fid in flow_ids.items()
        }
        store_totals = reports.store_report(conn, workspace_id=ws)
        names = {f.id: f.name for f in store_flows.list_flows(conn, workspace_id=ws)}
    return {
        "workspace_id": ws,
        "flows": flows,
        "store": store_totals,
        "flow_names": names,
        "truth": store.stats,
    }


def _money(value: Any) -> str:
    return f"${Decimal(value):,.2f}"


def _print(
    report: dict[str, Any], out: TextIO, *, customers: int, days: int, seed: int, database: str
) -> None:
    line = "=" * 78
    print(line, file=out)
    print(
        f"SIMULATION — a made-up store of {customers:,} customers over {days} days (seed {seed}).", file=out
    )
    print("Customers' behaviour is simulated (docs/demo.md); Shopflow itself ran for real:", file=out)
    print("HTTP ingest, flow engine, SMTP delivery to the embedded sink, tracking links.", file=out)
    print(f"Database: {database}   workspace: {report['workspace_id']}", file=out)
    print(line, file=out)
    header = (
        f"{'flow':<22}{'entrants':>9}{'sent':>7}{'recips':>7}{'convs':>6}{'revenue':>12}{'rev/recip':>11}"
    )
    print(header, file=out)
    for name, r in report["flows"].items():
        print(
            f"{name:<22}{r['entrants']:>9,}{r['messages_sent']:>7,}{r['recipients']:>7,}{r['conversions']:>6,}"
            f"{_money(r['attributed_revenue']):>12}{_money(r['revenue_per_recipient']):>11}",
            file=out,
        )
    s = report["store"]
    print("-" * 78, file=out)
    print(
        f"Store revenue (net of refunds and cancellations): {_money(s['revenue'])} from {s['orders']:,} orders",
        file=out,
    )
    print(
        f"Revenue attributed to flows: {_money(s['flow_revenue'])} = {Decimal(s['flow_revenue_share']) * 100:.1f} % of store revenue",
        file=out,
    )
    skipped: dict[str, int] = {}
    for r in report["flows"].values():
        for reason, n in r["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + n
    if skipped:
        print(
            "Messages not sent, by reason: " + ", ".join(f"{k} {v:,}" for k, v in sorted(skipped.items())),
            file=out,
        )
    print(
        "Attribution: last email opened or clicked within 5 days before the order (DESIGN.md default).",
        file=out,
    )
    print(line, file=out)
