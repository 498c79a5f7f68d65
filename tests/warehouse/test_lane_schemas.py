"""Two lanes in one warehouse, on PostgreSQL and on Snowflake (fakesnow): each lane's checks read only its own
schema, whether given the plan's spelling (lower case) or the namespace RudderStack gets (upper case on
Snowflake, as Snowflake stores Segment's unquoted schema and table names)."""

from __future__ import annotations

from datetime import timedelta

from segment_rudderstack.plan.model import Lane
from tests.warehouse.test_dialects import NOW, WEBHOOK_SOURCE, event


def test_each_lane_reads_only_its_own_schema_in_either_spelling(warehouse, unique):
    web = Lane(
        name=f"web_{unique}",
        schema=f"web_{unique}",
        sources=(),
        destination_name="d",
        segment_source_name="s",
    )
    mobile = Lane(
        name=f"mob_{unique}",
        schema=f"mob_{unique}",
        sources=(),
        destination_name="d",
        segment_source_name="s",
    )
    kind = "SNOWFLAKE" if warehouse.kind == "snowflake" else "POSTGRES"
    for lane in (web, mobile):
        stored = warehouse.create_schema(lane.schema)
        if warehouse.kind == "snowflake":
            assert (
                stored == lane.schema.upper() == lane.namespace_for(kind)
            )  # as Snowflake and RudderStack name it
        warehouse.create_table(stored, "tracks")
    since = NOW - timedelta(hours=1)
    warehouse.insert(
        warehouse.stored_name(web.schema),
        "tracks",
        [
            event("w1", since, source=WEBHOOK_SOURCE),
            event("w2", since + timedelta(minutes=1)),
            event("w2", since + timedelta(minutes=2)),  # a duplicate in the web lane only
        ],
    )
    warehouse.insert(
        warehouse.stored_name(mobile.schema),
        "tracks",
        [event(f"m{i}", since + timedelta(minutes=i)) for i in range(4)],
    )
    dialect = warehouse.dialect
    for spelling in (web.schema, web.namespace_for(kind)):
        assert dialect.list_tables(spelling) == {"tracks"}
        assert dialect.count_duplicates(spelling, ["tracks"])["tracks"].ids_with_duplicates == 1
        sample = dialect.adoption_share(spelling, webhook_source_id=WEBHOOK_SOURCE, since=since, until=NOW)
        assert (sample.total, sample.via_segment) == (3, 1)
    for spelling in (mobile.schema, mobile.namespace_for(kind)):
        assert dialect.count_duplicates(spelling, ["tracks"])["tracks"].ids_with_duplicates == 0
        sample = dialect.adoption_share(spelling, webhook_source_id=WEBHOOK_SOURCE, since=since, until=NOW)
        assert (sample.total, sample.via_segment) == (4, 0)
