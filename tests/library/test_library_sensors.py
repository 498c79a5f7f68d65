"""Every sensor four ways: poke (worker) path, deferred path (trigger serialized, rebuilt and run: same decision
as a poke on the same state), timeout (poke and deferred), and failure with the reason."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, TaskDeferred

from segment_rudderstack.sensors.migration import (
    ClientAdoptionSensor,
    RudderStackSyncGateSensor,
    RudderStackUploadSensor,
    SegmentSourceDrainedSensor,
    SegmentWarehouseLoadSensor,
)
from segment_rudderstack.triggers.condition import ConditionTrigger
from tests.library.world import (
    BACKEND,
    RS_APP,
    RS_BACKEND,
    WAREHOUSE_CONN,
    WAREHOUSE_ID,
    WEB,
    context,
    load_rudderstack_rows,
    rudderstack_event,
    wait_until,
)

FAST = {"poke_interval": 0.05, "timeout": 20}
FAST_SYNC_LIST = {**FAST, "sync_list_requests_per_minute": 1200}  # a 0.05 s floor instead of 30 s


def defer(sensor) -> ConditionTrigger:
    """Run the sensor as deferrable: it must defer; return the trigger rebuilt from its serialized form."""
    sensor.deferrable = True
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = deferred.value.trigger.serialize()
    json.dumps(kwargs)  # what the triggerer stores must be plain JSON
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    return rebuilt


def first_event(trigger: ConditionTrigger) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(run(), timeout=20))


def assert_deferred_matches_poke(sensor, trigger) -> Any:
    """Run the trigger to its event; a poke on the same (now unchanging) state decides the same."""
    event = first_event(trigger)
    assert event["status"] == "decided"
    poked = sensor.poke(context())
    assert poked.is_done
    result = sensor.execute_complete(context(), event)
    assert result == poked.xcom_value
    return result


def assert_times_out(make_sensor) -> None:
    poking = make_sensor(deferrable=False, poke_interval=0.05, timeout=0.2)
    with pytest.raises(AirflowSensorTimeout):
        poking.execute(context())
    deferring = make_sensor(deferrable=True, poke_interval=0.05, timeout=0)
    event = first_event(defer(deferring))
    assert event["status"] == "timeout"
    with pytest.raises(AirflowSensorTimeout, match="did not hold within"):
        deferring.execute_complete(context(), event)


def in_background(action) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------------------------------------------ Segment load


def load_sensor(cutover, cls=SegmentWarehouseLoadSensor, **kwargs):
    return cls(
        task_id="segment_load",
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB, BACKEND],
        **{**FAST_SYNC_LIST, **kwargs},
    )


def test_segment_load_sensor_poke_waits_through_a_running_load_until_it_succeeds(world):
    cutover = world.cutover()
    world.segment.settings.load_duration_s = 0.6
    loading = in_background(world.load)
    wait_until(lambda: world.segment.state()["warehouses"][0]["running"], what="a running load")
    assert loading.is_alive()
    result = load_sensor(cutover, deferrable=False).execute(context())
    loading.join(10)
    assert set(result["confirmed"]) == {WEB, BACKEND}
    assert result["last_load_end"]


def test_segment_load_sensor_deferred_decides_like_poke(world):
    cutover = world.cutover()
    sensor = load_sensor(cutover)
    trigger = defer(sensor)  # no load after the cutover yet: it waits
    world.load()
    result = assert_deferred_matches_poke(sensor, trigger)
    assert set(result["confirmed"]) == {WEB, BACKEND}


def test_segment_load_sensor_times_out_in_both_modes(world):
    cutover = world.cutover()
    assert_times_out(lambda **kw: load_sensor(cutover, **kw))


def test_segment_load_sensor_fails_on_a_failed_load_with_the_reason(world):
    cutover = world.cutover()
    sensor = load_sensor(cutover)
    trigger = defer(sensor)
    world.failing_load()
    event = first_event(trigger)
    assert event["decision"]["outcome"] == "failed"
    with pytest.raises(AirflowFailException, match="ended 'Failure'; expected Success"):
        sensor.execute_complete(context(), event)
    with pytest.raises(AirflowFailException, match="ended 'Failure'"):
        load_sensor(cutover, deferrable=False).execute(context())


def test_segment_load_sensor_partial_fails_unless_allowed(world):
    cutover = world.cutover()
    world.track(count=4)
    world.segment.faults.arm({"load_partial": {"count": 1}})
    world.load()
    with pytest.raises(AirflowFailException, match="'Partial'"):
        load_sensor(cutover, deferrable=False).execute(context())
    assert load_sensor(cutover, deferrable=False, allow_partial=True).execute(context())["confirmed"]


def test_segment_sync_list_sensors_poll_no_faster_than_the_rate_limit_by_default(world):
    sensor = SegmentWarehouseLoadSensor(
        task_id="s", warehouse_id=WAREHOUSE_ID, started_after=world.cutover(), poke_interval=1
    )
    assert sensor._interval() == 30.0  # 2 requests per minute
    before = time.time()
    trigger = defer(sensor)
    assert trigger.poke_interval == 30.0
    # the sensor's own check before deferring counts: the trigger does not repeat it at once
    assert trigger.first_check_at >= before + 30.0


# ------------------------------------------------------------------------------------------ sync gate


def gate_sensor(cutover, **kwargs):
    return load_sensor(cutover, cls=RudderStackSyncGateSensor, **kwargs)


def test_sync_gate_poke_holds_while_a_load_runs_then_opens(world):
    cutover = world.cutover()
    world.segment.settings.load_duration_s = 0.6
    loading = in_background(world.load)
    wait_until(lambda: world.segment.state()["warehouses"][0]["running"], what="a running load")
    result = gate_sensor(cutover, deferrable=False).execute(context())
    loading.join(10)
    assert "finished successfully" in result["reason"]


def test_sync_gate_deferred_decides_like_poke_and_opens_when_segment_is_disabled(world):
    cutover = world.cutover()
    sensor = gate_sensor(cutover)
    trigger = defer(sensor)
    # No load after the cutover: Segment's warehouse is switched off instead (no load can start any more).
    httpx.patch(
        f"{world.segment_url}/warehouses/{WAREHOUSE_ID}",
        json={"enabled": False, "settings": {}},
        headers={"Authorization": "Bearer sandbox-segment-token"},
    ).raise_for_status()
    result = assert_deferred_matches_poke(sensor, trigger)
    assert "disabled" in result["reason"]


def test_sync_gate_times_out_in_both_modes(world):
    cutover = world.cutover()
    assert_times_out(lambda **kw: gate_sensor(cutover, **kw))


def test_sync_gate_fails_on_a_failed_load(world):
    cutover = world.cutover()
    world.failing_load()
    with pytest.raises(AirflowFailException, match="'Failure'"):
        gate_sensor(cutover, deferrable=False).execute(context())


# ------------------------------------------------------------------------------------------ source drained


def drained_sensor(cutover, **kwargs):
    return SegmentSourceDrainedSensor(
        task_id="drained",
        warehouse_id=WAREHOUSE_ID,
        source_id=BACKEND,
        started_after=cutover,
        consecutive_loads=2,
        **{**FAST_SYNC_LIST, **kwargs},
    )


def test_source_drained_poke_waits_for_two_empty_loads(world):
    cutover = world.cutover()
    world.track("wk_seg_backend", count=2)
    world.load()  # still carried events
    loads = in_background(lambda: [world.load() for _ in range(2)])
    result = drained_sensor(cutover, deferrable=False).execute(context())
    loads.join(10)
    assert result["counts"] == [0, 0]


def test_source_drained_deferred_decides_like_poke(world):
    cutover = world.cutover()
    world.track("wk_seg_backend", count=2)
    world.load()
    sensor = drained_sensor(cutover)
    trigger = defer(sensor)
    world.load()
    world.load()
    assert assert_deferred_matches_poke(sensor, trigger)["counts"] == [0, 0]


def test_source_drained_times_out_in_both_modes(world):
    cutover = world.cutover()
    assert_times_out(lambda **kw: drained_sensor(cutover, **kw))


def test_source_drained_fails_on_a_failed_load(world):
    cutover = world.cutover()
    world.failing_load()
    with pytest.raises(AirflowFailException, match="Failure"):
        drained_sensor(cutover, deferrable=False).execute(context())


# ------------------------------------------------------------------------------------------ RudderStack upload


def upload_sensor(destination, released, sources=(RS_APP,), **kwargs):
    return RudderStackUploadSensor(
        task_id="upload",
        source_ids=list(sources),
        destination_id=destination,
        loaded_after=released.isoformat(),
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=kwargs.pop("namespace"),
        **{**FAST, **kwargs},
    )


def connected(world, *sources):
    destination = world.make_rs_destination(manualSync=True)
    with world.rs_api() as api:
        for source in sources:
            api.post(
                "/connections", json={"sourceId": source, "destinationId": destination}
            ).raise_for_status()
    return destination


def upload_now(world, destination):
    world.rudderstack.trigger_upload(source_id=None, destination_id=destination)
    world.rudderstack.schedule_once()
    wait_until(
        lambda: (
            world.rudderstack.uploads(destination_id=destination)[-1]["status"]
            in ("exported_data", "aborted")
        ),
        what="the upload to end",
    )


def test_upload_sensor_poke_waits_until_the_warehouse_shows_every_sources_rows(world):
    destination = connected(world, RS_APP, RS_BACKEND)
    released = datetime.now(UTC)
    rudderstack_event(world)  # only the app sent something so far
    upload_now(world, destination)
    sensor = upload_sensor(
        destination, released, sources=[RS_APP, RS_BACKEND], namespace=world.schema, deferrable=False
    )
    assert not sensor.poke(context()).is_done  # the backend has no rows yet
    rudderstack_event(world, write_key="wk_rs_backend")
    upload_now(world, destination)
    result = sensor.execute(context())
    assert result["rows_by_source"] == {RS_APP: 1, RS_BACKEND: 1}
    # The event-stream upload is observed in the warehouse: no pending-events request was sent at all.
    assert world.rudderstack.log.entries("pending_events") == []


def test_upload_sensor_deferred_decides_like_poke(world):
    destination = connected(world, RS_APP)
    released = datetime.now(UTC)
    rudderstack_event(world)
    sensor = upload_sensor(destination, released, namespace=world.schema)
    trigger = defer(sensor)
    upload_now(world, destination)
    assert "for every source" in assert_deferred_matches_poke(sensor, trigger)["reason"]


def test_rows_loaded_before_the_release_or_by_another_destination_do_not_count(world):
    destination = connected(world, RS_APP)
    rudderstack_event(world)
    upload_now(world, destination)  # loaded before the release
    released = datetime.now(UTC)
    load_rudderstack_rows(world, RS_APP, 3)  # rows without this destination's id
    assert_times_out(lambda **kw: upload_sensor(destination, released, namespace=world.schema, **kw))


def test_upload_sensor_times_out_in_both_modes(world):
    destination = connected(world, RS_APP)
    released = datetime.now(UTC)
    rudderstack_event(world)  # staged, never uploaded (sync held, no trigger)
    assert_times_out(lambda **kw: upload_sensor(destination, released, namespace=world.schema, **kw))


def test_pending_events_of_a_task_run_fails_the_wait_when_rudderstack_aborted_its_upload(world):
    destination = connected(world, RS_APP)
    released = datetime.now(UTC)
    rudderstack_event(world, context={"sources": {"task_run_id": "run-42", "job_id": "job-1"}})
    world.rudderstack.faults.arm({"upload_failure": {"count": 1, "abort": True}})
    sensor = upload_sensor(destination, released, namespace=world.schema, task_run_id="run-42")
    trigger = defer(sensor)
    upload_now(world, destination)
    event = first_event(trigger)
    with pytest.raises(AirflowFailException, match="aborted"):
        sensor.execute_complete(context(), event)
    asked = world.rudderstack.log.entries("pending_events")
    assert asked and {(e["source_id"], e["task_run_id"]) for e in asked} == {(RS_APP, "run-42")}


def test_where_pending_events_is_not_served_the_warehouse_rows_decide_alone(world):
    destination = connected(world, RS_APP)
    released = datetime.now(UTC)
    world.rudderstack.settings.warehouse_api = "disabled"
    rudderstack_event(world)
    upload_now(world, destination)
    result = upload_sensor(
        destination, released, namespace=world.schema, task_run_id="run-1", deferrable=False
    ).execute(context())
    assert result["rows_by_source"] == {RS_APP: 1}


# ------------------------------------------------------------------------------------------ client adoption

WEBHOOK_SOURCE = "rs_src_segment_webhook"


def adoption_sensor(world, **kwargs):
    return ClientAdoptionSensor(
        task_id="adoption",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        webhook_source_id=WEBHOOK_SOURCE,
        threshold=0.10,
        window_seconds=3600,
        consecutive_checks=3,
        **{**FAST, **kwargs},
    )


def test_adoption_poke_needs_the_share_below_threshold_for_consecutive_checks(world):
    load_rudderstack_rows(world, RS_APP, 19)
    load_rudderstack_rows(world, WEBHOOK_SOURCE, 1)  # 5 % still through Segment
    result = adoption_sensor(world, deferrable=False).execute(context())
    assert result["share"] == pytest.approx(0.05)
    assert result["streak"] == 3 and len(result["history"]) == 3


def test_adoption_deferred_carries_the_streak_and_decides_like_poke(world):
    load_rudderstack_rows(world, RS_APP, 19)
    load_rudderstack_rows(world, WEBHOOK_SOURCE, 1)
    sensor = adoption_sensor(world)
    trigger = defer(sensor)  # the first check counts towards the streak and travels in the trigger
    assert len(trigger.memory) == 1
    event = first_event(trigger)
    assert event["decision"]["details"]["streak"] == 3
    # A poke with the same earlier checks, on the same warehouse state, decides the same.
    sensor._memory = event["memory"][:-1]
    poked = sensor.poke(context())
    assert poked.is_done
    assert {k: poked.xcom_value[k] for k in ("share", "streak", "total", "via_segment")} == {
        k: event["decision"]["details"][k] for k in ("share", "streak", "total", "via_segment")
    }
    result = sensor.execute_complete(context(), event)
    assert result["streak"] == 3 and len(result["history"]) == 3


def test_adoption_times_out_in_both_modes_while_too_many_events_come_through_segment(world):
    load_rudderstack_rows(world, RS_APP, 5)
    load_rudderstack_rows(world, WEBHOOK_SOURCE, 5)
    assert_times_out(lambda **kw: adoption_sensor(world, **kw))


def test_adoption_fails_with_the_reason_when_the_warehouse_cannot_be_read(world, monkeypatch, pg_dsn):
    # A login that does not exist is a configuration error (a refused connection is transient: tests/faults).
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN.upper()}", pg_dsn.replace("postgres:@", "nobody:@"))
    sensor = adoption_sensor(world)
    trigger = ConditionTrigger(watch=sensor.build_watch(context()).spec(), poke_interval=0.05)
    event = first_event(trigger)
    assert event["status"] == "error"
    with pytest.raises(AirflowFailException, match="could not observe state"):
        sensor.execute_complete(context(), event)
