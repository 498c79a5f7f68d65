"""RudderStack's warehouse loader for POSTGRES: staged rows -> tables, as rudder-server writes them.

Sources (rudderlabs/rudder-server at commit f2655fbbe2260deb4e01c2a54da1a827291713bb):
- `warehouse/schema/schema.go` ConsolidateStagingFilesSchema: the upload's schema is the staged rows' types
  (the first type seen wins), overwritten by the warehouse's existing types (consolidateWarehouseSchema:
  **the existing type wins**); `users` copies the `identifies` schema (overrideUsersWithIdentifiesSchema);
  `rudder_discards` is added (enhanceDiscardsSchema).
- `warehouse/integrations/postgres/postgres.go`: new columns get rudderDataTypesMapToPostgres; existing types
  are read from information_schema through postgresDataTypesMapToRudder (FetchSchema) and a type missing from
  that map (e.g. `character varying`, `timestamp without time zone`) is invisible: the loader treats the
  column as new (`ADD COLUMN IF NOT EXISTS` does nothing) and PostgreSQL casts the value.
- `warehouse/slave/worker.go` (processStagingFile, HandleSchemaChange) and `worker_job.go`
  (handleDiscardTypes): a value whose type differs from the column's is converted or set NULL with one
  `rudder_discards` row, and the row itself still loads; arrays are written as JSON.
- `warehouse/integrations/postgres/load.go`: loadTable (rows of the batch deduplicated per id, latest
  `received_at`; with merge, existing rows with the same id deleted first), shouldMerge (merge unless
  preferAppend, but a retried upload always merges: warehouse/router/upload.go CanAppend), loadUsersTable
  (users = per column the latest non-null value by received_at over the existing user row and the new
  identifies with a user_id).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from psycopg2 import sql
from psycopg2.extras import execute_values

from sandbox.rudderstack_naming import go_format, safe_namespace
from sandbox.rudderstack_transform import Row, TransformError, transform_event

__all__ = ["RUDDER_TO_POSTGRES", "load_rudderstack", "prefer_append"]

RUDDER_TO_POSTGRES = {  # postgres.go rudderDataTypesMapToPostgres
    "int": "bigint",
    "float": "numeric",
    "string": "text",
    "datetime": "timestamptz",
    "boolean": "boolean",
    "json": "jsonb",
}
POSTGRES_TO_RUDDER = {  # postgres.go postgresDataTypesMapToRudder (keys are information_schema data_type)
    "integer": "int",
    "smallint": "int",
    "bigint": "int",
    "double precision": "float",
    "numeric": "float",
    "real": "float",
    "text": "string",
    "varchar": "string",
    "char": "string",
    "timestamptz": "datetime",
    "timestamp with time zone": "datetime",
    "timestamp": "datetime",
    "boolean": "boolean",
    "jsonb": "json",
}
DISCARDS_TABLE = "rudder_discards"
DISCARDS_SCHEMA = {  # warehouse/utils/utils.go DiscardsSchema
    "table_name": "string",
    "row_id": "string",
    "column_name": "string",
    "column_value": "string",
    "received_at": "datetime",
    "uuid_ts": "datetime",
    "reason": "string",
}
STANDARD_TABLES = frozenset({"tracks", "pages", "screens", "identifies", "groups", "aliases"})
PARTITION_KEYS = {DISCARDS_TABLE: ("row_id", "column_name", "table_name")}  # load.go partitionKeyMap


def prefer_append(destination: Mapping[str, Any]) -> bool:
    """warehouse/internal/model/warehouse.go GetPreferAppendSetting: `preferAppend` as a JSON boolean; when
    absent (or not a boolean) false, except on BigQuery (true)."""
    value = (destination.get("config") or {}).get("preferAppend")
    if isinstance(value, bool):
        return value
    return str(destination.get("type")).upper() == "BQ"


# ------------------------------------------------------------------------------------------ schema


def _warehouse_schema(cur, namespace: str) -> dict[str, dict[str, str]]:
    """postgres.go FetchSchema: types through postgresDataTypesMapToRudder; unknown types are left out."""
    cur.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = %s",
        (namespace,),
    )
    schema: dict[str, dict[str, str]] = {}
    for table, column, data_type in cur.fetchall():
        columns = schema.setdefault(table, {})
        if data_type in POSTGRES_TO_RUDDER:
            columns[column] = POSTGRES_TO_RUDDER[data_type]
    return schema


def _upload_schema(rows: list[Row], existing: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """schema.go consolidateStagingSchemas (first type wins), consolidateWarehouseSchema (existing type
    wins), overrideUsersWithIdentifiesSchema (users copies identifies; users.id takes identifies.user_id's
    type; no user_id column in users)."""
    schema: dict[str, dict[str, str]] = {}
    for row in rows:
        columns = schema.setdefault(row.table, {})
        for column, rudder_type in row.types.items():
            columns.setdefault(column, rudder_type)
    for table, columns in schema.items():
        for column, rudder_type in existing.get(table, {}).items():
            if column in columns:
                columns[column] = rudder_type
    if "users" in schema and "identifies" in schema:
        users, identifies = schema["users"], schema["identifies"]
        users.update(identifies)
        for column, rudder_type in existing.get("users", {}).items():
            if column not in existing.get("identifies", {}):
                users[column] = rudder_type
                identifies[column] = rudder_type
        users["id"] = identifies.get("user_id", "string")
        users.pop("user_id", None)
    return schema


def _prepare_table(cur, namespace: str, table: str, columns: Mapping[str, str], existing) -> None:
    """postgres.go CreateTable / AddColumns with the rudder -> PostgreSQL type map."""
    target = sql.SQL("{}.{}").format(sql.Identifier(namespace), sql.Identifier(table))
    definitions = [
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(RUDDER_TO_POSTGRES[rudder_type]))
        for name, rudder_type in sorted(columns.items())
    ]
    if table not in existing:
        cur.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, sql.SQL(", ").join(definitions))
        )
        return
    for name, rudder_type in sorted(columns.items()):
        if name not in existing[table]:
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    target, sql.Identifier(name), sql.SQL(RUDDER_TO_POSTGRES[rudder_type])
                )
            )


# ------------------------------------------------------------------------------------------ values


class _Incompatible(ValueError):
    pass


def handle_schema_change(existing: str, inferred: str, value: Any) -> Any:
    """warehouse/slave/worker.go HandleSchemaChange: into a string column anything is stringified (`%v`);
    float column <- int: cast; int column <- float: truncated; json column <- scalar: stringified (strings
    quoted), arrays kept; anything else is incompatible."""
    if existing in ("string", "text"):
        return value if inferred in ("string", "text", "json") else go_format(value)
    if inferred in ("int", "bigint") and existing == "float":
        return float(value)
    if inferred == "float" and existing in ("int", "bigint"):
        return int(value)
    if existing == "json":
        if inferred in ("int", "float", "boolean"):
            return go_format(value)
        if isinstance(value, list):
            return value
        return json.dumps(go_format(value))
    raise _Incompatible(f"incompatible schema conversion from {existing} to {inferred}")


def _discard(row: Row, column: str, value: Any, reason: str) -> dict[str, Any] | None:
    """worker_job.go handleDiscardTypes: written only when the row has an id and a received_at."""
    row_id, received_at = row.data.get("id"), row.data.get("received_at")
    if row_id is None or received_at is None:
        return None
    return {
        "table_name": row.table,
        "row_id": row_id,
        "column_name": column,
        "column_value": go_format(value),
        "reason": reason,
        "received_at": received_at,
    }


def _load_values(row: Row, columns: Mapping[str, str], discards: list[dict[str, Any]]) -> dict[str, Any]:
    """worker.go processStagingFile: each column of the upload schema, converted to the column's type."""
    out: dict[str, Any] = {}
    for column, column_type in columns.items():
        if column == "uuid_ts" or column not in row.data:
            continue
        value, value_type = row.data[column], row.types[column]
        if value_type == "int" and isinstance(value, float):
            value = int(value)  # worker.go: an int-typed value (a JSON float64) is written as int(value)
        if value_type != column_type:
            try:
                value = handle_schema_change(column_type, value_type, value)
            except _Incompatible as exc:
                entry = _discard(row, column, value, str(exc))
                if entry:
                    discards.append(entry)
                continue
        if isinstance(value, list):
            value = json.dumps(value, separators=(",", ":"))
        elif column_type == "json" and not isinstance(value, str):
            value = json.dumps(value)
        out[column] = value
    return out


