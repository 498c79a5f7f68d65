"""Segment's warehouse loader, as Segment documents it, writing into PostgreSQL.

Source: segmentio/segment-docs (commit 747b35d8f5f1889b041f2101185d562d7c4c016e)
`src/connections/storage/warehouses/schema.md`, and the naming package it names, segmentio/go-snakecase
(commit 6f94919300736c3044cfb8ab4a958058c272ff22) `snake.go`:
- collection (table) and property (column) names are go-snakecase'd;
- nested objects in properties, traits and context are flattened with `_`; arrays are stringified;
- a column's type is set by the value that creates it (new columns: the most recent occurrence in the batch,
  section "New columns"; afterwards it stays: "Data types are set up in your warehouse based on the first
  value"), a value of another type loses precision or is lost ("resulting in a loss of precision");
- strings are cut at 512 characters ("Column Sizing"; the page speaks of Redshift's compression there, the
  sandbox applies the limit to PostgreSQL too, the stricter reading);
- `users`: one row per user_id, latest traits, **no anonymous_id column**; `loaded_at` exists only on
  BigQuery, so it is not written here; every row has `uuid_ts` (load time).
Not documented, kept from the sandbox's earlier loader: what exactly happens to a value of another type
(see coerce), and that a track event named like a standard table goes to `_<name>`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from psycopg2 import sql
from psycopg2.extras import execute_values

from sandbox.common import isoformat_z, utcnow
from sandbox.rudderstack_naming import valid_timestamp

__all__ = [
    "EVENT_TABLES",
    "TABLE_BY_TYPE",
    "event_table_for",
    "go_snakecase",
    "load_segment",
    "rows_for_event",
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
TIMESTAMP_COLUMNS = ("received_at", "sent_at", "timestamp", "original_timestamp", "uuid_ts")
BASE_COLUMNS: dict[str, str] = {
    "id": "text",
    "anonymous_id": "text",
    "user_id": "text",
    **{c: "timestamptz" for c in TIMESTAMP_COLUMNS},
}
USER_BASE_COLUMNS: dict[str, str] = {"id": "text", "received_at": "timestamptz", "uuid_ts": "timestamptz"}
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
STRING_LIMIT = 512  # schema.md "Column Sizing"
MAX_IDENTIFIER = 63  # PostgreSQL's identifier limit (NAMEDATALEN - 1)


# ------------------------------------------------------------------------------------------ naming


def _run(s: str, idx: int, out: list[str]) -> int:
    """go-snakecase: one word: upper/digit run lower-cased, then its lower/digit tail."""
    while idx < len(s) and (s[idx].isascii() and (s[idx].isupper() or s[idx].isdigit())):
        out.append(s[idx].lower())
        idx += 1
    while idx < len(s) and (s[idx].isascii() and (s[idx].islower() or s[idx].isdigit())):
        out.append(s[idx])
        idx += 1
    return idx


def go_snakecase(s: str) -> str:
    """segmentio/go-snakecase Snakecase: `XMLHttp` -> `xmlhttp`, `CStringRef` -> `cstring_ref`,
    `sampleText` -> `sample_text`, `_5TEst` -> `5test` (a leading digit stays; leading `_` go)."""
    lower = lambda c: "a" <= c <= "z"  # noqa: E731
    digit = lambda c: "0" <= c <= "9"  # noqa: E731
    upper = lambda c: "A" <= c <= "Z"  # noqa: E731
    idx, has_lower, has_underscore, lower_since = 0, False, False, False
    while idx < len(s):
        c = s[idx]
        if lower(c):
            has_lower, lower_since = True, lower_since or has_underscore
        elif digit(c):
            pass
        elif c == "_" and 0 < idx < len(s) - 1 and (lower(s[idx + 1]) or digit(s[idx + 1])):
            has_underscore, lower_since = True, False
        else:
            break
        idx += 1
    if idx == len(s):
        return s
    out = list(s[:idx])
    if upper(s[idx]) and (not has_lower or (has_underscore and not lower_since)):
        idx = _run(s, idx, out)
    while idx < len(s):
        if not (lower(s[idx]) or upper(s[idx]) or digit(s[idx])):
            idx += 1
            continue
        if out:
            out.append("_")
        idx = _run(s, idx, out)
    return "".join(out)


def snake_case(name: str) -> str:
    """A Segment table/column name: go-snakecase, cut to PostgreSQL's 63-character identifiers."""
    return go_snakecase(str(name))[:MAX_IDENTIFIER]


