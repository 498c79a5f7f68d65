"""Segment path end to end: the real segment-analytics-python client -> emulator -> scheduled load -> PostgreSQL."""

from __future__ import annotations

import itertools
import threading
import time

import httpx
import pytest
from segment.analytics import Client

from sandbox.common import ServerThread
from sandbox.ledger import Ledger
from sandbox.segment import SegmentEmulator, SegmentSettings, SourceSeed, WarehouseSeed
from sandbox.warehouse import Warehouse
from tests.waiting import wait_until

TOKEN = "sandbox-segment-token"
WH = "wh_sandbox_pg"
_n = itertools.count(1)


@pytest.fixture
def world(pg_dsn: str):
    """Factory: a Segment emulator writing to a schema of its own, with a ledger of its own."""
    started = []

    def make(**overrides):
        tag = f"{int(time.time() * 1000) % 10_000_000}_{next(_n)}"
        schema = f"seg_test_{tag}"
        settings = SegmentSettings(
            sources=[
                SourceSeed("src_web_app", "web_app", "Web App", "wk_seg_web_app", schema),
                SourceSeed("src_backend", "backend", "Backend", "wk_seg_backend", schema),
            ],
            warehouses=[WarehouseSeed()],
            **{"load_interval_s": None, "load_duration_s": 0.3, **overrides},
        )
        ledger = Ledger(pg_dsn, schema=f"ledger_{tag}")
        emulator = SegmentEmulator(settings, Warehouse(pg_dsn), ledger)
        server = ServerThread(emulator.app).start()
        emulator.start_background()
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        started.append((emulator, server, api, ledger))
        return emulator, server.url, api, schema, ledger

    yield make
    for emulator, server, api, ledger in started:
        api.close()
        emulator.stop_background()
        server.stop()
        ledger.close()


def sdk(url: str, write_key: str = "wk_seg_web_app") -> Client:
    return Client(write_key, host=url, sync_mode=True, max_retries=1)


def test_real_client_events_are_loaded_with_segment_columns_and_a_sync_report(world, pg_dsn):
    emulator, url, api, schema, _ = world()
    client = sdk(url)
    _, track = client.track("user-1", "Order Completed", {"revenue": 19.99, "currency": "EUR"})
    _, identify = client.identify("user-1", {"email": "one@example.com"})
    _, page = client.page("user-1", "Docs", "Install", {"path": "/install"})
    _, screen = client.screen("user-1", "App", "Cart")
    client.flush()

    reports = emulator.run_load(WH)

    wh = Warehouse(pg_dsn)
    assert wh.event_ids(schema) == {
        track["messageId"]: 1,
        identify["messageId"]: 1,
        page["messageId"]: 1,
        screen["messageId"]: 1,
    }
    assert {"context_library_name", "received_at", "uuid_ts"} <= set(wh.columns(schema, "tracks"))
    assert {"revenue", "currency"} <= set(wh.columns(schema, "order_completed"))
    assert wh.count_rows(schema, "users") == 1
    web = [r for r in reports if r["sourceId"] == "src_web_app"][0]
    assert (web["status"], web["count"]) == ("Success", 4)
    listed = api.get(f"/warehouses/{WH}/connected-sources/src_web_app/syncs").json()["data"]["reports"]
    assert listed[0]["end"] is not None and listed[0]["count"] == 4
    assert emulator.paths(track["messageId"])[-1] == f"loaded:{WH}"


def test_a_running_load_shows_end_null_and_only_loads_events_received_before_it_started(world, pg_dsn):
    emulator, url, api, schema, _ = world(load_duration_s=1.0)
    client = sdk(url)
    _, before = client.track("user-1", "Signed Up")
    client.flush()

    loader = threading.Thread(target=emulator.run_load, args=(WH,))
    loader.start()
    running = wait_until(
        lambda: [e for e in emulator.log.entries("load") if e["phase"] == "start"], what="load"
    )
    assert running
    _, during = client.track("user-1", "Clicked")
    client.flush()
    listed = api.get(f"/warehouses/{WH}/connected-sources/src_web_app/syncs").json()["data"]["reports"]
    loader.join(10)

    assert listed[0]["end"] is None and listed[0]["status"] == "Running"
    ids = Warehouse(pg_dsn).event_ids(schema)
    assert before["messageId"] in ids and during["messageId"] not in ids
    emulator.run_load(WH)
    assert during["messageId"] in Warehouse(pg_dsn).event_ids(schema)