def _latest_per_key(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """load.go insertIntoLoadTable: ROW_NUMBER() OVER (PARTITION BY id ORDER BY received_at DESC) = 1."""
    latest: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = tuple(row.get(k) for k in keys)
        if key not in latest or str(row.get("received_at") or "") >= str(
            latest[key].get("received_at") or ""
        ):
            latest[key] = row
    return list(latest.values())


# ------------------------------------------------------------------------------------------ SQL


def _insert(cur, namespace: str, table: str, rows: list[dict[str, Any]], uuid_ts: datetime) -> int:
    columns = sorted({c for row in rows for c in row} | {"uuid_ts"})
    values = [tuple(uuid_ts if c == "uuid_ts" else row.get(c) for c in columns) for row in rows]
    query = sql.SQL("INSERT INTO {}.{} ({}) VALUES %s").format(
        sql.Identifier(namespace), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    execute_values(cur, query.as_string(cur), values, page_size=500)
    return len(values)


def _delete_existing(
    cur, namespace: str, table: str, rows: list[dict[str, Any]], keys: tuple[str, ...]
) -> int:
    """load.go deleteFromLoadTable: DELETE ... USING staging ON the primary key (discards: with table_name and
    column_name)."""
    target = sql.SQL("{}.{}").format(sql.Identifier(namespace), sql.Identifier(table))
    matches = sql.SQL(" AND ").join(
        sql.SQL("{}.{} = _source.{}").format(target, sql.Identifier(k), sql.Identifier(k)) for k in keys
    )
    columns = sql.SQL(", ").join(map(sql.Identifier, keys))
    query = sql.SQL("DELETE FROM {} USING (VALUES %s) AS _source ({}) WHERE {}").format(
        target, columns, matches
    )
    keyed = sorted({tuple(str(row.get(k)) for k in keys) for row in rows})
    execute_values(cur, query.as_string(cur), keyed, page_size=len(keyed) or 1)
    return max(cur.rowcount, 0)


def _as_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value or "")


def _load_users(cur, namespace: str, identifies: list[dict[str, Any]], uuid_ts: datetime) -> int:
    """load.go loadUsersTable: for every user id among the new identifies, each users column (the users
    table's columns in the warehouse, after the schema update) takes the latest non-null value by received_at
    over the existing users row and those identifies; the users rows are then deleted and inserted."""
    candidates: dict[str, list[dict[str, Any]]] = {}
    for row in identifies:
        if row.get("user_id") is not None:
            candidates.setdefault(str(row["user_id"]), []).append({**row, "id": str(row["user_id"])})
    if not candidates:
        return 0
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'users'",
        (namespace,),
    )
    columns = sorted(r[0] for r in cur.fetchall() if r[0] not in ("id", "uuid_ts"))
    target = sql.SQL("{}.{}").format(sql.Identifier(namespace), sql.Identifier("users"))
    cur.execute(
        sql.SQL("SELECT {} FROM {} WHERE id = ANY(%s)").format(
            sql.SQL(", ").join(map(sql.Identifier, ["id", *columns])), target
        ),
        (sorted(candidates),),
    )
    for record in cur.fetchall():
        candidates[str(record[0])].append(dict(zip(["id", *columns], record, strict=True)))
    merged = []
    for user_id, versions in candidates.items():
        versions.sort(key=lambda v: _as_time(v.get("received_at")), reverse=True)
        user = {"id": user_id}
        for column in columns:
            user[column] = next((v[column] for v in versions if v.get(column) is not None), None)
        merged.append(user)
    _delete_existing(cur, namespace, "users", merged, ("id",))
    return _insert(cur, namespace, "users", merged, uuid_ts)


