"""Are the window queries index-backed? The preflight asks the warehouse (EXPLAIN) and reports it.

The adoption sensor and the duplicate check read only a trailing window of each event table (a predicate on
``received_at``). Their cost follows the window only when the warehouse can find the window without reading the
whole table: an index on ``received_at`` (PostgreSQL), or micro-partitions pruned by ``received_at``
(Snowflake, whose tables loaded in arrival order cluster naturally by it). Without that, each check reads the
table: 12.8x slower from 1M to 10M rows here, instead of ~1x (docs/scaling.md).

:func:`window_query_plans` runs ``EXPLAIN`` on the very queries a check sends and says, per table and query,
whether the window is index-backed (or pruned), the rows the warehouse expects one check to read and the
table's size. :func:`segment_rudderstack.dialects.received_at_index.received_at_index_sql` is the index to create on PostgreSQL when it is not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.dialects.received_at_index import received_at_index_sql
from segment_rudderstack.dialects.sql import SqlText, compose

log = logging.getLogger(__name__)

INDEX_NODES = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}
FULL_TABLE = -1  # rows_read placeholder: every row of the table


@dataclass(frozen=True)
class WindowQueryPlan:
    """What the warehouse plans for one window query on one table."""

    table: str
    query: str  # "adoption" or "duplicates"
    index_backed: bool | None  # None: the warehouse did not say (EXPLAIN unavailable)
    rows_read: int | None  # rows the warehouse expects one check to read (PostgreSQL estimate)
    table_rows: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        verdict = {True: "index-backed", False: "NOT index-backed", None: "unknown"}[self.index_backed]
        rows = (
            "" if self.rows_read is None else f", reads ~{self.rows_read:,} of ~{self.table_rows or 0:,} rows"
        )
        return f"{self.table} {self.query}: {verdict}{rows} ({self.detail})"


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []) or []:
        yield from _nodes(child)


def _postgres_plan(session, sql: SqlText, params: list[Any], table: str, query: str) -> WindowQueryPlan:
    (raw,) = session.fetchall(compose("EXPLAIN (FORMAT JSON) {q}", q=sql), params)[0]
    document = raw if isinstance(raw, list) else json.loads(raw)
    nodes = list(_nodes(document[0]["Plan"]))
    on_table = [n for n in nodes if n.get("Relation Name", "").lower() == table.lower()]
    index_nodes = [n for n in nodes if n.get("Node Type") in INDEX_NODES]
    scans = [n for n in on_table if "Scan" in n.get("Node Type", "")]
    full = any(n.get("Node Type") == "Seq Scan" for n in scans)
    backed = bool(index_nodes) and not full
    # A sequential scan reads the whole table (its "Plan Rows" are the rows left after the filter); an index
    # scan reads about the rows it returns.
    rows = FULL_TABLE if full else (sum(int(n.get("Plan Rows") or 0) for n in scans) if scans else None)
    detail = ", ".join(
        f"{n['Node Type']}" + (f" using {n['Index Name']}" if n.get("Index Name") else "")
        for n in scans + index_nodes
    )
    return WindowQueryPlan(table, query, backed, rows, None, detail or "no scan node")


def _snowflake_plan(session, sql: SqlText, params: list[Any], table: str, query: str) -> WindowQueryPlan:
    rows = session.fetchall(compose("EXPLAIN USING JSON {q}", q=sql), params)
    stats = json.loads(rows[0][0]).get("GlobalStats", {})
    total, assigned = stats.get("partitionsTotal"), stats.get("partitionsAssigned")
    if total is None or assigned is None:
        return WindowQueryPlan(table, query, None, None, None, f"EXPLAIN gave no partition counts: {stats}")
    pruned = int(assigned) < int(total) or int(total) <= 1
    return WindowQueryPlan(
        table, query, pruned, None, None, f"partitions {assigned} of {total} scanned (pruning on received_at)"
    )


def window_query_plans(
    dialect,
    schema: str,
    tables: Iterable[str],
    *,
    window: timedelta = timedelta(hours=1),
    webhook_source_id: str = "(webhook source)",
) -> list[WindowQueryPlan]:
    """EXPLAIN the adoption and duplicate queries of each existing table, over a trailing ``window``."""
    until = datetime.now(UTC)
    since = until - window
    explain = _postgres_plan if dialect.name == "postgres" else _snowflake_plan
    plans: list[WindowQueryPlan] = []
    with dialect.session() as s:
        actual = dialect.resolve_schema(s, schema)
        loaded = dialect.load_tables(s, actual, list(tables)) if actual else {}
        for name, table in loaded.items():
            if not table.column("received_at"):
                continue
            size = _table_rows(dialect, s, actual, table.actual)
            queries = {
                "adoption": dialect._adoption_select(actual, table, webhook_source_id, [], since, until),
                "duplicates": dialect._count_sql(actual, table, since),
            }
            for query, (sql, params) in queries.items():
                try:
                    plan = explain(s, sql, list(params), table.actual, query)
                except Exception as error:  # a warehouse (or emulator) without EXPLAIN: say so, do not fail
                    plan = WindowQueryPlan(
                        name, query, None, None, None, f"EXPLAIN failed: {type(error).__name__}"
                    )
                rows_read = size if plan.rows_read == FULL_TABLE else plan.rows_read
                plans.append(WindowQueryPlan(name, query, plan.index_backed, rows_read, size, plan.detail))
    return plans


def _table_rows(dialect, session, schema: str, table: str) -> int | None:
    """The table's row count as the catalog estimates it (no scan)."""
    try:
        if dialect.name == "postgres":
            rows = session.fetchall(
                SqlText(
                    "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relname = %s"
                ),
                [schema, table],
            )
        else:
            rows = session.fetchall(
                SqlText(
                    "SELECT row_count FROM information_schema.tables WHERE table_schema = %s AND table_name = %s"
                ),
                [schema, table],
            )
        value = rows[0][0] if rows else None
        return None if value is None or int(value) < 0 else int(value)
    except Exception:
        return None


def window_query_report(
    warehouse_conn_id: str, namespace: str, tables: Iterable[str], logger=log
) -> list[dict]:
    """For the preflight: log one line per table and query, warn about those not index-backed, return them."""
    from segment_rudderstack.dialects import dialect_for_conn_id

    dialect = dialect_for_conn_id(warehouse_conn_id)
    plans = window_query_plans(dialect, namespace, tables)
    for plan in plans:
        logger.info("window query: %s", plan.describe())
    slow = sorted({p.table for p in plans if p.index_backed is False})
    if slow and dialect.name == "postgres":
        logger.warning(
            "window queries on %s read the whole table each check (no index on received_at): the adoption and "
            "duplicate checks get slower as the table grows. Create the index, e.g. %s (docs/scaling.md)",
            slow,
            received_at_index_sql(dialect, namespace, slow[0]),
        )
    elif slow:
        logger.warning(
            "window queries on %s scan every micro-partition (no pruning on received_at): consider clustering "
            "those tables by received_at (docs/scaling.md)",
            slow,
        )
    return [p.to_dict() for p in plans]
