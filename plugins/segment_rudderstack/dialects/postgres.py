"""PostgreSQL: duplicate rows are told apart by their physical row id (``ctid``), so one DELETE does it."""

from __future__ import annotations

from datetime import datetime

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.session import Session, Table
from segment_rudderstack.dialects.sql import compose


class PostgresDialect(WarehouseDialect):
    name = "postgres"
    conn_types = ("postgres",)
    folds_to = "lower"

    def _remove_duplicates(self, s: Session, schema: str, table: Table, since: datetime | None) -> int:
        window, params = self._window(table, since)
        sql = compose(
            "DELETE FROM {t} AS target USING ("
            "SELECT ctid AS row_ref, ROW_NUMBER() OVER (PARTITION BY {i} ORDER BY {o}) AS copy_rank "
            "FROM {t} WHERE {i} IS NOT NULL{w}"
            ") AS ranked WHERE target.ctid = ranked.row_ref AND ranked.copy_rank > 1",
            t=self.qualified(schema, table.actual),
            i=self._id_column(table),
            o=self._keep_order(table),
            w=window,
        )
        return s.execute(sql, params)
