"""Count a three-condition segment over a million profiles and twenty million events (issue 9).

    .venv/bin/python bench/segment_count.py [--profiles 1000000] [--events 20000000] [--runs 5]
        [--dialects sqlite postgresql] [--keep] [--url URL] [--explain]

The rule: country is US (a JSON property) + viewed a product at least 3 times in the last 30 days
(a count over rollups in a window) + subscribed to email (consent):

    all: [{property: properties.country, value: US},
          {where: {metric: Viewed Product}, within: P30D, value: 3},
          {consent: email}]

Set-up (fast, not through ingest): profiles with a country, email consent for 60 % of them, and
the rollups that --events events produce, summed per (metric, day, profile) exactly as
store/rollups.py sums them; the raw events are not written, since no count reads them. Each
profile signs up on a day of the last two years and stays active for a while (exponential, mean
120 days), its events (exponential, mean events/profiles) spread evenly over that span, with a
metric drawn by the shares below. So about 17 % of profiles were active in the last 30 days and
about 9 % of the events fall in them (the rule's window holds about 0.9 million rollup rows). PostgreSQL loads with COPY
(constraints rebuilt after), SQLite through a staging table sorted into the rollups' key order.
Then ANALYZE (VACUUM ANALYZE on PostgreSQL: what autovacuum does after a bulk load).

Measured: the compiled count (segments/compile.py) `--runs` times, and a bare SELECT count(*) of
each table it reads (profiles, metric_rollups, consents), medians; the ratio is the rule's
median over the sum of the bare ones. `--url` reuses a database a `--keep` run left behind.
"""

from __future__ import annotations

import argparse
import io
import random
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from shopflow import testing
from shopflow.domain.segments import validation, values
from shopflow.segments import audience, compile
from shopflow.store import db, rollups, segment_reads
from shopflow.store import segment_tables as st

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULE = {
    "all": [
        {"property": "properties.country", "value": "US"},
        {"where": {"metric": "Viewed Product"}, "within": "P30D", "value": 3},
        {"consent": "email"},
    ]
}
# Share of events per metric, as a store's event stream roughly has them.
METRICS = {
    "Viewed Product": 50,
    "Active on Site": 18,
    "Added to Cart": 10,
    "Opened Email": 9,
    "Checkout Started": 4,
    "Clicked Email": 4,
    "Placed Order": 3,
    "Ordered Product": 2,
}
COUNTRIES = {"US": 40, "GB": 15, "DE": 12, "FR": 10, "CA": 8, "AU": 5, "NL": 5, "ES": 5}
HISTORY_DAYS = 730
MEAN_ACTIVE_DAYS = 120
CHUNK = 200_000


def _cumulative(weights: dict[str, int]) -> tuple[list[str], list[int]]:
    names, cum, total = [], [], 0
    for name, weight in weights.items():
        total += weight
        names.append(name)
        cum.append(total)
    return names, cum


def generate(
    profiles: int, events: int, seed: int
) -> Iterator[tuple[int, dict[str, Any], list[tuple[str, int, int]]]]:
    """Per profile: (id, properties, [(metric, day, events that day)]), ids from 1."""
    rng = random.Random(seed)
    metric_names, metric_cum = _cumulative(METRICS)
    country_names, country_cum = _cumulative(COUNTRIES)
    today = values.day_of(NOW)
    mean = events / profiles
    for pid in range(1, profiles + 1):
        n = int(rng.expovariate(1 / mean) + 0.5)
        names = rng.choices(metric_names, cum_weights=metric_cum, k=n)
        signed_up = rng.randint(0, HISTORY_DAYS)  # days ago
        span = min(signed_up, rng.expovariate(1 / MEAN_ACTIVE_DAYS))
        last_seen = signed_up - span
        ages = [int(last_seen + rng.random() * span) for _ in range(n)]
        cells = Counter(zip(names, (today - a for a in ages), strict=True))
        country = rng.choices(country_names, cum_weights=country_cum)[0]
        yield (
            pid,
            {"country": country, "plan": rng.choice(("free", "pro"))},
            [(m, d, c) for (m, d), c in cells.items()],
        )


def _consent(pid: int, seed: int) -> str | None:
    draw = random.Random(seed * 7_919 + pid).random()
    return None if draw >= 0.6 else ("subscribed" if draw < 0.45 else "unsubscribed")


