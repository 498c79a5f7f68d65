"""The shadow load's scratch schema (dialects/scratch_schema.py) on PostgreSQL and on Snowflake (fakesnow): how
many tables it holds, dropping it once (the comparison's clean-up and the rollback's undo), and whether the
warehouse user may create it (known on PostgreSQL; on Snowflake RudderStack's own connection test is the check)."""

from __future__ import annotations

from segment_rudderstack.dialects.scratch_schema import drop_schema, may_create_schema, table_count


def test_the_scratch_schema_is_counted_then_dropped_once_with_its_tables(warehouse, unique):
    name = f"app_events_rs_shadow_{unique}"
    assert (
        table_count(warehouse.dialect, name) is None
    )  # not there yet: RudderStack creates it on its first load
    assert drop_schema(warehouse.dialect, name) is False

    schema = warehouse.create_schema(name)
    assert table_count(warehouse.dialect, name) == 0  # exists, empty: the plan may name it
    warehouse.create_table(schema, "tracks", ["id", "received_at"])
    warehouse.create_table(schema, "order_completed", ["id", "received_at"])
    assert table_count(warehouse.dialect, name) == 2

    assert drop_schema(warehouse.dialect, name) is True
    assert table_count(warehouse.dialect, name) is None
    assert drop_schema(warehouse.dialect, name) is False  # a second undo finds nothing to do


def test_whether_the_user_may_create_a_schema_is_known_on_postgres_only(warehouse):
    allowed = may_create_schema(warehouse.dialect)
    if warehouse.kind == "postgres":
        assert allowed is True  # the sandbox's user owns its database
    else:
        assert allowed is None
