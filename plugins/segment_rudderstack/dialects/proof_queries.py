"""The warehouse side of the proof from Segment's metrics: rows per time bucket and the latest row loaded from
a source, reading only the window (tables that are missing, or lack the columns, count zero)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.sql import SqlText, compose, join_sql
from segment_rudderstack.instants import as_utc
from segment_rudderstack.vocabulary import EVENT_TABLES

BUCKET_SECONDS = {"MINUTE": 60, "HOUR": 3600, "DAY": 86400}


_TRUNC_UNIT = {"MINUTE": SqlText("MINUTE"), "HOUR": SqlText("HOUR"), "DAY": SqlText("DAY")}


def _epoch(dialect: WarehouseDialect, column: SqlText, granularity: str) -> SqlText:
    """Seconds since the epoch (UTC) of a timestamp column, per warehouse. Snowflake truncates to the bucket
    first (``EPOCH_SECOND`` of a fractional second must not round into the next bucket)."""
    if dialect.name == "snowflake":
        return compose(
            "DATE_PART(EPOCH_SECOND, DATE_TRUNC('{u}', {c}))", u=_TRUNC_UNIT[granularity], c=column
        )
    return compose("EXTRACT(EPOCH FROM {c})", c=column)


def warehouse_rows_by_bucket(
    dialect: WarehouseDialect,
    schema: str,
    *,
    start: datetime,
    end: datetime,
    granularity: str,
    source_id: str | None = None,
    tables: Sequence[str] = EVENT_TABLES,
) -> dict[datetime, int]:
    """Rows with ``received_at`` in ``[start, end)`` per bucket (of ``context_source_id = source_id`` when
    given). Only the window is read; tables that are missing, or lack the columns, count zero."""
    seconds = BUCKET_SECONDS[granularity]
    counts: dict[datetime, int] = {}
    with dialect.session() as s:
        actual = dialect.resolve_schema(s, schema)
        loaded = dialect.load_tables(s, actual, tables) if actual else {}
        selects: list[SqlText] = []
        params: list[Any] = []
        for table in loaded.values():
            received = table.column("received_at")
            source_col = table.column("context_source_id")
            if not received or (source_id is not None and not source_col):
                continue
            r = dialect.quote_identifier(received)
            where = compose("{r} >= %s AND {r} < %s", r=r)
            part = [start, end]
            if source_id is not None:
                where = compose("{w} AND {c} = %s", w=where, c=dialect.quote_identifier(source_col))
                part.append(source_id)
            selects.append(
                compose(
                    "SELECT FLOOR({e} / %s) AS b, COUNT(*) AS n FROM {t} WHERE {w} GROUP BY 1",
                    e=_epoch(dialect, r, granularity),
                    t=dialect.qualified(actual, table.actual),
                    w=where,
                )
            )
            params += [seconds, *part]
        if selects:
            for bucket, n in s.fetchall(join_sql(" UNION ALL ", selects), params):
                moment = datetime.fromtimestamp(int(bucket) * seconds, UTC)
                counts[moment] = counts.get(moment, 0) + int(n)
    return dict(sorted(counts.items()))


def warehouse_last_received(
    dialect: WarehouseDialect,
    schema: str,
    *,
    source_id: str,
    since: datetime,
    tables: Sequence[str] = EVENT_TABLES,
) -> datetime | None:
    """The latest ``received_at`` loaded from ``source_id`` since ``since`` (None when nothing is loaded)."""
    latest: datetime | None = None
    with dialect.session() as s:
        actual = dialect.resolve_schema(s, schema)
        loaded = dialect.load_tables(s, actual, tables) if actual else {}
        for table in loaded.values():
            received, source_col = table.column("received_at"), table.column("context_source_id")
            if not received or not source_col:
                continue
            sql = compose(
                "SELECT MAX({r}) FROM {t} WHERE {r} >= %s AND {c} = %s",
                r=dialect.quote_identifier(received),
                t=dialect.qualified(actual, table.actual),
                c=dialect.quote_identifier(source_col),
            )
            value = s.fetchall(sql, [since, source_id])[0][0]
            if isinstance(value, datetime):
                value = as_utc(value)
                latest = value if latest is None or value > latest else latest
    return latest
