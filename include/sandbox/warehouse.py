"""The sandbox warehouse writer: Segment's table layout in a real PostgreSQL.

Both emulators load through `Warehouse.load`:

- Segment: ``load(schema, events, merge=False)`` — plain append, as Segment's loader does.
- RudderStack: ``load(schema, events, merge=True, extra_columns={"context_source_id": ...})`` — rows of the
  batch are deduplicated on `id` (latest `receivedAt` wins) and existing rows with the same `id` are
  deleted first, in every table the event lands in, in one transaction. ``merge=False`` is `preferAppend`.

Layout written in `schema`: tracks (+ one table per track event name, snake_case, with the flattened
properties), pages, screens, identifies (+ users, one row per user id, traits upserted), groups, aliases.
Common columns: id (= messageId), anonymous_id, user_id, received_at, sent_at, timestamp, original_timestamp,
uuid_ts and loaded_at (load time), context_* (flattened). Column types are inferred from values (text,
bigint, double precision, boolean, timestamptz) and columns are added as new keys appear. Identifiers are
quoted with psycopg2.sql.Identifier and every value is bound as a parameter.

Each call opens its own connection, so one `Warehouse` may be shared by threads; loads into the same
schema are serialised with a transaction-scoped advisory lock.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values

from sandbox.common import isoformat_z, utcnow

__all__ = [
    "EVENT_TABLES",
    "LoadResult",
    "Warehouse",
    "WarehouseError",
    "event_table_for",
    "rows_for_event",
    "snake_case",
]

EVENT_TABLES = ("tracks", "pages", "screens", "identifies", "groups", "aliases")
TABLE_BY_TYPE = {
    "track": "tracks",
    "page": "pages",
    "screen": "screens",
    "identify": "identifies",
    "group": "groups",
    "alias": "aliases",
}
RESERVED_TABLES = frozenset(EVENT_TABLES) | {"users", "rudder_discards"}
TIMESTAMP_COLUMNS = ("received_at", "sent_at", "timestamp", "original_timestamp", "uuid_ts", "loaded_at")
BASE_COLUMNS: dict[str, str] = {
    "id": "text",
    "anonymous_id": "text",
    "user_id": "text",
    **{c: "timestamptz" for c in TIMESTAMP_COLUMNS},
}
USER_BASE_COLUMNS: dict[str, str] = {
    "id": "text",
    "received_at": "timestamptz",
    "uuid_ts": "timestamptz",
    "loaded_at": "timestamptz",
}
PG_TYPE_NAMES = {
    "text": "text",
    "character varying": "text",
    "bigint": "bigint",
    "integer": "bigint",
    "double precision": "double precision",
    "numeric": "double precision",
    "boolean": "boolean",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamptz",
}
ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
MAX_IDENTIFIER = 63


class WarehouseError(RuntimeError):
    """A load could not be written; the message says which schema/table and why."""


@dataclass
class LoadResult:
    """What a load wrote: rows per table (per-event tables included), and events it could not place."""

    rows_by_table: dict[str, int] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    deleted_by_table: dict[str, int] = field(default_factory=dict)
    deduplicated_in_batch: int = 0

    @property
    def events_loaded(self) -> int:
        """Events written (each event counted once, in its standard table)."""
        return sum(n for t, n in self.rows_by_table.items() if t in EVENT_TABLES)


# ------------------------------------------------------------------------------------------ naming & typing


def snake_case(name: str) -> str:
    """Segment's column/table naming: `Order Completed` -> `order_completed`, `userAgent` -> `user_agent`."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", str(name))
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower()
    if s and s[0].isdigit():
        s = "_" + s
    return s[:MAX_IDENTIFIER]


def event_table_for(event_name: str) -> str:
    """The per-event table of a track event; names colliding with standard tables get a `_` prefix."""
    table = snake_case(event_name)
    if table in RESERVED_TABLES:
        table = ("_" + table)[:MAX_IDENTIFIER]
    return table


def infer_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint" if -(2**63) <= value < 2**63 else "double precision"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, datetime):
        return "timestamptz"
    if isinstance(value, str) and ISO_TIMESTAMP.match(value):
        return "timestamptz"
    return "text"


