"""Contract tests of the Segment emulator's Public API subset over real HTTP."""

from __future__ import annotations

import email.utils
import itertools
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from sandbox.common import ServerThread
from sandbox.ledger import Ledger
from sandbox.segment import WEBHOOKS_METADATA_ID, SegmentEmulator, SegmentSettings
from sandbox.warehouse import Warehouse

TOKEN = "sandbox-segment-token"
WH = "wh_sandbox_pg"
_n = itertools.count(1)


@pytest.fixture
def segment(pg_dsn: str):
    """A started Segment emulator (no load schedule) and an authenticated client."""
    tag = f"{int(time.time() * 1000) % 10_000_000}_{next(_n)}"
    settings = SegmentSettings(
        load_interval_s=None, load_duration_s=0.2, sync_list_per_minute=3, classic_webhooks_available=True
    )
    emulator = SegmentEmulator(settings, Warehouse(pg_dsn), Ledger(pg_dsn, schema=f"ledger_api_{tag}"))
    server = ServerThread(emulator.app).start()
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    try:
        yield emulator, client
    finally:
        client.close()
        server.stop()
        emulator.ledger.close()


def webhook_body(source_id="src_web_app", enabled=False, n=0):
    return {
        "sourceId": source_id,
        "metadataId": WEBHOOKS_METADATA_ID,
        "name": f"to RudderStack {n}",
        "enabled": enabled,
        "settings": {"hooks": [{"hook": "http://127.0.0.1:9/hook", "headers": []}], "sharedSecret": "s3cret"},
    }


def test_missing_or_wrong_token_is_401_with_segment_error_envelope(segment):
    _, client = segment
    missing = httpx.get(f"{client.base_url}/warehouses/{WH}")
    wrong = httpx.get(f"{client.base_url}/warehouses/{WH}", headers={"Authorization": "Bearer nope"})

    for response in (missing, wrong):
        assert response.status_code == 401
        error = response.json()["errors"][0]
        assert error["type"] == "unauthorized" and "Bearer" in error["message"]
    assert TOKEN not in wrong.text


def test_get_warehouse_shape_and_rate_limit_headers(segment):
    _, client = segment
    response = client.get(f"/warehouses/{WH}")

    assert response.status_code == 200
    warehouse = response.json()["data"]["warehouse"]
    assert warehouse["id"] == WH and warehouse["enabled"] is True
    assert warehouse["metadata"]["name"] == "Postgres" and isinstance(warehouse["settings"], dict)
    for header in ("X-RateLimit-Consumed", "X-RateLimit-Remaining"):
        assert response.headers[header].isdigit()
    # X-RateLimit-Reset is an RFC 5322 date within the window (not epoch milliseconds as the emulator once sent)
    reset = response.headers["X-RateLimit-Reset"]
    assert not reset.isdigit() and reset.endswith(" GMT")
    seconds = (email.utils.parsedate_to_datetime(reset) - datetime.now(UTC)).total_seconds()
    assert 0 <= seconds <= 61
    assert client.get("/warehouses/wh_nope").json()["errors"][0]["type"] == "not-found"


def test_patch_warehouse_requires_settings_and_logs_before_after(segment):
    emulator, client = segment
    rejected = client.patch(f"/warehouses/{WH}", json={"enabled": False})
    assert rejected.status_code == 422 and "settings" in rejected.json()["errors"][0]["message"]
    assert client.get(f"/warehouses/{WH}").json()["data"]["warehouse"]["enabled"] is True

    done = client.patch(f"/warehouses/{WH}", json={"enabled": False, "settings": {}})

    assert done.status_code == 200 and done.json()["data"]["warehouse"]["enabled"] is False
    change = emulator.log.entries("api")[-1]
    assert (change["method"], change["path"]) == ("PATCH", f"/warehouses/{WH}")
    assert (change["before"], change["after"]) == ({"enabled": True}, {"enabled": False})


def test_sync_list_rate_limit_is_enforced_with_retry_after(segment):
    _, client = segment
    statuses = [client.get(f"/warehouses/{WH}/syncs") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 200]
    assert statuses[-1].headers["X-RateLimit-Remaining"] == "0"

    limited = client.get(f"/warehouses/{WH}/syncs")

    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    error = limited.json()["errors"][0]  # the shape of Segment's Rate-Limits page
    assert error["message"] == "Too many requests"
    assert 0 < error["data"]["msBeforeNext"] <= 60_000
    assert (error["data"]["remainingPoints"], error["data"]["consumedPoints"]) == (0, 3)
    assert email.utils.parsedate_to_datetime(limited.headers["X-RateLimit-Reset"]).tzinfo is not None
    # other endpoints are not held by the sync-list limit
    assert client.get(f"/warehouses/{WH}").status_code == 200


