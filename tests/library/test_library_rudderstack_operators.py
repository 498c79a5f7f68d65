"""RudderStack-side operators against the RudderStack emulator: first run changes, re-run and dry run do not."""

from __future__ import annotations

from datetime import datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from segment_rudderstack.operators.rudderstack import (
    EnsureRudderStackDestinationOperator,
    EnsureRudderStackSegmentSourceOperator,
    HoldRudderStackSyncOperator,
    ReleaseRudderStackSyncOperator,
)
from segment_rudderstack.safety.changelog import ChangeLog
from tests.library.world import DESTINATION_ARGS, RS_APP, WAREHOUSE_ID, WEB, context


def ensure_destination(world, **kwargs):
    return EnsureRudderStackDestinationOperator(
        task_id="ensure_destination",
        namespace=world.schema,
        change_log_key=world.change_log_key,
        **{**DESTINATION_ARGS, **kwargs},
    )


def test_ensure_destination_creates_it_held_once_then_finds_it(world):
    mark = world.mark()
    destination_id = ensure_destination(world).execute(context())

    created = world.rs_destination(destination_id)
    assert created["config"]["namespace"] == world.schema
    assert created["config"]["manualSync"] is True  # nothing loads before Segment's final load
    assert [c["action"] for c in world.rudderstack_changes(mark)] == ["create_destination"]
    assert [(c.target, c.field, c.after) for c in ChangeLog(world.change_log_key).entries()] == [
        ("rudderstack.destination", "exists", True)
    ]

    again = world.mark()
    assert ensure_destination(world).execute(context()) == destination_id
    assert world.rudderstack_changes(again) == []
    assert len(world.rs_destinations()) == 1


def test_ensure_destination_dry_run_creates_nothing(world):
    mark = world.mark()
    assert ensure_destination(world, dry_run=True).execute(context()) is None
    assert world.rudderstack_changes(mark) == []
    assert world.rs_destinations() == []
    assert ChangeLog(world.change_log_key).entries() == []


def test_ensure_destination_accepts_an_existing_one_whose_namespace_differs_only_in_case(world):
    existing = world.make_rs_destination(namespace=world.schema.upper())
    mark = world.mark()
    assert ensure_destination(world, destination_id=existing).execute(context()) == existing
    assert world.rudderstack_changes(mark) == []


def test_ensure_destination_never_changes_a_destination_with_another_namespace(world):
    existing = world.make_rs_destination(namespace="marketing")
    mark = world.mark()
    with pytest.raises(AirflowFailException) as failure:
        ensure_destination(world, destination_id=existing).execute(context())
    message = str(failure.value)
    assert "'marketing'" in message and repr(world.schema) in message and "Nothing was changed" in message
    assert world.rudderstack_changes(mark) == []
    assert world.rs_destination(existing)["config"]["namespace"] == "marketing"


def ensure_source(world, destination_id, **kwargs):
    return EnsureRudderStackSegmentSourceOperator(
        task_id="ensure_source",
        destination_id=destination_id,
        connect_source_ids=[RS_APP],
        change_log_key=world.change_log_key,
        **kwargs,
    )


def test_ensure_segment_source_creates_and_connects_once(world):
    destination_id = world.make_rs_destination(manualSync=True)
    mark = world.mark()
    source_id = ensure_source(world, destination_id).execute(context())

    source = next(s for s in world.rs_sources() if s["id"] == source_id)
    assert source["type"] == "Segment"
    connected = {(c["sourceId"], c["destinationId"]) for c in world.rs_connections() if c["enabled"]}
    assert connected == {(source_id, destination_id), (RS_APP, destination_id)}
    assert sorted(c["action"] for c in world.rudderstack_changes(mark)) == [
        "create_connection",
        "create_connection",
        "create_source",
    ]

    again = world.mark()
    assert ensure_source(world, destination_id).execute(context()) == source_id
    assert world.rudderstack_changes(again) == []
    assert len([s for s in world.rs_sources() if s["type"] == "Segment"]) == 1


def test_ensure_segment_source_dry_run_changes_nothing(world):
    destination_id = world.make_rs_destination(manualSync=True)
    mark = world.mark()
    assert ensure_source(world, destination_id, dry_run=True).execute(context()) is None
    assert world.rudderstack_changes(mark) == []
    assert [s for s in world.rs_sources() if s["type"] == "Segment"] == []


def test_ensure_segment_source_fails_before_any_change_when_a_plan_source_does_not_exist(world):
    destination_id = world.make_rs_destination(manualSync=True)
    mark = world.mark()
    operator = EnsureRudderStackSegmentSourceOperator(
        task_id="ensure_source",
        destination_id=destination_id,
        connect_source_ids=["rs_src_typo"],
        change_log_key=world.change_log_key,
    )
    with pytest.raises(AirflowFailException, match="rs_src_typo"):
        operator.execute(context())
    assert world.rudderstack_changes(mark) == []


