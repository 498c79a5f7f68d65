"""PostgreSQL: the ``received_at`` index that keeps the window queries' cost following the window, created as a
recorded change (the rollback drops it). Used when the plan sets ``warehouse.create_received_at_index``.

The adoption sensor and the duplicate check read only a trailing window of each event table; without an index
on ``received_at`` every check reads the whole table (docs/scaling.md). The preflight reports it
(``window_plans``); this step creates ``srm_<table>_received_at`` with ``CREATE INDEX CONCURRENTLY`` (loads keep
writing) on every event table that has no index starting with ``received_at``. Other warehouses: nothing to do
(Snowflake prunes micro-partitions; see the preflight's report).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segment_rudderstack.dialects.received_at_index import (
    drop_index_sql,
    has_received_at_index,
    index_name,
    own_index_exists,
    received_at_index_sql,
    run_outside_transaction,
)
from segment_rudderstack.operators.base import MigrationOperator
from segment_rudderstack.operators.undo import Undo, undoes
from segment_rudderstack.vocabulary import EVENT_TABLES, ChangeTarget

SEPARATOR = "|"


def index_target_id(conn_id: str, schema: str, table: str) -> str:
    """``<warehouse conn id>|<schema>|<table>``: what the rollback needs to find and drop the index."""
    return SEPARATOR.join((conn_id, schema, table))


class EnsureReceivedAtIndexOperator(MigrationOperator):
    """Create the ``received_at`` index on each event table that has no index starting with ``received_at``
    (PostgreSQL; recorded, undone by the rollback).

    :param warehouse_conn_id: the warehouse connection.
    :param namespace: the schema.
    :param tables: tables to cover (default: the event tables).
    """

    template_fields = (*MigrationOperator.template_fields,)

    def __init__(
        self, *, warehouse_conn_id: str, namespace: str, tables: Sequence[str] | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id
        self.namespace = namespace
        self.tables = list(tables) if tables else list(EVENT_TABLES)

    def execute(self, context: Any) -> dict[str, Any]:
        from segment_rudderstack.dialects import dialect_for_conn_id

        dialect = dialect_for_conn_id(self.warehouse_conn_id)
        if dialect.name != "postgres":
            self.log.info("%s warehouse: no index to create (window queries rely on pruning)", dialect.name)
            return {"created": [], "reason": f"{dialect.name}: not applicable"}
        with dialect.session() as s:
            schema = dialect.resolve_schema(s, self.namespace)
            loaded = dialect.load_tables(s, schema, self.tables) if schema else {}
            tables = {name: t.actual for name, t in loaded.items() if t.column("received_at")}
            backed = {name for name, actual in tables.items() if has_received_at_index(s, schema, actual)}
        created = []
        for name, actual in sorted(tables.items()):
            if self.apply_change(
                context,
                target=ChangeTarget.WAREHOUSE_INDEX,
                target_id=index_target_id(self.warehouse_conn_id, schema, actual),
                field="exists",
                before=name in backed,
                after=True,
                apply=lambda t=actual: run_outside_transaction(
                    dialect, received_at_index_sql(dialect, schema, t)
                ),
                outcome=lambda t=actual: {"object_id": index_name(t)},
            ):
                created.append(f"{schema}.{index_name(actual)}")
        return {"created": created, "already_indexed": sorted(backed)}


@undoes(ChangeTarget.WAREHOUSE_INDEX, "exists")
def undo_index_created(undo: Undo, context: Any, target_id: str, field: str, change: Any = None):
    """The rollback's step for :class:`EnsureReceivedAtIndexOperator`: drop the index it created."""
    from segment_rudderstack.dialects import dialect_for_conn_id

    conn_id, schema, table = target_id.split(SEPARATOR)
    dialect = dialect_for_conn_id(conn_id)
    if undo.rollback.apply_change(
        context,
        target=ChangeTarget.WAREHOUSE_INDEX,
        target_id=target_id,
        field=field,
        before=own_index_exists(dialect, schema, table),
        after=False,
        apply=lambda: run_outside_transaction(dialect, drop_index_sql(dialect, schema, table)),
    ):
        return f"dropped index {schema}.{index_name(table)}"
    return None