@contextmanager
def _timer(label: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    print(f"  {label}: {time.perf_counter() - start:.1f} s", flush=True)


def _metric_ids(engine: Engine, ws: str) -> dict[str, int]:
    with db.transaction(engine) as conn:
        return rollups.metric_ids(conn, workspace_id=ws, names=METRICS, now=NOW)


def load_postgres(engine: Engine, ws: str, *, profiles: int, events: int, seed: int) -> int:
    ids = _metric_ids(engine, ws)
    stamp = NOW - timedelta(days=400)
    rows = 0
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        with driver.cursor() as cur:
            # Constraints are rebuilt once after the load rather than row by row; FK triggers off.
            cur.execute("SET session_replication_role = replica")
            cur.execute("ALTER TABLE metric_rollups DROP CONSTRAINT pk_metric_rollups")
            cur.execute("DROP INDEX ix_metric_rollups_profile")
            buf = io.StringIO()
            rollup_chunks: list[str] = []
            consents: list[str] = []
            with cur.copy(
                "COPY profiles (id, workspace_id, properties, created_at, updated_at, order_count, total_spent) "
                "FROM STDIN"
            ) as copy:
                for pid, props, cells in generate(profiles, events, seed):
                    copy.write(f'{pid}\t{ws}\t{{"country": "{props["country"]}", "plan": "{props["plan"]}"}}\t'
                               f"{stamp.isoformat()}\t{stamp.isoformat()}\t0\t0\n")  # fmt: skip
                    for metric, day, count in cells:
                        buf.write(f"{ids[metric]}\t{day}\t{pid}\t{ws}\t{count}\t0\t0\n")
                        rows += 1
                    status = _consent(pid, seed)
                    if status is not None:
                        consents.append(f"{ws}\t{pid}\temail\t{status}\t{stamp.isoformat()}\n")
                    if buf.tell() > 64_000_000:
                        rollup_chunks.append(buf.getvalue())
                        buf = io.StringIO()
            rollup_chunks.append(buf.getvalue())
            with cur.copy(
                "COPY metric_rollups (metric_id, day, profile_id, workspace_id, event_count, value_count, "
                "value_sum) FROM STDIN"
            ) as copy:
                for chunk in rollup_chunks:
                    copy.write(chunk)
            del rollup_chunks
            with cur.copy(
                "COPY consents (workspace_id, profile_id, channel, status, updated_at) FROM STDIN"
            ) as copy:
                for start in range(0, len(consents), CHUNK):
                    copy.write("".join(consents[start : start + CHUNK]))
            cur.execute("SELECT setval(pg_get_serial_sequence('profiles', 'id'), %s)", (profiles,))
            cur.execute(
                "ALTER TABLE metric_rollups ADD CONSTRAINT pk_metric_rollups PRIMARY KEY (metric_id, day, profile_id) "
                "INCLUDE (event_count, value_count, value_sum)"
            )
            cur.execute("CREATE INDEX ix_metric_rollups_profile ON metric_rollups (workspace_id, profile_id)")
            cur.execute("SET session_replication_role = DEFAULT")
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return rows


def load_sqlite(path: str, engine: Engine, ws: str, *, profiles: int, events: int, seed: int) -> int:
    ids = _metric_ids(engine, ws)
    engine.dispose()
    stamp = (NOW - timedelta(days=400)).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    conn = sqlite3.connect(path, isolation_level=None)
    rows = 0
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")  # 1 GB of page cache for the sort and the index builds
        conn.execute("PRAGMA temp_store=FILE")
        conn.execute("BEGIN")
        conn.execute("DROP INDEX ix_metric_rollups_profile")
        conn.execute("CREATE TEMP TABLE stage (metric_id, day, profile_id, workspace_id, event_count)")
        people: list[tuple[Any, ...]] = []
        cells_out: list[tuple[Any, ...]] = []
        consents: list[tuple[Any, ...]] = []

        def flush() -> None:
            conn.executemany(
                "INSERT INTO profiles (id, workspace_id, properties, created_at, updated_at, order_count, total_spent) "
                "VALUES (?, ?, ?, ?, ?, 0, 0)",
                people,
            )
            conn.executemany("INSERT INTO stage VALUES (?, ?, ?, ?, ?)", cells_out)
            conn.executemany(
                "INSERT INTO consents (workspace_id, profile_id, channel, status, updated_at) VALUES (?, ?, 'email', ?, ?)",
                consents,
            )
            people.clear()
            cells_out.clear()
            consents.clear()

        for pid, props, cells in generate(profiles, events, seed):
            people.append(
                (pid, ws, f'{{"country":"{props["country"]}","plan":"{props["plan"]}"}}', stamp, stamp)
            )
            for metric, day, count in cells:
                cells_out.append((ids[metric], day, pid, ws, count))
            rows += len(cells)
            status = _consent(pid, seed)
            if status is not None:
                consents.append((ws, pid, status, stamp))
            if len(cells_out) >= CHUNK:
                flush()
        flush()
        # In key order: the WITHOUT ROWID table is its primary key's b-tree, appended to page by page.
        conn.execute(
            "INSERT INTO metric_rollups (metric_id, day, profile_id, workspace_id, event_count, value_count, value_sum) "
            "SELECT metric_id, day, profile_id, workspace_id, event_count, 0, 0 FROM stage "
            "ORDER BY metric_id, day, profile_id"
        )
        conn.execute("DROP TABLE stage")
        conn.execute("CREATE INDEX ix_metric_rollups_profile ON metric_rollups (workspace_id, profile_id)")
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return rows


def measure(engine: Engine, ws: str, runs: int, explain: bool) -> dict[str, Any]:
    rule = validation.parse(RULE)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        dialect = conn.dialect.name
        if explain:
            query = compile.count(rule, workspace_id=ws, now=NOW, dialect=dialect)
            compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            word = "EXPLAIN QUERY PLAN" if dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS)"
            segment_reads.for_whole_workspace(conn)
            for line in conn.exec_driver_sql(f"{word} {compiled}"):
                print("   ", " | ".join(str(c) for c in line))
            conn.rollback()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            out["members"] = audience.count(conn, rule, workspace_id=ws, now=NOW)
            times.append(time.perf_counter() - start)
            conn.rollback()  # each count in its own transaction, as a request would run it
        out["rule"] = common.median(times)
        out["rule_runs"] = times
        bare = {}
        for table in ("profiles", "metric_rollups", "consents"):
            samples = []
            for _ in range(runs):
                start = time.perf_counter()
                conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                samples.append(time.perf_counter() - start)
            bare[table] = common.median(samples)
        out["bare"] = bare
        out["rollup_rows"] = int(
            conn.execute(sa.select(sa.func.count()).select_from(st.metric_rollups)).scalar_one()
        )
    return out


