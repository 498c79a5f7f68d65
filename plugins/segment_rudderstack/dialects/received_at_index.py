"""PostgreSQL's ``received_at`` index, the SQL the index step and its undo need: whether a table has an index
starting with ``received_at``, whether the migration's own index exists, and creating or dropping it without
locking writers (``CONCURRENTLY``, outside a transaction)."""

from __future__ import annotations

from typing import Any

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.sql import SqlText, compose


def index_name(table: str) -> str:
    """The migration's own index on ``table`` (cut at PostgreSQL's 63-character identifier limit)."""
    return f"srm_{table}_received_at"[:63]


def received_at_index_sql(dialect: WarehouseDialect, schema: str, table: str) -> SqlText:
    """The index that makes the window queries of ``table`` index-backed (run it outside a transaction)."""
    return compose(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {n} ON {t} ({c})",
        n=dialect.quote_identifier(index_name(table)),
        t=dialect.qualified(schema, table),
        c=dialect.quote_identifier("received_at"),
    )


def drop_index_sql(dialect: WarehouseDialect, schema: str, table: str) -> SqlText:
    return compose(
        "DROP INDEX CONCURRENTLY IF EXISTS {s}.{i}",
        s=dialect.quote_identifier(schema),
        i=dialect.quote_identifier(index_name(table)),
    )


def has_received_at_index(session: Any, schema: str, table: str) -> bool:
    """Whether an index of ``table`` starts with ``received_at`` (any name: Segment's, RudderStack's, ours)."""
    return bool(
        session.fetchall(
            compose(
                "SELECT 1 FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] "
                "WHERE n.nspname = %s AND t.relname = %s AND a.attname = 'received_at'"
            ),
            [schema, table],
        )
    )


def own_index_exists(dialect: WarehouseDialect, schema: str, table: str) -> bool:
    """Whether the migration's own index on ``table`` exists."""
    with dialect.session() as s:
        return bool(
            s.fetchall(
                compose("SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s"),
                [schema, index_name(table)],
            )
        )


def run_outside_transaction(dialect: WarehouseDialect, sql: SqlText) -> None:
    with dialect.session() as s:
        s.conn.autocommit = True  # CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction
        s.execute(sql)