def hold(world, destination_id, **kwargs):
    return HoldRudderStackSyncOperator(
        task_id="hold", destination_id=destination_id, change_log_key=world.change_log_key, **kwargs
    )


def test_hold_sync_turns_manual_sync_on_once(world):
    destination_id = world.make_rs_destination(manualSync=False)
    mark = world.mark()
    hold(world, destination_id).execute(context())
    assert world.rs_destination(destination_id)["config"]["manualSync"] is True
    assert [c["action"] for c in world.rudderstack_changes(mark)] == ["update_destination"]
    change = ChangeLog(world.change_log_key).last(
        "rudderstack.destination", destination_id, "config.manualSync"
    )
    assert (change.before, change.after) == (False, True)

    again = world.mark()
    hold(world, destination_id).execute(context())
    assert world.rudderstack_changes(again) == []


def test_hold_sync_dry_run_changes_nothing(world):
    destination_id = world.make_rs_destination(manualSync=False)
    mark = world.mark()
    hold(world, destination_id, dry_run=True).execute(context())
    assert world.rudderstack_changes(mark) == []
    assert world.rs_destination(destination_id)["config"]["manualSync"] is False


def release(world, destination_id, cutover, **kwargs):
    return ReleaseRudderStackSyncOperator(
        task_id="release",
        destination_id=destination_id,
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB],
        margin_minutes=5,
        change_log_key=world.change_log_key,
        **kwargs,
    )


def connected_destination(world, **config):
    destination_id = world.make_rs_destination(**config)
    with world.rs_api() as api:
        api.post(
            "/connections", json={"sourceId": RS_APP, "destinationId": destination_id}
        ).raise_for_status()
    return destination_id


def test_release_sync_after_segments_final_load_sets_start_turns_manual_off_and_triggers_once(world):
    destination_id = connected_destination(world, manualSync=True)
    cutover = world.cutover()
    [report] = [r for r in world.load() if r["sourceId"] == WEB]

    mark = world.mark()
    result = release(world, destination_id, cutover, trigger_source_ids=[RS_APP, None]).execute(context())
    config = world.rs_destination(destination_id)["config"]
    assert config["manualSync"] is False
    assert config["syncStartAt"] == result["sync_start_at"]
    # syncStartAt is Segment's last load end plus the 5-minute margin (rounded up to the minute), in UTC
    ended = datetime.fromisoformat(report["end"])
    hours, minutes = map(int, config["syncStartAt"].split(":"))
    after_end = (hours * 60 + minutes - (ended.hour * 60 + ended.minute)) % (24 * 60)
    assert 5 <= after_end <= 6
    changes = world.rudderstack_changes(mark)
    assert [c["kind"] for c in changes] == ["api", "api", "trigger"]
    # The trigger names the source (rudder-server looks the workspace up from it) and the destination.
    assert (changes[-1]["source_id"], changes[-1]["destination_id"]) == (RS_APP, destination_id)
    assert result["triggered_sources"] == [RS_APP] and result["upload_triggered"] is True

    again = world.mark()
    release(world, destination_id, cutover, trigger_source_ids=[RS_APP]).execute(context())
    assert world.rudderstack_changes(again) == []  # no second update, no second upload trigger


def test_a_release_that_died_before_its_trigger_triggers_on_the_retry(world):
    destination_id = connected_destination(world, manualSync=True)
    cutover = world.cutover()
    world.load()
    # The trigger fails on every attempt of the first try (after manualSync was switched off): an outage of
    # the data plane, which the step waits out deferred (tests/faults/test_step_outages.py); it runs again.
    world.rudderstack.faults.arm(
        {"server_error": {"count": 2, "status": 503}, "path_prefix": "/internal/v1/warehouse/trigger-upload"}
    )
    with pytest.raises(TaskDeferred):
        release(world, destination_id, cutover, trigger_source_ids=[RS_APP]).execute(context())
    assert world.rs_destination(destination_id)["config"]["manualSync"] is False
    assert world.rudderstack.log.entries("trigger") == []

    mark = world.mark()
    result = release(world, destination_id, cutover, trigger_source_ids=[RS_APP]).execute(context())
    assert [c["kind"] for c in world.rudderstack_changes(mark)] == ["trigger"]  # only the missing trigger
    assert result["triggered_sources"] == [RS_APP]
    again = world.mark()
    release(world, destination_id, cutover, trigger_source_ids=[RS_APP]).execute(context())
    assert world.rudderstack_changes(again) == []