def test_scheduled_loads_run_on_their_own(world, pg_dsn):
    emulator, url, _, schema, _ = world(load_interval_s=0.5, load_duration_s=0.1)
    _, msg = sdk(url, "wk_seg_backend").track("svc", "Invoice Paid", {"amount": 3})

    wait_until(lambda: msg["messageId"] in Warehouse(pg_dsn).event_ids(schema), what="scheduled load")
    ends = [e for e in emulator.log.entries("load") if e["phase"] == "end"]
    assert ends and ends[0]["statuses"]["src_backend"] == "Success"


def test_failed_load_writes_nothing_and_the_next_load_catches_up(world, pg_dsn):
    emulator, url, api, schema, _ = world()
    _, msg = sdk(url).track("user-1", "Order Completed")
    api.post("/sandbox/faults", json={"load_failure": {"count": 1}})

    failed = emulator.run_load(WH)

    assert {r["status"] for r in failed} == {"Failure"}
    assert all(r["notices"] for r in failed)
    assert msg["messageId"] not in Warehouse(pg_dsn).event_ids(schema)
    ok = emulator.run_load(WH)
    assert [r["status"] for r in ok if r["sourceId"] == "src_web_app"] == ["Success"]
    assert Warehouse(pg_dsn).event_ids(schema)[msg["messageId"]] == 1


def test_partial_load_writes_some_and_defers_the_rest(world, pg_dsn):
    emulator, url, api, schema, _ = world()
    client = sdk(url)
    ids = [client.track("user-1", "Viewed", {"n": n})[1]["messageId"] for n in range(4)]
    client.flush()
    api.post("/sandbox/faults", json={"load_partial": {"count": 1}})

    partial = [r for r in emulator.run_load(WH) if r["sourceId"] == "src_web_app"][0]

    assert (partial["status"], partial["count"]) == ("Partial", 2)
    assert len(Warehouse(pg_dsn).event_ids(schema)) == 2
    emulator.run_load(WH)
    assert Warehouse(pg_dsn).event_ids(schema) == dict.fromkeys(ids, 1)


def test_disabled_warehouse_stops_loads_and_drops_unroutable_events(world, pg_dsn):
    emulator, url, api, schema, ledger = world()
    client = sdk(url)
    _, pending = client.track("user-1", "Queued Before Disable")
    client.flush()
    api.patch(f"/warehouses/{WH}", json={"enabled": False, "settings": {}})
    _, after = client.track("user-1", "Sent After Disable")
    client.flush()

    assert emulator.run_load(WH) == []
    assert Warehouse(pg_dsn).event_ids(schema) == {}
    assert "not_loaded" in emulator.paths(pending["messageId"])
    dropped = ledger.dropped()
    assert [d["message_id"] for d in dropped] == [after["messageId"]]
    assert "no enabled warehouse" in dropped[0]["reason"]
    assert [e["discarded"] for e in emulator.log.entries("warehouse_queue")] == [1]


def test_tracking_api_rejects_unknown_write_keys_and_invalid_messages(world):
    _, url, _, _, _ = world()
    good = {"userId": "u", "event": "X"}

    assert httpx.post(f"{url}/v1/track", json=good, auth=("wk_nope", "")).status_code == 401
    assert httpx.post(f"{url}/v1/track", json={"event": "X"}, auth=("wk_seg_web_app", "")).status_code == 400
    assert httpx.post(f"{url}/v1/track", json={"userId": "u"}, auth=("wk_seg_web_app", "")).status_code == 400
    ok = httpx.post(f"{url}/v1/track", json=good, auth=("wk_seg_web_app", ""))
    assert ok.status_code == 200 and ok.json() == {"success": True}
