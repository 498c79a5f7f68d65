"""The preflight's EXPLAIN check: on a real PostgreSQL, window queries on a table without an index on
received_at are reported as reading the whole table; with the index the preflight suggests, as index-backed
reading about the window's rows."""

from __future__ import annotations

import pytest

from segment_rudderstack.dialects import get_dialect
from segment_rudderstack.dialects.query_plans import window_query_plans
from segment_rudderstack.dialects.received_at_index import received_at_index_sql
from segment_rudderstack.dialects.sql import compose

ROWS = 50_000


@pytest.fixture
def tracks(pg_hook, unique):
    dialect = get_dialect(pg_hook)
    schema = f"srm_plans_{unique}"
    q = dialect.quote_identifier
    table = dialect.qualified(schema, "tracks")
    with dialect.session() as s:
        s.execute(compose("CREATE SCHEMA {s}", s=q(schema)))
        s.execute(
            compose(
                "CREATE TABLE {t} (id text, received_at timestamptz, context_source_id text, "
                "uuid_ts timestamptz)",
                t=table,
            )
        )
        # one event a minute for ~35 days: the trailing hour holds 60 of them
        s.execute(
            compose(
                "INSERT INTO {t} SELECT 'm' || g, now() - make_interval(mins => g), 'src', now() "
                "FROM generate_series(1, %s) AS g",
                t=table,
            ),
            [ROWS],
        )
        s.execute(compose("ANALYZE {t}", t=table))
    yield dialect, schema
    with dialect.session() as s:
        s.execute(compose("DROP SCHEMA {s} CASCADE", s=q(schema)))


def test_window_queries_without_an_index_are_reported_as_full_reads_and_with_it_as_index_backed(tracks):
    dialect, schema = tracks

    before = {p.query: p for p in window_query_plans(dialect, schema, ["tracks", "pages"])}

    assert set(before) == {"adoption", "duplicates"}  # pages does not exist: skipped
    for plan in before.values():
        assert plan.index_backed is False, plan.describe()
        assert plan.table_rows == ROWS and plan.rows_read >= ROWS * 0.9, plan.describe()
        assert "Seq Scan" in plan.detail

    with dialect.session() as s:
        s.conn.autocommit = True  # CREATE INDEX CONCURRENTLY cannot run inside a transaction
        s.execute(received_at_index_sql(dialect, schema, "tracks"))
        s.execute(compose("ANALYZE {t}", t=dialect.qualified(schema, "tracks")))

    after = {p.query: p for p in window_query_plans(dialect, schema, ["tracks"])}
    for plan in after.values():
        assert plan.index_backed is True, plan.describe()
        assert plan.rows_read < 1_000, plan.describe()  # about the hour's 60 rows, not the table's 50,000
        assert "srm_tracks_received_at" in plan.detail