def event_table_for(event_name: str) -> str:
    """The per-event table of a track event (not documented: a name colliding with a standard table gets
    a `_` prefix, so it cannot write into that table)."""
    table = snake_case(event_name)
    if table in RESERVED_TABLES:
        table = ("_" + table)[:MAX_IDENTIFIER]
    return table


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}_{key}" if prefix else str(key), inner, out)
        return
    name = snake_case(prefix)
    if name:
        out.setdefault(name, value)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """schema.md "How warehouse tables handle nested objects and arrays": objects flattened with `_`, names
    snake-cased; arrays kept as values (stringified when written)."""
    out: dict[str, Any] = {}
    _flatten(prefix, value or {}, out)
    return out


# ------------------------------------------------------------------------------------------ types


def infer_type(value: Any) -> str | None:
    """schema.md "Data Types": timestamp, integer, float, boolean, varchar (PostgreSQL: timestamptz,
    bigint, double precision, boolean, text)."""
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
    if isinstance(value, str) and valid_timestamp(value):
        return "timestamptz"
    return "text"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, datetime):
        text = isoformat_z(value)
    else:  # arrays (and other values) are stringified
        text = json.dumps(value, sort_keys=True, default=str)
    return text[:STRING_LIMIT]


def _as_number(value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        return kind(value)
    if isinstance(value, int | float):
        return kind(value)  # an int column keeps int(12.5) = 12: "a loss of precision"
    if isinstance(value, str):
        try:
            return kind(float(value)) if kind is int else kind(value)
        except ValueError:
            return None
    return None


def coerce(value: Any, pg_type: str) -> Any:
    """Fit `value` into a column of `pg_type`; NULL when it cannot be represented (not documented)."""
    if value is None:
        return None
    if pg_type == "text":
        return _as_text(value)
    if pg_type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None
    if pg_type == "bigint":
        number = _as_number(value, int)
        return number if number is None or -(2**63) <= number < 2**63 else None
    if pg_type == "double precision":
        return _as_number(value, float)
    if pg_type == "timestamptz":
        if isinstance(value, datetime) or (isinstance(value, str) and valid_timestamp(value)):
            return value
        return None
    return None


# ------------------------------------------------------------------------------------------ event -> rows


def _base_row(event: Mapping[str, Any], loaded_at: datetime) -> dict[str, Any]:
    received_at = event.get("receivedAt") or isoformat_z(loaded_at)
    base: dict[str, Any] = {
        "id": str(event["messageId"]),
        "anonymous_id": event.get("anonymousId"),
        "user_id": None if event.get("userId") is None else str(event.get("userId")),
        "received_at": received_at,
        "sent_at": event.get("sentAt"),
        "timestamp": event.get("timestamp") or received_at,
        "original_timestamp": event.get("originalTimestamp") or event.get("timestamp"),
        "uuid_ts": loaded_at,
    }
    for key, value in flatten(event.get("context"), "context").items():
        base.setdefault(key, value)
    return base


def rows_for_event(event: Mapping[str, Any], loaded_at: datetime) -> list[tuple[str, dict[str, Any]]]:
    """The (table, row) pairs one event becomes (schema.md "Warehouse tables"); ValueError if unplaceable."""
    event_type = str(event.get("type") or "").lower()
    table = TABLE_BY_TYPE.get(event_type)
    if table is None:
        raise ValueError(f"unknown event type {event.get('type')!r}; expected one of {sorted(TABLE_BY_TYPE)}")
    if not event.get("messageId"):
        raise ValueError("event has no messageId")
    base = _base_row(event, loaded_at)

    def with_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
        return {**fields, **base}  # standard columns win over same-named properties/traits

    if event_type == "track":
        name = str(event.get("event") or "")
        if not name:
            raise ValueError(f"track event {event['messageId']} has no event name")
        named = {"event": snake_case(name), "event_text": name}
        own = with_fields({**flatten(event.get("properties")), **named})
        return [("tracks", with_fields(named)), (event_table_for(name), own)]
    if event_type in ("page", "screen"):
        fields = {"name": event.get("name"), **flatten(event.get("properties"))}
        if event.get("category") is not None:
            fields["category"] = event.get("category")
        return [(table, with_fields(fields))]
    if event_type == "identify":
        traits = flatten(event.get("traits"))
        rows = [("identifies", with_fields(traits))]
        if event.get("userId") is not None:  # users: no anonymous_id, one row per user_id
            user = {
                **traits,
                "id": str(event["userId"]),
                "received_at": base["received_at"],
                "uuid_ts": loaded_at,
            }
            rows.append(("users", user))
        return rows
    if event_type == "group":
        return [("groups", with_fields({"group_id": event.get("groupId"), **flatten(event.get("traits"))}))]
    return [("aliases", with_fields({"previous_id": event.get("previousId")}))]


# ------------------------------------------------------------------------------------------ the writer


def _prepare_table(cur, schema: str, table: str, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Create the table / add new columns (schema.md "New columns": a new column takes the type of its most
    recent occurrence in the batch; an existing column keeps its type). Returns the column types."""
    base = USER_BASE_COLUMNS if table == "users" else BASE_COLUMNS
    definitions = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in base.items()]
    if table == "users":
        definitions[0] = sql.SQL("{} text PRIMARY KEY").format(sql.Identifier("id"))
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, sql.SQL(", ").join(definitions)))
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    )
    types = {name: PG_TYPE_NAMES.get(dtype, "text") for name, dtype in cur.fetchall()}
    new: dict[str, str] = {}
    for row in rows:
        for name, value in row.items():
            pg_type = infer_type(value)
            if name not in types and pg_type is not None:
                new[name] = pg_type
    for name, pg_type in new.items():
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                target, sql.Identifier(name), sql.SQL(pg_type)
            )
        )
    return {**types, **new}


def _insert(cur, schema: str, table: str, rows: list[dict[str, Any]], types: dict[str, str]) -> int:
    columns = list(dict.fromkeys(c for row in rows for c in row if c in types))
    values = [tuple(coerce(row.get(c), types[c]) for c in columns) for row in rows]
    query = sql.SQL("INSERT INTO {}.{} ({}) VALUES %s").format(
        sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    execute_values(cur, query.as_string(cur), values, page_size=500)
    return len(values)


def _upsert_users(cur, schema: str, rows: list[dict[str, Any]], types: dict[str, str]) -> int:
    """schema.md `users`: identifies upserted on user_id; later traits win, traits not given stay."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        merged.setdefault(row["id"], {}).update({k: v for k, v in row.items() if v is not None})
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("users"))
    for user_id, row in merged.items():
        columns = [c for c in row if c in types and c != "id"]
        values = [coerce(row[c], types[c]) for c in columns]
        if columns:
            assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
            cur.execute(
                sql.SQL("UPDATE {} SET {} WHERE id = %s").format(target, assignments), (*values, user_id)
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


def load_segment(warehouse, schema: str, events: Iterable[Mapping[str, Any]]):
    """Append `events` into `schema` in one transaction (Segment's loader does not merge: duplicates of a
    message id stay, schema.md "id"); returns a LoadResult."""
    from sandbox.warehouse import LoadResult

    result = LoadResult(schema=schema)
    loaded_at = utcnow()
    rows_by_table: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        try:
            placed = rows_for_event(event, loaded_at)
        except ValueError as exc:
            result.rejected.append({"messageId": event.get("messageId"), "reason": str(exc)})
            continue
        for table, row in placed:
            rows_by_table.setdefault(table, []).append(row)
    if not rows_by_table:
        return result
    with warehouse.transaction(schema) as cur:
        for table, rows in rows_by_table.items():
            types = _prepare_table(cur, schema, table, rows)
            if table == "users":
                result.rows_by_table[table] = _upsert_users(cur, schema, rows, types)
            else:
                result.rows_by_table[table] = _insert(cur, schema, table, rows, types)
    return result
