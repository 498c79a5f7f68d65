"""SegmentHook against a real local HTTP server: paths, bodies, envelopes, pagination, sync reports."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from segment_rudderstack.hooks import (
    WEBHOOKS_METADATA_ID,
    ResponseFormatError,
    SegmentHook,
    SyncReport,
    SyncState,
)

REPORTS = [  # deliberately not in time order
    {
        "sourceId": "src_a",
        "start": "2025-03-01T10:00:00Z",
        "end": "2025-03-01T10:05:00Z",
        "status": "SUCCESS",
        "count": 120,
        "duration": 300,
        "humanDuration": "5m",
        "notices": [],
    },
    {
        "sourceId": "src_a",
        "start": "2025-03-01T12:00:00.123456Z",
        "end": None,
        "status": "",
        "count": None,
        "duration": 12.5,
        "humanDuration": "12s",
        "notices": [],
    },
    {
        "sourceId": "src_b",
        "start": "2025-03-01T11:00:00+01:00",
        "end": "2025-03-01T11:02:00+01:00",
        "status": "Partial",
        "count": "7",
        "duration": 120,
        "humanDuration": "2m",
        "notices": [{"level": "WARNING", "message": "2 rows rejected", "createdAt": "2025-03-01T10:02:00Z"}],
    },
    {
        "sourceId": "src_b",
        "start": "2025-03-01T09:00:00",
        "end": "2025-03-01T09:01:00",
        "status": "failed",
        "count": 0,
        "duration": 60,
        "humanDuration": "1m",
        "notices": [],
    },
    {
        "sourceId": "src_c",
        "start": "2025-03-01T08:00:00Z",
        "end": "2025-03-01T08:01:00Z",
        "status": "Queued?",
        "count": 1,
        "duration": 60,
        "humanDuration": "1m",
        "notices": [],
    },
]


@pytest.fixture
def hook(connect, fast) -> SegmentHook:
    return SegmentHook(connect("segment_test"), **fast)


def test_sync_reports_are_typed_newest_first_with_aware_datetimes(hook, httpserver):
    httpserver.expect_request("/warehouses/wh_1/syncs").respond_with_json({"data": {"reports": REPORTS}})

    reports = hook.list_warehouse_syncs("wh_1", count=5)

    assert [r.start for r in reports] == sorted((r.start for r in reports), reverse=True)
    assert all(r.start.tzinfo is not None and (r.end is None or r.end.tzinfo) for r in reports)
    newest = reports[0]
    assert newest == SyncReport(
        "src_a", datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), None, "", None, 12.5, (), "12s"
    )
    by_start = {r.start.astimezone(UTC).hour: r for r in reports}
    assert by_start[10].start.utcoffset() == timedelta(hours=1)  # the given offset is kept
    assert by_start[10].count == 7 and by_start[10].notice_messages == ["WARNING: 2 rows rejected"]
    assert by_start[10].duration == 120.0  # seconds (SyncV1), not milliseconds
    assert by_start[9].start == datetime(2025, 3, 1, 9, tzinfo=UTC)  # no offset given: UTC
    assert httpserver.log[0][0].args.get("pagination.count") == "5"


def test_sync_status_is_matched_case_insensitively_and_unknown_is_not_terminal(hook, httpserver):
    httpserver.expect_request("/warehouses/wh_1/syncs").respond_with_json({"data": {"reports": REPORTS}})

    states = {(r.source_id, r.start.astimezone(UTC).hour): r.state for r in hook.list_warehouse_syncs("wh_1")}

    assert states == {
        ("src_a", 12): SyncState.RUNNING,  # end is null
        ("src_a", 10): SyncState.SUCCESS,  # "SUCCESS"
        ("src_b", 10): SyncState.PARTIAL,  # "Partial"
        ("src_b", 9): SyncState.FAILURE,  # "failed"
        ("src_c", 8): SyncState.UNKNOWN,  # undocumented value
    }
    assert [s for s in SyncState if s.terminal] == [SyncState.SUCCESS, SyncState.PARTIAL, SyncState.FAILURE]


def test_sync_reports_of_one_source_use_the_connected_source_path(hook, httpserver):
    path = "/warehouses/wh_1/connected-sources/src_b/syncs"
    httpserver.expect_request(path).respond_with_json({"data": {"reports": REPORTS[2:4]}})

    reports = hook.list_warehouse_syncs("wh_1", source_id="src_b")

    assert [r.source_id for r in reports] == ["src_b", "src_b"] and len(httpserver.log) == 1


def test_a_sync_report_without_start_is_a_format_error(hook, httpserver):
    httpserver.expect_request("/warehouses/wh_1/syncs").respond_with_json(
        {"data": {"reports": [{"sourceId": "s", "end": None, "status": "x"}]}}
    )
    with pytest.raises(ResponseFormatError, match="'start' timestamp"):
        hook.list_warehouse_syncs("wh_1")


def test_a_bad_timestamp_is_a_format_error(hook, httpserver):
    httpserver.expect_request("/warehouses/wh_1/syncs").respond_with_json(
        {"data": {"reports": [{"start": "yesterday", "end": None, "status": ""}]}}
    )
    with pytest.raises(ResponseFormatError, match="ISO 8601"):
        hook.list_warehouse_syncs("wh_1")


def test_async_sync_reports_equal_sync_ones(connect, httpserver, fast):
    httpserver.expect_request("/warehouses/wh_1/syncs").respond_with_json({"data": {"reports": REPORTS}})
    conn_id = connect("segment_test")

    sync_reports = SegmentHook(conn_id, **fast).list_warehouse_syncs("wh_1")
    async_reports = asyncio.run(SegmentHook(conn_id, **fast).alist_warehouse_syncs("wh_1"))

    assert async_reports == sync_reports and len(async_reports) == len(REPORTS)


def test_sync_reports_round_trip_to_json(hook, httpserver):
    httpserver.expect_request("/warehouses/wh_1/syncs").respond_with_json({"data": {"reports": REPORTS}})
    reports = hook.list_warehouse_syncs("wh_1")

    from segment_rudderstack.hooks import parse_sync_report

    assert [parse_sync_report(json.loads(json.dumps(r.to_dict()))) for r in reports] == reports


def test_connected_destinations_follow_the_cursor_over_three_pages(hook, httpserver):
    path = "/sources/src_a/connected-destinations"
    pages = {
        None: ([{"id": "d1"}, {"id": "d2"}], "c2"),
        "c2": ([{"id": "d3"}, {"id": "d4"}], "c3"),
        "c3": ([{"id": "d5"}], None),
    }
    for cursor, (items, nxt) in pages.items():
        query = {"pagination.count": "200"} | ({"pagination.cursor": cursor} if cursor else {})
        pagination = {"current": cursor or "c1", "totalEntries": 5} | ({"next": nxt} if nxt else {})
        httpserver.expect_oneshot_request(path, query_string=query).respond_with_json(
            {"data": {"destinations": items, "pagination": pagination}}
        )

    destinations = hook.list_connected_destinations("src_a")

    assert [d["id"] for d in destinations] == ["d1", "d2", "d3", "d4", "d5"]
    assert len(httpserver.log) == 3
    httpserver.check_assertions()


def test_a_cursor_that_repeats_stops_pagination_with_a_clear_error(hook, httpserver):
    httpserver.expect_request("/sources/src_a/connected-warehouses").respond_with_json(
        {"data": {"warehouses": [{"id": "w"}], "pagination": {"current": "x", "next": "same"}}}
    )
    with pytest.raises(ResponseFormatError, match="repeats an earlier cursor"):
        hook.list_connected_warehouses("src_a")
    assert len(httpserver.log) == 2


def test_connected_warehouses_single_page(hook, httpserver):
    httpserver.expect_request("/sources/src_a/connected-warehouses").respond_with_json(
        {"data": {"warehouses": [{"id": "wh_1"}], "pagination": {"current": "c1", "totalEntries": 1}}}
    )
    assert hook.list_connected_warehouses("src_a") == [{"id": "wh_1"}]


def test_warehouse_enable_and_disable_send_the_required_settings(hook, httpserver):
    httpserver.expect_request("/warehouses/wh_1", method="PATCH").respond_with_json(
        {"data": {"warehouse": {"id": "wh_1", "enabled": False}}}
    )

    assert hook.set_warehouse_enabled("wh_1", False) == {"id": "wh_1", "enabled": False}
    assert httpserver.log[0][0].get_json() == {"enabled": False, "settings": {}}


def test_reads_unwrap_the_data_envelope(hook, httpserver):
    schedule = {
        "enabled": True,
        "schedule": {"times": [{"hourOfDay": 3, "enabled": True}], "timezone": "UTC"},
    }
    httpserver.expect_request("/warehouses/wh_1/advanced-sync-schedule").respond_with_json({"data": schedule})
    httpserver.expect_request("/sources/src_a").respond_with_json({"data": {"source": {"id": "src_a"}}})
    httpserver.expect_request("/destinations/d1", method="GET").respond_with_json(
        {"data": {"destination": {"id": "d1", "enabled": True}}}
    )

    assert hook.get_advanced_sync_schedule("wh_1") == schedule
    assert hook.get_source("src_a") == {"id": "src_a"}
    assert hook.get_destination("d1") == {"id": "d1", "enabled": True}


def test_ids_are_url_quoted(hook, httpserver):
    httpserver.expect_request("/sources/a/b?c").respond_with_json({"data": {"source": {"id": "a/b?c"}}})
    assert hook.get_source("a/b?c") == {"id": "a/b?c"}
    request = httpserver.log[0][0]
    assert request.environ["REQUEST_URI"] == "/sources/a%2Fb%3Fc" and not request.args


def test_create_webhook_destination_and_toggle_it(hook, httpserver):
    settings = {
        "hooks": [{"hook": "http://dp.local/v1/webhook?writeKey=wk-SECRET-9", "headers": []}],
        "sharedSecret": "shh-SECRET-7",
    }
    httpserver.expect_request("/destinations", method="POST").respond_with_json(
        {"data": {"destination": {"id": "d9", "enabled": False}}}, status=201
    )
    httpserver.expect_request("/destinations/d9", method="PATCH").respond_with_json(
        {"data": {"destination": {"id": "d9", "enabled": True}}}
    )

    created = hook.create_destination("src_a", WEBHOOKS_METADATA_ID, "to RudderStack", False, settings)
    enabled = hook.set_destination_enabled("d9", True)

    assert created == {"id": "d9", "enabled": False} and enabled["enabled"] is True
    assert httpserver.log[0][0].get_json() == {
        "sourceId": "src_a",
        "metadataId": "54521fdc25e721e32a72ef04",
        "name": "to RudderStack",
        "enabled": False,
        "settings": settings,
    }
    assert httpserver.log[1][0].get_json() == {"enabled": True}

    from airflow.sdk._shared.secrets_masker import redact

    assert "wk-SECRET-9" not in redact(settings["hooks"][0]["hook"])
    assert "shh-SECRET-7" not in redact("secret shh-SECRET-7")


def test_source_can_be_disconnected_and_reconnected(hook, httpserver):
    path = "/warehouses/wh_1/connected-sources/src_a"
    httpserver.expect_request(path, method="DELETE").respond_with_json({"data": {"status": "SUCCESS"}})
    httpserver.expect_request(path, method="POST").respond_with_json(
        {"data": {"status": "CONNECTED"}}, status=201
    )

    assert hook.disconnect_warehouse_source("wh_1", "src_a") == {"status": "SUCCESS"}
    assert hook.connect_warehouse_source("wh_1", "src_a") == {"status": "CONNECTED"}
    assert [entry[0].method for entry in httpserver.log] == ["DELETE", "POST"]


def test_a_connect_answer_other_than_connected_is_an_error(hook, httpserver):
    path = "/warehouses/wh_1/connected-sources/src_a"
    httpserver.expect_request(path, method="POST").respond_with_json(
        {"data": {"status": "NOT_CONNECTED"}}, status=201
    )

    with pytest.raises(ResponseFormatError, match="expected data.status CONNECTED.*NOT_CONNECTED"):
        hook.connect_warehouse_source("wh_1", "src_a")


def test_count_outside_segment_limits_is_rejected_before_any_request(hook, httpserver):
    with pytest.raises(ValueError, match="between 1 and 1000"):
        hook.list_warehouse_syncs("wh_1", count=5000)
    assert httpserver.log == []


def test_bad_retry_settings_are_rejected_up_front():
    with pytest.raises(ValueError, match="max_attempts"):
        SegmentHook("segment_test", max_attempts=0)


def test_default_host_is_segments_api(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMENT_DEFAULT", json.dumps({"conn_type": "http", "password": "t-123456"})
    )
    hook = SegmentHook()
    hook.load_connection()
    assert hook.url_from_endpoint("/warehouses/x") == "https://api.segmentapis.com/warehouses/x"


def test_a_connection_without_token_says_where_to_put_it(connect):
    with pytest.raises(ValueError, match="password field"):
        SegmentHook(connect("segment_test", password=None)).get_warehouse("wh_1")


@pytest.mark.parametrize(
    "field, value",
    [("notices", ["2 rows rejected"]), ("duration", "300000ms")],
    ids=["notices-as-strings", "duration-not-a-number"],
)
def test_sync_reports_in_the_old_emulator_shape_are_refused_naming_the_field(hook, httpserver, field, value):
    report = {**REPORTS[0], field: value}
    httpserver.expect_request("/warehouses/wh_1/syncs").respond_with_json({"data": {"reports": [report]}})

    with pytest.raises(ResponseFormatError) as caught:
        hook.list_warehouse_syncs("wh_1")

    assert repr(field) in str(caught.value)


def test_webhook_mapping_calls_use_the_sdk_paths_and_bodies(hook, httpserver):
    """DestinationsApi of Segment's Public API SDK: create (CreateDestinationSubscriptionAlphaInput), update
    (UpdateSubscriptionForDestinationAlphaInput: the change inside "input"), list (paged), get."""
    base = "/destinations/d1/subscriptions"
    created = {"id": "m1", "enabled": False, "settings": {}}
    httpserver.expect_request(base, method="POST").respond_with_json(
        {"data": {"destinationSubscription": created}}
    )
    httpserver.expect_request(f"{base}/m1", method="PATCH").respond_with_json(
        {"data": {"subscription": {**created, "enabled": True}}}
    )
    httpserver.expect_oneshot_request(
        base, method="GET", query_string="pagination.count=200"
    ).respond_with_json({"data": {"subscriptions": [created], "pagination": {"current": "c0", "next": "c1"}}})
    httpserver.expect_oneshot_request(base, method="GET").respond_with_json(
        {"data": {"subscriptions": [{**created, "id": "m2"}], "pagination": {"current": "c1"}}}
    )

    settings = {
        "url": "http://rs/v1/webhook",
        "method": "POST",
        "headers": {},
        "data": {"@path": "$."},
        "enable_batching": False,
    }
    assert (
        hook.create_destination_subscription(
            "d1",
            name="RudderStack: Send",
            action_id="nFPnRozhz1mh4Gbx4MLvT5",
            trigger='type = "track"',
            enabled=False,
            settings=settings,
        )
        == created
    )
    assert hook.set_destination_subscription_enabled("d1", "m1", True)["enabled"] is True
    assert [m["id"] for m in hook.list_destination_subscriptions("d1")] == ["m1", "m2"]

    bodies = [(r.method, r.path, r.get_json(silent=True)) for r, _ in httpserver.log]
    assert bodies[0] == (
        "POST",
        base,
        {
            "name": "RudderStack: Send",
            "actionId": "nFPnRozhz1mh4Gbx4MLvT5",
            "trigger": 'type = "track"',
            "enabled": False,
            "settings": settings,
        },
    )
    assert bodies[1] == ("PATCH", f"{base}/m1", {"input": {"enabled": True}})  # not a flat {"enabled": true}
    assert httpserver.log[3][0].args.get("pagination.cursor") == "c1"
