"""Email delivery throughput: personalised, rendered, DKIM-signed, accepted by SMTP in another process.

    .venv/bin/python bench/email_delivery.py [--dialect sqlite|postgresql|both] [--messages 5000] [--runs 3]
        [--processes 1] [--connections 2] [--algorithm rsa-sha256|ed25519-sha256]
        [--record group|each|batch] [--server discard|smtp-sink|sink]

Each run: a fresh database with one workspace (a sender domain with a DKIM key, past its warm-up),
N subscribed profiles and N queued cart-reminder emails (three products each). The timed part is
the workers draining the queue: `--processes` worker processes, each the real `shopflow worker`
loop (`workers.process.build_worker`, `Worker.tick` until a pass finds nothing): claim 200, guards,
render (Liquid), tracking links, MIME, DKIM signature, SMTP, record the results. The SMTP server is a separate process
on loopback: `bench/smtp_discard.py` (aiosmtpd on uvloop, keeps a count; default), Postfix's
`smtp-sink` (C; `bench/get_smtp_sink.sh` unpacks it from Debian's postfix package into bench/.tools)
or `shopflow sink` (a file per message). The receiver shares the machine's cores with the sender:
aiosmtpd spends ~0.5 ms of CPU per email, smtp-sink ~0.06 ms (a production MTA or an ESP's edge
runs elsewhere). The CPU per email of the workers and of the server is printed too.
Emails/s = N / elapsed; all N must end 'sent'. `--record group` (the default,
SHOPFLOW_DELIVERY_RECORD_GROUP=16) commits results in groups of 16 or every 10 ms as the server
accepts them; `each` commits every email's result on its own (=1); `batch` once per batch (=1000).
Also printed, single-threaded (= per core): rendering alone with the compiled-template cache,
render + links + MIME + DKIM (`messaging.delivery.email.prepare`), and DKIM signing alone.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.config import Settings
from shopflow.domain.clock import SimulatedClock
from shopflow.domain.events import CanonicalEvent, ConsentChange, Identity
from shopflow.ingest import pipeline
from shopflow.messaging.deliverability import dkim
from shopflow.messaging.delivery import context, results
from shopflow.messaging.delivery import email as email_delivery
from shopflow.messaging.templates import email as templates
from shopflow.store import db, messages, senders, workspaces
from shopflow.workers import process

DOMAIN = "mail.bench.example"
TEMPLATE = "cart-reminder-1h"
SECRET = b"bench-link-secret"
BATCH = 200
PUBLIC = "https://sf.bench.example"
FIRST = ["Ana", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hiro"]


def cart(n: int) -> dict[str, Any]:
    return {
        "event": {
            "abandoned_checkout_url": f"https://shop.bench.example/checkouts/c{n}",
            "currency": "USD",
            "products": [
                {
                    "name": f"Product {n % 50 + k}",
                    "price": f"{12 + k}.50",
                    "quantity": 1 + k,
                    "url": f"https://shop.bench.example/p/{n % 50 + k}",
                    "image_url": f"https://cdn.bench.example/p/{n % 50 + k}.jpg",
                }
                for k in range(3)
            ],
        }
    }


def setup(url: str, count: int, clock: SimulatedClock, algorithm: str) -> tuple[Any, str]:
    engine = db.create_engine(url)
    now = clock.now()
    with db.transaction(engine) as conn:
        ws = workspaces.create_workspace(
            conn,
            name="Bench Store",
            now=now - timedelta(days=90),
            # The recipients are at a reserved .example domain, served by the discard server.
            settings={
                "from_email": f"hello@{DOMAIN}",
                "from_name": "Bench Store",
                "deliver_to_reserved_domains": True,
            },
        ).workspace
        senders.add_domain(
            conn,
            workspace_id=ws.id,
            domain=DOMAIN,
            selector="bench",
            algorithm=algorithm,
            private_key_pem=dkim.generate_private_key(algorithm),
            now=now - timedelta(days=60),  # past the warm-up ramp
        )
    for start in range(0, count, 1000):
        events = [
            CanonicalEvent(
                message_id=f"signup-{n}",
                source="bench",
                identity=Identity(email=f"customer{n}@inbox.bench.example"),
                time=now,
                traits={"first_name": FIRST[n % len(FIRST)]},
                consent=(ConsentChange("email", "subscribed", now, "bench"),),
            )
            for n in range(start, min(count, start + 1000))
        ]
        with db.transaction(engine) as conn:
            ids = pipeline.accept(conn, workspace_id=ws.id, events=events, now=now).profile_ids
            messages.enqueue_many(
                conn,
                [
                    {
                        "workspace_id": ws.id,
                        "profile_id": pid,
                        "channel": "email",
                        "template": TEMPLATE,
                        "transactional": False,
                        "flow_id": 1,
                        "run_id": None,
                        "node_id": "email-1",
                        "dedupe_key": f"bench:{start + i}",
                        "status": messages.QUEUED,
                        "skip_reason": None,
                        "context": cart(start + i),
                        "send_after": now,
                        "created_at": now,
                    }
                    for i, pid in enumerate(ids)
                ],
            )
    return engine, ws.id


def start_sink(directory: Path, server: str = "sink") -> tuple[subprocess.Popen[bytes], int]:
    port = testing.free_port()
    env = {**os.environ, "SHOPFLOW_LOG_LEVEL": "WARNING"}
    if server == "sink":
        command = [sys.executable, "-m", "shopflow.cli", "sink", "--port", str(port), "--dir", str(directory)]
    elif server == "smtp-sink":
        binary, libs = smtp_sink_binary()
        # smtp-sink refuses to run as root without a user to drop to.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        command = [str(binary), *user, f"127.0.0.1:{port}", "1000"]
        if libs is not None:
            env["LD_LIBRARY_PATH"] = str(libs)
    else:
        command = [sys.executable, str(Path(__file__).with_name("smtp_discard.py")), str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("shopflow sink did not start")


TOOLS = Path(__file__).resolve().parent / ".tools"


def smtp_sink_binary() -> tuple[Path, Path | None]:
    """Postfix's `smtp-sink` (a C test server that accepts and discards mail): installed with
    Postfix, or unpacked by `bench/get_smtp_sink.sh` into bench/.tools without installing Postfix."""
    unpacked = TOOLS / "postfix" / "usr" / "sbin" / "smtp-sink"
    if unpacked.exists():
        return unpacked, TOOLS / "postfix" / "usr" / "lib" / "postfix"
    for candidate in (shutil.which("smtp-sink"), "/usr/sbin/smtp-sink"):
        if candidate and Path(candidate).exists():
            return Path(candidate), None
    raise SystemExit("--server smtp-sink: not found; run bench/get_smtp_sink.sh (or apt-get install postfix)")


RECORD_GROUPS = {"group": results.RECORD_GROUP, "each": 1, "batch": 1000}  # 1000 > a batch of 200


def _worker_loop(url: str, port: int, connections: int, record: str) -> None:
    """One worker process, exactly as `shopflow worker` builds it (workers/process.build_worker):
    every pass runs every stage (events, flow steps, email, SMS, push, webhooks, alerts), and email
    goes through the SMTP channel with the database-shared rate buckets. Only the clock is fixed
    and the daily maintenance (list hygiene) is left out of the timing."""
    settings = Settings(
        database_url=url,
        smtp_url=f"smtp://127.0.0.1:{port}?connections={connections}",
        public_url=PUBLIC,
        delivery_record_group=RECORD_GROUPS[record],
    )
    engine = db.create_engine(url)
    clock = SimulatedClock(testing.T0)
    worker = process.build_worker(settings, engine=engine, clock=clock, link_secret=SECRET)
    worker.maintain()  # once, before the queue is timed
    try:
        while worker.tick().total():
            pass
    finally:
        worker.channel.close()
        engine.dispose()


def delivery_run(
    dialect: str,
    count: int,
    port: int,
    *,
    connections: int,
    processes: int,
    algorithm: str,
    record: str = "group",
    server_pid: int | None = None,
) -> Run:
    """`processes` worker processes drain N queued emails."""
    clock = SimulatedClock(testing.T0)
    with common.database(dialect) as url:
        engine, ws_id = setup(url, count, clock, algorithm)
        engine.dispose()  # no pooled connection crosses the fork
        ctx = multiprocessing.get_context("fork")
        children_before = _children_cpu()
        server_before = _process_cpu(server_pid)
        database_before = _postgres_cpu()
        started = time.perf_counter()
        workers = [
            ctx.Process(target=_worker_loop, args=(url, port, connections, record)) for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        workers_cpu = _children_cpu() - children_before
        server_cpu = _process_cpu(server_pid) - server_before
        database_cpu = _postgres_cpu() - database_before
        with db.reading(engine) as conn:
            counts = messages.count_by_status(conn, workspace_id=ws_id)
        engine.dispose()
    if counts != {messages.SENT: count}:
        raise RuntimeError(f"{dialect}: expected {count} sent, got {counts}")
    return Run(
        count / elapsed, 1000 * workers_cpu / count, 1000 * server_cpu / count, 1000 * database_cpu / count
    )


@dataclass(frozen=True)
class Run:
    rate: float  # emails/s, wall clock
    worker_cpu_ms: float  # CPU per email in the delivery worker processes
    server_cpu_ms: float  # CPU per email in the SMTP server process
    database_cpu_ms: float  # CPU per email in PostgreSQL's processes (0 for SQLite: in the workers)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _postgres_cpu() -> float:
    """CPU seconds of PostgreSQL on this machine (the bench's database server): every live
    `postgres` process, plus what ended backends used (counted in their parent's cutime/cstime)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += _process_cpu(int(entry.name), children=True)
        except OSError:
            continue
    return total


def _process_cpu(pid: int | None, *, children: bool = False) -> float:
    """A running process's CPU seconds (user + system, and its waited-for children's with
    `children`) from /proc; 0 where that cannot be read."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def per_core(count: int) -> dict[str, float]:
    """Single-threaded rates: render only; render + links + MIME + DKIM (RSA, Ed25519); DKIM only."""
    lib = templates.default_library()
    template = lib.get(TEMPLATE)
    settings = {**workspaces.DEFAULT_SETTINGS, "from_email": f"hello@{DOMAIN}"}
    ws = workspaces.Workspace("ws_bench", "Bench Store", "x", settings)
    people = [
        messages.Recipient(
            n, f"customer{n}@inbox.bench.example", None, FIRST[n % 8], None, {}, 2, Decimal("80")
        )
        for n in range(count)
    ]
    msgs = [
        messages.ClaimedMessage(n, ws.id, n, "email", TEMPLATE, False, 1, cart(n), 1) for n in range(count)
    ]
    now = testing.T0
    contexts = [
        context.render_context(
            m, person=p, workspace=ws, unsubscribe_url=f"{PUBLIC}/u/t{m.id}", preferences_url=""
        )
        for m, p in zip(msgs, people, strict=True)
    ]
    template.render(contexts[0])  # parsed and cached before timing
    t = time.perf_counter()
    for ctx in contexts:
        template.render(ctx)
    out = {"render": count / (time.perf_counter() - t)}

    for suffix, algorithm in (("", dkim.RSA_SHA256), ("_ed", dkim.ED25519_SHA256)):
        signer = dkim.Signer(DOMAIN, "bench", dkim.generate_private_key(algorithm))
        signers = {(ws.id, DOMAIN): signer}
        t = time.perf_counter()
        raws = [
            email_delivery.prepare(
                m,
                person=p,
                workspace=ws,
                now=now,
                link_secret=SECRET,
                public_url=PUBLIC,
                library=lib,
                signers=signers,
            ).email.raw
            for m, p in zip(msgs, people, strict=True)
        ]
        out["prepare" + suffix] = count / (time.perf_counter() - t)
        unsigned = [r.split(b"\r\n\tb=", 1)[1].split(b"\r\n", 1)[1] for r in raws]
        t = time.perf_counter()
        for raw in unsigned:
            signer.sign(raw, now=now)
        out["dkim" + suffix] = count / (time.perf_counter() - t)
        out["bytes"] = sum(len(r) for r in raws) / len(raws)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--messages", type=int, default=5000, help="emails per run (default 5000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=1, help="delivery worker processes (default 1)")
    parser.add_argument("--connections", type=int, default=2, help="SMTP connections per loop (default 2)")
    parser.add_argument(
        "--server",
        choices=["discard", "smtp-sink", "sink", "auto"],
        default="discard",
        help="discard: aiosmtpd keeping a count (default); smtp-sink: Postfix's C test server; "
        "sink: `shopflow sink`, a file per message; auto: smtp-sink if found, else discard",
    )
    parser.add_argument("--algorithm", choices=dkim.ALGORITHMS, default=dkim.RSA_SHA256)
    parser.add_argument(
        "--record",
        choices=["group", "each", "batch"],
        default="group",
        help="group: results committed in groups of 16 / every 10 ms as they arrive (the default); "
        "each: every result on its own; batch: once per batch of 200",
    )
    parser.add_argument("--skip-per-core", action="store_true")
    args = parser.parse_args()
    if args.server == "auto":
        try:
            smtp_sink_binary()
            args.server = "smtp-sink"
        except SystemExit:
            args.server = "discard"

    print(f"machine: {common.machine()}")
    if not args.skip_per_core:
        rates = [per_core(2000) for _ in range(args.runs)]
        size = rates[0]["bytes"]
        print(f"per core ({TEMPLATE}, {size / 1024:.1f} KiB emails, median of {args.runs}):")
        for key, label in [
            ("render", "render only (compiled template cache)"),
            ("prepare", "render + links + MIME + DKIM RSA-2048"),
            ("prepare_ed", "render + links + MIME + DKIM Ed25519"),
            ("dkim", "DKIM RSA-2048 signing alone"),
            ("dkim_ed", "DKIM Ed25519 signing alone"),
        ]:
            print(f"  {label:40} {common.median([r[key] for r in rates]):8.0f} msg/s")

    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_sink(Path(tmp) / "mail", args.server)
        try:
            for dialect in dialects:
                runs = [
                    delivery_run(
                        dialect,
                        args.messages,
                        port,
                        connections=args.connections,
                        processes=args.processes,
                        algorithm=args.algorithm,
                        record=args.record,
                        server_pid=proc.pid,
                    )
                    for _ in range(args.runs)
                ]
                shown = ", ".join(f"{r.rate:.0f}" for r in runs)
                print(
                    f"{dialect}: {common.median([r.rate for r in runs]):.0f} emails/s end to end, "
                    f"DKIM {args.algorithm}, record {args.record}, server {args.server} (runs: {shown}; "
                    f"{args.messages} emails, {args.processes} worker processes x "
                    f"{args.connections} SMTP connections); CPU per email: workers "
                    f"{common.median([r.worker_cpu_ms for r in runs]):.2f} ms, SMTP server "
                    f"{common.median([r.server_cpu_ms for r in runs]):.2f} ms, PostgreSQL "
                    f"{common.median([r.database_cpu_ms for r in runs]):.2f} ms"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
