"""SQL for the value semantics of domain/segments/values.py, on SQLite and on PostgreSQL.

Every expression here is NULL or agrees with its Python twin; compile.py wraps each condition in
COALESCE(..., false). PostgreSQL raises on a bad cast and may evaluate AND operands in any order,
so every cast sits in a CASE branch whose condition guards it (CASE evaluates in order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from shopflow.domain.segments import bucket as buckets
from shopflow.domain.segments import values

Expr = sa.ColumnElement[Any]
_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
# json_type (SQLite) / jsonb_typeof (PostgreSQL) names of each JSON kind.
_SQLITE_KINDS = {
    "string": ("text",),
    "number": ("integer", "real"),
    "boolean": ("true", "false"),
    "array": ("array",),
}
_PG_KINDS = {"string": ("string",), "number": ("number",), "boolean": ("boolean",), "array": ("array",)}


def _int(value: int) -> Expr:
    return sa.literal(value, sa.BigInteger)


@dataclass(frozen=True)
class Dialect:
    """Builds the expressions of one database."""

    name: str  # sqlite | postgresql

    @property
    def pg(self) -> bool:
        return self.name == "postgresql"

    # --- text -------------------------------------------------------------------------------

    def lower(self, text: Expr) -> Expr:
        """ASCII-only lower case (SQLite's lower() is ASCII-only; PostgreSQL's follows the locale)."""
        if self.pg:
            return sa.func.translate(text, _UPPER, _LOWER)
        return sa.func.lower(text)

    def has_substring(self, text: Expr, needle: str) -> Expr:
        lowered = values.ascii_lower(needle)
        if self.pg:
            return sa.func.strpos(self.lower(text), lowered) > 0
        return sa.func.instr(self.lower(text), lowered) > 0

    def has_prefix(self, text: Expr, prefix: str) -> Expr:
        lowered = values.ascii_lower(prefix)
        return sa.func.substr(self.lower(text), 1, len(lowered)) == lowered

    def is_numeric_text(self, text: Expr) -> Expr:
        """`-?[0-9]+(\\.[0-9]+)?` (SQLite has no REGEXP: GLOB patterns say the same)."""
        if self.pg:
            return text.op("~", is_comparison=True)(sa.literal(r"^-?[0-9]+(\.[0-9]+)?$"))
        unsigned = sa.case((sa.func.substr(text, 1, 1) == "-", sa.func.substr(text, 2)), else_=text)
        glob = unsigned.op("GLOB", is_comparison=True)
        return sa.and_(
            unsigned != "",
            sa.not_(glob("*[^0-9.]*")),
            sa.not_(glob("*.*.*")),
            sa.not_(glob(".*")),
            sa.not_(glob("*.")),
        )

    def as_double(self, text: Expr) -> Expr:
        return sa.cast(text, sa.Float().with_variant(postgresql.DOUBLE_PRECISION(), "postgresql"))

    # --- dates ------------------------------------------------------------------------------

    def day_of_text(self, text: Expr) -> Expr:
        """The day number of the valid date a string starts with, else NULL."""
        if self.pg:
            prefix = text.op("~", is_comparison=True)(sa.literal("^[0-9]{4}-[0-9]{2}-[0-9]{2}"))
        else:
            prefix = sa.func.substr(text, 1, 10).op("GLOB", is_comparison=True)(
                sa.literal("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]")
            )
        year, month, day = (
            sa.cast(sa.func.substr(text, start, n), sa.Integer) for start, n in ((1, 4), (6, 2), (9, 2))
        )
        leap = sa.or_(sa.and_(year % 4 == 0, year % 100 != 0), year % 400 == 0)
        days_in_month = sa.case(
            (month.in_([1, 3, 5, 7, 8, 10, 12]), 31), (month.in_([4, 6, 9, 11]), 30), (leap, 29), else_=28
        )
        valid = sa.and_(year >= 1, month >= 1, month <= 12, day >= 1, day <= days_in_month)
        head = sa.func.substr(text, 1, 10)
        if self.pg:
            number: Expr = sa.cast(head, sa.Date) - sa.cast(sa.literal("1970-01-01"), sa.Date)
        else:
            number = sa.cast(sa.func.julianday(head) - 2440587.5, sa.Integer)
        return sa.case((sa.not_(prefix), sa.null()), (valid, number), else_=sa.null())

    def month_of_text(self, text: Expr) -> Expr:
        """The month of a string that starts with a valid date, else NULL."""
        return sa.case((self.day_of_text(text).is_not(None), sa.cast(sa.func.substr(text, 6, 2), sa.Integer)))

    def month_of_time(self, column: Expr) -> Expr:
        if self.pg:
            return sa.cast(sa.extract("month", sa.func.timezone("UTC", column)), sa.Integer)
        return sa.cast(sa.func.strftime("%m", column), sa.Integer)

    # --- the stable bucket ------------------------------------------------------------------

    def bucket(self, profile_id: Expr, workspace_id: str, salt: str) -> Expr:
        """domain.segments.bucket.bucket, step for step."""
        offset, *rounds = buckets.constants(workspace_id, salt)
        prime = _int(buckets.PRIME)
        x: Expr = (sa.cast(profile_id, sa.BigInteger) % prime + _int(offset)) % prime
        for c in rounds:
            x = (x * x + _int(c)) % prime
        return x % _int(buckets.BUCKETS)

    # --- JSON -------------------------------------------------------------------------------

    def path(self, document: Expr, keys: Sequence[str]) -> JsonValue:
        """The value at `keys` inside a JSON column."""
        if self.pg:
            path = sa.bindparam(None, list(keys), type_=postgresql.ARRAY(sa.Text))
            node = document.op("#>", return_type=postgresql.JSONB)(path)
            return JsonValue(self, sa.func.jsonb_typeof(node), document.op("#>>", return_type=sa.Text)(path))
        quoted = "$" + "".join(f'."{k}"' for k in keys)
        return JsonValue(self, sa.func.json_type(document, quoted), sa.func.json_extract(document, quoted))

    def elements(self, document: Expr, keys: Sequence[str]) -> tuple[Any, JsonValue]:
        """A table of the elements of the array at `keys`, and an element as a JsonValue."""
        if self.pg:
            path = sa.bindparam(None, list(keys), type_=postgresql.ARRAY(sa.Text))
            table = (
                sa.func.jsonb_array_elements(document.op("#>", return_type=postgresql.JSONB)(path))
                .table_valued("value")
                .alias("e")
            )
            element = table.c.value
            whole = sa.bindparam(None, [], type_=postgresql.ARRAY(sa.Text))
            return table, JsonValue(
                self, sa.func.jsonb_typeof(element), element.op("#>>", return_type=sa.Text)(whole)
            )
        quoted = "$" + "".join(f'."{k}"' for k in keys)
        table = sa.func.json_each(document, quoted).table_valued("type", "value").alias("e")
        return table, JsonValue(self, table.c.type, table.c.value)


@dataclass(frozen=True)
class JsonValue:
    """A JSON value in SQL: its kind (json_type / jsonb_typeof) and its text (or number)."""

    dialect: Dialect
    kind: Expr
    text: Expr

    def is_(self, kind: str) -> Expr:
        names = (_PG_KINDS if self.dialect.pg else _SQLITE_KINDS)[kind]
        return self.kind == names[0] if len(names) == 1 else self.kind.in_(names)

    def number(self) -> Expr:
        """A JSON number or numeric string as a double, else NULL."""
        d = self.dialect
        return sa.case(
            (self.is_("number"), d.as_double(self.text)),
            (sa.and_(self.is_("string"), d.is_numeric_text(self.text)), d.as_double(self.text)),
            else_=sa.null(),
        )

    def day(self) -> Expr:
        return sa.case((self.is_("string"), self.dialect.day_of_text(self.text)), else_=sa.null())

    def month(self) -> Expr:
        return sa.case((self.is_("string"), self.dialect.month_of_text(self.text)), else_=sa.null())

    def equals(self, expected: values.Scalar) -> Expr:
        """values.equals in SQL."""
        if isinstance(expected, bool):
            if self.dialect.pg:
                return sa.and_(self.is_("boolean"), self.text == ("true" if expected else "false"))
            return self.kind == ("true" if expected else "false")
        if isinstance(expected, str):
            return sa.and_(self.is_("string"), self.text == expected)
        return self.number() == float(expected)