def test_release_succeeds_on_rudderstacks_schedule_where_the_warehouse_api_is_not_served(world, capfd):
    destination_id = connected_destination(world, manualSync=True, syncFrequency="60")
    world.rudderstack.settings.warehouse_api = "disabled"  # e.g. a hosted data plane: 404
    cutover = world.cutover()
    world.load()
    mark = world.mark()
    result = release(world, destination_id, cutover, trigger_source_ids=[RS_APP]).execute(context())
    assert world.rs_destination(destination_id)["config"]["manualSync"] is False
    assert [c["kind"] for c in world.rudderstack_changes(mark)] == ["api", "api"]  # no trigger happened
    assert result["upload_triggered"] is False and "404" in result["trigger_unavailable"]
    slot = datetime.fromisoformat(result["next_upload_slot"])
    assert slot.strftime("%H:%M") in {
        f"{(int(result['sync_start_at'][:2]) + k) % 24:02d}{result['sync_start_at'][2:]}" for k in range(24)
    }
    logged = capfd.readouterr().out
    assert "own schedule" in logged and result["next_upload_slot"][:16].replace("T", " ") in logged
    assert result["next_upload_slot"][:16].replace("T", " ") in result["schedule"]


def test_a_source_not_connected_to_the_destination_fails_the_release_clearly(world):
    destination_id = world.make_rs_destination(manualSync=True)  # RS_APP is not connected
    cutover = world.cutover()
    world.load()
    with pytest.raises(AirflowFailException, match="no warehouse found.*connected"):
        release(world, destination_id, cutover, trigger_source_ids=[RS_APP]).execute(context())


def test_release_sync_dry_run_changes_nothing(world):
    destination_id = world.make_rs_destination(manualSync=True)
    cutover = world.cutover()
    world.load()
    mark = world.mark()
    result = release(world, destination_id, cutover, dry_run=True).execute(context())
    assert result["upload_triggered"] is False
    assert world.rudderstack_changes(mark) == []
    assert world.rs_destination(destination_id)["config"]["manualSync"] is True


def test_a_new_destination_gets_the_whole_config_rudderstack_requires(world):
    """POSTGRES from a real Airflow Postgres connection: credentials, sslMode from its sslmode extra, staging,
    merge mode and the users-table settings, sync held; the stricter control plane accepts it."""
    destination_id = ensure_destination(world, allow_users_context_traits=False).execute(context())
    config = world.rs_destination(destination_id)["config"]
    expected = {"database", "host", "namespace", "password", "port", "sslMode", "syncFrequency", "user"}
    assert expected <= set(config)
    assert (config["sslMode"], config["useRudderStorage"], config["manualSync"]) == ("disable", True, True)
    assert (config["preferAppend"], config["skipUsersTable"], config["allowUsersContextTraits"]) == (
        False,
        False,
        False,
    )
    assert isinstance(config["port"], str) and config["syncFrequency"] == "30"


def test_a_destination_rudderstack_would_refuse_stops_before_the_call(world):
    mark = world.mark()
    with pytest.raises(AirflowFailException) as refused:
        ensure_destination(world, staging=None).execute(context())
    message = str(refused.value)
    assert "config.useRudderStorage" in message and "rudderstack.destination.staging" in message
    assert "nothing was changed" in message
    assert world.rudderstack_changes(mark) == [] and world.rs_destinations() == []


def test_a_reused_destination_gets_the_plans_users_settings_as_recorded_undoable_changes(world):
    from segment_rudderstack.operators.rollback import RollbackOperator
    from tests.library.world import RUDDERSTACK_CONN, SEGMENT_CONN

    existing = world.make_rs_destination(skipUsersTable=True, allowUsersContextTraits=False)
    assert ensure_destination(world, destination_id=existing).execute(context()) == existing
    config = world.rs_destination(existing)["config"]
    assert (config["skipUsersTable"], config["allowUsersContextTraits"]) == (False, True)
    log = ChangeLog(world.change_log_key)
    assert (log.last("rudderstack.destination", existing, "config.skipUsersTable").before) is True
    again = world.mark()
    ensure_destination(world, destination_id=existing).execute(context())
    assert world.rudderstack_changes(again) == []  # idempotent

    rollback = RollbackOperator(
        task_id="rollback",
        plan_name="p",
        segment_conn_id=SEGMENT_CONN,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        change_log_key=world.change_log_key,
    )
    undone = rollback.execute(context())["undone"]
    config = world.rs_destination(existing)["config"]
    assert (config["skipUsersTable"], config["allowUsersContextTraits"]) == (True, False)
    assert any("skipUsersTable" in u for u in undone) and any("allowUsersContextTraits" in u for u in undone)