def coerce(value: Any, pg_type: str) -> Any:
    """Fit `value` into a column of `pg_type`; NULL when it cannot be represented (Segment drops those)."""
    if value is None:
        return None
    if pg_type == "text":
        if isinstance(value, str):
            return value
        if isinstance(value, datetime):
            return isoformat_z(value)
        return json.dumps(value, sort_keys=True, default=str)
    if pg_type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None
    if pg_type == "bigint":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value if -(2**63) <= value < 2**63 else None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                return None
        return None
    if pg_type == "double precision":
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return None
    if pg_type == "timestamptz":
        if isinstance(value, datetime):
            return value
        if isinstance(value, str) and ISO_TIMESTAMP.match(value):
            return value
        return None
    return None


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            name = snake_case(key)
            if not name:
                continue
            _flatten(f"{prefix}_{name}" if prefix else name, inner, out)
        return
    if prefix:
        out[prefix[:MAX_IDENTIFIER]] = value


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested objects into snake_case columns joined by `_`; lists stay values (stored as JSON text)."""
    out: dict[str, Any] = {}
    _flatten(prefix, value or {}, out)
    return out


# ------------------------------------------------------------------------------------------ event -> rows


def rows_for_event(
    event: Mapping[str, Any], loaded_at: datetime, extra_columns: Mapping[str, Any] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The (table, row) pairs one Segment-spec event becomes; raises ValueError for an unplaceable event."""
    event_type = str(event.get("type") or "").lower()
    table = TABLE_BY_TYPE.get(event_type)
    if table is None:
        raise ValueError(f"unknown event type {event.get('type')!r}; expected one of {sorted(TABLE_BY_TYPE)}")
    message_id = event.get("messageId")
    if not message_id:
        raise ValueError("event has no messageId")
    received_at = event.get("receivedAt") or isoformat_z(loaded_at)
    base: dict[str, Any] = {
        "id": str(message_id),
        "anonymous_id": event.get("anonymousId"),
        "user_id": None if event.get("userId") is None else str(event.get("userId")),
        "received_at": received_at,
        "sent_at": event.get("sentAt"),
        "timestamp": event.get("timestamp") or received_at,
        "original_timestamp": event.get("originalTimestamp") or event.get("timestamp"),
        "uuid_ts": loaded_at,
        "loaded_at": loaded_at,
    }
    for key, value in flatten(event.get("context"), "context").items():
        base.setdefault(key, value)
    for key, value in (extra_columns or {}).items():
        base[snake_case(key)] = value

    def with_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
        row = dict(base)
        for key, value in fields.items():
            row.setdefault(key, value)  # standard columns win over same-named properties/traits
        return row

    rows: list[tuple[str, dict[str, Any]]] = []
    if event_type == "track":
        name = str(event.get("event") or "")
        if not name:
            raise ValueError(f"track event {message_id} has no event name")
        named = {"event": snake_case(name), "event_text": name}
        rows.append(("tracks", with_fields(named)))
        rows.append((event_table_for(name), with_fields({**named, **flatten(event.get("properties"))})))
    elif event_type in ("page", "screen"):
        fields = {"name": event.get("name"), **flatten(event.get("properties"))}
        if event.get("category") is not None:
            fields["category"] = event.get("category")
        rows.append((table, with_fields(fields)))
    elif event_type == "identify":
        traits = flatten(event.get("traits"))
        rows.append(("identifies", with_fields(traits)))
        if event.get("userId") is not None:
            user = {
                "id": str(event["userId"]),
                "received_at": received_at,
                "uuid_ts": loaded_at,
                "loaded_at": loaded_at,
            }
            for key, value in traits.items():
                user.setdefault(key, value)
            rows.append(("users", user))
    elif event_type == "group":
        rows.append(
            ("groups", with_fields({"group_id": event.get("groupId"), **flatten(event.get("traits"))}))
        )
    elif event_type == "alias":
        rows.append(("aliases", with_fields({"previous_id": event.get("previousId")})))
    return rows