def test_sync_reports_newest_first_and_per_source(segment):
    emulator, client = segment
    emulator.run_load(WH)
    emulator.run_load(WH)

    all_reports = client.get(f"/warehouses/{WH}/syncs").json()["data"]["reports"]
    one_source = client.get(f"/warehouses/{WH}/connected-sources/src_backend/syncs").json()["data"]["reports"]

    assert len(all_reports) == 4 and len(one_source) == 2
    assert {r["sourceId"] for r in one_source} == {"src_backend"}
    assert all_reports[0]["start"] >= all_reports[-1]["start"]
    for report in all_reports:
        assert set(report) >= {
            "sourceId",
            "start",
            "end",
            "status",
            "duration",
            "humanDuration",
            "count",
            "notices",
        }
        assert report["status"] == "Success" and report["end"] is not None
        # SyncV1: duration in seconds (a 0.2 s load is not "200"), humanDuration a string, notices objects
        assert isinstance(report["duration"], (int, float)) and 0.1 <= report["duration"] < 5
        assert isinstance(report["humanDuration"], str) and report["humanDuration"]


def test_a_running_sync_has_a_partial_duration_and_a_human_duration(segment):
    emulator, client = segment
    emulator.settings.load_duration_s = 1.5
    thread = threading.Thread(target=emulator.run_load, args=(WH,), daemon=True)
    thread.start()
    try:
        running = []
        deadline = time.monotonic() + 5
        while not running and time.monotonic() < deadline:
            time.sleep(0.4)
            running = [
                r for r in client.get(f"/warehouses/{WH}/syncs").json()["data"]["reports"] if r["end"] is None
            ]
        assert running, "no running sync was listed"
        for report in running:
            assert isinstance(report["duration"], (int, float)) and report["duration"] > 0
            assert isinstance(report["humanDuration"], str) and report["humanDuration"]
    finally:
        thread.join(10)


def test_failed_sync_notices_are_objects_with_level_message_created_at(segment):
    emulator, client = segment
    emulator.faults.arm({"load_failure": {"count": 1, "message": "permission denied for schema"}})
    emulator.run_load(WH)

    report = client.get(f"/warehouses/{WH}/syncs").json()["data"]["reports"][0]

    assert report["status"] == "Failure"
    assert [set(n) for n in report["notices"]] == [{"level", "message", "createdAt"}]
    assert report["notices"][0]["message"] == "permission denied for schema"


def test_connected_destinations_paginate_over_three_pages(segment):
    _, client = segment
    created = [
        client.post("/destinations", json=webhook_body(n=n)).json()["data"]["destination"]["id"]
        for n in range(7)
    ]

    seen, cursor, pages = [], None, 0
    while pages < 10:
        params = {"pagination.count": 3, **({"pagination.cursor": cursor} if cursor else {})}
        data = client.get("/sources/src_web_app/connected-destinations", params=params).json()["data"]
        seen += [d["id"] for d in data["destinations"]]
        pages += 1
        assert data["pagination"]["totalEntries"] == 7
        cursor = data["pagination"].get("next")
        if pages > 1:
            assert "previous" in data["pagination"]
        if not cursor:
            break

    assert pages == 3 and seen == created
    bad = client.get("/sources/src_web_app/connected-destinations", params={"pagination.count": 0})
    assert bad.status_code == 422


def test_create_get_patch_webhook_destination(segment):
    emulator, client = segment
    created = client.post("/destinations", json=webhook_body()).json()["data"]["destination"]
    assert created["metadata"]["id"] == WEBHOOKS_METADATA_ID and created["enabled"] is False
    assert created["settings"]["hooks"][0]["hook"] == "http://127.0.0.1:9/hook"
    assert "s3cret" not in str(created)

    patched = client.patch(f"/destinations/{created['id']}", json={"enabled": True}).json()["data"][
        "destination"
    ]
    fetched = client.get(f"/destinations/{created['id']}").json()["data"]["destination"]

    assert patched["enabled"] is True and fetched["enabled"] is True
    assert [e["method"] for e in emulator.log.entries("api")] == ["POST", "PATCH"]
    assert "s3cret" not in str(emulator.log.entries())


