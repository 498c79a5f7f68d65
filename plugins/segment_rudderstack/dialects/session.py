"""One warehouse connection (a DB-API session that only runs composed SQL) and a table as the warehouse
stores it (its names resolved through ``information_schema``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from segment_rudderstack.dialects.sql import SqlText

log = logging.getLogger(__name__)


class Session:
    """One DB-API connection; statements use the ``%s`` (pyformat) parameter style of both drivers."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: SqlText, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the driver's row count."""
        self._check(sql)
        with closing(self.conn.cursor()) as cur:
            self._run(cur, sql, params)
            return cur.rowcount

    def fetchall(self, sql: SqlText, params: Sequence[Any] = ()) -> list[tuple]:
        self._check(sql)
        with closing(self.conn.cursor()) as cur:
            self._run(cur, sql, params)
            return [tuple(row) for row in cur.fetchall()]

    @staticmethod
    def _check(sql: SqlText) -> None:
        if not isinstance(sql, SqlText):
            raise TypeError("SQL must be built with compose(); got a plain string")

    @staticmethod
    def _run(cur: Any, sql: SqlText, params: Sequence[Any]) -> None:
        log.debug("warehouse SQL: %s", sql)
        if params:
            cur.execute(sql, tuple(params))
        else:
            # Without parameters the drivers do not interpolate, so undo the %% escaping of identifiers.
            cur.execute(sql % (), None)


@dataclass(frozen=True)
class Table:
    name: str  # lower-case, as Segment names it
    actual: str  # as stored in the warehouse
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower name -> (actual, data_type)

    def column(self, name: str) -> str | None:
        found = self.columns.get(name)
        return found[0] if found else None


def require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime (received_at is stored in UTC), got naive {value!r}; "
            "pass e.g. datetime.now(UTC)"
        )
