"""Value check: the values each simulated client sent, against its row in the warehouse, column by column.

The id reconciliation (sandbox.reconcile) proves every message id is in its table exactly once. The value check
proves the row still holds what the client sent, in the column the warehouse's models read. It covers every
message id the ledger recorded with its values (`sent_values`, sandbox.clients.sent_values: what the client
handed its SDK) that is loaded (its table has a row with that id). Each value the client set is compared with
that row:

- the expected column is the one Segment's loader names (sandbox.segment_loader: go-snakecase, objects
  flattened with `_`), because the downstream models read Segment's names. A track's properties are expected
  in its event table (order_completed, ...), everything else in the ledger's table (tracks, pages, screens,
  identifies);
- what is compared: the properties or traits, a track's event name (`tracks.event_text`), a page's or
  screen's name, the context the client set (app, device, service), user_id and anonymous_id. Columns a loader
  or an SDK fills by itself are left out (id, received_at, sent_at, timestamp, uuid_ts, channel,
  context_library_*, context_source_*, ...);
- values are normalised first. Numbers are compared as numbers (3 in a bigint column equals 3.0), a
  timestamp column as a UTC instant, strings as strings (a date string reformatted in a text column has
  changed), booleans as booleans. A number or boolean written into a text column has changed (stringified).

Each value is one of:

- `kept`: the same value in its column;
- `changed`: another value in its column;
- `moved`: its column is NULL or absent and the same value is in another column of the row. This happens with
  a key RudderStack names differently (`SKUCode`: Segment's `skucode`, RudderStack's `sku_code`) or a trait
  that is only in `context_traits_*`;
- `lost`: NULL or absent everywhere in the row. When RudderStack parked the value in `rudder_discards`, the
  discard's reason says why.

`ValueReport.ok` is true when nothing was changed, moved or lost. It is reported apart from the id
reconciliation, whose `Report.ok` it does not change.

Cost, always a fixed number of queries and never one per row: one query for the ledger's values, one for the
schema's tables, one SELECT per table over the ids compared, and one over rudder_discards when that table
exists.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg2 import sql
from psycopg2.extras import RealDictCursor

from sandbox.ledger import DEFAULT_LEDGER_SCHEMA, Ledger
from sandbox.rudderstack_loader import DISCARDS_TABLE
from sandbox.rudderstack_transform import RESERVED_COLUMNS
from sandbox.segment_loader import TABLE_BY_TYPE, flatten, rows_for_event

__all__ = ["KINDS", "ColumnFinding", "ValueReport", "check_values", "expected_columns"]

KINDS = ("kept", "changed", "moved", "lost")
# Columns each loader fills by itself from the event's envelope (never a value the client set); `event` is each
# loader's own snake-casing of the event name, whose value as sent is compared in `event_text`.
LOADER_COLUMNS = frozenset(
    {"id", "received_at", "sent_at", "timestamp", "original_timestamp", "uuid_ts", "loaded_at", "event"}
)
# Never searched for a moved value: columns a loader or an SDK fills by itself.
OWN_COLUMNS = LOADER_COLUMNS | {
    "channel",
    "event_text",
    "context_ip",
    "context_request_ip",
    "context_passed_ip",
    "context_locale",
    "context_user_agent",
}
OWN_PREFIXES = ("context_library_", "context_source_", "context_destination_")
SAMPLE_WIDTH = 40
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ColumnFinding:
    """The values of one (table, column) that fell in one class: how many, one message id, what happened to it."""

    table: str
    column: str  # the expected column (Segment's name)
    kind: str  # kept | changed | moved | lost
    count: int = 0
    example_id: str = ""
    detail: str = (
        ""  # the example's: "to sku_code", "'newsletter' -> 'server'", "discarded by RudderStack: ..."
    )


@dataclass
class ValueReport:
    schema: str
    rows: int = 0  # loaded events whose values were compared
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    columns: list[ColumnFinding] = field(default_factory=list)  # per (table, column, kind), sorted
    recorded: int = 0  # sent events of the schema the ledger recorded values for
    unrecorded: int = 0  # sent events without recorded values (by hand, an older ledger): not compared
    error: str | None = None  # the check could not run (the id reconciliation stands on its own)

    @property
    def values(self) -> int:
        return sum(self.totals.values())

    @property
    def kept(self) -> int:
        return self.totals.get("kept", 0)

    @property
    def changed(self) -> int:
        return self.totals.get("changed", 0)

    @property
    def moved(self) -> int:
        return self.totals.get("moved", 0)

    @property
    def lost(self) -> int:
        return self.totals.get("lost", 0)

    @property
    def ok(self) -> bool:
        return self.error is None and self.changed == 0 and self.moved == 0 and self.lost == 0

    def finding(self, table: str, column: str, kind: str) -> ColumnFinding | None:
        return next((f for f in self.columns if (f.table, f.column, f.kind) == (table, column, kind)), None)

    def kinds(self, table: str, column: str) -> dict[str, int]:
        """kind -> count for one (table, column)."""
        return {f.kind: f.count for f in self.columns if (f.table, f.column) == (table, column)}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "values": self.values, "ok": self.ok}

    def format(self) -> str:
        if self.error is not None:
            return f"Value check could not run: {self.error}"
        counts = ", ".join(f"{self.totals.get(kind, 0):,} {kind}" for kind in KINDS)
        lines = [f"Value check: {self.values:,} values in {self.rows:,} rows: {counts}"]
        for f in self.columns:
            if f.kind != "kept":
                detail = f" ({f.detail})" if f.detail else ""
                lines.append(f"  {f.table}.{f.column}: {f.count:,} {f.kind}{detail}, e.g. {f.example_id}")
        if self.unrecorded:
            lines.append(f"  ({self.unrecorded:,} sent events have no values in the ledger: not compared)")
        return "\n".join(lines)

    @classmethod
    def combined(cls, reports: Iterable[ValueReport]) -> ValueReport | None:
        """One report over several schemas' (their columns kept apart by table name only)."""
        parts = [r for r in reports if r is not None]
        if not parts:
            return None
        total = cls(schema=", ".join(r.schema for r in parts))
        findings: dict[tuple[str, str, str], ColumnFinding] = {}
        for part in parts:
            total.rows += part.rows
            total.recorded += part.recorded
            total.unrecorded += part.unrecorded
            total.error = total.error or part.error
            for kind, count in part.totals.items():
                total.totals[kind] = total.totals.get(kind, 0) + count
            for f in part.columns:
                key = (f.table, f.column, f.kind)
                if key in findings:
                    findings[key].count += f.count
                else:
                    findings[key] = ColumnFinding(**asdict(f))
        total.columns = _sorted(findings.values())
        return total


