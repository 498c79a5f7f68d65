"""The sandbox ledger: every event the simulated clients send, and every event Segment dropped.

Each sent row may also keep the values its client set (`sent_values`, JSON: type, event/name, properties or
traits, context, userId, anonymousId, as handed to the SDK), which the value check (sandbox.value_check)
compares with the warehouse; rows recorded without them (by hand, or by an older ledger) keep NULL there.

Stored in schema `sandbox_ledger` (overridable, e.g. one per test) of the warehouse PostgreSQL, so the
reconciliation can compare it with the warehouse tables after a run, and so several processes (the sandbox
supervisor, a test, a CLI) share one record. Each call is its own short transaction on a pooled connection;
the pool is created lazily and re-created after a fork, so a `Ledger` is safe to share between threads and
to construct before forking.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extras import Json, RealDictCursor, execute_values
from psycopg2.pool import ThreadedConnectionPool

from sandbox.warehouse import TABLE_BY_TYPE

__all__ = ["DEFAULT_LEDGER_SCHEMA", "Ledger"]

DEFAULT_LEDGER_SCHEMA = "sandbox_ledger"
SDKS = ("segment", "rudderstack")


class Ledger:
    """`record_sent` / `record_dropped` writers and `sent()` / `dropped()` readers."""

    def __init__(self, dsn: str, *, schema: str = DEFAULT_LEDGER_SCHEMA, max_connections: int = 4):
        self.dsn = dsn
        self.schema = schema
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)  # psycopg2's pool raises when exhausted
        self._pool: ThreadedConnectionPool | None = None
        self._pool_pid: int | None = None
        self._ready = False

    # -- writers -------------------------------------------------------------------------------------

    def record_sent(
        self,
        message_id: str,
        *,
        event_type: str,
        table: str | None = None,
        sdk: str,
        sender: str,
        source: str,
        sent_at: datetime | str,
        schema: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one sent event. `table` defaults to the standard table of `event_type` (track -> tracks);
        `values`: what its client set (see the module's docstring), for the value check."""
        self.record_sent_many(
            [
                {
                    "message_id": message_id,
                    "event_type": event_type,
                    "table": table,
                    "sdk": sdk,
                    "sender": sender,
                    "source": source,
                    "sent_at": sent_at,
                    "schema": schema,
                    "values": values,
                }
            ]
        )

    def record_sent_many(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Record many sent events in one transaction; each item has record_sent's keyword names."""
        rows = []
        for item in items:
            sdk = item["sdk"]
            if sdk not in SDKS:
                raise ValueError(f"sdk must be one of {SDKS}, got {sdk!r}")
            event_type = str(item["event_type"]).lower()
            table = item.get("table") or TABLE_BY_TYPE.get(event_type)
            if table is None:
                raise ValueError(
                    f"cannot tell the table of event type {item['event_type']!r}; pass table= explicitly"
                )
            rows.append(
                (
                    str(item["message_id"]),
                    event_type,
                    table,
                    sdk,
                    item["sender"],
                    item["source"],
                    item.get("schema"),
                    item["sent_at"],
                    None if item.get("values") is None else Json(dict(item["values"])),
                )
            )
        if rows:
            self._execute_values(
                "INSERT INTO {}.sent (message_id, event_type, table_name, sdk, sender, source, schema_name, "
                "sent_at, sent_values) VALUES %s",
                rows,
            )
        return len(rows)

    def record_dropped(self, message_id: str, *, reason: str, at: datetime | str) -> None:
        """Record that an event reached Segment while no path to the warehouse was open."""
        self.record_dropped_many([{"message_id": message_id, "reason": reason, "at": at}])

    def record_dropped_many(self, items: Iterable[Mapping[str, Any]]) -> int:
        rows = [(str(i["message_id"]), i["reason"], i["at"]) for i in items]
        if rows:
            self._execute_values("INSERT INTO {}.dropped (message_id, reason, at) VALUES %s", rows)
        return len(rows)

    # -- readers -------------------------------------------------------------------------------------

    def sent(self, *, schema: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
        """Sent events, oldest first; `schema` keeps rows recorded for that schema or for none."""
        where, params = [], []
        if schema is not None:
            where.append(sql.SQL("(schema_name IS NULL OR schema_name = %s)"))
            params.append(schema)
        if source is not None:
            where.append(sql.SQL("source = %s"))
            params.append(source)
        query = sql.SQL(
            'SELECT message_id, event_type, table_name AS "table", sdk, sender, source, schema_name AS schema, '
            "sent_at FROM {}.sent {} ORDER BY sent_at, seq"
        ).format(
            sql.Identifier(self.schema),
            (sql.SQL("WHERE ") + sql.SQL(" AND ").join(where)) if where else sql.SQL(""),
        )
        return self._fetch(query, params)

    def sent_values(self, *, schema: str | None = None) -> dict[str, dict[str, Any]]:
        """message id -> the values its client set, for the rows that recorded them (`schema`: rows recorded
        for that schema or for none); the last recorded wins for an id recorded twice."""
        query = sql.SQL(
            "SELECT message_id, sent_values FROM {} WHERE sent_values IS NOT NULL{} ORDER BY seq"
        ).format(
            sql.SQL("{}.sent").format(sql.Identifier(self.schema)),
            sql.SQL(" AND (schema_name IS NULL OR schema_name = %s)") if schema is not None else sql.SQL(""),
        )
        rows = self._fetch(query, [schema] if schema is not None else [])
        return {row["message_id"]: row["sent_values"] for row in rows}

    def dropped(self) -> list[dict[str, Any]]:
        return self._fetch("SELECT message_id, reason, at FROM {}.dropped ORDER BY at, seq", [])

    def counts(self) -> dict[str, int]:
        rows = self._fetch(
            "SELECT (SELECT count(*) FROM {0}.sent) AS sent, (SELECT count(*) FROM {0}.dropped) AS dropped",
            [],
        )
        return {"sent": int(rows[0]["sent"]), "dropped": int(rows[0]["dropped"])}

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.closeall()
            self._pool = None

    # -- internals -----------------------------------------------------------------------------------

    def _get_pool(self) -> ThreadedConnectionPool:
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadedConnectionPool(0, self.max_connections, self.dsn, connect_timeout=10)
                self._pool_pid = os.getpid()
            return self._pool

    def _run(self, work):
        with self._slots:
            return self._run_on_pooled_connection(work)

    def _run_on_pooled_connection(self, work):
        pool = self._get_pool()
        conn = pool.getconn()
        broken = False
        try:
            if not self._ready:
                with conn, conn.cursor() as cur:
                    self._create(cur)
                self._ready = True
            with conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
                return work(cur)
        except psycopg2.OperationalError:
            broken = True
            raise
        finally:
            pool.putconn(conn, close=broken or conn.closed != 0)

    def _create(self, cur) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"sandbox-ledger:{self.schema}",))
        ident = sql.Identifier(self.schema)
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.sent (seq bigserial PRIMARY KEY, message_id text NOT NULL, "
                "event_type text NOT NULL, table_name text NOT NULL, sdk text NOT NULL, sender text NOT NULL, "
                "source text NOT NULL, schema_name text, sent_at timestamptz NOT NULL, "
                "recorded_at timestamptz NOT NULL DEFAULT now(), sent_values jsonb)"
            ).format(ident)
        )
        cur.execute(  # a ledger created before sent_values existed gets the column (NULL in its old rows)
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = 'sent' "
            "AND column_name = 'sent_values'",
            (self.schema,),
        )
        if cur.fetchone() is None:
            cur.execute(
                sql.SQL("ALTER TABLE {}.sent ADD COLUMN IF NOT EXISTS sent_values jsonb").format(ident)
            )
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.dropped (seq bigserial PRIMARY KEY, message_id text NOT NULL, "
                "reason text NOT NULL, at timestamptz NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())"
            ).format(ident)
        )
        cur.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS sent_message_id ON {}.sent (message_id)").format(ident)
        )

    def _execute_values(self, template: str, rows: list[tuple]) -> None:
        def work(cur):
            query = sql.SQL(template).format(sql.Identifier(self.schema)).as_string(cur)
            execute_values(cur, query, rows, page_size=1000)

        self._run(work)

    def _fetch(self, query: str | sql.Composable, params: list) -> list[dict[str, Any]]:
        if isinstance(query, str):
            query = sql.SQL(query).format(sql.Identifier(self.schema))

        def work(cur):
            cur.execute(query, params)
            return [dict(r) for r in cur.fetchall()]

        return self._run(work)
