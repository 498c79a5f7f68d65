"""The RudderStack emulator's data plane: the real rudder-sdk-python client, the webhook source, warehouse API."""

from __future__ import annotations

import gzip
import json

import pytest
import requests
from psycopg2 import sql
from rudderstack.analytics import Client as RudderClient

from sandbox.rudderstack_definitions import accepted_config
from tests.waiting import wait_until

AUTH = {"Authorization": "Bearer sandbox-rudderstack-token"}


def _connect_warehouse(url: str, namespace: str, source_id: str, **config) -> dict:
    dest = requests.post(
        f"{url}/v2/destinations",
        json={"name": "wh", "type": "POSTGRES", "config": accepted_config(namespace, **config)},
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


def _wait_upload_done(emulator, dest_id: str) -> dict:
    def done():
        uploads = emulator.uploads(destination_id=dest_id)
        return uploads and uploads[-1]["status"] in ("exported_data", "aborted") and uploads[-1]

    return wait_until(done, what=f"upload of destination {dest_id} to finish")


def test_real_rudder_sdk_gzip_batches_land_in_the_warehouse(make_rudderstack, warehouse, namespace):
    emulator, url = make_rudderstack()
    client = RudderClient("wk_rs_app", host=url, gzip=True, upload_interval=0.05, max_retries=1)
    ids = [f"{namespace}-m{i}" for i in range(4)]
    client.track(user_id="u1", event="Order Completed", properties={"revenue": 12.5}, message_id=ids[0])
    client.identify(user_id="u1", traits={"plan": "pro"}, message_id=ids[1])
    client.page(user_id="u1", name="Home", properties={"path": "/"}, message_id=ids[2])
    client.screen(user_id="u1", name="Cart", message_id=ids[3])
    client.flush()
    client.join()

    ingests = emulator.log.entries("ingest")
    assert {(e["path"], e["gzip"]) for e in ingests} == {("/v1/batch", True)}
    assert sum(e["count"] for e in ingests) == 4

    dest = _connect_warehouse(url, namespace, "rs_src_app")
    emulator.trigger_upload(source_id=None, destination_id=dest["id"])
    emulator.schedule_once()
    upload = _wait_upload_done(emulator, dest["id"])
    assert upload["status"] == "exported_data" and upload["eventCount"] == 4

    assert warehouse.event_ids(namespace) == {i: 1 for i in ids}
    conn = warehouse.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT context_source_id, context_source_type, context_destination_id, "
                    "context_destination_type, event, context_library_name FROM {}.tracks"
                ).format(sql.Identifier(namespace))
            )
            assert cur.fetchall() == [
                ("rs_src_app", "Javascript", dest["id"], "POSTGRES", "order_completed", "analytics-python")
            ]
    finally:
        conn.close()


def test_data_plane_rejects_unknown_or_missing_write_keys_as_text(make_rudderstack):
    _, url = make_rudderstack()
    body = {"batch": [{"type": "track", "event": "x", "userId": "u", "messageId": "m"}]}
    missing = requests.post(f"{url}/v1/batch", json=body, timeout=5)
    wrong = requests.post(f"{url}/v1/batch", json=body, auth=("wk_nope", ""), timeout=5)
    assert missing.status_code == 401 and "writeKey" in missing.text
    assert wrong.status_code == 401 and "Invalid write key" in wrong.text
    bad_gzip = requests.post(
        f"{url}/v1/track",
        data=b"not gzip",
        auth=("wk_rs_app", ""),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        timeout=5,
    )
    assert bad_gzip.status_code == 400 and "gzip" in bad_gzip.text
    single = requests.post(
        f"{url}/v1/track",
        data=gzip.compress(json.dumps({"event": "x", "userId": "u"}).encode()),
        auth=("wk_rs_app", ""),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        timeout=5,
    )
    assert single.status_code == 200 and single.text == "OK"


def test_webhook_source_passes_segment_events_through_unchanged(make_rudderstack):
    emulator, url = make_rudderstack()
    source = requests.post(
        f"{url}/v2/sources", json={"name": "Segment webhook", "type": "Segment"}, headers=AUTH, timeout=5
    ).json()["source"]
    segment_event = {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "seg-msg-1",
        "userId": "u9",
        "anonymousId": "a9",
        "properties": {"sku": "S-1"},
        "context": {"library": {"name": "analytics-python"}},
        "timestamp": "2025-01-01T00:00:00.000Z",
        "sentAt": "2025-01-01T00:00:01.000Z",
        "receivedAt": "2025-01-01T00:00:02.000Z",
        "writeKey": "wk_seg_web_app",
        "version": 2,
    }
    resp = requests.post(
        f"{url}/v1/webhook", params={"writeKey": source["writeKey"]}, json=segment_event, timeout=5
    )
    assert resp.status_code == 200

    staged = emulator.staged_events(source["id"])
    assert len(staged) == 1
    received = staged[0]
    assert received["messageId"] == "seg-msg-1"
    stamped = ("receivedAt", "request_ip")  # what rudder-server's gateway adds to every event
    assert {k: v for k, v in received.items() if k not in stamped} == {
        k: v for k, v in segment_event.items() if k != "receivedAt"
    }
    assert received["receivedAt"] != segment_event["receivedAt"]  # set by RudderStack on receipt
    assert received["request_ip"] == "127.0.0.1"  # the caller (Segment's egress on a real migration)

    not_webhook = requests.post(
        f"{url}/v1/webhook", params={"writeKey": "wk_rs_app"}, json=segment_event, timeout=5
    )
    assert not_webhook.status_code == 400 and "Segment" in not_webhook.text


