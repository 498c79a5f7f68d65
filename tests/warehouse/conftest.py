"""Warehouses for the dialect tests: the session's real PostgreSQL and a fakesnow Snowflake.

Both run through the real provider hooks (``PostgresHook`` from an ``AIRFLOW_CONN_*`` URI with the unix
socket host in the query string; ``SnowflakeHook`` whose ``snowflake.connector.connect`` fakesnow routes
to DuckDB), so the dialect code under test is exactly what runs in a DAG.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from segment_rudderstack.dialects import WarehouseDialect, get_dialect
from segment_rudderstack.dialects.sql import SqlText, compose, join_sql

PG_CONN_ID = "srm_test_warehouse_pg"
SF_CONN_ID = "srm_test_warehouse_sf"

# Segment-shaped columns per dialect (what each tool writes): name -> type
COLUMN_TYPES = {
    "postgres": {
        "id": "text",
        "anonymous_id": "text",
        "user_id": "text",
        "event": "text",
        "received_at": "timestamp with time zone",
        "uuid_ts": "timestamp with time zone",
        "context_library_name": "text",
        "context_source_id": "text",
        "payload": "text",
    },
    "snowflake": {
        "id": "VARCHAR",
        "anonymous_id": "VARCHAR",
        "user_id": "VARCHAR",
        "event": "VARCHAR",
        "received_at": "TIMESTAMP_TZ",
        "uuid_ts": "TIMESTAMP_NTZ",
        "context_library_name": "VARCHAR",
        "context_source_id": "VARCHAR",
        "payload": "VARCHAR",
    },
}

_counter = itertools.count()


def as_utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


@dataclass
class Warehouse:
    """A dialect plus test-only helpers to build Segment-shaped schemas the way each tool would."""

    kind: str
    dialect: WarehouseDialect
    created: list[str] = field(default_factory=list)

    def stored_name(self, name: str) -> str:
        """How Segment's unquoted DDL stores ``name`` (Snowflake: upper case)."""
        return self.dialect.fold_identifier(name)

    def _exec(self, sql: SqlText, params: Sequence[Any] = ()) -> None:
        with self.dialect.session() as s:
            s.execute(sql, params)

    def create_schema(self, schema: str) -> str:
        """Create ``schema`` (simple names folded as unquoted DDL would; others verbatim); return stored name."""
        stored = self.stored_name(schema)
        try:
            self._exec(compose("CREATE SCHEMA {s}", s=self.dialect.quote_identifier(stored)))
        except Exception:
            # fakesnow (0.12) creates a schema whose name holds '"' and then fails on its own follow-up
            # statement (a DuckDB parser error); the schema exists, which is all these tests need.
            if not (self.kind == "snowflake" and self.dialect.schema_exists(stored)):
                raise
        self.created.append(stored)
        return stored

    def create_table(self, schema: str, table: str, columns: Sequence[str] | None = None) -> None:
        types = COLUMN_TYPES[self.kind]
        cols = [c for c in (columns or types)]
        defs = join_sql(
            ", ",
            [
                compose("{c} " + types.get(c, "text" if self.kind == "postgres" else "VARCHAR"), c=self.q(c))
                for c in cols
            ],
        )
        self._exec(compose("CREATE TABLE {t} ({d})", t=self.qt(schema, table), d=defs))

    def insert(self, schema: str, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        cols = list(rows[0])
        with self.dialect.session() as s:
            for row in rows:
                s.execute(
                    compose(
                        "INSERT INTO {t} ({c}) VALUES ({p})",
                        t=self.qt(schema, table),
                        c=join_sql(", ", [self.q(c) for c in cols]),
                        p=join_sql(", ", [SqlText("%s")] * len(cols)),
                    ),
                    [row[c] for c in cols],
                )

    def rows(
        self, schema: str, table: str, columns: Sequence[str] = ("id", "received_at", "payload")
    ) -> list:
        with self.dialect.session() as s:
            got = s.fetchall(
                compose(
                    "SELECT {c} FROM {t}",
                    c=join_sql(", ", [self.q(c) for c in columns]),
                    t=self.qt(schema, table),
                )
            )
        return sorted((tuple(as_utc(v) for v in r) for r in got), key=repr)

    def q(self, name: str):
        return self.dialect.quote_identifier(self.stored_name(name))

    def qt(self, schema: str, table: str) -> SqlText:
        return compose("{s}.{t}", s=self.dialect.quote_identifier(schema), t=self.q(table))

    def drop_created(self) -> None:
        for schema in reversed(self.created):
            self._exec(compose("DROP SCHEMA IF EXISTS {s} CASCADE", s=self.dialect.quote_identifier(schema)))


@pytest.fixture(scope="session")
def pg_hook(pg_dsn: str):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    os.environ["AIRFLOW_CONN_" + PG_CONN_ID.upper()] = pg_dsn
    return PostgresHook(postgres_conn_id=PG_CONN_ID)


@pytest.fixture
def sf_hook() -> Iterator[Any]:
    import fakesnow
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    os.environ["AIRFLOW_CONN_" + SF_CONN_ID.upper()] = json.dumps(
        {
            "conn_type": "snowflake",
            "login": "migration",
            "password": "not-a-real-password",
            "extra": {"account": "fakesnow", "database": "ANALYTICS", "warehouse": "LOADING"},
        }
    )
    with fakesnow.patch():
        yield SnowflakeHook(snowflake_conn_id=SF_CONN_ID)


@pytest.fixture(params=["postgres", "snowflake"])
def warehouse(request) -> Iterator[Warehouse]:
    hook = request.getfixturevalue("pg_hook" if request.param == "postgres" else "sf_hook")
    wh = Warehouse(request.param, get_dialect(hook))
    try:
        yield wh
    finally:
        wh.drop_created()


@pytest.fixture
def unique() -> str:
    """A suffix that keeps schemas of different tests apart on the shared PostgreSQL."""
    return f"{os.getpid()}_{next(_counter)}"
