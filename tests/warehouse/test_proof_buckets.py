"""Rows per time bucket (the warehouse side of the proof from Segment's metrics) on PostgreSQL and Snowflake
(fakesnow): the same buckets Segment labels (start of the minute / hour in UTC), only the window counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from segment_rudderstack.dialects.proof_queries import warehouse_last_received, warehouse_rows_by_bucket
from tests.warehouse.test_dialects import WEBHOOK_SOURCE, event

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_rows_are_counted_per_utc_bucket_of_received_at_and_per_source(warehouse, unique):
    schema = warehouse.create_schema(f"buckets_{unique}")
    warehouse.create_table(schema, "tracks")
    warehouse.create_table(schema, "pages")
    warehouse.insert(
        schema,
        "tracks",
        [
            event("a", T0 + timedelta(seconds=1), source=WEBHOOK_SOURCE),
            event("b", T0 + timedelta(seconds=59, microseconds=999_000), source=WEBHOOK_SOURCE),
            event("c", T0 + timedelta(minutes=1), source=WEBHOOK_SOURCE),
            event("d", T0 + timedelta(minutes=1, seconds=5)),  # another source
            event("early", T0 - timedelta(seconds=1), source=WEBHOOK_SOURCE),  # before the window
        ],
    )
    warehouse.insert(
        schema, "pages", [event("p", T0 + timedelta(minutes=1, seconds=30), source=WEBHOOK_SOURCE)]
    )
    start, end = T0, T0 + timedelta(minutes=2)

    by_source = warehouse_rows_by_bucket(
        warehouse.dialect, schema, start=start, end=end, granularity="MINUTE", source_id=WEBHOOK_SOURCE
    )
    assert by_source == {T0: 2, T0 + timedelta(minutes=1): 2}
    everything = warehouse_rows_by_bucket(warehouse.dialect, schema, start=start, end=end, granularity="HOUR")
    assert everything == {T0: 5}
    assert warehouse_last_received(
        warehouse.dialect, schema, source_id=WEBHOOK_SOURCE, since=start
    ) == T0 + timedelta(minutes=1, seconds=30)