def _sorted(findings: Iterable[ColumnFinding]) -> list[ColumnFinding]:
    return sorted(findings, key=lambda f: (f.table, f.column, KINDS.index(f.kind)))


# ------------------------------------------------------------------------------------------ expected columns


def expected_columns(message_id: str, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """table -> {column: value}: where Segment's loader puts each value the client set (sandbox.segment_loader
    rows_for_event on the recorded message), without the columns it fills by itself; a track's properties in its
    event table, the rest in the event type's table; `users` is not compared. Empty when Segment could not place
    the event."""
    try:
        placed = rows_for_event({**values, "messageId": message_id}, _EPOCH)
    except ValueError:
        return {}
    event_type = str(values.get("type") or "").lower()
    main = TABLE_BY_TYPE.get(event_type)
    main_row = next((row for table, row in placed if table == main), {})
    # a property named like a standard column is overwritten by it in Segment's row: not the client's value there
    properties = set(flatten(values.get("properties"))) - set(main_row) if event_type == "track" else set()
    expected: dict[str, dict[str, Any]] = {}
    for table, row in placed:
        if table == "users":
            continue
        if table == main:
            columns = {c: v for c, v in row.items() if c not in LOADER_COLUMNS and v is not None}
        else:
            columns = {c: row[c] for c in sorted(properties) if row.get(c) is not None}
        if columns:
            expected[table] = columns
    return expected


# ------------------------------------------------------------------------------------------ normalisation


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def same(sent: Any, stored: Any) -> bool:
    """Whether `stored` (read from the warehouse) is the value `sent`: numbers numerically, a timestamp column
    as a UTC instant, strings as strings, booleans as booleans, arrays/objects as JSON."""
    if stored is None:
        return False
    if isinstance(sent, bool) or isinstance(stored, bool):
        return isinstance(sent, bool) and isinstance(stored, bool) and sent == stored
    if _is_number(sent):
        if not _is_number(stored):
            return False
        if isinstance(sent, int) and isinstance(stored, int):
            return sent == stored
        a, b = float(sent), float(stored)
        return math.isfinite(a) and math.isfinite(b) and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(stored, datetime):
        instant = _instant(sent)
        return instant is not None and instant == _instant(stored)
    if isinstance(sent, list | dict):
        if isinstance(stored, str):
            try:
                stored = json.loads(stored)
            except ValueError:
                return False
        return sent == stored
    if isinstance(sent, str):
        return isinstance(stored, str) and sent == stored
    return sent == stored


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = str(value)
    else:
        text = repr(value)
    return text if len(text) <= SAMPLE_WIDTH else text[: SAMPLE_WIDTH - 3] + "..."


def _own(column: str) -> bool:
    return column in OWN_COLUMNS or column.startswith(OWN_PREFIXES)


def _name_key(column: str) -> str:
    """A column's name without RudderStack's `context_traits_` prefix, leading `_` and word separators."""
    name = column.removeprefix("context_traits_").lstrip("_")
    return name.replace("_", "")


def _related(candidate: str, column: str) -> bool:
    """`candidate` names the same key as `column` another way (sku_code / skucode, context_traits_crm_id)."""
    return _name_key(candidate) == _name_key(column)


# ------------------------------------------------------------------------------------------ the check


def _classify(
    value: Any,
    column: str,
    row: Mapping[str, Any] | None,
    expected_here: set[str],
    event_type: str,
    table: str,
    discards: Mapping[str, str],
) -> tuple[str, str]:
    """(kind, detail) of one sent value against its row."""
    if row is None:
        return "lost", f"no row in {table}"
    stored = row.get(column)
    rudder_own = column in RESERVED_COLUMNS.get(event_type, ()) and row.get("context_destination_id")
    hint = f"; RudderStack fills {column} itself" if rudder_own else ""
    if stored is not None:
        if same(value, stored):
            return "kept", ""
        return "changed", f"{_show(value)} -> {_show(stored)}{hint}"
    elsewhere = [
        c
        for c, v in row.items()
        if c != column and c not in expected_here and not _own(c) and v is not None and same(value, v)
    ]
    if elsewhere:
        elsewhere.sort(key=lambda c: (not _related(c, column), c.startswith("context_traits_"), c))
        also = f", also {', '.join(elsewhere[1:])}" if len(elsewhere) > 1 else ""
        return "moved", f"to {elsewhere[0]}{also}"
    reason = discards.get(column) or next(
        (r for c, r in sorted(discards.items()) if _related(c, column)), None
    )
    if reason is not None:
        return "lost", f"discarded by RudderStack: {reason}"
    return "lost", (f"NULL in {column}" if column in row else f"no column {column}") + hint


def _select(cur, schema: str, table: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """id -> row (the first one of an id that has several: the id reconciliation counts those)."""
    cur.execute(
        sql.SQL("SELECT * FROM {}.{} WHERE id = ANY(%s)").format(
            sql.Identifier(schema), sql.Identifier(table)
        ),
        (ids,),
    )
    rows: dict[str, dict[str, Any]] = {}
    for row in cur.fetchall():
        rows.setdefault(str(row["id"]), dict(row))
    return rows


@dataclass
class _Read:
    """What the warehouse holds for the ids compared: rows per table and id, the loaded ids, discards."""

    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)
    discards: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)


