"""The safety invariants of docs/design.md section 2, each attacked: the tests try to make the library take the
unsafe step and show that it refuses, and that nothing changed outside when it did."""

from __future__ import annotations

import time

import httpx
import pytest
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.operators.rollback import RollbackOperator
from segment_rudderstack.operators.rudderstack import (
    EnsureRudderStackDestinationOperator,
    EnsureRudderStackSegmentSourceOperator,
    HoldRudderStackSyncOperator,
    ReleaseRudderStackSyncOperator,
)
from segment_rudderstack.operators.segment import (
    DisableSegmentWarehouseOperator,
    EnsureSegmentWebhookOperator,
)
from segment_rudderstack.operators.warehouse import DuplicateCheckOperator
from segment_rudderstack.safety.changelog import ChangeLog
from segment_rudderstack.sensors.migration import ClientAdoptionSensor
from tests.library.world import (
    BACKEND,
    DESTINATION_ARGS,
    RS_APP,
    RUDDERSTACK_CONN,
    SEGMENT_CONN,
    WAREHOUSE_CONN,
    WAREHOUSE_ID,
    WEB,
    context,
    load_rudderstack_rows,
    preflight_operator,
)


def disable_warehouse(world, started_after, **kwargs):
    return DisableSegmentWarehouseOperator(
        task_id="disable_warehouse",
        warehouse_id=WAREHOUSE_ID,
        started_after=started_after,
        source_ids=[WEB, BACKEND],
        change_log_key=world.change_log_key,
        **kwargs,
    )


# ------------------------------------------------------------------ Segment's warehouse is switched off safely


def test_segment_warehouse_is_not_disabled_while_a_load_runs_even_after_a_good_final_load(world):
    cutover = world.cutover()
    world.load()  # the final load succeeded...
    with world.running_load():  # ...but another one is running now
        mark = world.mark()
        for step in ("disable_warehouse", "disconnect_sources"):
            with pytest.raises(AirflowFailException, match="a Segment load is running"):
                disable_warehouse(world, cutover, final_step=step, running_load_wait_seconds=0).execute(
                    context()
                )
        assert world.segment_changes(mark) == []
        assert world.segment_warehouse()["enabled"] is True


def test_segment_warehouse_waits_for_a_running_load_to_end_then_switches_off(world):
    import threading

    cutover = world.cutover()
    world.load()
    outcome: dict = {}
    operator = disable_warehouse(
        world, cutover, running_load_wait_seconds=30, sync_list_requests_per_minute=600
    )
    with world.running_load():  # a new scheduled load started after the sensor saw the final one finish
        worker = threading.Thread(target=lambda: outcome.update(operator.execute(context())))
        worker.start()
        time.sleep(1.0)
        assert world.segment_warehouse()["enabled"] is True, "switched off while a load was running"
    worker.join(30)
    assert outcome.get("disabled") is True
    patch = [e for e in world.segment.log.entries("api") if e.get("method") == "PATCH"][-1]
    assert patch["loadRunning"] is False


def test_segment_warehouse_is_not_disabled_before_a_load_that_started_after_the_webhook_was_enabled(world):
    rs_source = world.make_rs_segment_source()
    webhook = EnsureSegmentWebhookOperator(
        task_id="webhook",
        source_ids=[WEB, BACKEND],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
    )
    with world.running_load():  # a load started before the webhook was enabled...
        cutover = webhook.execute(context())["cutover_at"]
    # ...and ended Success afterwards: it may miss events that only went to the webhook, so it does not count.
    mark = world.mark()
    with pytest.raises(AirflowFailException, match="no Segment load has started after"):
        disable_warehouse(world, cutover).execute(context())
    assert world.segment_changes(mark) == []

    world.load()  # a load that started after the cutover point finishes: now it may be switched off
    assert disable_warehouse(world, cutover).execute(context())["disabled"] is True
    assert world.segment_warehouse()["enabled"] is False


def test_segment_warehouse_is_not_disabled_after_a_failed_final_load(world):
    cutover = world.cutover()
    world.load()
    world.failing_load()  # the newest load after the cutover failed: events may be missing
    mark = world.mark()
    with pytest.raises(AirflowFailException, match="ended 'Failure'"):
        disable_warehouse(world, cutover).execute(context())
    assert world.segment_changes(mark) == []


# ------------------------------------------------------------------ RudderStack's sync


def test_rudderstack_sync_is_not_released_while_a_segment_load_runs(world):
    destination = world.make_rs_destination(manualSync=True)
    cutover = world.cutover()
    world.load()
    release = ReleaseRudderStackSyncOperator(
        task_id="release",
        destination_id=destination,
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        change_log_key=world.change_log_key,
    )
    with world.running_load():
        mark = world.mark()
        with pytest.raises(
            AirflowFailException, match="refusing to release RudderStack's sync: a Segment load"
        ):
            release.execute(context())
        assert world.rudderstack_changes(mark) == []
        assert world.rs_destination(destination)["config"]["manualSync"] is True
    # Disabling Segment's warehouse does not open the gate while its last load still runs either.
    httpx.patch(
        f"{world.segment_url}/warehouses/{WAREHOUSE_ID}",
        json={"enabled": False, "settings": {}},
        headers={"Authorization": "Bearer sandbox-segment-token"},
    ).raise_for_status()
    release.execute(context())
    assert world.rs_destination(destination)["config"]["manualSync"] is False


# ------------------------------------------------------------------ client adoption before the webhook goes


def test_adoption_is_not_done_before_the_streak_covers_the_configured_checks(world):
    webhook_source = "rs_src_segment_webhook"
    sensor = ClientAdoptionSensor(
        task_id="adoption",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        webhook_source_id=webhook_source,
        threshold=0.10,
        window_seconds=3600,
        consecutive_checks=3,
        deferrable=False,
        poke_interval=0.01,
    )
    load_rudderstack_rows(world, RS_APP, 4)
    load_rudderstack_rows(world, webhook_source, 4)  # 50 % still through Segment
    assert not sensor.poke(context()).is_done
    load_rudderstack_rows(world, RS_APP, 92)  # now 4 %
    assert not sensor.poke(context()).is_done  # 1 of 3
    assert not sensor.poke(context()).is_done  # 2 of 3
    load_rudderstack_rows(world, webhook_source, 20)  # a relapse (20 %) resets the streak
    assert not sensor.poke(context()).is_done
    load_rudderstack_rows(world, RS_APP, 400)  # ~4.6 %
    assert not sensor.poke(context()).is_done
    assert not sensor.poke(context()).is_done
    done = sensor.poke(context())
    assert done.is_done and done.xcom_value["streak"] == 3
    # an empty window proves nothing: no rows at all never counts as adopted
    empty = ClientAdoptionSensor(
        task_id="a2",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema + "_none",
        webhook_source_id=webhook_source,
        consecutive_checks=1,
        deferrable=False,
    )
    assert not empty.poke(context()).is_done


# ------------------------------------------------------------------ preflight


def test_preflight_passes_on_a_healthy_segment_schema(world):
    world.track(count=2)
    world.load()
    summary = preflight_operator(world).execute(context())
    assert "tracks" in summary["tables"] and summary["segment_warehouse_enabled"] is True


def test_preflight_stops_on_a_namespace_mismatch_saying_what_differs_and_changes_nothing(world):
    world.track(count=2)
    world.load()
    other = world.make_rs_destination(namespace="marketing_events")
    mark = world.mark()
    with pytest.raises(AirflowFailException) as failure:
        preflight_operator(world, destination_id=other).execute(context())
    message = str(failure.value)
    assert "nothing was changed" in message
    assert "'marketing_events'" in message and repr(world.schema) in message
    assert world.changes(mark) == []


def test_preflight_stops_on_missing_tables_and_a_missing_schema(world):
    world.track(count=2)
    world.load()
    mark = world.mark()
    with pytest.raises(AirflowFailException, match=r"tables missing .*\['identifies'\]"):
        preflight_operator(world, required_tables=["tracks", "identifies"]).execute(context())
    with pytest.raises(AirflowFailException, match="schema 'not_there' does not exist"):
        preflight_operator(world, namespace="not_there").execute(context())
    assert world.changes(mark) == []


def test_preflight_stops_when_segments_newest_load_failed(world):
    world.track(count=2)
    world.load()
    world.failing_load()
    with pytest.raises(AirflowFailException, match="ended 'Failure', expected Success"):
        preflight_operator(world).execute(context())


# ------------------------------------------------------------------ dry run and the change log


def migration_steps(world, *, dry_run, destination_id=None, rs_source=None, cutover=None):
    """The runbook's changing steps in order, as the DAG chains them (dry run: nothing exists yet)."""
    common = {"change_log_key": world.change_log_key, "dry_run": dry_run}
    return [
        EnsureRudderStackDestinationOperator(
            task_id="destination", namespace=world.schema, **common, **DESTINATION_ARGS
        ),
        EnsureRudderStackSegmentSourceOperator(
            task_id="source", destination_id=destination_id, connect_source_ids=[RS_APP], **common
        ),
        HoldRudderStackSyncOperator(task_id="hold", destination_id=destination_id, **common),
        EnsureSegmentWebhookOperator(
            task_id="webhook", source_ids=[WEB, BACKEND], rudderstack_source_id=rs_source, **common
        ),
    ]


def test_dry_run_reads_everything_changes_nothing_anywhere_and_says_what_it_would_change(world):
    world.track(count=3)
    world.load()
    world.warehouse.load(
        world.schema,
        [{"type": "track", "event": "Order Completed", "userId": "u", "messageId": "dup-1"}] * 2,
        merge=False,
    )  # a duplicate to repair
    rows_before = world.warehouse.count_rows(world.schema, "tracks")
    held = world.make_rs_destination(manualSync=True)  # what the release step would act on
    cutover = world.cutover()
    world.load()
    mark = world.mark()
    would: list[dict] = []
    for step in [
        *migration_steps(world, dry_run=True),
        ReleaseRudderStackSyncOperator(
            task_id="release",
            destination_id=held,
            warehouse_id=WAREHOUSE_ID,
            started_after=cutover,
            change_log_key=world.change_log_key,
            dry_run=True,
        ),
        DisableSegmentWarehouseOperator(
            task_id="disable",
            warehouse_id=WAREHOUSE_ID,
            started_after=cutover,
            change_log_key=world.change_log_key,
            dry_run=True,
        ),
        DuplicateCheckOperator(
            task_id="dups",
            warehouse_conn_id=WAREHOUSE_CONN,
            namespace=world.schema,
            repair=True,
            change_log_key=world.change_log_key,
            dry_run=True,
        ),
    ]:
        result = step.execute(context())
        would += [
            {"target": c.target, "field": c.field, "dry_run": step.is_dry_run} for c in step.would_change
        ]
        if isinstance(step, DuplicateCheckOperator):
            assert result["removed"] == {"tracks": 1, "order_completed": 1}
    assert world.changes(mark) == []
    assert ChangeLog(world.change_log_key).entries() == []
    assert world.warehouse.count_rows(world.schema, "tracks") == rows_before
    assert world.segment_warehouse()["enabled"] is True
    assert {(w["target"], w["field"]) for w in would} >= {
        ("rudderstack.destination", "exists"),
        ("rudderstack.source", "exists"),
        ("segment.destination", "exists"),
        ("segment.warehouse", "enabled"),
        ("rudderstack.destination", "config.manualSync"),
    }
    assert world.rs_destination(held)["config"]["manualSync"] is True
    assert all(w["dry_run"] for w in would)


def test_every_change_is_logged_with_before_and_after_and_rollback_undoes_them_idempotently(world):
    destination_id = EnsureRudderStackDestinationOperator(
        task_id="destination", namespace=world.schema, change_log_key=world.change_log_key, **DESTINATION_ARGS
    ).execute(context())
    rs_source = EnsureRudderStackSegmentSourceOperator(
        task_id="source",
        destination_id=destination_id,
        connect_source_ids=[RS_APP],
        change_log_key=world.change_log_key,
    ).execute(context())
    webhook = EnsureSegmentWebhookOperator(
        task_id="webhook",
        source_ids=[WEB, BACKEND],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
    )
    cutover = webhook.execute(context())["cutover_at"]
    world.load()
    ReleaseRudderStackSyncOperator(
        task_id="release",
        destination_id=destination_id,
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        change_log_key=world.change_log_key,
    ).execute(context())
    disable_warehouse(world, cutover).execute(context())

    # Every outside change the emulators saw is in the change log, with what, before and after.
    entries = ChangeLog(world.change_log_key).entries()
    logged = {(c.target, c.field) for c in entries}
    assert logged >= {
        ("rudderstack.destination", "exists"),
        ("rudderstack.source", "exists"),
        ("rudderstack.connection", "enabled"),
        ("segment.destination", "exists"),
        ("segment.destination", "enabled"),
        ("rudderstack.destination", "config.syncStartAt"),
        ("rudderstack.destination", "config.manualSync"),
        ("segment.warehouse", "enabled"),
    }
    assert all(c.before != c.after and c.run_id == "manual__test" and c.task_id for c in entries)
    # One entry per mutating API request (the upload trigger changes no setting, so it has nothing to undo);
    # a webhook created enabled also logs its "enabled" state so the rollback can find and disable it.
    requests = [c for c in world.changes() if c["kind"] == "api"]
    bookkeeping = [
        c
        for c in entries
        if c.target.startswith("segment.destination") and (c.field, c.before) == ("enabled", None)
    ]
    assert len(requests) == len(entries) - len(bookkeeping)

    rollback = RollbackOperator(
        task_id="rollback",
        plan_name="p",
        segment_conn_id=SEGMENT_CONN,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        change_log_key=world.change_log_key,
    )
    dry = RollbackOperator(
        task_id="rollback",
        plan_name="p",
        segment_conn_id=SEGMENT_CONN,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        change_log_key=world.change_log_key,
        dry_run=True,
    )
    mark = world.mark()
    dry.execute(context())
    assert world.changes(mark) == []

    undone = rollback.execute(context())["undone"]
    assert world.segment_warehouse()["enabled"] is True
    assert not any(h["enabled"] for h in world.webhooks())
    assert world.rs_destination(destination_id)["config"]["manualSync"] is True
    # warehouse, two webhook destinations and their two Send mappings, RudderStack sync
    assert len(undone) == 6 and sum("mapping" in u for u in undone) == 2
    assert not any(m["enabled"] for h in world.webhooks() for m in h["mappings"])

    again = world.mark()
    assert rollback.execute(context())["undone"] == []
    assert world.changes(again) == []


def test_rollback_reconnects_sources_that_were_disconnected_instead_of_disabling_the_warehouse(world):
    cutover = world.cutover()
    world.load()
    disable_warehouse(world, cutover, final_step="disconnect_sources").execute(context())
    assert world.segment_warehouse()["connectedSources"] == []
    RollbackOperator(
        task_id="rollback",
        plan_name="p",
        segment_conn_id=SEGMENT_CONN,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        change_log_key=world.change_log_key,
    ).execute(context())
    assert world.segment_warehouse()["connectedSources"] == [BACKEND, WEB]
