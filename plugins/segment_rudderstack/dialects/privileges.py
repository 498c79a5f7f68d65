"""PostgreSQL: what the warehouse user may do in a schema (``has_schema_privilege``, ``has_table_privilege``),
read for the preflight before anything changes. Other warehouses: not read here (RudderStack's own connection
test covers them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.sql import compose


@dataclass(frozen=True)
class SchemaPrivileges:
    """The warehouse user's privileges on a schema and on those of ``tables`` that exist in it."""

    user: str
    schema_exists: bool
    usage: bool = False
    create: bool = False
    #: ``{table: (insert, delete)}`` for the tables that exist (read only with USAGE on the schema)
    tables: dict[str, tuple[bool, bool]] = field(default_factory=dict)


def schema_privileges(
    dialect: WarehouseDialect, namespace: str, tables: Sequence[str] = ()
) -> SchemaPrivileges:
    """Read the current user's privileges on ``namespace`` and its ``tables`` (PostgreSQL)."""
    with dialect.session() as s:
        (user,) = s.fetchall(compose("SELECT current_user"))[0]
        rows = s.fetchall(compose("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s"), (namespace,))
        if not rows:
            return SchemaPrivileges(user=user, schema_exists=False)
        usage, create = s.fetchall(
            compose("SELECT has_schema_privilege(%s, 'USAGE'), has_schema_privilege(%s, 'CREATE')"),
            (namespace, namespace),
        )[0]
        found: dict[str, tuple[bool, bool]] = {}
        for table in tables if usage else ():
            exists = s.fetchall(
                compose(
                    "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relname = %s"
                ),
                (namespace, table),
            )
            if not exists:
                continue
            qualified = str(dialect.qualified(namespace, table))  # a bound value (regclass text)
            insert, delete = s.fetchall(
                compose("SELECT has_table_privilege(%s, 'INSERT'), has_table_privilege(%s, 'DELETE')"),
                (qualified, qualified),
            )[0]
            found[table] = (bool(insert), bool(delete))
    return SchemaPrivileges(
        user=user, schema_exists=True, usage=bool(usage), create=bool(create), tables=found
    )