def _read(cur, schema: str, expected: Mapping[str, Mapping[str, Any]], table_of: Mapping[str, str]) -> _Read:
    """One query for the schema's tables, one SELECT per table over its ids (the ledger's tables first: an id
    is loaded when its table has it; then the event tables over the loaded ids), one over rudder_discards."""
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
    tables = {r["table_name"] for r in cur.fetchall()}
    read = _Read()
    by_main: dict[str, list[str]] = {}
    for mid in expected:
        by_main.setdefault(table_of[mid], []).append(mid)
    for table, ids in sorted(by_main.items()):
        read.rows[table] = _select(cur, schema, table, ids) if table in tables else {}
    read.loaded = [mid for mid in expected if mid in read.rows.get(table_of[mid], {})]
    by_other: dict[str, list[str]] = {}
    for mid in read.loaded:
        for table in expected[mid]:
            if table != table_of[mid]:
                by_other.setdefault(table, []).append(mid)
    for table, ids in sorted(by_other.items()):
        read.rows.setdefault(table, {}).update(_select(cur, schema, table, ids) if table in tables else {})
    if DISCARDS_TABLE in tables and read.loaded:
        cur.execute(
            sql.SQL(
                "SELECT table_name, row_id, column_name, reason FROM {}.{} WHERE row_id = ANY(%s)"
            ).format(sql.Identifier(schema), sql.Identifier(DISCARDS_TABLE)),
            (read.loaded,),
        )
        for d in cur.fetchall():
            read.discards.setdefault((d["table_name"], str(d["row_id"])), {})[d["column_name"]] = d["reason"]
    return read