@pytest.mark.parametrize(
    ("mode", "prefix"), [("internal", "/internal/v1/warehouse"), ("legacy", "/v1/warehouse")]
)
def test_pending_events_and_trigger_upload(make_rudderstack, namespace, mode, prefix):
    emulator, url = make_rudderstack(warehouse_api=mode)
    requests.post(
        f"{url}/v1/track",
        json={"event": "x", "userId": "u", "messageId": f"{namespace}-p"},
        auth=("wk_rs_backend", ""),
        timeout=5,
    ).raise_for_status()
    dest = _connect_warehouse(url, namespace, "rs_src_backend", manualSync=True)
    query = {"source_id": "rs_src_backend", "task_run_id": "run-1"}

    pending = requests.post(f"{url}{prefix}/pending-events", json=query, timeout=5).json()
    # Staging files count for the source whatever their task run (CountPendingForSource).
    assert pending == {
        "pending_events": True,
        "pending_staging_files": 1,
        "pending_uploads": 0,
        "aborted_events": False,
    }
    assert emulator.schedule_once() == []  # manualSync holds it

    trigger = requests.post(
        f"{url}{prefix}/trigger-upload",
        json={"source_id": "rs_src_backend", "destination_id": dest["id"]},
        timeout=5,
    )
    assert (trigger.status_code, trigger.content) == (200, b"")
    assert len(emulator.schedule_once()) == 1
    # The running upload has no task run id (an event stream): pending-events for a task run never counts it.
    running = requests.post(f"{url}{prefix}/pending-events", json=query, timeout=5).json()
    assert running["pending_uploads"] == 0
    _wait_upload_done(emulator, dest["id"])
    after = requests.post(f"{url}{prefix}/pending-events", json=query, timeout=5).json()
    assert after == {
        "pending_events": False,
        "pending_staging_files": 0,
        "pending_uploads": 0,
        "aborted_events": False,
    }

    for body in ({"task_run_id": "r"}, {"source_id": "rs_src_backend"}, {"source_id": "", "task_run_id": ""}):
        missing = requests.post(f"{url}{prefix}/pending-events", json=body, timeout=5)
        assert (missing.status_code, missing.text) == (400, "empty source or task run id\n")
    unknown = requests.post(
        f"{url}{prefix}/pending-events", json={"source_id": "nope", "task_run_id": "r"}, timeout=5
    )
    assert (unknown.status_code, unknown.text.strip()) == (400, "workspace from source not found")
    for body in ({"destination_id": dest["id"]}, {"source_id": "nope"}):
        refused = requests.post(f"{url}{prefix}/trigger-upload", json=body, timeout=5)
        assert (refused.status_code, refused.text.strip()) == (400, "workspace from source not found")
    assert requests.post(f"{url}{prefix}/trigger-upload", data=b"{", timeout=5).text.strip() == (
        "invalid JSON in request body"
    )


def test_old_warehouse_routes_answer_404_unless_legacy(make_rudderstack):
    _, url = make_rudderstack()
    for action in ("pending-events", "trigger-upload"):
        assert (
            requests.post(
                f"{url}/v1/warehouse/{action}",
                json={"source_id": "rs_src_app", "task_run_id": "r"},
                timeout=5,
            ).status_code
            == 404
        )
    _, disabled = make_rudderstack(warehouse_api="disabled")
    assert (
        requests.post(
            f"{disabled}/internal/v1/warehouse/trigger-upload", json={"source_id": "rs_src_app"}, timeout=5
        ).status_code
        == 404
    )


def test_pending_events_counts_only_uploads_of_the_task_run(make_rudderstack, namespace):
    """An upload is tagged with the task run of its staging files (gateway/handle.go: context.sources.task_run_id)."""
    emulator, url = make_rudderstack()
    event = {
        "event": "x",
        "userId": "u",
        "messageId": f"{namespace}-t",
        "context": {"sources": {"task_run_id": "run-42", "job_id": "job-1"}},
    }
    requests.post(f"{url}/v1/track", json=event, auth=("wk_rs_backend", ""), timeout=5).raise_for_status()
    dest = _connect_warehouse(url, namespace, "rs_src_backend", manualSync=True)
    emulator.trigger_upload(source_id="rs_src_backend", destination_id=dest["id"])
    emulator.settings.upload_duration_s = 2.0
    assert len(emulator.schedule_once()) == 1
    ours = requests.post(
        f"{url}/internal/v1/warehouse/pending-events",
        json={"source_id": "rs_src_backend", "task_run_id": "run-42"},
        timeout=5,
    ).json()
    other = requests.post(
        f"{url}/internal/v1/warehouse/pending-events",
        json={"source_id": "rs_src_backend", "task_run_id": "run-7"},
        timeout=5,
    ).json()
    assert ours["pending_uploads"] == 1 and other["pending_uploads"] == 0
    _wait_upload_done(emulator, dest["id"])
