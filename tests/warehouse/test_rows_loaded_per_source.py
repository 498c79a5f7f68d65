"""The upload sensor's observation: rows each source got loaded by one RudderStack destination after the release,
from RudderStack's own columns (context_destination_id, context_source_id, uuid_ts, received_at), on PostgreSQL
and Snowflake (fakesnow), identifiers quoted and values bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

RELEASE = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
COLUMNS = ["id", "received_at", "uuid_ts", "context_source_id", "context_destination_id"]


def row(message_id, source, destination, loaded, received=None):
    return {
        "id": message_id,
        "received_at": received or loaded - timedelta(minutes=5),
        "uuid_ts": loaded,
        "context_source_id": source,
        "context_destination_id": destination,
    }


def test_counts_rows_per_source_loaded_by_the_destination_after_the_release(warehouse, unique):
    schema = warehouse.create_schema(f"upload_{unique}")
    warehouse.create_table(schema, "tracks", COLUMNS)
    warehouse.create_table(schema, "identifies", COLUMNS)
    warehouse.create_table(schema, "pages", ["id", "received_at", "uuid_ts"])  # Segment-only: not counted
    after, before = RELEASE + timedelta(minutes=1), RELEASE - timedelta(minutes=1)
    warehouse.insert(
        schema,
        "tracks",
        [
            row("a1", "src_webhook", "dst_rs", after),
            row("a2", "src_webhook", "dst_rs", after),
            row("b1", "src_app", "dst_rs", before),  # loaded before the release: not this upload
            row("c1", "src_app", "dst_other", after),  # another destination
            row("d1", "src_not_asked", "dst_rs", after),
            row(
                "e1", "src_app", "dst_rs", after, received=RELEASE - timedelta(days=3)
            ),  # outside the lookback
        ],
    )
    warehouse.insert(schema, "identifies", [row("f1", "src_webhook", "dst_rs", after)])
    warehouse.insert(schema, "pages", [{"id": "p1", "received_at": after, "uuid_ts": after}])

    counts = warehouse.dialect.rows_loaded_per_source(
        schema,
        destination_id="dst_rs",
        source_ids=["src_webhook", "src_app", "src_webhook"],
        loaded_after=RELEASE,
        received_after=RELEASE - timedelta(days=1),
    )

    assert counts == {"src_webhook": 3, "src_app": 0}


def test_values_are_bound_not_spliced(warehouse, unique):
    schema = warehouse.create_schema(f"upload_inj_{unique}")
    warehouse.create_table(schema, "tracks", COLUMNS)
    hostile = "x' OR '1'='1"
    warehouse.insert(schema, "tracks", [row("a1", "src_app", "dst_rs", RELEASE + timedelta(minutes=1))])

    counts = warehouse.dialect.rows_loaded_per_source(
        schema,
        destination_id=hostile,
        source_ids=[hostile, "src_app"],
        loaded_after=RELEASE,
        received_after=RELEASE - timedelta(days=1),
    )

    assert counts == {hostile: 0, "src_app": 0}


def test_a_missing_schema_counts_zero_and_naive_times_are_refused(warehouse, unique):
    counts = warehouse.dialect.rows_loaded_per_source(
        f"nowhere_{unique}",
        destination_id="d",
        source_ids=["s"],
        loaded_after=RELEASE,
        received_after=RELEASE - timedelta(days=1),
    )
    assert counts == {"s": 0}
    with pytest.raises(ValueError, match="timezone-aware"):
        warehouse.dialect.rows_loaded_per_source(
            f"nowhere_{unique}",
            destination_id="d",
            source_ids=["s"],
            loaded_after=RELEASE.replace(tzinfo=None),
            received_after=RELEASE,
        )