def _tally(report: ValueReport, read: _Read, expected, recorded) -> None:
    """Classify every expected value of the loaded ids into `report`."""
    findings: dict[tuple[str, str, str], ColumnFinding] = {}
    totals: Counter = Counter()
    for mid in read.loaded:
        event_type = str(recorded[mid].get("type") or "").lower()
        for table, columns in expected[mid].items():
            row = read.rows.get(table, {}).get(mid)
            discards = read.discards.get((table, mid), {})
            for column, value in columns.items():
                kind, detail = _classify(value, column, row, set(columns), event_type, table, discards)
                totals[kind] += 1
                finding = findings.setdefault(
                    (table, column, kind), ColumnFinding(table, column, kind, 0, mid, detail)
                )
                finding.count += 1
    report.rows = len(read.loaded)
    report.totals = {kind: totals.get(kind, 0) for kind in KINDS}
    report.columns = _sorted(findings.values())


def check_values(
    dsn: str,
    schema: str,
    *,
    ledger_schema: str = DEFAULT_LEDGER_SCHEMA,
    source: str | None = None,
    sent_rows: list[Mapping[str, Any]] | None = None,
) -> ValueReport:
    """Compare the values the clients sent (the ledger's `sent_values` of events recorded for `schema` or for
    none, optionally only those sent to `source`) with their rows in `schema`. `sent_rows`: the ledger's
    `sent()` rows when the caller has read them already (the reconciliation)."""
    ledger = Ledger(dsn, schema=ledger_schema)
    try:
        recorded = ledger.sent_values(schema=schema)
        if sent_rows is None:
            sent_rows = [r for r in ledger.sent(source=source) if r.get("schema") in (None, schema)]
    finally:
        ledger.close()
    report = ValueReport(schema=schema)
    table_of = {str(r["message_id"]): str(r["table"]) for r in sent_rows}
    report.unrecorded = sum(1 for mid in table_of if mid not in recorded)
    expected = {mid: expected_columns(mid, recorded[mid]) for mid in sorted(table_of) if mid in recorded}
    report.recorded = len(expected)
    if not expected:
        return report
    from sandbox.warehouse import Warehouse

    conn = Warehouse(dsn).connect()
    try:
        with conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
            read = _read(cur, schema, expected, table_of)
    finally:
        conn.close()
    _tally(report, read, expected, recorded)
    return report
