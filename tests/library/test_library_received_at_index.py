"""The plan's optional received_at index (PostgreSQL): created where the window queries are not index-backed,
recorded in the change log, skipped when already there, and dropped by the rollback."""

from __future__ import annotations

from psycopg2 import sql

from segment_rudderstack.operators.indexes import EnsureReceivedAtIndexOperator
from segment_rudderstack.operators.rollback import RollbackOperator
from segment_rudderstack.safety.changelog import ChangeLog
from segment_rudderstack.vocabulary import ChangeTarget
from tests.library.world import RUDDERSTACK_CONN, SEGMENT_CONN, WAREHOUSE_CONN, context


def indexes(world) -> set[str]:
    with world.warehouse.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (world.schema,))
        return {row[0] for row in cur.fetchall()}


def test_index_is_created_recorded_and_dropped_by_the_rollback(world):
    world.track(count=5)
    world.load()  # Segment's load creates the event tables, without an index on received_at
    with world.warehouse.connect() as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("ANALYZE {}.{}").format(sql.Identifier(world.schema), sql.Identifier("tracks")))
    assert "srm_tracks_received_at" not in indexes(world)
    ensure = EnsureReceivedAtIndexOperator(
        task_id="create_received_at_index",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        tables=["tracks"],
        change_log_key=world.change_log_key,
    )

    result = ensure.execute(context())

    assert result["created"] == [f"{world.schema}.srm_tracks_received_at"]
    assert "srm_tracks_received_at" in indexes(world)
    [change] = [
        c for c in ChangeLog(world.change_log_key).latest() if c.target == ChangeTarget.WAREHOUSE_INDEX
    ]
    assert (change.field, change.before, change.after) == ("exists", False, True)
    assert ensure.execute(context())["created"] == []  # idempotent: now index-backed

    rollback = RollbackOperator(
        task_id="rollback",
        plan_name="p",
        segment_conn_id=SEGMENT_CONN,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        change_log_key=world.change_log_key,
    )
    undone = rollback.execute(context())["undone"]

    assert f"dropped index {world.schema}.srm_tracks_received_at" in undone
    assert "srm_tracks_received_at" not in indexes(world)
