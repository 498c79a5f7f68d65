"""The shape-continuity check's warehouse reads (docs/shape-continuity.md): does the warehouse keep its shape
across the cutover from Segment to RudderStack?

- :func:`schema_snapshot`: every column of a schema (type, maximum length, position), one catalog query.
- :func:`column_fill`: per column, how many rows of a window carry a value, split by the loader that wrote the
  row (``context_destination_id``: RudderStack's rows carry it, Segment's do not) and by client library
  (``context_library_name``); one statement per table, every column in it.
- :func:`value_sample`: the latest rows of a window, the named columns only (how RudderStack would read them).
- :func:`discards_since`: what RudderStack set NULL and parked in ``rudder_discards``, per table, column and
  reason, with a few examples; one statement.
- :func:`values_by_id`: the named columns of given message ids (a shadow schema's rows against Segment's).

Names: callers use Segment's lower-case names; tables and columns are resolved through ``information_schema``
(:meth:`WarehouseDialect.load_tables`), so Snowflake's upper-case names work alike, and results are keyed by the
lower-case names. Windows are ``received_at`` in ``[start, end)`` (the event's receive time, UTC): only the window
is read, so with an index on ``received_at`` the cost follows the window, not the table
(``scripts/bench_shape_queries.py`` measures it). A schema or table that does not exist answers empty; a table
without ``received_at`` cannot be read by window and raises :class:`ValueError` naming it (as does a table
without ``id`` for :func:`values_by_id`, and a ``rudder_discards`` without its key columns). Every value is a
bound parameter, every identifier quoted by the dialect.

The results are small frozen dataclasses with ``to_dict()`` / ``from_dict()`` (JSON-friendly, for XCom).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.session import Session, Table, require_aware
from segment_rudderstack.dialects.sql import SqlText, compose, join_sql
from segment_rudderstack.instants import as_utc

log = logging.getLogger(__name__)

#: the loaders a row of :func:`column_fill` is attributed to
RUDDERSTACK, SEGMENT = "rudderstack", "segment"
#: RudderStack's table of values it set NULL (rudder-server warehouse/utils DiscardsSchema)
DISCARDS_TABLE = "rudder_discards"
#: message ids bound per statement by :func:`values_by_id`
ID_CHUNK = 1000


def _instant(value: Any) -> datetime | None:
    return as_utc(value).astimezone(UTC) if isinstance(value, datetime) else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _placeholders(n: int) -> SqlText:
    return join_sql(", ", [SqlText("%s")] * n)


# ------------------------------------------------------------------------------------------ snapshot
@dataclass(frozen=True)
class ColumnInfo:
    """One column as the warehouse stores it."""

    name: str  # as stored (Snowflake: upper case)
    data_type: str  # information_schema.columns.data_type
    character_maximum_length: int | None  # None when the type has none (PostgreSQL text, numbers, ...)
    ordinal_position: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data_type": self.data_type,
            "character_maximum_length": self.character_maximum_length,
            "ordinal_position": self.ordinal_position,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnInfo:
        length = data.get("character_maximum_length")
        return cls(
            str(data["name"]),
            str(data["data_type"]),
            int(length) if length is not None else None,
            int(data["ordinal_position"]),
        )


@dataclass(frozen=True)
class SchemaSnapshot:
    """The base tables of a schema and their columns, keyed by lower-case names (``tables[table][column]``).

    ``exists`` is false (and ``tables`` empty) when the schema does not exist; ``actual`` is the schema's stored
    name, ``table_names`` each table's stored name.
    """

    schema: str
    exists: bool
    actual: str | None = None
    tables: dict[str, dict[str, ColumnInfo]] = field(default_factory=dict)
    table_names: dict[str, str] = field(default_factory=dict)

    def types(self) -> dict[str, dict[str, str]]:
        """``{table: {column: data_type}}`` (lower-case names)."""
        return {t: {c: info.data_type for c, info in cols.items()} for t, cols in self.tables.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "exists": self.exists,
            "actual": self.actual,
            "tables": {
                t: {"name": self.table_names.get(t, t), "columns": {c: i.to_dict() for c, i in cols.items()}}
                for t, cols in self.tables.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchemaSnapshot:
        tables = data.get("tables") or {}
        return cls(
            schema=str(data["schema"]),
            exists=bool(data["exists"]),
            actual=data.get("actual"),
            tables={
                t: {c: ColumnInfo.from_dict(i) for c, i in (v.get("columns") or {}).items()}
                for t, v in tables.items()
            },
            table_names={t: str(v.get("name") or t) for t, v in tables.items()},
        )


def schema_snapshot(
    dialect: WarehouseDialect, schema: str, tables: Iterable[str] | None = None
) -> SchemaSnapshot:
    """Every column of the base tables of ``schema`` (of ``tables`` only, by Segment's lower-case names, when
    given), in one query on ``information_schema.columns``. A missing schema gives ``exists=False``."""
    wanted = sorted({t.lower() for t in tables}) if tables is not None else None
    with dialect.session() as s:
        actual = dialect.resolve_schema(s, schema)
        if actual is None:
            return SchemaSnapshot(schema, exists=False)
        if wanted == []:
            return SchemaSnapshot(schema, exists=True, actual=actual)
        where, params = SqlText(""), [actual]
        if wanted:
            where = compose(" AND LOWER(c.table_name) IN ({p})", p=_placeholders(len(wanted)))
            params += wanted
        rows = s.fetchall(
            compose(
                "SELECT c.table_name, c.column_name, c.data_type, c.character_maximum_length, c.ordinal_position "
                "FROM information_schema.columns AS c JOIN information_schema.tables AS t "
                "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                "WHERE c.table_schema = %s AND t.table_type = 'BASE TABLE'{w} "
                "ORDER BY c.table_name, c.ordinal_position",
                w=where,
            ),
            params,
        )
    return _snapshot(dialect, schema, actual, rows)


def _snapshot(dialect: WarehouseDialect, schema: str, actual: str, rows: list[tuple]) -> SchemaSnapshot:
    """Fold the catalog rows to lower-case keys; of two names differing only by case, the one an unquoted
    name resolves to wins (as :meth:`WarehouseDialect.load_tables` does)."""
    table_names: dict[str, str] = {}
    for table_name, *_ in rows:
        key = table_name.lower()
        if key not in table_names or table_name == dialect.fold_identifier(key):
            table_names[key] = table_name
    tables: dict[str, dict[str, ColumnInfo]] = {key: {} for key in sorted(table_names)}
    for table_name, column_name, data_type, length, position in rows:
        key = table_name.lower()
        if table_names[key] != table_name:
            continue
        columns, column_key = tables[key], column_name.lower()
        if column_key not in columns or column_name == dialect.fold_identifier(column_key):
            columns[column_key] = ColumnInfo(
                column_name, str(data_type), int(length) if length is not None else None, int(position)
            )
    return SchemaSnapshot(schema, exists=True, actual=actual, tables=tables, table_names=table_names)


# ----------------------------------------------------------------------------------------------- fill
@dataclass(frozen=True)
class FillRow:
    """Rows of ``table`` in a window written by one loader (``"rudderstack"`` / ``"segment"``) from one client
    library (``None``: the rows have none), and per column how many of them carry a value (``filled``, by
    lower-case name). ``absent`` names the requested columns the table does not have (not counted)."""

    table: str
    loader: str
    library: str | None
    rows: int
    filled: dict[str, int] = field(default_factory=dict)
    absent: tuple[str, ...] = ()

    def share(self, column: str) -> float | None:
        """The share of rows with a value in ``column`` (``None`` when absent or no rows)."""
        if not self.rows or column not in self.filled:
            return None
        return self.filled[column] / self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "loader": self.loader,
            "library": self.library,
            "rows": self.rows,
            "filled": dict(self.filled),
            "absent": list(self.absent),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FillRow:
        return cls(
            table=str(data["table"]),
            loader=str(data["loader"]),
            library=data.get("library"),
            rows=int(data["rows"]),
            filled={str(c): int(n) for c, n in (data.get("filled") or {}).items()},
            absent=tuple(data.get("absent") or ()),
        )


def _received(dialect: WarehouseDialect, table: Table) -> SqlText:
    column = table.column("received_at")
    if column is None:
        raise ValueError(
            f"table {table.name!r} has no received_at column, so it cannot be read by window; "
            "pass only event tables (Segment and RudderStack write received_at in each)"
        )
    return dialect.quote_identifier(column)


def _requested(columns: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(c.lower() for c in columns))


def loader_of(destination: Any, destination_id: str | None) -> str:
    """``"rudderstack"`` for a row whose ``context_destination_id`` is ``destination_id`` (with ``destination_id``
    None: is set at all), else ``"segment"`` (Segment's rows carry none)."""
    if destination is None:
        return SEGMENT
    return RUDDERSTACK if destination_id is None or str(destination) == destination_id else SEGMENT


def fill_statement(
    dialect: WarehouseDialect,
    schema: str,
    table: Table,
    columns: Sequence[str],
    *,
    start: datetime,
    end: datetime,
) -> tuple[SqlText, list[Any], list[str]]:
    """The one statement :func:`column_fill` sends for ``table`` (as loaded by ``load_tables`` from the stored
    schema ``schema``): its text, its parameters and the lower-case columns it counts, in order.

    It groups the window's rows by the stored ``context_destination_id`` (a handful of values: the destinations
    that load the schema, and NULL for Segment's rows) and ``context_library_name``, plain columns, so the scan
    computes nothing per row; :func:`column_fill` folds those few groups to loaders. Computing the loader per row
    in SQL (a ``CASE``) made the statement about 1.45x a plain windowed aggregate of the same columns, this form
    1.3-1.4x (trailing hour on 1M and 10M rows, ``scripts/bench_shape_queries.py``).
    """
    q = dialect.quote_identifier
    present = [c for c in _requested(columns) if table.column(c)]
    dest_col, library_col = table.column("context_destination_id"), table.column("context_library_name")
    sql = compose(
        "SELECT {dest} AS destination, {library} AS library, COUNT(*){counts} FROM {t} "
        "WHERE {r} >= %s AND {r} < %s GROUP BY 1, 2",
        dest=q(dest_col) if dest_col else SqlText("NULL"),
        library=q(library_col) if library_col else SqlText("NULL"),
        counts=join_sql("", [compose(", COUNT({c})", c=q(table.column(c) or c)) for c in present]),
        t=dialect.qualified(schema, table.actual),
        r=_received(dialect, table),
    )
    return sql, [start, end], present


def column_fill(
    dialect: WarehouseDialect,
    schema: str,
    table: str,
    columns: Sequence[str],
    *,
    start: datetime,
    end: datetime,
    destination_id: str | None = None,
    snapshot: SchemaSnapshot | None = None,
) -> list[FillRow]:
    """Rows of ``table`` with ``received_at`` in ``[start, end)`` per (loader, library), and per requested column
    how many carry a value (``COUNT(column)``), in one statement.

    The loader is ``"rudderstack"`` when ``context_destination_id = destination_id`` (with ``destination_id``
    None: when it is set at all), else ``"segment"`` (:func:`loader_of`); a table without that column holds
    Segment's rows only. The library is ``context_library_name`` (``None`` when the rows, or the table, have none).
    Requested columns the table lacks are named in each row's ``absent``. A missing schema or table answers ``[]``
    (no rows); a table without ``received_at`` raises :class:`ValueError`. With ``snapshot`` (of ``schema``, read
    once for every table) the catalog is not read again: the call is the one statement.
    """
    require_aware("start", start)
    require_aware("end", end)
    requested = _requested(columns)
    with dialect.session() as s:
        found = _from_snapshot(snapshot, table) if snapshot else _load_table(dialect, s, schema, table)
        if found is None:
            return []
        actual_schema, loaded = found
        sql, params, present = fill_statement(dialect, actual_schema, loaded, requested, start=start, end=end)
        result = s.fetchall(sql, params)
    groups: dict[tuple[str, str | None], list[int]] = {}
    for destination, library, n, *counts in result:
        key = (loader_of(destination, destination_id), None if library is None else str(library))
        totals = groups.setdefault(key, [0] * (1 + len(present)))
        for i, value in enumerate([n, *counts]):
            totals[i] += int(value or 0)
    absent = tuple(c for c in requested if c not in present)
    rows = [
        FillRow(loaded.name, loader, library, totals[0], dict(zip(present, totals[1:], strict=True)), absent)
        for (loader, library), totals in groups.items()
    ]
    return sorted(rows, key=lambda f: (f.loader, f.library is None, f.library or ""))


def _from_snapshot(snapshot: SchemaSnapshot, table: str) -> tuple[str, Table] | None:
    """The stored schema name and the table as the snapshot saw it (``None`` when it has neither)."""
    key = table.lower()
    if not snapshot.exists or snapshot.actual is None or key not in snapshot.tables:
        return None
    loaded = Table(key, snapshot.table_names.get(key, table))
    for column, info in snapshot.tables[key].items():
        loaded.columns[column] = (info.name, info.data_type)
    return snapshot.actual, loaded


def _load_table(dialect: WarehouseDialect, s: Session, schema: str, table: str) -> tuple[str, Table] | None:
    """The stored schema name and the table as stored, or ``None`` when either is missing."""
    actual = dialect.resolve_schema(s, schema)
    loaded = dialect.load_tables(s, actual, [table]).get(table.lower()) if actual else None
    if loaded is None:
        log.info("shape queries: table %r not found in schema %r", table, schema)
        return None
    return actual, loaded


# ------------------------------------------------------------------------------------------- values
def _select_list(
    dialect: WarehouseDialect, table: Table, columns: Sequence[str]
) -> tuple[SqlText, list[str]]:
    """``id`` (when the table has it) and the requested columns the table has, quoted; with their lower names."""
    names = [c for c in dict.fromkeys(["id", *_requested(columns)]) if table.column(c)]
    if not names:
        raise ValueError(f"table {table.name!r} has none of the columns {list(columns)!r}")
    return join_sql(", ", [dialect.quote_identifier(table.column(c) or c) for c in names]), names


def value_sample(
    dialect: WarehouseDialect,
    schema: str,
    table: str,
    columns: Sequence[str],
    *,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[dict[str, Any]]:
    """The latest ``limit`` rows of ``table`` (``received_at`` descending) in ``[start, end)``: ``id`` and the
    named columns the table has, by lower-case name, as the driver returns the values. A missing schema or
    table answers ``[]``; a table without ``received_at`` raises :class:`ValueError`."""
    require_aware("start", start)
    require_aware("end", end)
    if int(limit) <= 0:
        return []
    with dialect.session() as s:
        found = _load_table(dialect, s, schema, table)
        if found is None:
            return []
        actual_schema, loaded = found
        r = _received(dialect, loaded)
        select, names = _select_list(dialect, loaded, columns)
        rows = s.fetchall(
            compose(
                "SELECT {c} FROM {t} WHERE {r} >= %s AND {r} < %s ORDER BY {r} DESC LIMIT %s",
                c=select,
                t=dialect.qualified(actual_schema, loaded.actual),
                r=r,
            ),
            [start, end, int(limit)],
        )
    return [dict(zip(names, row, strict=True)) for row in rows]


def values_by_id(
    dialect: WarehouseDialect, schema: str, table: str, columns: Sequence[str], ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """``{id: {column: value}}`` for the rows of ``table`` whose ``id`` is one of ``ids`` (bound in chunks of
    :data:`ID_CHUNK`), the named columns the table has (and ``id``) by lower-case name. Ids not found are left
    out; of several rows with one id, the latest ``received_at`` wins. A missing schema or table answers ``{}``;
    a table without ``id`` raises :class:`ValueError`."""
    wanted = [str(i) for i in dict.fromkeys(ids) if i is not None and str(i) != ""]
    if not wanted:
        return {}
    found_rows: dict[str, dict[str, Any]] = {}
    with dialect.session() as s:
        found = _load_table(dialect, s, schema, table)
        if found is None:
            return {}
        actual_schema, loaded = found
        id_col = loaded.column("id")
        if id_col is None:
            raise ValueError(f"table {loaded.name!r} has no id column (the message id rows are compared by)")
        select, names = _select_list(dialect, loaded, columns)
        received = loaded.column("received_at")
        order = (
            compose(" ORDER BY {r} ASC NULLS FIRST", r=dialect.quote_identifier(received))
            if received
            else SqlText("")
        )
        for at in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[at : at + ID_CHUNK]
            sql = compose(
                "SELECT {c} FROM {t} WHERE {i} IN ({p}){o}",
                c=select,
                t=dialect.qualified(actual_schema, loaded.actual),
                i=dialect.quote_identifier(id_col),
                p=_placeholders(len(chunk)),
                o=order,
            )
            for row in s.fetchall(sql, chunk):
                values = dict(zip(names, row, strict=True))
                found_rows[str(values["id"])] = values  # ascending received_at: the latest copy wins
    return found_rows


# ----------------------------------------------------------------------------------------- discards
@dataclass(frozen=True)
class DiscardGroup:
    """Values RudderStack set NULL in ``table_name.column_name`` for one ``reason`` (lower-case names), since
    the instant asked for: how many, the first and last ``received_at``, and a few ``(row_id, column_value)``
    examples (the latest)."""

    table_name: str
    column_name: str
    reason: str | None
    count: int
    first_received_at: datetime | None
    last_received_at: datetime | None
    examples: tuple[tuple[str | None, str | None], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "table_name": self.table_name,
            "column_name": self.column_name,
            "reason": self.reason,
            "count": self.count,
            "first_received_at": _iso(self.first_received_at),
            "last_received_at": _iso(self.last_received_at),
            "examples": [{"row_id": r, "column_value": v} for r, v in self.examples],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiscardGroup:
        first, last = data.get("first_received_at"), data.get("last_received_at")
        return cls(
            table_name=str(data["table_name"]),
            column_name=str(data["column_name"]),
            reason=data.get("reason"),
            count=int(data["count"]),
            first_received_at=as_utc(first) if first else None,
            last_received_at=as_utc(last) if last else None,
            examples=tuple((e.get("row_id"), e.get("column_value")) for e in data.get("examples") or ()),
        )


def _discards_statement(dialect: WarehouseDialect, schema: str, table: Table) -> SqlText:
    needed = ("table_name", "column_name", "received_at")
    missing = [c for c in needed if not table.column(c)]
    if missing:
        raise ValueError(
            f"{schema}.{table.actual} lacks {', '.join(missing)}: it is not RudderStack's discards table"
        )

    def col(name: str) -> SqlText:
        actual = table.column(name)
        return dialect.quote_identifier(actual) if actual else SqlText("NULL")

    partition = compose(
        "PARTITION BY LOWER({t}), LOWER({c}), {why}",
        t=col("table_name"),
        c=col("column_name"),
        why=col("reason"),
    )
    return compose(
        "SELECT tn, cn, why, row_ref, val, n, first_at, last_at FROM ("
        "SELECT LOWER({t}) AS tn, LOWER({c}) AS cn, {why} AS why, {row} AS row_ref, {val} AS val, "
        "ROW_NUMBER() OVER ({p} ORDER BY {r} DESC) AS example_rank, COUNT(*) OVER ({p}) AS n, "
        "MIN({r}) OVER ({p}) AS first_at, MAX({r}) OVER ({p}) AS last_at "
        "FROM {tab} WHERE {r} >= %s) AS d WHERE example_rank <= %s ORDER BY tn, cn, why, example_rank",
        t=col("table_name"),
        c=col("column_name"),
        why=col("reason"),
        row=col("row_id"),
        val=col("column_value"),
        p=partition,
        r=col("received_at"),
        tab=dialect.qualified(schema, table.actual),
    )


def discards_since(
    dialect: WarehouseDialect, schema: str, *, since: datetime, examples: int = 3
) -> list[DiscardGroup]:
    """Per (table, column, reason) of ``rudder_discards`` in ``schema``: the values RudderStack set NULL with
    ``received_at >= since`` (the discarded event's receive time, the clock :func:`column_fill`'s windows use),
    their first and last ``received_at`` and the latest ``examples`` ``(row_id, column_value)`` pairs; one
    statement (window functions over the rows since ``since``). Largest groups first. No such table: ``[]``."""
    require_aware("since", since)
    with dialect.session() as s:
        found = _load_table(dialect, s, schema, DISCARDS_TABLE)
        if found is None:
            return []
        actual_schema, loaded = found
        rows = s.fetchall(_discards_statement(dialect, actual_schema, loaded), [since, max(int(examples), 1)])
    groups: dict[tuple, dict[str, Any]] = {}
    for tn, cn, why, row_ref, val, n, first_at, last_at in rows:
        group = groups.setdefault(
            (tn, cn, why), {"count": int(n or 0), "first": first_at, "last": last_at, "examples": []}
        )
        if len(group["examples"]) < examples:
            group["examples"].append((_text(row_ref), _text(val)))
    result = [
        DiscardGroup(
            table_name=str(tn),
            column_name=str(cn),
            reason=_text(why),
            count=g["count"],
            first_received_at=_instant(g["first"]),
            last_received_at=_instant(g["last"]),
            examples=tuple(g["examples"]),
        )
        for (tn, cn, why), g in groups.items()
    ]
    return sorted(result, key=lambda g: (-g.count, g.table_name, g.column_name, g.reason or ""))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