# ------------------------------------------------------------------------------------------ the load


def _transform_all(events, source, destination, result) -> list[Row]:
    rows: list[Row] = []
    for event in events:
        try:
            rows.extend(transform_event(event, source=source, destination=destination))
        except TransformError as exc:
            result.rejected.append({"messageId": event.get("messageId"), "reason": str(exc)})
    return rows


def _staged_values(
    rows: list[Row], schema: Mapping[str, Mapping[str, str]]
) -> dict[str, list[dict[str, Any]]]:
    """The load files: per table the converted rows; discards (if any) under rudder_discards."""
    discards: list[dict[str, Any]] = []
    by_table: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_table.setdefault(row.table, []).append(_load_values(row, schema[row.table], discards))
    if discards:
        by_table[DISCARDS_TABLE] = discards
    return by_table


def _write_tables(cur, namespace, by_table, merge, result, uuid_ts) -> None:
    identifies: list[dict[str, Any]] = []
    for table, table_rows in by_table.items():
        if table == "users":
            continue
        keys = PARTITION_KEYS.get(table, ("id",))
        latest = _latest_per_key(table_rows, keys)
        if table in STANDARD_TABLES:  # counted once per event
            result.deduplicated_in_batch += len(table_rows) - len(latest)
        if merge:
            deleted = _delete_existing(cur, namespace, table, latest, keys)
            if deleted:
                result.deleted_by_table[table] = deleted
        result.rows_by_table[table] = _insert(cur, namespace, table, latest, uuid_ts)
        if table == "identifies":
            identifies = latest
    if "users" in by_table:
        result.rows_by_table["users"] = _load_users(cur, namespace, identifies, uuid_ts)


def load_rudderstack(
    warehouse,
    events: Iterable[Mapping[str, Any]],
    *,
    source: Mapping[str, Any],
    destination: Mapping[str, Any],
    retried: bool = False,
):
    """Load one source's staged events for `destination` ({id, type, config}) through `warehouse` (a
    sandbox.warehouse.Warehouse); returns its LoadResult, whose `schema` is the namespace written
    (ToSafeNamespace of config.namespace). A retried upload always merges (CanAppend)."""
    from sandbox.warehouse import LoadResult, utcnow

    namespace = safe_namespace(str((destination.get("config") or {}).get("namespace") or ""))
    result = LoadResult(schema=namespace)
    rows = _transform_all(list(events), source, destination, result)
    if not rows:
        return result
    merge = retried or not prefer_append(destination)
    uuid_ts = utcnow()
    with warehouse.transaction(namespace) as cur:
        existing = _warehouse_schema(cur, namespace)
        schema = _upload_schema(rows, existing)
        by_table = _staged_values(rows, schema)
        if DISCARDS_TABLE in by_table:
            schema[DISCARDS_TABLE] = {**DISCARDS_SCHEMA, **existing.get(DISCARDS_TABLE, {})}
        for table in by_table:
            _prepare_table(cur, namespace, table, schema[table], existing)
        _write_tables(cur, namespace, by_table, merge, result, uuid_ts)
    return result
