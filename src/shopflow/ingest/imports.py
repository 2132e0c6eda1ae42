"""History import: `shopflow import orders|customers|products FILE`, streamed and resumable.

The file is read record by record (ingest/import_files.py); the rows of one order (or product)
are consecutive and become one unit (ingest/import_records.py). Units are written in batches
through the same writes the webhooks use (ingest.pipeline.accept, store.catalog.upsert_products),
each batch in one transaction with the file's progress row, so a run killed at any moment
continues after the last committed batch and a re-run stores nothing twice (events dedupe on
their message ids). Every event carries the import source: it updates profiles, rollups and
segments, and starts no flow (flows.triggers); catalog writes queue no catalog triggers.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy.engine import Connection, Engine

from shopflow.domain.clock import Clock
from shopflow.domain.events import CanonicalEvent
from shopflow.ingest import identity, import_files, import_records, pipeline
from shopflow.ingest.import_files import FileError
from shopflow.ingest.import_records import Binding, Row, RowError
from shopflow.ingest.sources import generic_csv, shopify, shopify_csv
from shopflow.store import catalog, db, workspaces
from shopflow.store import imports as store

KINDS = ("orders", "customers", "products")
FORMATS = ("shopify", "generic")
BATCH_EVENTS = 5000  # events per transaction
BATCH_UNITS = 2000  # customers or products per transaction
_LAYOUTS = {"shopify": shopify_csv.LAYOUTS, "generic": generic_csv.LAYOUTS}
_ALREADY = "already imported (or received from the Shopify webhook)"


@dataclass
class Summary:
    kind: str
    format: str
    path: str
    rows: int = 0  # data rows read by this run
    imported_rows: int = 0
    records: int = 0  # orders, customers or products stored
    events: int = 0  # events stored
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> rows
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> rows
    rejected_path: str | None = None
    resumed_at_row: int = 0  # the row this run started after (0: from the start)
    already_done: bool = False

    def counts(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "imported_rows": self.imported_rows,
            "records": self.records,
            "events": self.events,
            "skipped": dict(self.skipped),
            "rejected": dict(self.rejected),
        }

    def add(self, counts: dict[str, Any]) -> None:
        """Carry the counts of the runs before a resume."""
        for key in ("rows", "imported_rows", "records", "events"):
            setattr(self, key, getattr(self, key) + int(counts.get(key, 0)))
        self.skipped.update(counts.get("skipped", {}))
        self.rejected.update(counts.get("rejected", {}))


@dataclass
class _Source:
    binding: Binding
    jsonl: bool
    data_start: int
    header: list[str]


def _open_source(path: str, kind: str, fmt: str | None) -> _Source:
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if import_files.sniff(path) == "jsonl":
        if fmt == "shopify":
            raise FileError(f"{path}: a JSONL file; Shopify exports are CSV (use --format generic)")
        layout = generic_csv.LAYOUTS[kind]
        fields = list(layout.columns)
        return _Source(Binding.bind(layout, fields, path), True, 0, fields)
    header, start = import_files.read_header(path)
    found = {name: mod.detect(header) for name, mod in (("shopify", shopify_csv), ("generic", generic_csv))}
    chosen = fmt or next((name for name, k in found.items() if k is not None), None)
    if chosen is None:
        raise FileError(
            f"{path}: header: not a Shopify {kind} export nor the generic format (docs/import.md); "
            f"first columns: {', '.join(repr(h) for h in header[:5])}"
        )
    if found[chosen] is not None and found[chosen] != kind:
        raise FileError(f"{path}: this is a {chosen} {found[chosen]} file, not {kind}")
    return _Source(Binding.bind(_LAYOUTS[chosen][kind], header, path), False, start, header)


def _records(
    src: _Source, path: str, start: int, row: int
) -> Iterator[tuple[import_files.Record, Row | None]]:
    """Each record with its row (None when the record itself could not be read)."""
    if src.jsonl:
        for record, obj in import_files.jsonl_records(path, start=start, row=row):
            if record.error:
                yield record, None
                continue
            try:
                yield record, import_records.jsonl_row(record, obj, src.binding)
            except RowError as exc:
                yield import_files.Record(record.row, record.end, record.values, str(exc)), None
        return
    for record in import_files.csv_records(path, width=len(src.header), start=start, row=row):
        if record.error:
            yield record, None
            continue
        row_ = Row(record.row, record.values, src.binding)
        if record.dirty:
            try:
                row_.check_text()
            except RowError as exc:
                yield import_files.Record(record.row, record.end, record.values, str(exc)), None
                continue
        yield record, row_


class _Rejects:
    """The rejected rows file: row number, reason, then the row as read (spreadsheet-safe)."""

    def __init__(self, path: str, header: list[str], fresh: bool) -> None:
        self.path = path
        self.header = header
        self.fresh = fresh
        self.pending: list[list[str]] = []
        self._file: IO[str] | None = None

    def add(self, row: int, reason: str, values: list[str]) -> None:
        self.pending.append([str(row), reason, *values])

    def flush(self) -> None:
        if not self.pending:
            return
        if self._file is None:
            try:
                new = self.fresh or not os.path.exists(self.path) or os.path.getsize(self.path) == 0
                self._file = open(self.path, "w" if new else "a", encoding="utf-8", newline="")  # noqa: SIM115
            except OSError as exc:
                raise FileError(
                    f"{self.path}: cannot write the rejected rows ({exc.strerror or exc})"
                ) from None
            if new:
                csv.writer(self._file).writerow(["row", "reason", *self.header])
        writer = csv.writer(self._file)
        for line in self.pending:
            writer.writerow([import_files.spreadsheet_safe(import_files.printable(v)) for v in line])
        self._file.flush()
        self.pending.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class _Batch:
    events: list[CanonicalEvent] = field(default_factory=list)
    placed: dict[str, tuple[int, int]] = field(default_factory=dict)  # placed id -> (first, stop)
    rows_of: dict[str, int] = field(default_factory=dict)  # placed id -> rows
    products: list[shopify.Product] = field(default_factory=list)
    variants: list[shopify.Variant] = field(default_factory=list)
    units: int = 0
    unit_rows: int = 0


def run(
    engine: Engine,
    *,
    workspace_id: str,
    kind: str,
    path: str,
    clock: Clock,
    fmt: str | None = None,
    restart: bool = False,
    rejected_path: str | None = None,
    exported_at: datetime | None = None,
    on_rows: Callable[[int], None] | None = None,
    batch_events: int = BATCH_EVENTS,
    batch_units: int = BATCH_UNITS,
) -> Summary:
    """Import one file; see the module docstring. FileError when the file cannot be imported at
    all; a bad row is rejected (its reason in the summary and the rejected rows file)."""
    src = _open_source(path, kind, fmt)
    fingerprint = import_files.fingerprint(path)
    summary = Summary(kind=kind, format=src.binding.layout.format, path=path)
    summary.rejected_path = rejected_path or f"{path}.rejected.csv"
    with db.transaction(engine) as conn:
        ws = workspaces.get(conn, workspace_id)
        if ws is None:
            raise LookupError(f"--workspace: no workspace {workspace_id!r}")
        progress = store.find(conn, workspace_id=workspace_id, kind=kind, fingerprint=fingerprint)
        if progress is not None and progress.status == "done" and not restart:
            summary.add(progress.counts)
            summary.already_done = True
            summary.rejected_path = None
            return summary
        resume = progress is not None and not restart
        if progress is None or restart:
            progress = store.start(
                conn,
                workspace_id=workspace_id,
                kind=kind,
                fingerprint=fingerprint,
                path=os.path.abspath(path),
                fmt=summary.format,
                counts=summary.counts(),
                now=clock.now(),
            )
    region = str(ws.settings.get("phone_region") or identity.DEFAULT_REGION)
    store_url = ws.settings.get("store_url")
    if exported_at is None:
        exported_at = datetime.fromtimestamp(os.path.getmtime(path), UTC)
    first_row = 0 if src.jsonl else 1  # a CSV header is row 1, as a spreadsheet counts
    start, row = (progress.byte_offset, progress.row_number) if resume else (src.data_start, first_row)
    if start < src.data_start:  # stopped before its first batch committed
        start, row = src.data_start, first_row
    prior = dict(progress.counts) if resume else {}
    summary.resumed_at_row = row if resume else 0
    rejects = _Rejects(summary.rejected_path, src.header, fresh=not resume)
    run_ = _Run(
        engine=engine, ws=workspace_id, kind=kind, summary=summary, rejects=rejects,
        progress_id=progress.id, prior=prior, clock=clock, on_rows=on_rows,
        batch_events=batch_events, batch_units=batch_units, region=region, store_url=store_url,
        exported_at=exported_at, path=path,
    )  # fmt: skip
    try:
        run_.go(_records(src, path, start, row), src.binding.layout.group_by)
    finally:
        rejects.close()
    summary.add(prior)
    if not summary.rejected:
        summary.rejected_path = None
    return summary


@dataclass(kw_only=True)
class _Run:
    engine: Engine
    ws: str
    kind: str
    summary: Summary
    rejects: _Rejects
    progress_id: int
    prior: dict[str, Any]
    clock: Clock
    on_rows: Callable[[int], None] | None
    batch_events: int
    batch_units: int
    region: str
    store_url: Any
    exported_at: datetime
    path: str
    batch: _Batch = field(default_factory=_Batch)
    done_at: tuple[int, int] = (0, 0)  # (byte offset, row) just past the last complete unit
    reported: int = 0
    batches: int = 0

    def go(self, records: Iterator[tuple[import_files.Record, Row | None]], group_by: str | None) -> None:
        group: list[tuple[import_files.Record, Row]] = []
        key = ""
        for record, row in records:
            if row is None:
                if group:
                    self._unit(group)
                    group, key = [], ""
                self.summary.rows += 1
                self._reject([(record, record.values)], str(record.error), str(record.error))
                self.done_at = (record.end, record.row)
                self._maybe_flush()
                continue
            this = row.get(group_by) if group_by else ""
            if group and group_by and this and this == key:
                group.append((record, row))
                continue
            if group:
                self._unit(group)
                self._maybe_flush()
            group, key = [(record, row)], this
            if not group_by:
                self._unit(group)
                group = []
                self._maybe_flush()
        if group:
            self._unit(group)
        self._flush(final=True)

    def _reject(self, rows: list[tuple[import_files.Record, list[str]]], reason: str, text: str) -> None:
        key = reason.split(": ", 1)[1] if reason.startswith("row ") and ": " in reason else reason
        for record, values in rows:
            self.summary.rejected[key] += 1
            self.rejects.add(record.row, text, values)

    def _unit(self, group: list[tuple[import_files.Record, Row]]) -> None:
        rows = [r for _, r in group]
        self.summary.rows += len(rows)
        self.done_at = (group[-1][0].end, group[-1][0].row)
        try:
            if self.kind == "orders":
                made = import_records.order(rows, region=self.region)
                if made.skipped:
                    self.summary.skipped[made.skipped] += len(rows)
                    return
                first = len(self.batch.events)
                self.batch.events.extend(made.events)
                self.batch.placed[made.placed_id] = (first, len(self.batch.events))
                self.batch.rows_of[made.placed_id] = len(rows)
            elif self.kind == "customers":
                event = import_records.customer(
                    rows[0], region=self.region, exported_at=self.exported_at, path=self.path
                )
                if event is None:
                    self.summary.skipped["no customer id, email or phone"] += 1
                    return
                self.batch.events.append(event)
            else:
                item, variants = import_records.product(rows, store_url=self.store_url)
                self.batch.products.append(item)
                self.batch.variants.extend(variants)
        except RowError as exc:
            text = str(exc)
            if len(rows) > 1:
                text = f"{text} (the whole {self.kind[:-1]} of rows {rows[0].number}-{rows[-1].number} is rejected)"
            self._reject([(rec, r.values) for rec, r in group], f"row {exc.row}: {exc.reason}", text)
            return
        self.batch.units += 1
        self.batch.unit_rows += len(rows)

    def _maybe_flush(self) -> None:
        if len(self.batch.events) >= self.batch_events or self.batch.units >= self.batch_units:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        batch, self.batch = self.batch, _Batch()
        now = self.clock.now()
        self.batches += 1
        if self.batches & (self.batches - 1) == 0:  # batches 1, 2, 4, 8, ...: the tables doubled
            with db.transaction(self.engine) as conn:
                store.refresh_statistics(conn)
        with db.transaction(self.engine) as conn:
            stored = self._write(conn, batch, now)
            totals = self.summary.counts()
            merged = Summary(self.kind, self.summary.format, self.path)
            merged.add(totals)
            merged.add(self.prior)
            store.advance(
                conn,
                progress_id=self.progress_id,
                byte_offset=self.done_at[0],
                row_number=self.done_at[1],
                counts={**merged.counts(), "events": merged.events + stored},
                status="done" if final else "running",
                now=now,
            )
        self.summary.events += stored
        self.rejects.flush()
        if self.on_rows is not None:
            self.on_rows(self.summary.rows - self.reported)
            self.reported = self.summary.rows

    def _write(self, conn: Connection, batch: _Batch, now: datetime) -> int:
        if batch.products or batch.variants:
            # No catalog change is queued: an import starts no back-in-stock or price-drop flow.
            catalog.upsert_products(
                conn, workspace_id=self.ws, products=batch.products, variants=batch.variants, now=now
            )
        events = batch.events
        if batch.placed:
            seen = store.existing_orders(conn, workspace_id=self.ws, message_ids=sorted(batch.placed))
            if seen:
                drop = {i for mid in seen for i in range(*batch.placed[mid])}
                events = [e for i, e in enumerate(events) if i not in drop]
                for mid in seen:
                    self.summary.skipped[_ALREADY] += batch.rows_of[mid]
                    batch.unit_rows -= batch.rows_of[mid]
                    batch.units -= 1
        stored = 0
        if events:
            result = pipeline.accept(conn, workspace_id=self.ws, events=events, now=now)
            stored = len(result.event_ids)
        self.summary.imported_rows += batch.unit_rows
        self.summary.records += batch.units
        return stored
