"""The shadow load's scratch schema (docs/shape-continuity.md): whether the warehouse user may create it, how
many tables it holds, and dropping it once the comparison is done (or by the rollback)."""

from __future__ import annotations

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.sql import compose


def may_create_schema(dialect: WarehouseDialect) -> bool | None:
    """Whether the current user may create a schema in the connection's database: PostgreSQL
    ``has_database_privilege(current_database(), 'CREATE')``; ``None`` (not known here) elsewhere, where
    RudderStack's own connection test is the check."""
    if dialect.name != "postgres":
        return None
    with dialect.session() as s:
        return bool(s.fetchall(compose("SELECT has_database_privilege(current_database(), 'CREATE')"))[0][0])


def table_count(dialect: WarehouseDialect, schema: str) -> int | None:
    """Base tables in ``schema`` (``None`` when the schema does not exist)."""
    with dialect.session() as s:
        actual = dialect.resolve_schema(s, schema)
        if actual is None:
            return None
        rows = s.fetchall(
            compose(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s "
                "AND table_type = 'BASE TABLE'"
            ),
            [actual],
        )
        return int(rows[0][0] or 0)


def drop_schema(dialect: WarehouseDialect, schema: str) -> bool:
    """Drop ``schema`` and everything in it; ``False`` when it is already gone."""
    with dialect.session() as s:
        actual = dialect.resolve_schema(s, schema)
        if actual is None:
            return False
        with dialect.transaction(s):
            s.execute(compose("DROP SCHEMA {s} CASCADE", s=dialect.quote_identifier(actual)))
    return True
