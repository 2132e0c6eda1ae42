"""Reading import files as a stream of records, each with the byte offset just past it.

CSV (RFC 4180, with quoted fields spanning lines) and JSONL. Nothing is loaded whole: a line is
read with a cap (MAX_LINE), a field with a cap (MAX_FIELD), so a hostile file costs bounded
memory. A record that cannot be read (an overlong line, a bad quote, a wrong number of columns,
bytes that are not UTF-8, a NUL byte, JSON that is not an object) comes back with `error` naming
the row and, where it can, the column; the next record is read normally.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

MAX_LINE = 1 << 20  # bytes of one physical line
MAX_FIELD = 1 << 18  # characters of one CSV field (a product description may be long)
FINGERPRINT_BYTES = 1 << 20


class FileError(ValueError):
    """The file cannot be imported at all (unreadable, empty, not the format asked for)."""


class _Overlong(Exception):
    pass


@dataclass(frozen=True)
class Record:
    """One record: its row number (the header is row 1, as a spreadsheet shows it)."""

    row: int
    end: int  # byte offset just past this record
    values: list[str]
    error: str | None = None
    dirty: bool = False  # a NUL or a byte that is not UTF-8 somewhere: check each field


def fingerprint(path: str) -> str:
    """The file's identity for resuming: its size and a hash of its first and last MiB."""
    try:
        size = os.path.getsize(path)
        digest = hashlib.sha256(str(size).encode())
        with open(path, "rb") as f:
            digest.update(f.read(FINGERPRINT_BYTES))
            if size > FINGERPRINT_BYTES:
                f.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
                digest.update(f.read(FINGERPRINT_BYTES))
    except OSError as exc:
        raise FileError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return digest.hexdigest()


def bad_text(value: str, column: str) -> str | None:
    """Why a decoded field cannot be stored (NUL, bytes that were not UTF-8), or None."""
    if "\x00" in value:
        return f"{column}: contains a NUL byte"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{column}: not valid UTF-8 text"
    return None


class _Lines:
    """Physical lines as text, counting bytes; the first line's UTF-8 BOM is dropped."""

    def __init__(self, f: IO[bytes], start: int) -> None:
        self.f = f
        self.pos = start
        self.dirty = False  # the current record had a NUL or a byte that was not UTF-8

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self.f.readline(MAX_LINE + 1)
        if not raw:
            raise StopIteration
        self.pos += len(raw)
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line, a chunk at a time
                raw = self.f.readline(MAX_LINE)
                self.pos += len(raw)
            raise _Overlong
        if self.pos == len(raw) and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.dirty = True
            return raw.decode("utf-8", "surrogateescape")
        if "\x00" in text:
            self.dirty = True
        return text


def open_binary(path: str) -> IO[bytes]:
    try:
        if os.path.isdir(path):
            raise FileError(f"{path}: is a directory, expected a CSV or JSONL file")
        return open(path, "rb")
    except OSError as exc:
        raise FileError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def sniff(path: str) -> str:
    """ "jsonl" when the first non-blank byte opens a JSON object, else "csv"."""
    with open_binary(path) as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise FileError(f"{path}: the file is empty, expected a header row")
    return "jsonl" if head.startswith(b"{") else "csv"


def read_header(path: str) -> tuple[list[str], int]:
    """The CSV header's column names and the byte offset just past it."""
    with open_binary(path) as f:
        lines = _Lines(f, 0)
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise FileError(f"{path}: the file is empty, expected a header row") from None
        except (csv.Error, _Overlong) as exc:
            raise FileError(
                f"{path}: row 1 (the header) is not a CSV row: {exc or 'line too long'}"
            ) from None
        if lines.dirty:
            raise FileError(f"{path}: row 1 (the header) is not UTF-8 text or contains a NUL byte")
        names = [h.strip() for h in header]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise FileError(f"{path}: header: column {twice[0]!r} appears twice")
        return names, lines.pos


def csv_records(path: str, *, width: int, start: int, row: int) -> Iterator[Record]:
    """The data records from byte `start` (just past the header or a committed record); `row` is
    the row number of the record before it."""
    csv.field_size_limit(MAX_FIELD)
    with open_binary(path) as f:
        f.seek(start)
        lines = _Lines(f, start)
        reader = csv.reader(lines, strict=True)
        while True:
            lines.dirty = False
            row += 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except _Overlong:
                yield Record(row, lines.pos, [], f"row {row}: a line longer than {MAX_LINE} bytes")
                continue
            except csv.Error as exc:
                yield Record(row, lines.pos, [], f"row {row}: not a CSV row ({exc})")
                continue
            if not values or values == [""]:
                continue  # a blank line: no record, but a row of the file as a spreadsheet counts
            if len(values) != width:
                yield Record(
                    row,
                    lines.pos,
                    values,
                    f"row {row}: expected {width} columns (as in the header), got {len(values)}",
                )
                continue
            yield Record(row, lines.pos, values, dirty=lines.dirty)


def jsonl_records(path: str, *, start: int, row: int) -> Iterator[tuple[Record, dict[str, Any]]]:
    """Each JSON object line, with its record (row numbers count lines from 1)."""
    with open_binary(path) as f:
        f.seek(start)
        lines = _Lines(f, start)
        while True:
            lines.dirty = False
            row += 1
            try:
                text = next(lines)
            except StopIteration:
                return
            except _Overlong:
                yield Record(row, lines.pos, [], f"row {row}: a line longer than {MAX_LINE} bytes"), {}
                continue
            if not text.strip():
                continue
            if lines.dirty:
                problem = "contains a NUL byte" if "\x00" in text else "is not valid UTF-8 text"
                yield Record(row, lines.pos, [text[:200]], f"row {row}: the line {problem}"), {}
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                yield Record(row, lines.pos, [text[:200]], f"row {row}: not JSON ({exc})"), {}
                continue
            if not isinstance(obj, dict):
                yield Record(row, lines.pos, [text[:200]], f"row {row}: expected a JSON object"), {}
                continue
            yield Record(row, lines.pos, [text]), obj


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection): prefixed with '."""
    return "'" + value if value.startswith(_FORMULA) else value


def printable(value: str) -> str:
    """Text safe to write back out: NUL and undecodable bytes shown as escapes."""
    return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
