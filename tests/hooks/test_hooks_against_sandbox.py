"""The hooks against the project's own emulators: the same calls the migration DAG makes, end to end.

If a hook and an emulator drift apart (a path, an envelope, a body), the sandbox stops being a rehearsal
of the real cutover; these tests catch that.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from sandbox.rudderstack_definitions import accepted_config
from segment_rudderstack.hooks import (
    ALL_EVENT_TYPES_TRIGGER,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_ACTIONS_SEND_ACTION_ID,
    WEBHOOKS_METADATA_ID,
    ApiError,
    RudderStackDataPlaneHook,
    RudderStackHook,
    SegmentHook,
    SyncState,
)
from segment_rudderstack.vocabulary import send_mapping_settings


@pytest.fixture
def warehouse(pg_dsn):
    from sandbox.warehouse import Warehouse

    return Warehouse(pg_dsn)


@pytest.fixture
def segment(warehouse, monkeypatch):
    from sandbox.common import ServerThread
    from sandbox.segment import SegmentEmulator, SegmentSettings

    emulator = SegmentEmulator(SegmentSettings(load_interval_s=None, load_duration_s=0.1), warehouse, None)
    server = ServerThread(emulator.app).start()
    emulator.start_background()
    conn = {"conn_type": "http", "host": server.url, "password": emulator.settings.token}
    monkeypatch.setenv("AIRFLOW_CONN_SEGMENT_SANDBOX", json.dumps(conn))
    yield emulator, server.url
    emulator.stop_background()
    server.stop()


@pytest.fixture
def rudderstack(warehouse, monkeypatch):
    from sandbox.common import ServerThread
    from sandbox.rudderstack_emulator import RudderStackEmulator, RudderStackSettings

    emulator = RudderStackEmulator(RudderStackSettings(upload_duration_s=0.1), warehouse)
    server = ServerThread(emulator.app).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_RUDDERSTACK_SANDBOX",
        json.dumps({"conn_type": "http", "host": server.url, "password": emulator.settings.token}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_RUDDERSTACK_DP_SANDBOX", json.dumps({"conn_type": "http", "host": server.url})
    )
    yield emulator, server.url
    emulator.stop_background()
    server.stop()


def test_segment_hook_drives_the_segment_emulator(segment):
    import urllib.request

    emulator, url = segment
    hook = SegmentHook("segment_sandbox", max_attempts=2, backoff_initial=0.01)
    warehouse_id = emulator.settings.warehouses[0].id
    source_id = emulator.settings.sources[0].id

    assert hook.test_connection()[0]
    assert hook.get_warehouse(warehouse_id)["enabled"] is True
    assert warehouse_id in [w["id"] for w in hook.list_connected_warehouses(source_id)]
    assert hook.get_source(source_id)["id"] == source_id
    assert "enabled" in hook.get_advanced_sync_schedule(warehouse_id)

    urllib.request.urlopen(urllib.request.Request(f"{url}/sandbox/loads/run", method="POST", data=b"")).read()
    deadline = time.monotonic() + 5
    while True:  # the load closes its reports after load_duration_s; bounded wait, one sync-list call
        time.sleep(0.3)
        reports = hook.list_warehouse_syncs(warehouse_id, count=10)
        if all(r.state is not SyncState.RUNNING for r in reports) or time.monotonic() > deadline:
            break
    assert reports and {r.state for r in reports} == {SyncState.SUCCESS}

    # Classic Webhooks is refused like a workspace without it; Webhooks (Actions) + a Send mapping is the way.
    classic = {"hooks": [{"hook": "http://127.0.0.1:9/v1/webhook?writeKey=wk-sandbox-1", "headers": []}]}
    with pytest.raises(ApiError) as refused:
        hook.create_destination(source_id, WEBHOOKS_METADATA_ID, "to RudderStack", False, classic)
    assert refused.value.status == 422 and "not available in this workspace" in str(refused.value)

    created = hook.create_destination(source_id, WEBHOOKS_ACTIONS_METADATA_ID, "to RudderStack", False, {})
    mapping = hook.create_destination_subscription(
        created["id"],
        name="to RudderStack: Send",
        action_id=WEBHOOKS_ACTIONS_SEND_ACTION_ID,
        trigger=ALL_EVENT_TYPES_TRIGGER,
        enabled=False,
        settings=send_mapping_settings("http://127.0.0.1:9/v1/webhook?writeKey=wk-sandbox-1"),
    )
    assert hook.set_destination_subscription_enabled(created["id"], mapping["id"], True)["enabled"] is True
    assert [m["id"] for m in hook.list_destination_subscriptions(created["id"])] == [mapping["id"]]
    assert hook.get_destination_subscription(created["id"], mapping["id"])["actionSlug"] == "send"
    # Every mapping call pinned Segment's alpha version, as public-api-sdk-python does (Accept; and Content-Type
    # on create/update): unpinned, Segment would serve a later stable version of these endpoints.
    versions = [(e["method"], e["accept"], e["content_type"]) for e in emulator.log.entries("api_version")]
    alpha = "application/vnd.segment.v1alpha+json"
    assert [v[0] for v in versions] == ["POST", "PATCH", "GET", "GET"]
    assert all(accept == alpha for _, accept, _ in versions), versions
    assert [ctype for method, _, ctype in versions if method in ("POST", "PATCH")] == [alpha, alpha]
    assert hook.set_destination_enabled(created["id"], True)["enabled"] is True
    assert created["id"] in [d["id"] for d in hook.list_connected_destinations(source_id)]
    assert hook.set_warehouse_enabled(warehouse_id, False)["enabled"] is False


def test_rudderstack_hooks_drive_the_rudderstack_emulator(rudderstack):
    control = RudderStackHook("rudderstack_sandbox", max_attempts=2, backoff_initial=0.01)
    assert control.test_connection()[0]

    destination = control.create_destination("warehouse", "POSTGRES", accepted_config("prod"), enabled=True)
    updated = control.update_destination(destination["id"], config={"manualSync": True})
    assert updated["config"] == {**accepted_config("prod"), "manualSync": True}
    source = control.create_source("from segment", "segment")
    connection = control.create_connection(source["id"], destination["id"])
    assert connection["id"] in [c["id"] for c in control.list_connections()]

    assert RudderStackDataPlaneHook("rudderstack_dp_sandbox").test_connection()[0]
    data_plane = RudderStackDataPlaneHook("rudderstack_dp_sandbox")
    pending = data_plane.pending_events(source["id"], "run-1")
    assert set(pending) == {"pending_events", "pending_staging_files", "pending_uploads", "aborted_events"}
    assert asyncio.run(data_plane.apending_events(source["id"], "run-1")) == pending
    assert data_plane.trigger_upload(source["id"], destination["id"]) is None
    assert data_plane.webhook_url(source["writeKey"]).endswith(f"/v1/webhook?writeKey={source['writeKey']}")


def test_control_plane_lists_are_read_across_the_emulators_pages(rudderstack):
    """The emulator pages its lists 2 at a time; 5 of each kind make 3 pages, and the hooks see all 5."""
    emulator, _ = rudderstack
    control = RudderStackHook("rudderstack_sandbox", max_attempts=1)
    assert emulator.settings.list_page_size == 2
    sources = [s["id"] for s in control.list_sources()]  # 2 seeded
    for n in range(3):
        sources.append(control.create_source(f"extra {n}", "HTTP")["id"])
    destinations = [
        control.create_destination(f"wh {n}", "POSTGRES", accepted_config(f"paging_{n}"))["id"]
        for n in range(5)
    ]
    connections = [control.create_connection(sources[n], destinations[n])["id"] for n in range(5)]

    assert [s["id"] for s in control.list_sources()] == sources
    assert [d["id"] for d in control.list_destinations()] == destinations
    assert [c["id"] for c in control.list_connections()] == connections
    pages = {}
    for entry in emulator.log.entries("list"):
        pages.setdefault(entry["items"], []).append(entry["page"])
    assert pages["destinations"] == [1, 2, 3]
    assert pages["connections"] == [1, 2, 3]
    assert pages["sources"][-3:] == [1, 2, 3]


def test_the_emulator_refuses_what_current_rudder_server_refuses(rudderstack):
    """The requests the library used to send, and the answers a current data plane gives them."""
    import requests

    emulator, url = rudderstack
    control = RudderStackHook("rudderstack_sandbox", max_attempts=1)
    destination = control.create_destination("wh", "POSTGRES", accepted_config("strict"))
    control.create_connection("rs_src_app", destination["id"])
    internal = f"{url}/internal/v1/warehouse"

    no_source = requests.post(
        f"{internal}/trigger-upload", json={"destination_id": destination["id"]}, timeout=5
    )
    assert (no_source.status_code, no_source.text.strip()) == (400, "workspace from source not found")
    no_run = requests.post(f"{internal}/pending-events", json={"source_id": "rs_src_app"}, timeout=5)
    assert (no_run.status_code, no_run.text.strip()) == (400, "empty source or task run id")
    legacy = requests.post(f"{url}/v1/warehouse/trigger-upload", json={"source_id": "rs_src_app"}, timeout=5)
    assert legacy.status_code == 404
    ok = requests.post(
        f"{internal}/trigger-upload",
        json={"source_id": "rs_src_app", "destination_id": destination["id"]},
        timeout=5,
    )
    assert (ok.status_code, ok.content) == (200, b"")
    not_connected = requests.post(
        f"{internal}/trigger-upload", json={"source_id": "rs_src_backend"}, timeout=5
    )
    assert (not_connected.status_code, not_connected.text.strip()) == (400, "no warehouse found")

    emulator.settings.warehouse_api = "legacy"
    assert (
        requests.post(
            f"{url}/v1/warehouse/trigger-upload", json={"source_id": "rs_src_app"}, timeout=5
        ).status_code
        == 200
    )
    legacy_hook = RudderStackDataPlaneHook("rudderstack_dp_sandbox", warehouse_path_prefix="/v1/warehouse")
    assert legacy_hook.pending_events("rs_src_app", "run-1")["pending_uploads"] == 0
    emulator.settings.warehouse_api = "disabled"
    assert (
        requests.post(f"{internal}/trigger-upload", json={"source_id": "rs_src_app"}, timeout=5).status_code
        == 404
    )
