"""Column types as families (text, integer, float, timestamp, boolean, json, ...), whatever each warehouse
calls them, and comparing two schemas' columns by family."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnDifference:
    """One line of the preflight table report."""

    table: str
    column: str | None
    kind: str  # "missing_table" | "missing_column" | "type_mismatch"
    expected_type: str | None = None
    actual_type: str | None = None

    def describe(self) -> str:
        if self.kind == "missing_table":
            return f"table {self.table!r} is missing: create it or point the plan at the schema that has it"
        if self.kind == "missing_column":
            return (
                f"{self.table}.{self.column} is missing (expected {self.expected_type}); "
                "RudderStack adds missing columns on its first load, so this is informational"
            )
        return (
            f"{self.table}.{self.column} has type {self.actual_type} but {self.expected_type} is expected "
            f"({type_family(self.actual_type)} vs {type_family(self.expected_type)}): "
            "loads into this column would fail; migrate the column type first"
        )


_FAMILY_BY_NAME = {
    "string": "string",
    "text": "string",
    "varchar": "string",
    "character varying": "string",
    "character": "string",
    "char": "string",
    "bpchar": "string",
    "nvarchar": "string",
    "uuid": "string",
    "number": "number",
    "numeric": "number",
    "decimal": "number",
    "int": "number",
    "integer": "number",
    "int2": "number",
    "int4": "number",
    "int8": "number",
    "bigint": "number",
    "smallint": "number",
    "tinyint": "number",
    "byteint": "number",
    "float": "number",
    "float4": "number",
    "float8": "number",
    "double": "number",
    "double precision": "number",
    "real": "number",
    "bool": "bool",
    "boolean": "bool",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "timestamp with time zone": "timestamp",
    "timestamp without time zone": "timestamp",
    "timestamp_tz": "timestamp",
    "timestamp_ntz": "timestamp",
    "timestamp_ltz": "timestamp",
    "datetime": "timestamp",
    "date": "date",
    "json": "json",
    "jsonb": "json",
    "variant": "json",
    "object": "json",
    "array": "json",
    "super": "json",
}


def type_family(data_type: str | None) -> str:
    """Fold a warehouse type name to a family: string, number, bool, timestamp, date, json.

    Unknown types stay as their lower-cased name, so they only match themselves.
    """
    if data_type is None:
        return "unknown"
    name = re.sub(r"\(.*\)", "", data_type).strip().lower()
    name = re.sub(r"\s+", " ", name)
    return _FAMILY_BY_NAME.get(name, name)


def compare_columns(
    expected: Mapping[str, Mapping[str, str]],
    actual: Mapping[str, Mapping[str, str]],
) -> list[ColumnDifference]:
    """Differences between the columns RudderStack will write (``expected``) and what the warehouse has.

    Table and column names compare case-insensitively; types compare by :func:`type_family`. Columns that
    exist only in ``actual`` are fine and not reported.
    """
    actual_lower = {t.lower(): {c.lower(): ty for c, ty in cols.items()} for t, cols in actual.items()}
    differences: list[ColumnDifference] = []
    for table in sorted(expected, key=str.lower):
        have = actual_lower.get(table.lower())
        if have is None:
            differences.append(ColumnDifference(table.lower(), None, "missing_table"))
            continue
        for column in sorted(expected[table], key=str.lower):
            want_type = expected[table][column]
            got_type = have.get(column.lower())
            if got_type is None:
                differences.append(
                    ColumnDifference(table.lower(), column.lower(), "missing_column", want_type, None)
                )
            elif type_family(want_type) != type_family(got_type):
                differences.append(
                    ColumnDifference(table.lower(), column.lower(), "type_mismatch", want_type, got_type)
                )
    return differences
