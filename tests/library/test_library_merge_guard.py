"""Merge guard: a RudderStack destination in append mode (preferAppend, "Warehouse Append") would load the overlap
twice. The migration switches it to merge mode before anything loads (recorded; the rollback undoes it), or stops
at the preflight when the plan forbids changing it; the preflight also warns when the users table will not be
updated (skipUsersTable)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException
from psycopg2 import sql

from segment_rudderstack.operators.rollback import RollbackOperator
from segment_rudderstack.operators.rudderstack import HoldRudderStackSyncOperator, RestoreAppendModeOperator
from segment_rudderstack.safety.changelog import ChangeLog
from tests.library.world import (
    RUDDERSTACK_CONN,
    SEGMENT_CONN,
    context,
    preflight_operator,
)


def hold(world, destination_id, **kwargs):
    return HoldRudderStackSyncOperator(
        task_id="hold_sync", destination_id=destination_id, change_log_key=world.change_log_key, **kwargs
    )


def preflight(world, **kwargs):
    return preflight_operator(world, **{"destination_name": "Existing warehouse", **kwargs})


def test_hold_switches_an_append_destination_to_merge_mode_once_and_records_it(world):
    destination_id = world.make_rs_destination(manualSync=False, preferAppend=True)
    mark = world.mark()
    hold(world, destination_id).execute(context())
    config = world.rs_destination(destination_id)["config"]
    assert (config["manualSync"], config["preferAppend"]) == (True, False)
    assert [c["action"] for c in world.rudderstack_changes(mark)] == [
        "update_destination",
        "update_destination",
    ]
    change = ChangeLog(world.change_log_key).last(
        "rudderstack.destination", destination_id, "config.preferAppend"
    )
    assert (change.before, change.after) == (True, False)

    again = world.mark()
    hold(world, destination_id).execute(context())
    assert world.rudderstack_changes(again) == []


def test_merge_mode_is_what_deduplicates_the_overlap(world):
    """The emulator loads as rudder-server does: append mode keeps both copies of a message id, merge one."""
    events = [
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "u1",
            "messageId": "m-overlap",
            "receivedAt": "2026-11-29T12:00:00Z",
        }
    ]
    for merge in (False, True):
        schema = f"{world.schema}_{'merge' if merge else 'append'}"
        try:
            world.warehouse.load(schema, events, merge=merge, extra_columns={"context_source_id": "s"})
            world.warehouse.load(schema, events, merge=merge, extra_columns={"context_source_id": "s"})
            assert world.warehouse.event_ids(schema) == {"m-overlap": 1 if merge else 2}
        finally:
            with world.warehouse.connect() as conn, conn.cursor() as cur:
                cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_a_plan_that_forbids_the_change_stops_before_anything_changes(world):
    world.track(count=2)
    world.load()
    destination_id = world.make_rs_destination(manualSync=False, preferAppend=True)
    mark = world.mark()
    with pytest.raises(AirflowFailException, match="allow_merge_mode_change: false") as stopped:
        preflight(world, destination_id=destination_id, allow_merge_mode_change=False).execute(context())
    assert "preferAppend" in str(stopped.value) and "nothing was changed" in str(stopped.value)
    with pytest.raises(AirflowFailException, match="Nothing was changed"):
        hold(world, destination_id, allow_merge_mode_change=False).execute(context())
    assert world.changes(mark) == []
    assert world.rs_destination(destination_id)["config"]["manualSync"] is False


def test_preflight_judges_the_plans_config_for_a_destination_it_will_create(world):
    world.track(count=2)
    world.load()
    with pytest.raises(AirflowFailException, match="preferAppend"):
        preflight(
            world,
            destination_name="not created yet",
            destination_config={"preferAppend": True},
            allow_merge_mode_change=False,
        ).execute(context())
    summary = preflight(
        world, destination_name="not created yet", destination_config={"preferAppend": True}
    ).execute(context())
    assert summary["prefer_append"] is True


def test_preflight_warns_when_the_users_table_will_not_be_updated(world, capfd):
    world.track(count=2)
    world.load()
    destination_id = world.make_rs_destination(manualSync=True, skipUsersTable=True, preferAppend=True)
    summary = preflight(world, destination_id=destination_id).execute(context())
    assert (summary["skip_users_table"], summary["prefer_append"]) == (True, True)
    logged = capfd.readouterr().out
    assert "skipUsersTable" in logged and "users" in logged and "switches it off" in logged


def test_rollback_gives_the_destination_its_append_mode_back(world):
    destination_id = world.make_rs_destination(manualSync=False, preferAppend=True)
    hold(world, destination_id).execute(context())
    rollback = RollbackOperator(
        task_id="rollback",
        plan_name="p",
        segment_conn_id=SEGMENT_CONN,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        change_log_key=world.change_log_key,
    )
    undone = rollback.execute(context())["undone"]
    assert world.rs_destination(destination_id)["config"]["preferAppend"] is True
    assert any("preferAppend" in u for u in undone)
    again = world.mark()
    assert rollback.execute(context())["undone"] == []
    assert world.changes(again) == []


def test_append_mode_is_restored_after_the_duplicate_check_when_the_plan_asks(world):
    destination_id = world.make_rs_destination(manualSync=False, preferAppend=True)
    restore = RestoreAppendModeOperator(
        task_id="restore_append_mode", destination_id=destination_id, change_log_key=world.change_log_key
    )
    assert restore.execute(context())["restored"] is False  # nothing switched yet: nothing to give back
    hold(world, destination_id).execute(context())
    assert restore.execute(context())["restored"] is True
    assert world.rs_destination(destination_id)["config"]["preferAppend"] is True
    mark = world.mark()
    assert restore.execute(context())["restored"] is False
    assert world.changes(mark) == []
