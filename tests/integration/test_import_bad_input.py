"""Malformed, oversized and hostile import files (SQLite and PostgreSQL): each bad row is rejected
with its row number and the column, the good rows around it are imported, a file that cannot be
imported at all exits with code 2, and a run stopped half-way continues where it stopped."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.domain.clock import SimulatedClock
from shopflow.ingest import import_files
from shopflow.store import db

from .import_support import FIXTURES, events, run, workspace

HEADER = next(csv.reader(io.StringIO((FIXTURES / "shopify_orders.csv").read_text(encoding="utf-8-sig"))))


def order_line(name: str, **values: str) -> list[str]:
    row = dict.fromkeys(HEADER, "")
    row.update({"Name": name, "Email": "ana@example.org", "Created at": "2024-03-01 14:05:00 +0100",
                "Total": "10.00", "Currency": "USD", "Lineitem quantity": "1", "Lineitem name": "Mug",
                "Lineitem price": "10.00", "Id": name.strip("#")})  # fmt: skip
    row.update(values)
    return [row[h] for h in HEADER]


def write(path: Path, rows: Sequence[list[str] | bytes]) -> Path:
    with open(path, "wb") as f:
        f.write(",".join(HEADER).encode() + b"\n")
        for row in rows:
            if isinstance(row, bytes):
                f.write(row + b"\n")
                continue
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerow(row)
            f.write(out.getvalue().encode("utf-8"))
    return path


def rejected(path: Path) -> list[tuple[str, str]]:
    with open(f"{path}.rejected.csv", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        assert next(reader)[:3] == ["row", "reason", "Name"]
        return [(r[0], r[1]) for r in reader]


def placed(engine: Engine, ws: str) -> list[str]:
    return [m for n, m, _, _ in events(engine, ws) if n == "Placed Order"]


def test_each_bad_row_is_rejected_naming_its_row_and_column(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = workspace(engine)
    nul = ",".join(order_line("#2006", **{"Lineitem name": "Mu\x00g"})).encode()
    latin1 = ",".join(order_line("#2007", **{"Lineitem name": "Caf\xe9"})).encode("latin-1")
    path = write(tmp_path / "orders.csv", [
        order_line("#2001"), order_line("#2001", **{"Lineitem name": "Spoon", "Lineitem price": "0.00"}),
        order_line("#2002", **{"Created at": "yesterday", "Lineitem name": "=1+2"}),
        order_line("#2003", **{"Lineitem quantity": "two"}),
        order_line("#2004", Email="not-an-email"),
        b"#2005,x@example.org,paid",
        nul,
        latin1,
        order_line("#2008", Notes="x" * (import_files.MAX_FIELD + 10)),
        order_line("#2009", **{"Lineitem name": '=HYPERLINK("http://evil.example","click")'}),
        b"#2010," + b"y" * (import_files.MAX_LINE + 5),
        order_line("#2011", Total="12,50"),
        order_line("#2012", Currency="US Dollars"),
        order_line("#2013", **{"Created at": "2024-02-30 10:00:00 +0000"}),
        order_line("#2014"),
    ])  # fmt: skip
    summary = run(engine, clock, ws, "orders", path)
    assert rejected(path) == [
        ("4", "row 4: Created at: expected a date and time like 2024-03-01 14:05:00 +0100 or ISO 8601, "
              "got 'yesterday'"),
        ("5", "row 5: Lineitem quantity: expected a whole number, got 'two'"),
        ("6", "row 6: Email: expected an email address, got 'not-an-email'"),
        ("7", f"row 7: expected {len(HEADER)} columns (as in the header), got 3"),
        ("8", "row 8: Lineitem name: contains a NUL byte"),
        ("9", "row 9: Lineitem name: not valid UTF-8 text"),
        ("10", f"row 10: not a CSV row (field larger than field limit ({import_files.MAX_FIELD}))"),
        ("12", f"row 12: a line longer than {import_files.MAX_LINE} bytes"),
        ("13", "row 13: Total: expected an amount like 12.50, got '12,50'"),
        ("14", "row 14: Currency: expected a 3-letter ISO 4217 code, got 'US Dollars'"),
        ("15", "row 15: Created at: expected a date and time like 2024-03-01 14:05:00 +0100 or ISO 8601, "
               "got '2024-02-30 10:00:00 +0000'"),
    ]  # fmt: skip
    assert placed(engine, ws) == [
        "shopify:order:2001:placed",
        "shopify:order:2009:placed",
        "shopify:order:2014:placed",
    ]
    assert (summary.rows, summary.imported_rows, summary.records, sum(summary.rejected.values())) == (
        15,
        4,
        3,
        11,
    )
    assert summary.rejected["Lineitem quantity: expected a whole number"] == 1
    # A formula is data: stored as written, and written out so that a spreadsheet does not run it.
    assert '=HYPERLINK("http://evil.example","click")' in str(
        events_props(engine, ws, "shopify:order:2009:placed")
    )
    with open(f"{path}.rejected.csv", encoding="utf-8", newline="") as f:
        row4 = list(csv.reader(f))[1]
    assert row4[2 + HEADER.index("Lineitem name")] == "'=1+2"
    # Nothing twice, and the rejected rows again (the file is new: a fixed row could be retried).
    again = run(engine, clock, ws, "orders", path, restart=True)
    assert again.events == 0 and len(rejected(path)) == 11


def events_props(engine: Engine, ws: str, message_id: str) -> dict[str, object]:
    import sqlalchemy as sa

    from shopflow.store import tables

    e = tables.events
    with db.reading(engine) as conn:
        return dict(conn.execute(sa.select(e.c.properties).where(e.c.message_id == message_id)).scalar_one())


def test_a_row_of_an_order_rejects_the_whole_order(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = workspace(engine)
    path = write(tmp_path / "orders.csv", [
        order_line("#3001"), order_line("#3001", **{"Lineitem price": "free"}), order_line("#3002"),
    ])  # fmt: skip
    run(engine, clock, ws, "orders", path)
    assert rejected(path) == [
        ("2", "row 3: Lineitem price: expected an amount like 12.50, got 'free' (the whole order of rows 2-3 is rejected)"),
        ("3", "row 3: Lineitem price: expected an amount like 12.50, got 'free' (the whole order of rows 2-3 is rejected)"),
    ]  # fmt: skip
    assert placed(engine, ws) == ["shopify:order:3002:placed"]


def test_jsonl_rows_with_unknown_keys_or_bad_json_are_rejected(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = workspace(engine)
    path = tmp_path / "orders.jsonl"
    path.write_bytes(
        b'{"order_id": "J1", "email": "a@example.org", "created_at": "2024-01-01", "total": 5}\n'
        b'{"order_id": "J2", "emial": "a@example.org", "created_at": "2024-01-01", "total": 5}\n'
        b'{"order_id": "J3", "email": "a@example.org", "created_at": "2024-01-01", "total": 5\n'
        b'["not", "an", "object"]\n'
        b'{"order_id": "J4", "email": "a@example.org", "created_at": "2024-01-01", "total": {"x": 1}}\n'
        b'{"order_id": "J5", "email": "a@example.org", "created_at": "2024-01-01", "total": 7}\n'
    )
    summary = run(engine, clock, ws, "orders", path)
    reasons = [r for _, r in rejected_any(path)]
    assert reasons[0].startswith("row 2: emial: unknown key (expected some of ")
    assert reasons[1].startswith("row 3: not JSON (")
    assert reasons[2:] == [
        "row 4: expected a JSON object",
        "row 5: total: expected a string or a number, got an object or array",
    ]
    assert placed(engine, ws) == ["import:generic:order:J1:placed", "import:generic:order:J5:placed"]
    assert summary.records == 2


def rejected_any(path: Path) -> list[tuple[str, str]]:
    with open(f"{path}.rejected.csv", encoding="utf-8", newline="") as f:
        return [(r[0], r[1]) for r in list(csv.reader(f))[1:]]


def test_a_stopped_run_continues_where_it_stopped(
    engine: Engine, clock: SimulatedClock, tmp_path: Path
) -> None:
    ws = workspace(engine)
    rows = [order_line(f"#{4000 + n}") for n in range(12)]
    rows.insert(5, order_line("#4004", **{"Lineitem name": "Second line"}))  # #4004 has two rows
    path = write(tmp_path / "orders.csv", rows)
    calls = []

    def killed_after_two_batches(n: int) -> None:
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(engine, clock, ws, "orders", path, on_rows=killed_after_two_batches, batch_events=4)
    assert placed(engine, ws) == [f"shopify:order:{4000 + n}:placed" for n in range(4)]
    resumed = run(engine, clock, ws, "orders", path, batch_events=4)
    assert resumed.resumed_at_row == 5  # the header, then #4000 to #4003
    assert (resumed.rows, resumed.imported_rows, resumed.records) == (13, 13, 12)
    assert placed(engine, ws) == [f"shopify:order:{4000 + n}:placed" for n in range(12)]
    assert len(events(engine, ws)) == 25  # 12 orders, 13 line items: none twice
    assert run(engine, clock, ws, "orders", path).already_done


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the file (No such file or directory)"),
        (b"", "the file is empty, expected a header row"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "row 1 (the header) is not UTF-8 text or contains a NUL byte"),
        (b"foo,bar\n1,2\n", "header: not a Shopify orders export nor the generic format (docs/import.md); "
                            "first columns: 'foo', 'bar'"),
        (b"order_id,created_at,total,colour\n1,2024-01-01,5,red\n",
         "header: unknown column 'colour' for orders (expected some of "),
        (b"Name,Email,Created at,Lineitem name\n", "header: expected the column 'Total' of a shopify orders file"),
        (b'"Name,Email\n', "row 1 (the header) is not a CSV row: unexpected end of data"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_imported_exits_2(  # noqa: PLR0917 (pytest fixtures)
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    content: bytes | None,
    message: str,
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    engine = db.create_engine(database_url)
    testing.truncate_all(engine)
    ws = workspace(engine)
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["import", "orders", str(path), "--workspace", ws, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"shopflow: {path}: {message}"), err
    assert events(engine, ws) == []
    engine.dispose()


def test_a_directory_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, database_url: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    assert cli.main(["import", "orders", str(tmp_path), "--workspace", "ws_x", "--quiet"]) == 2
    assert capsys.readouterr().err == f"shopflow: {tmp_path}: is a directory, expected a CSV or JSONL file\n"