def run(dialect: str, args: argparse.Namespace) -> None:
    print(f"== {dialect}: {args.profiles:,} profiles, {args.events:,} events", flush=True)
    with common.database(dialect) if args.url is None else _existing(args.url) as url:
        engine = db.create_engine(url)
        try:
            if args.url is None:
                ws = testing.make_workspace(engine, now=NOW).workspace.id
                with _timer("load"):
                    if dialect == "sqlite":
                        path = url.removeprefix("sqlite:///")
                        rows = load_sqlite(
                            path, engine, ws, profiles=args.profiles, events=args.events, seed=args.seed
                        )
                        engine = db.create_engine(url)
                    else:
                        rows = load_postgres(
                            engine, ws, profiles=args.profiles, events=args.events, seed=args.seed
                        )
                print(f"  rollup rows: {rows:,}", flush=True)
            else:
                with engine.connect() as conn:
                    ws = str(conn.exec_driver_sql("SELECT id FROM workspaces").scalar_one())
            result = measure(engine, ws, args.runs, args.explain)
        finally:
            engine.dispose()
        if args.keep and args.url is None:
            print(f"  kept: {_keep(url, dialect)}", flush=True)
    bare = sum(result["bare"].values())
    runs = ", ".join(f"{t * 1000:.0f}" for t in result["rule_runs"])
    print(
        f"  members {result['members']:,} of {args.profiles:,}; rollup rows {result['rollup_rows']:,}\n"
        f"  rule count: median {result['rule'] * 1000:.0f} ms (runs {runs} ms)\n"
        "  bare count(*): "
        + ", ".join(f"{t} {v * 1000:.0f} ms" for t, v in result["bare"].items())
        + f" = {bare * 1000:.0f} ms\n  ratio rule / bare: {result['rule'] / bare:.2f}"
        f" (to count(*) of profiles alone: {result['rule'] / result['bare']['profiles']:.2f})",
        flush=True,
    )


@contextmanager
def _existing(url: str) -> Iterator[str]:
    yield url


def _keep(url: str, dialect: str) -> str:
    """Leave the database behind for --url (the temporary one would be removed)."""
    if dialect == "sqlite":
        target = Path("/tmp") / f"segment_count_{int(time.time())}.db"
        source = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return f"sqlite:///{target}"
    name = f"segment_count_{int(time.time())}"
    admin = sa.create_engine(db.normalise_url(testing.pg_admin_url()), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        database = sa.engine.make_url(db.normalise_url(url)).database
        conn.exec_driver_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        )
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{database}"')
    admin.dispose()
    return sa.engine.make_url(db.normalise_url(url)).set(database=name).render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument(
        "--dialects", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"]
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the loaded database behind (prints its URL)"
    )
    parser.add_argument("--url", help="measure a database a --keep run left behind (one dialect)")
    parser.add_argument("--explain", action="store_true", help="print the query plan")
    args = parser.parse_args()
    print(f"machine: {common.machine()}; {datetime.now(UTC):%Y-%m-%d}", flush=True)
    dialects = [("sqlite" if args.url.startswith("sqlite") else "postgresql")] if args.url else args.dialects
    for dialect in dialects:
        run(dialect, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
