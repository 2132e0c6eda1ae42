"""Engines and transactions: the database URL picks the dialect."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached now; callers answer 503 and retry later."""


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql+psycopg"):
        return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    raise ValueError(f"SHOPFLOW_DATABASE_URL: expected sqlite:/// or postgresql://, got {url!r}")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: durable across application crashes, one fsync per checkpoint.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front (BEGIN IMMEDIATE) so two writers never deadlock on upgrade.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def one_of(conn: Connection, column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(:array)`, one bound array instead of a
    bind parameter per value, which keeps large look-ups cheap to render, send and plan."""
    if is_sqlite(conn):
        return column.in_(list(values))
    return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))


def any_exists(conn: Connection, queries: Sequence[sa.Select[Any]]) -> bool:
    """Whether any of `queries` finds a row: one round trip (SELECT EXISTS (...) OR ...)."""
    return bool(conn.execute(sa.select(sa.or_(*(sa.exists(q) for q in queries)))).scalar())


def exist_each(conn: Connection, queries: Mapping[str, Sequence[sa.Select[Any]]]) -> dict[str, bool]:
    """For each name, whether any of its queries finds a row; all in one round trip."""
    names = list(queries)
    columns = [sa.or_(*(sa.exists(q) for q in queries[name])).label(name) for name in names]
    row = conn.execute(sa.select(*columns)).one()
    return {name: bool(row[i]) for i, name in enumerate(names)}


def commit_without_flush(conn: Connection) -> None:
    """PostgreSQL: this transaction's commit returns before its WAL reaches disk. It survives a crash
    of our process (the server keeps it) but not of the database server; for records that are cheap
    to lose but must be fast. SQLite: nothing (WAL with synchronous=NORMAL is that already)."""
    if not is_sqlite(conn):
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def _connect(engine: Engine) -> Connection:
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(str(exc.orig)) from exc


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction; commits on success, rolls back on error."""
    conn = _connect(engine)
    try:
        if is_sqlite(engine):
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn
    finally:
        conn.close()


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only connection (a deferred transaction on SQLite)."""
    conn = _connect(engine)
    try:
        with conn.begin():
            yield conn
    finally:
        conn.close()


def migrations_dir() -> Path:
    return Path(__file__).with_name("migrations")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` by running Alembic migrations."""
    from alembic import command

    # An unreachable database is DatabaseUnavailable here too, not a raw OperationalError.
    with _connect(engine) as conn, conn.begin():
        cfg = alembic_config(conn)
        command.upgrade(cfg, revision)


def alembic_config(conn: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["connection"] = conn
    return cfg
