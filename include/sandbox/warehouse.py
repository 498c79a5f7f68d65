"""The sandbox warehouse: a real PostgreSQL, written by two loaders with their own rules.

- Segment's emulator loads with ``Warehouse.load_segment(schema, events)`` (``sandbox.segment_loader``:
  Segment's documented rules, plain append).
- RudderStack's emulator loads with ``Warehouse.load_rudderstack(events, source=..., destination=...,
  retried=...)`` (``sandbox.rudderstack_loader``: rudder-server's rules; the destination's config decides the
  namespace, merge or append, `users`, context traits).
- ``Warehouse.load(schema, events, merge=..., extra_columns=...)`` is kept for callers written before the
  split: without extra columns and merge it is Segment's loader; otherwise RudderStack's, with a
  destination built from the extra columns (``preferAppend`` = not merge).

Each load opens its own connection and transaction, so one `Warehouse` may be shared by threads; loads into
the same schema are serialised with a transaction-scoped advisory lock. Identifiers are quoted with
psycopg2.sql.Identifier and values are bound as parameters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from psycopg2 import sql

from sandbox.common import utcnow
from sandbox.rudderstack_loader import load_rudderstack
from sandbox.segment_loader import EVENT_TABLES, PG_TYPE_NAMES, TABLE_BY_TYPE, event_table_for, load_segment
from sandbox.segment_loader import rows_for_event as rows_for_event
from sandbox.segment_loader import snake_case as snake_case

__all__ = [
    "EVENT_TABLES",
    "TABLE_BY_TYPE",
    "LoadResult",
    "Warehouse",
    "WarehouseError",
    "event_table_for",
    "rows_for_event",
    "snake_case",
    "utcnow",
]


class WarehouseError(RuntimeError):
    """A load could not be written; the message says which schema/table and why."""


@dataclass
class LoadResult:
    """What a load wrote: the schema, rows per table (per-event tables and rudder_discards included), events
    it could not place, rows a merge replaced and batch duplicates it dropped."""

    schema: str = ""
    rows_by_table: dict[str, int] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    deleted_by_table: dict[str, int] = field(default_factory=dict)
    deduplicated_in_batch: int = 0

    @property
    def events_loaded(self) -> int:
        """Events written (each event counted once, in its standard table)."""
        return sum(n for t, n in self.rows_by_table.items() if t in EVENT_TABLES)


class Warehouse:
    """The sandbox warehouse at `dsn`: reads for the tools, and the two loaders."""

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

    @contextmanager
    def transaction(self, schema: str) -> Iterator[Any]:
        """A cursor in one transaction holding `schema`'s advisory lock, the schema created; any database
        error rolls everything back and is raised as WarehouseError."""
        conn = self.connect()
        try:
            with conn, conn.cursor() as cur:
                self._lock_schema(cur, schema)
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                yield cur
        except psycopg2.Error as exc:
            raise WarehouseError(
                f"load into schema {schema!r} failed and was rolled back ({type(exc).__name__}: "
                f"{str(exc).strip()}); check that the role can create tables in {schema!r}"
            ) from exc
        finally:
            conn.close()

    def load_segment(self, schema: str, events: Iterable[Mapping[str, Any]]) -> LoadResult:
        """Segment's loader (sandbox.segment_loader): append `events` into `schema`."""
        return load_segment(self, schema, events)

    def load_rudderstack(
        self,
        events: Iterable[Mapping[str, Any]],
        *,
        source: Mapping[str, Any],
        destination: Mapping[str, Any],
        retried: bool = False,
    ) -> LoadResult:
        """RudderStack's loader (sandbox.rudderstack_loader): one source's staged events for `destination`
        ({id, type, config}); `source` is {id, type}. The namespace is ToSafeNamespace(config.namespace)."""
        return load_rudderstack(self, events, source=source, destination=destination, retried=retried)

    def load(
        self,
        schema: str,
        events: Iterable[Mapping[str, Any]],
        *,
        merge: bool,
        extra_columns: Mapping[str, Any] | None = None,
    ) -> LoadResult:
        """The interface from before the two loaders (see the module docstring)."""
        if not merge and not extra_columns:
            return self.load_segment(schema, events)
        extra = dict(extra_columns or {})
        source = {
            "id": extra.get("context_source_id", "src"),
            "type": extra.get("context_source_type", "HTTP"),
        }
        destination = {
            "id": extra.get("context_destination_id", "dest"),
            "type": extra.get("context_destination_type", "POSTGRES"),
            "config": {"namespace": schema, "preferAppend": not merge},
        }
        return self.load_rudderstack(events, source=source, destination=destination)

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