def test_destination_validation(segment):
    _, client = segment
    too_many = webhook_body()
    too_many["settings"]["hooks"] = [{"hook": f"http://127.0.0.1:9/{i}"} for i in range(6)]
    other_kind = {**webhook_body(), "metadataId": "not-webhooks"}

    assert client.post("/destinations", json=too_many).status_code == 422
    assert client.post("/destinations", json=other_kind).status_code == 422
    assert client.post("/destinations", json={**webhook_body(), "sourceId": "src_nope"}).status_code == 404
    assert client.get("/destinations/dst_nope").status_code == 404


def test_sources_and_connections(segment):
    emulator, client = segment
    source = client.get("/sources/src_web_app").json()["data"]["source"]
    assert (source["id"], source["slug"]) == ("src_web_app", "web_app")

    warehouses = client.get("/sources/src_web_app/connected-warehouses").json()["data"]["warehouses"]
    assert [w["id"] for w in warehouses] == [WH]

    assert (
        client.delete(f"/warehouses/{WH}/connected-sources/src_web_app").json()["data"]["status"] == "SUCCESS"
    )
    assert client.get("/sources/src_web_app/connected-warehouses").json()["data"]["warehouses"] == []
    assert [r["sourceId"] for r in emulator.run_load(WH)] == ["src_backend"]

    connected = client.post(f"/warehouses/{WH}/connected-sources/src_web_app")
    # AddConnectionFromSourceToWarehouse201Response: 201 {"data": {"status": "CONNECTED"}} (not 200 "SUCCESS")
    assert (connected.status_code, connected.json()) == (201, {"data": {"status": "CONNECTED"}})
    assert len(client.get("/sources/src_web_app/connected-warehouses").json()["data"]["warehouses"]) == 1


def test_advanced_sync_schedule(segment):
    _, client = segment
    assert client.get(f"/warehouses/{WH}/advanced-sync-schedule").json()["data"] == {"enabled": False}


def test_injected_faults_hit_the_api_but_not_control_paths(segment):
    _, client = segment
    armed = client.post(
        "/sandbox/faults",
        json={
            "server_error": {"count": 1, "status": 502},
            "rate_limit": {"count": 1, "retry_after": 7},
            "path_prefix": "/warehouses",
        },
    )
    assert armed.status_code == 200

    first = client.get(f"/warehouses/{WH}")
    second = client.get(f"/warehouses/{WH}")
    third = client.get(f"/warehouses/{WH}")

    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert first.json()["errors"][0]["data"]["msBeforeNext"] == 7000  # an injected 429 looks like a real one
    assert second.status_code == 502 and "errors" in second.json()
    assert third.status_code == 200
    assert client.get("/sandbox/state").json()["data"]["faults"]["fired"] == {
        "rate_limit": 1,
        "server_error": 1,
    }


def test_the_load_balancers_html_502_and_a_lost_answer(segment):
    """A 502 page instead of the API's JSON; and a change that takes effect while its answer is lost."""
    _, client = segment
    client.post(
        "/sandbox/faults",
        json={"answer_lost": {"count": 1, "method": "PATCH", "path_prefix": "/warehouses", "status": 502}},
    )
    assert client.get(f"/warehouses/{WH}").status_code == 200  # another method: not this fault
    lost = client.patch(f"/warehouses/{WH}", json={"enabled": False, "settings": {}})
    assert lost.status_code == 502 and lost.headers["content-type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in lost.text
    assert client.get(f"/warehouses/{WH}").json()["data"]["warehouse"]["enabled"] is False  # it took effect
    client.post("/sandbox/faults", json={"server_error": {"count": 1, "status": 502, "html": True}})
    page = client.get(f"/warehouses/{WH}")
    assert page.status_code == 502 and page.text.startswith("<html>")


def test_state_and_log_control_endpoints(segment):
    _, client = segment
    client.patch(f"/warehouses/{WH}", json={"enabled": False, "settings": {}})

    state = client.get("/sandbox/state").json()["data"]
    entries = client.get("/sandbox/log", params={"kind": "api"}).json()["data"]["entries"]

    assert state["warehouses"][0]["enabled"] is False
    assert {s["id"] for s in state["sources"]} == {"src_web_app", "src_backend"}
    assert len(entries) == 1 and entries[0]["after"] == {"enabled": False}
