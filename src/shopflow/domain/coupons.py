"""Coupon codes: generation (secrets, an alphabet without look-alikes) and CSV upload parsing."""

from __future__ import annotations

import csv
import io
import re
import secrets

# No 0/O, 1/I/L, 5/S, 2/Z, 8/B: a code read aloud or typed from a phone is typed right.
ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
POOL_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_CODES = 1_000_000


def check_pool_name(name: str) -> str:
    if not POOL_NAME.match(name):
        raise ValueError(f"pool: expected 1-100 letters, digits or _, got {name[:120]!r}")
    return name


def generate(count: int, *, prefix: str = "", length: int = 8) -> list[str]:
    """`count` distinct random codes like SAVE-7KQ4MX9A (about 40 bits of entropy at length 8)."""
    if not 1 <= count <= MAX_CODES:
        raise ValueError(f"count: expected 1 to {MAX_CODES}, got {count}")
    if prefix and not CODE.match(prefix):
        raise ValueError(f"prefix: expected letters, digits, - or _, got {prefix[:120]!r}")
    if not 4 <= length <= 32:
        raise ValueError(f"length: expected 4 to 32, got {length}")
    head = f"{prefix}-" if prefix else ""
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(head + "".join(secrets.choice(ALPHABET) for _ in range(length)))
    return sorted(codes)


def parse_csv(text: str) -> list[str]:
    """Codes from a CSV: the `code` column if there is a header naming it, else the first column.

    Blank lines are skipped and duplicates dropped; a malformed code names its line."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    column, start = (header.index("code"), 1) if "code" in header else (0, 0)
    codes: list[str] = []
    seen: set[str] = set()
    for number, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        code = row[column].strip() if column < len(row) else ""
        if not CODE.match(code):
            raise ValueError(
                f"line {number}: code: expected 1-100 letters, digits, - or _, got {code[:120]!r}"
            )
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes
