"""RudderStack upload rules in the emulator: manualSync, triggers, exclude window, slots, dedup, failures."""

from __future__ import annotations

import datetime as dt

import requests

from sandbox.rudderstack_definitions import accepted_config
from sandbox.rudderstack_schedule import previous_slot, upload_decision
from tests.waiting import wait_until

AUTH = {"Authorization": "Bearer sandbox-rudderstack-token"}
T0 = dt.datetime(2025, 3, 1, 10, 0, 5, tzinfo=dt.UTC)


def _destination(url, namespace, source_id="rs_src_backend", **config):
    dest = requests.post(
        f"{url}/v2/destinations",
        json={
            "name": "wh",
            "type": "POSTGRES",
            "config": accepted_config(namespace, **config),
        },
        headers=AUTH,
        timeout=5,
    ).json()["destination"]
    requests.post(
        f"{url}/v2/connections",
        json={"sourceId": source_id, "destinationId": dest["id"]},
        headers=AUTH,
        timeout=5,
    ).raise_for_status()
    return dest


def _send(url, message_id, write_key="wk_rs_backend"):
    requests.post(
        f"{url}/v1/track",
        json={"event": "Order Completed", "userId": "u", "messageId": message_id},
        auth=(write_key, ""),
        timeout=5,
    ).raise_for_status()


def _finish(emulator, dest_id):
    def done():
        uploads = emulator.uploads(destination_id=dest_id)
        return uploads and uploads[-1]["status"] in ("exported_data", "aborted") and uploads[-1]

    return wait_until(done, what="upload to finish")


def _hhmm(moment: dt.datetime) -> str:
    return moment.strftime("%H:%M")


# ------------------------------------------------------------------------------------------ pure rules


def test_slots_follow_sync_start_and_compressed_frequency():
    config = {"syncStartAt": "10:00", "syncFrequency": "30"}
    # 30 minutes at 60x compression = 30 s slots from 10:00:00
    assert previous_slot(config, T0, 60) == T0.replace(second=0)
    assert previous_slot(config, T0 + dt.timedelta(seconds=31), 60) == T0.replace(second=30)
    last = T0.replace(second=1)
    assert upload_decision(
        config,
        now=T0 + dt.timedelta(seconds=20),
        last_upload_created_at=last,
        triggered=False,
        time_compression=60,
    ) == (False, "waiting for the next sync slot")
    allowed, why = upload_decision(
        config,
        now=T0 + dt.timedelta(seconds=30),
        last_upload_created_at=last,
        triggered=False,
        time_compression=60,
    )
    assert allowed and "slot" in why
    # before 10:00 today, slots count from yesterday's 10:00
    assert previous_slot(config, T0.replace(hour=9), 1) == T0.replace(hour=9, second=0)
    daily = {"syncStartAt": "10:00", "syncFrequency": "1440"}
    assert previous_slot(daily, T0.replace(hour=9), 1) == T0.replace(day=28, month=2, second=0)


def test_triggers_beat_manual_sync_and_exclude_window_but_nothing_else_does():
    window = {"excludeWindowStartTime": "09:55", "excludeWindowEndTime": "10:05"}
    wrapping = {"excludeWindowStartTime": "23:00", "excludeWindowEndTime": "10:01"}
    for config in ({"manualSync": True}, {"excludeWindow": window}, {"excludeWindow": wrapping}):
        assert (
            upload_decision(
                config, now=T0, last_upload_created_at=None, triggered=False, time_compression=60
            )[0]
            is False
        )
        assert upload_decision(
            config, now=T0, last_upload_created_at=None, triggered=True, time_compression=60
        ) == (True, "triggered")
    outside = {"excludeWindow": {"excludeWindowStartTime": "10:01", "excludeWindowEndTime": "11:00"}}
    assert upload_decision(
        outside, now=T0, last_upload_created_at=None, triggered=False, time_compression=60
    )[0]


# ------------------------------------------------------------------------------------------ emulator


def test_manual_sync_holds_uploads_until_triggered(make_rudderstack, warehouse, namespace):
    emulator, url = make_rudderstack()
    dest = _destination(url, namespace, manualSync=True)
    _send(url, f"{namespace}-1")
    for _ in range(3):
        assert emulator.schedule_once() == []
    assert emulator.uploads() == [] and warehouse.event_ids(namespace) == {}

    emulator.trigger_upload(source_id="rs_src_backend", destination_id=None)
    (upload,) = emulator.schedule_once()
    assert upload.triggered and upload.reason == "triggered"
    done = _finish(emulator, dest["id"])
    assert done["status"] == "exported_data" and done["config"]["manualSync"] is True
    assert warehouse.event_ids(namespace) == {f"{namespace}-1": 1}
    log = emulator.log.entries("upload")
    assert [e["event"] for e in log] == ["start", "end"] and log[0]["config"]["manualSync"] is True