def _received_key(event: Mapping[str, Any]) -> str:
    # ISO strings in UTC with the same shape compare in time order; missing values sort first.
    return str(event.get("receivedAt") or "")


# ------------------------------------------------------------------------------------------ the writer


class Warehouse:
    """Loads Segment-spec events into Segment's table layout in PostgreSQL at `dsn`."""

    def __init__(self, dsn: str, *, connect_timeout_s: int = 10):
        self.dsn = dsn
        self.connect_timeout_s = connect_timeout_s

    def connect(self):
        """A new psycopg2 connection (caller closes it)."""
        return psycopg2.connect(self.dsn, connect_timeout=self.connect_timeout_s)

    # -- schema ---------------------------------------------------------------------------------------

    def ensure_schema(self, schema: str) -> None:
        conn = self.connect()
        try:
            with conn, conn.cursor() as cur:
                self._lock_schema(cur, schema)
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        finally:
            conn.close()

    def tables(self, schema: str) -> list[str]:
        return [
            r[0]
            for r in self._query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
                (schema,),
            )
        ]

    def columns(self, schema: str, table: str) -> dict[str, str]:
        rows = self._query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        )
        return {name: PG_TYPE_NAMES.get(dtype, "text") for name, dtype in rows}

    def count_rows(self, schema: str, table: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        return int(self._query(query)[0][0])

    def event_ids_by_table(self, schema: str) -> dict[str, Counter]:
        """Row count per id in each standard event table that exists (per-event tables mirror tracks)."""
        present = set(self.tables(schema))
        result: dict[str, Counter] = {}
        for table in EVENT_TABLES:
            if table not in present:
                continue
            query = sql.SQL("SELECT id, count(*) FROM {}.{} GROUP BY id").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            result[table] = Counter({row[0]: int(row[1]) for row in self._query(query)})
        return result

    def event_ids(self, schema: str) -> Counter:
        """Row count per id across tracks/pages/screens/identifies/groups/aliases."""
        total: Counter = Counter()
        for counter in self.event_ids_by_table(schema).values():
            total.update(counter)
        return total

    # -- loading --------------------------------------------------------------------------------------

    def load(
        self,
        schema: str,
        events: Iterable[Mapping[str, Any]],
        *,
        merge: bool,
        extra_columns: Mapping[str, Any] | None = None,
    ) -> LoadResult:
        """Write `events` into `schema` in one transaction; see the module docstring for merge semantics."""
        result = LoadResult()
        batch = list(events)
        if merge:
            latest: dict[str, tuple[str, int, Mapping[str, Any]]] = {}
            for position, event in enumerate(batch):
                mid = event.get("messageId")
                if not mid:
                    latest[f"\0no-id-{position}"] = ("", position, event)
                    continue
                key = (_received_key(event), position)
                if mid not in latest or key >= latest[mid][:2]:
                    latest[mid] = (*key, event)
            result.deduplicated_in_batch = len(batch) - len(latest)
            batch = [entry[2] for entry in sorted(latest.values(), key=lambda e: e[1])]

        loaded_at = utcnow()
        rows_by_table: dict[str, list[dict[str, Any]]] = {}
        for event in batch:
            try:
                placed = rows_for_event(event, loaded_at, extra_columns)
            except ValueError as exc:
                result.rejected.append({"messageId": event.get("messageId"), "reason": str(exc)})
                continue
            for table, row in placed:
                rows_by_table.setdefault(table, []).append(row)
        if not rows_by_table:
            return result

        conn = self.connect()
        try:
            with conn, conn.cursor() as cur:
                self._lock_schema(cur, schema)
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                for table, rows in rows_by_table.items():
                    types = self._prepare_table(cur, schema, table, rows)
                    if table == "users":
                        written = self._upsert_users(cur, schema, rows, types)
                    else:
                        if merge:
                            ids = sorted({row["id"] for row in rows})
                            cur.execute(
                                sql.SQL("DELETE FROM {}.{} WHERE id = ANY(%s)").format(
                                    sql.Identifier(schema), sql.Identifier(table)
                                ),
                                (ids,),
                            )
                            if cur.rowcount:
                                result.deleted_by_table[table] = cur.rowcount
                        written = self._insert(cur, schema, table, rows, types)
                    result.rows_by_table[table] = written
        except psycopg2.Error as exc:
            raise WarehouseError(
                f"load into schema {schema!r} failed and was rolled back ({type(exc).__name__}: "
                f"{str(exc).strip()}); check that the role can create tables in {schema!r}"
            ) from exc
        finally:
            conn.close()
        return result

    # -- internals ------------------------------------------------------------------------------------

    def _query(self, query, params: tuple = ()) -> list[tuple]:
        conn = self.connect()
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall()
        finally:
            conn.close()

    @staticmethod
    def _lock_schema(cur, schema: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"sandbox-warehouse:{schema}",))

    @staticmethod
    def _prepare_table(cur, schema: str, table: str, rows: list[dict[str, Any]]) -> dict[str, str]:
        """Create the table / add missing columns; return the column types to coerce values to."""
        base = USER_BASE_COLUMNS if table == "users" else BASE_COLUMNS
        definitions = [
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type)) for name, pg_type in base.items()
        ]
        if table == "users":
            definitions[0] = sql.SQL("{} text PRIMARY KEY").format(sql.Identifier("id"))
        cur.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(
                sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(definitions)
            )
        )
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        )
        types = {name: PG_TYPE_NAMES.get(dtype, "text") for name, dtype in cur.fetchall()}
        for row in rows:
            for name, value in row.items():
                if name in types:
                    if types[name] == "bigint" and isinstance(value, float) and not value.is_integer():
                        cur.execute(  # widen rather than drop 12.5 into a column first seen as 13
                            sql.SQL("ALTER TABLE {}.{} ALTER COLUMN {} TYPE double precision").format(
                                sql.Identifier(schema), sql.Identifier(table), sql.Identifier(name)
                            )
                        )
                        types[name] = "double precision"
                    continue
                pg_type = infer_type(value)
                if pg_type is None:
                    continue
                cur.execute(
                    sql.SQL("ALTER TABLE {}.{} ADD COLUMN IF NOT EXISTS {} {}").format(
                        sql.Identifier(schema), sql.Identifier(table), sql.Identifier(name), sql.SQL(pg_type)
                    )
                )
                types[name] = pg_type
        return types

    @staticmethod
    def _column_list(rows: list[dict[str, Any]], types: dict[str, str]) -> list[str]:
        seen: dict[str, None] = {}
        for row in rows:
            for name in row:
                if name in types:
                    seen.setdefault(name, None)
        return list(seen)

    def _insert(self, cur, schema: str, table: str, rows: list[dict[str, Any]], types: dict[str, str]) -> int:
        columns = self._column_list(rows, types)
        values = [tuple(coerce(row.get(c), types[c]) for c in columns) for row in rows]
        query = sql.SQL("INSERT INTO {}.{} ({}) VALUES %s").format(
            sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        execute_values(cur, query.as_string(cur), values, page_size=500)
        return len(values)

    def _upsert_users(self, cur, schema: str, rows: list[dict[str, Any]], types: dict[str, str]) -> int:
        merged: dict[str, dict[str, Any]] = {}
        for row in rows:  # later identifies win, traits not given keep their earlier value
            current = merged.setdefault(row["id"], {})
            current.update({k: v for k, v in row.items() if v is not None})
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("users"))
        for user_id, row in merged.items():
            columns = [c for c in row if c in types and c != "id"]
            values = [coerce(row[c], types[c]) for c in columns]
            if columns:
                cur.execute(
                    sql.SQL("UPDATE {} SET {} WHERE id = %s").format(
                        target,
                        sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns),
                    ),
                    (*values, user_id),
                )
                if cur.rowcount:
                    continue
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    target,
                    sql.SQL(", ").join(map(sql.Identifier, ["id", *columns])),
                    sql.SQL(", ").join(sql.Placeholder() * (len(columns) + 1)),
                ),
                (user_id, *values),
            )
        return len(merged)
