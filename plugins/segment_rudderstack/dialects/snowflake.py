"""Snowflake: no physical row id, so the affected ids are rebuilt from a temporary table of one row each.

The keeper rows are copied into a session-scoped temporary table first (DDL commits implicitly in
Snowflake, so it cannot sit inside the transaction), then, atomically, every row of those ids in the
window is deleted and the keepers are inserted back. A row of the same id loaded between the two steps
is a copy of the same event, so the event still ends up present exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.session import Session, Table
from segment_rudderstack.dialects.sql import SqlText, compose


class SnowflakeDialect(WarehouseDialect):
    name = "snowflake"
    conn_types = ("snowflake",)
    folds_to = "upper"

    @contextmanager
    def transaction(self, session: Session) -> Iterator[None]:
        # The Snowflake connector runs in autocommit mode; an explicit block makes the statements atomic.
        session.execute(SqlText("BEGIN TRANSACTION"))
        try:
            yield
        except BaseException:
            session.execute(SqlText("ROLLBACK"))
            raise
        session.execute(SqlText("COMMIT"))

    def _remove_duplicates(self, s: Session, schema: str, table: Table, since: datetime | None) -> int:
        window, window_params = self._window(table, since)
        target = self.qualified(schema, table.actual)
        ids = self._id_column(table)
        # A temporary table is private to this session and lives in the current schema: use the target's
        # (the session may have none, and the migration user can create tables there).
        s.execute(compose("USE SCHEMA {s}", s=self.quote_identifier(schema)))
        keepers = self.quote_identifier(f"SRM_DEDUP_{uuid.uuid4().hex.upper()}")
        s.execute(
            compose(
                "CREATE TEMPORARY TABLE {k} AS SELECT * FROM {t} WHERE {i} IN ("
                "SELECT {i} FROM {t} WHERE {i} IS NOT NULL{w} GROUP BY {i} HAVING COUNT(*) > 1"
                "){w} QUALIFY ROW_NUMBER() OVER (PARTITION BY {i} ORDER BY {o}) = 1",
                k=keepers,
                t=target,
                i=ids,
                w=window,
                o=self._keep_order(table),
            ),
            window_params * 2,
        )
        try:
            with self.transaction(s):
                deleted = s.execute(
                    compose(
                        "DELETE FROM {t} WHERE {i} IN (SELECT {i} FROM {k}){w}",
                        t=target,
                        i=ids,
                        k=keepers,
                        w=window,
                    ),
                    window_params,
                )
                inserted = s.execute(compose("INSERT INTO {t} SELECT * FROM {k}", t=target, k=keepers))
        finally:
            s.execute(compose("DROP TABLE IF EXISTS {k}", k=keepers))
        return deleted - inserted