def test_exclude_window_blocks_scheduled_uploads(make_rudderstack, warehouse, namespace):
    emulator, url = make_rudderstack()
    now = dt.datetime.now(dt.UTC)
    window = {
        "excludeWindowStartTime": _hhmm(now - dt.timedelta(minutes=5)),
        "excludeWindowEndTime": _hhmm(now + dt.timedelta(minutes=5)),
    }
    dest = _destination(url, namespace, excludeWindow=window)
    _send(url, f"{namespace}-1")
    assert emulator.schedule_once() == []
    assert (
        requests.post(
            f"{url}/internal/v1/warehouse/pending-events",
            json={"source_id": "rs_src_backend", "task_run_id": "run-1"},
            timeout=5,
        ).json()["pending_staging_files"]
        == 1
    )

    config = {k: v for k, v in dest["config"].items() if k != "excludeWindow"}
    requests.put(
        f"{url}/v2/destinations/{dest['id']}", json={"config": config}, headers=AUTH, timeout=5
    ).raise_for_status()
    (upload,) = emulator.schedule_once()
    assert upload.reason == "first upload"
    _finish(emulator, dest["id"])
    assert warehouse.event_ids(namespace) == {f"{namespace}-1": 1}


def test_next_upload_waits_for_the_next_slot(make_rudderstack, namespace):
    emulator, url = make_rudderstack(
        time_compression=1.0
    )  # real minutes: the next 30-minute slot is far away
    start = _hhmm(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    dest = _destination(url, namespace, syncStartAt=start)
    _send(url, f"{namespace}-1")
    assert len(emulator.schedule_once()) == 1
    _finish(emulator, dest["id"])
    _send(url, f"{namespace}-2")
    assert emulator.schedule_once() == []
    assert len(emulator.uploads(destination_id=dest["id"])) == 1


def test_events_sent_before_the_connection_existed_are_loaded_by_the_first_upload(
    make_rudderstack, warehouse, namespace
):
    emulator, url = make_rudderstack()
    _send(url, f"{namespace}-early", write_key="wk_rs_app")
    assert emulator.schedule_once() == []  # no destination yet: staged
    dest = _destination(url, namespace, source_id="rs_src_app")
    emulator.schedule_once()
    _finish(emulator, dest["id"])
    assert warehouse.event_ids(namespace) == {f"{namespace}-early": 1}


def _segment_then_webhook(emulator, url, warehouse, namespace, **config):
    """Segment loads an event (append), then the same event arrives via the webhook and RudderStack loads it."""
    event = {
        "type": "track",
        "event": "Order Completed",
        "messageId": f"{namespace}-dup",
        "userId": "u1",
        "receivedAt": "2025-01-01T00:00:00.000Z",
        "timestamp": "2025-01-01T00:00:00.000Z",
    }
    warehouse.load(namespace, [event], merge=False)
    hook = requests.post(
        f"{url}/v2/sources", json={"name": "Segment webhook", "type": "Segment"}, headers=AUTH, timeout=5
    ).json()["source"]
    dest = _destination(url, namespace, source_id=hook["id"], **config)
    requests.post(f"{url}/v1/webhook", params={"writeKey": hook["writeKey"]}, json=event, timeout=5)
    requests.post(
        f"{url}/v1/webhook", params={"writeKey": hook["writeKey"]}, json=event, timeout=5
    )  # retried
    emulator.schedule_once()
    _finish(emulator, dest["id"])
    return event["messageId"]


def test_merge_removes_the_duplicate_of_an_event_segment_already_loaded(
    make_rudderstack, warehouse, namespace
):
    emulator, url = make_rudderstack()
    message_id = _segment_then_webhook(emulator, url, warehouse, namespace)
    assert warehouse.event_ids(namespace)[message_id] == 1
    assert warehouse.count_rows(namespace, "order_completed") == 1


def test_prefer_append_keeps_both_copies(make_rudderstack, warehouse, namespace):
    emulator, url = make_rudderstack()
    message_id = _segment_then_webhook(emulator, url, warehouse, namespace, preferAppend=True)
    # Segment's row + one copy of the two webhook deliveries: even in append mode rudder-server keeps one row
    # per id of a batch (warehouse/integrations/postgres/load.go insertIntoLoadTable, ROW_NUMBER() = 1); only
    # the DELETE of rows already in the table is skipped.
    assert warehouse.event_ids(namespace)[message_id] == 2


def test_failed_attempts_retry_and_aborts_are_reported(make_rudderstack, warehouse, namespace):
    emulator, url = make_rudderstack()
    dest = _destination(url, namespace)
    emulator.faults.arm({"upload_failure": {"count": 1}})
    _send(url, f"{namespace}-1")
    emulator.schedule_once()
    done = _finish(emulator, dest["id"])
    assert done["status"] == "exported_data" and done["attempts"] == 2
    assert [e["event"] for e in emulator.log.entries("upload")] == ["start", "attempt_failed", "end"]

    emulator.faults.arm({"upload_failure": {"count": 1, "abort": True}})
    _send(url, f"{namespace}-2")
    emulator.trigger_upload(source_id=None, destination_id=dest["id"])
    emulator.schedule_once()
    aborted = _finish(emulator, dest["id"])
    assert aborted["status"] == "aborted" and "abort" in aborted["error"]
    pending = emulator.pending_events("rs_src_backend")
    assert pending["aborted_events"] is True and pending["pending_events"] is False
    assert set(warehouse.event_ids(namespace)) == {f"{namespace}-1"}
