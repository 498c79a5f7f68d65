"""RudderStack control-plane and data-plane hooks against a real local HTTP server."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from airflow.sdk._shared.secrets_masker import redact

from segment_rudderstack.hooks import ApiError, ResponseFormatError, RudderStackDataPlaneHook, RudderStackHook

CURRENT = {
    "id": "dst_1",
    "name": "warehouse",
    "type": "POSTGRES",
    "enabled": True,
    "config": {
        "namespace": "prod",
        "syncFrequency": "30",
        "password": "pg-SECRET-pw",
        "excludeWindow": {"excludeWindowStartTime": "01:00", "excludeWindowEndTime": "02:00"},
    },
}


@pytest.fixture
def control(connect, fast) -> RudderStackHook:
    return RudderStackHook(connect("rudderstack_test"), **fast)


def _put_echo(request):
    from werkzeug import Response

    return Response(
        json.dumps({"destination": {"id": "dst_1", **request.get_json()}}), content_type="application/json"
    )


def test_update_destination_merges_config_and_keeps_the_rest(control, httpserver):
    httpserver.expect_request("/v2/destinations/dst_1", method="GET").respond_with_json(
        {"destination": CURRENT}
    )
    httpserver.expect_request("/v2/destinations/dst_1", method="PUT").respond_with_handler(_put_echo)

    updated = control.update_destination("dst_1", config={"manualSync": True, "syncFrequency": "1440"})

    put = httpserver.log[1][0]
    assert put.method == "PUT"
    assert put.get_json() == {
        "name": "warehouse",
        "type": "POSTGRES",
        "enabled": True,
        "config": {
            "namespace": "prod",
            "syncFrequency": "1440",
            "password": "pg-SECRET-pw",
            "excludeWindow": {"excludeWindowStartTime": "01:00", "excludeWindowEndTime": "02:00"},
            "manualSync": True,
        },
    }
    assert updated["config"]["manualSync"] is True


def test_update_destination_changes_name_and_enabled_only_when_given(control, httpserver):
    httpserver.expect_request("/v2/destinations/dst_1", method="GET").respond_with_json(
        {"destination": CURRENT}
    )
    httpserver.expect_request("/v2/destinations/dst_1", method="PUT").respond_with_handler(_put_echo)

    control.update_destination("dst_1", enabled=False)

    body = httpserver.log[1][0].get_json()
    assert body["enabled"] is False and body["name"] == "warehouse" and body["config"] == CURRENT["config"]


def test_destination_credentials_are_registered_with_the_masker(control, httpserver):
    httpserver.expect_request("/v2/destinations/dst_1").respond_with_json({"destination": CURRENT})
    control.get_destination("dst_1")
    assert "pg-SECRET-pw" not in redact("connecting with pg-SECRET-pw")


def test_create_and_list_resources_unwrap_the_envelopes(control, httpserver):
    httpserver.expect_request("/v2/destinations", method="POST").respond_with_json(
        {"destination": {"id": "dst_2", "name": "wh"}}
    )
    httpserver.expect_request("/v2/destinations", method="GET").respond_with_json(
        {"destinations": [{"id": "dst_1"}, {"id": "dst_2"}]}
    )
    httpserver.expect_request("/v2/sources", method="POST").respond_with_json(
        {"source": {"id": "src_9", "writeKey": "wk-SECRET-src9"}}
    )
    httpserver.expect_request("/v2/sources", method="GET").respond_with_json({"sources": [{"id": "src_9"}]})
    httpserver.expect_request("/v2/sources/src_9").respond_with_json({"source": {"id": "src_9"}})
    httpserver.expect_request("/v2/connections", method="POST").respond_with_json(
        {"connection": {"id": "c1", "sourceId": "src_9", "destinationId": "dst_2", "enabled": True}}
    )
    httpserver.expect_request("/v2/connections", method="GET").respond_with_json(
        {"connections": [{"id": "c1"}]}
    )

    assert control.create_destination("wh", "POSTGRES", {"namespace": "prod"}, enabled=False)["id"] == "dst_2"
    assert [d["id"] for d in control.list_destinations()] == ["dst_1", "dst_2"]
    assert control.create_source("from segment", "segment")["id"] == "src_9"
    assert control.list_sources() == [{"id": "src_9"}]
    assert control.get_source("src_9") == {"id": "src_9"}
    assert control.create_connection("src_9", "dst_2")["id"] == "c1"
    assert control.list_connections() == [{"id": "c1"}]

    bodies = [entry[0].get_json(silent=True) for entry in httpserver.log if entry[0].method == "POST"]
    assert bodies == [
        {"name": "wh", "type": "POSTGRES", "enabled": False, "config": {"namespace": "prod"}},
        {"name": "from segment", "type": "segment", "enabled": True, "config": {}},
        {"sourceId": "src_9", "destinationId": "dst_2", "enabled": True},
    ]
    assert "wk-SECRET-src9" not in redact("key wk-SECRET-src9")


def test_a_host_that_already_ends_in_v2_is_not_doubled(connect, httpserver, fast):
    httpserver.expect_request("/v2/sources").respond_with_json({"sources": []})
    conn_id = connect("rudderstack_test", host=httpserver.url_for("/v2"))
    assert RudderStackHook(conn_id, **fast).list_sources() == []


def test_a_wrong_envelope_is_a_format_error(control, httpserver):
    httpserver.expect_request("/v2/sources").respond_with_json({"data": []})
    with pytest.raises(ResponseFormatError, match="body.sources"):
        control.list_sources()


# ---------------------------------------------------------------- data plane


@pytest.mark.parametrize("prefix", ["/v1/warehouse", "/internal/v1/warehouse"])
def test_pending_events_uses_the_configured_prefix(prefix, connect, httpserver, fast):
    answer = {
        "pending_events": False,
        "pending_staging_files": 0,
        "pending_uploads": 0,
        "aborted_events": False,
    }
    httpserver.expect_request(f"{prefix}/pending-events", method="POST").respond_with_json(answer)
    conn_id = connect("rs_dp_test", extra={"warehouse_path_prefix": prefix})

    assert RudderStackDataPlaneHook(conn_id, **fast).pending_events("src_1", task_run_id="run-7") == answer
    assert asyncio.run(RudderStackDataPlaneHook(conn_id, **fast).apending_events("src_1", "run-7")) == answer
    assert [entry[0].get_json() for entry in httpserver.log] == [
        {"source_id": "src_1", "task_run_id": "run-7"}
    ] * 2
    assert "warehouse_path_prefix" not in {k.lower() for k in httpserver.log[0][0].headers.keys()}


def test_the_default_prefix_is_the_internal_one_current_servers_serve(connect, httpserver, fast):
    # rudder-server gateway/handle_lifecycle.go routes the warehouse endpoints only under /internal/v1/warehouse.
    httpserver.expect_request("/internal/v1/warehouse/trigger-upload", method="POST").respond_with_data("")
    RudderStackDataPlaneHook(connect("rs_dp_test"), **fast).trigger_upload("src_1", "dst_1")
    assert [entry[0].path for entry in httpserver.log] == ["/internal/v1/warehouse/trigger-upload"]


def test_the_prefix_argument_wins_over_the_connection(connect, httpserver, fast):
    httpserver.expect_request("/internal/v1/warehouse/trigger-upload", method="POST").respond_with_data("")
    conn_id = connect("rs_dp_test", extra={"warehouse_path_prefix": "/v1/warehouse"})

    hook = RudderStackDataPlaneHook(conn_id, warehouse_path_prefix="internal/v1/warehouse/", **fast)

    assert hook.trigger_upload("src_1", destination_id="dst_1") is None  # 200 with an empty body
    assert httpserver.log[0][0].get_json() == {"source_id": "src_1", "destination_id": "dst_1"}


def test_trigger_upload_always_names_the_source(connect, httpserver, fast):
    # rudder-server warehouse/api/http.go triggerUploadHandler looks the workspace up from source_id:
    # 400 "workspace from source not found" without it. The hook refuses to send such a request.
    hook = RudderStackDataPlaneHook(connect("rs_dp_test"), **fast)
    for source_id in (None, "", "  "):
        with pytest.raises(ValueError, match="source_id"):
            hook.trigger_upload(source_id, destination_id="dst_1")
    with pytest.raises(TypeError):
        hook.trigger_upload(destination_id="dst_1")
    assert httpserver.log == []


def test_trigger_upload_for_a_source_alone(connect, httpserver, fast):
    httpserver.expect_request("/internal/v1/warehouse/trigger-upload", method="POST").respond_with_data("")
    RudderStackDataPlaneHook(connect("rs_dp_test"), **fast).trigger_upload("src_1")
    assert httpserver.log[0][0].get_json() == {"source_id": "src_1"}


def test_pending_events_always_sends_a_task_run_id(connect, httpserver, fast):
    # warehouse/api/http.go pendingEventsHandler: 400 "empty source or task run id" unless both are given.
    hook = RudderStackDataPlaneHook(connect("rs_dp_test"), **fast)
    for args in (("src_1", None), ("src_1", ""), ("", "run-1")):
        with pytest.raises(ValueError, match="source_id|task_run_id"):
            hook.pending_events(*args)
        with pytest.raises(ValueError, match="source_id|task_run_id"):
            asyncio.run(hook.apending_events(*args))
    with pytest.raises(TypeError):
        hook.pending_events("src_1")
    assert httpserver.log == []


@pytest.mark.parametrize("status", [403, 404, 405, 501])
def test_an_unserved_warehouse_endpoint_is_recognisable(status, connect, httpserver, fast):
    from segment_rudderstack.hooks.rudderstack import warehouse_api_unavailable

    httpserver.expect_request("/internal/v1/warehouse/trigger-upload").respond_with_data(
        "404 page not found", status=status
    )
    with pytest.raises(ApiError) as caught:
        RudderStackDataPlaneHook(connect("rs_dp_test"), **fast).trigger_upload("src_1", "dst_1")
    assert warehouse_api_unavailable(caught.value)


def test_a_refused_trigger_is_not_mistaken_for_an_unserved_endpoint(connect, httpserver, fast):
    from segment_rudderstack.hooks.rudderstack import warehouse_api_unavailable

    httpserver.expect_request("/internal/v1/warehouse/trigger-upload").respond_with_data(
        "no warehouse found\n", status=400
    )
    with pytest.raises(ApiError, match="no warehouse found") as caught:
        RudderStackDataPlaneHook(connect("rs_dp_test"), **fast).trigger_upload("src_1", "dst_1")
    assert not warehouse_api_unavailable(caught.value)


def test_pending_events_with_wrong_types_is_a_format_error(connect, httpserver, fast):
    httpserver.expect_request("/internal/v1/warehouse/pending-events").respond_with_json(
        {"pending_events": "yes", "pending_staging_files": 0, "pending_uploads": 0, "aborted_events": False}
    )
    with pytest.raises(ResponseFormatError, match="pending_events to be a bool"):
        RudderStackDataPlaneHook(connect("rs_dp_test"), **fast).pending_events("src_1", "run-1")


def test_webhook_url_carries_the_write_key_and_is_masked(connect, httpserver, fast):
    hook = RudderStackDataPlaneHook(connect("rs_dp_test", password=None), **fast)

    url = hook.webhook_url("wk-SECRET-abc")

    assert url == httpserver.url_for("/v1/webhook") + "?writeKey=wk-SECRET-abc"
    assert "wk-SECRET-abc" not in redact(f"posting to {url}")


def test_write_key_echoed_in_an_error_is_scrubbed(connect, httpserver, fast):
    hook = RudderStackDataPlaneHook(connect("rs_dp_test", password=None), **fast)
    url = hook.webhook_url("wk-SECRET-abc")
    httpserver.expect_request("/internal/v1/warehouse/pending-events").respond_with_data(
        f"source for writeKey wk-SECRET-abc unknown ({url})", status=400
    )

    with pytest.raises(ApiError) as caught:
        hook.pending_events("src_1", "run-1")

    assert "wk-SECRET-abc" not in str(caught.value) and "unknown" in str(caught.value)
    assert httpserver.log[0][0].headers.get("Authorization") is None  # no credentials configured: none sent


def test_basic_auth_with_login_and_password(connect, httpserver, fast):
    httpserver.expect_request("/internal/v1/warehouse/trigger-upload").respond_with_data("")
    conn_id = connect("rs_dp_test", login="admin", password="pw-SECRET-dp")

    RudderStackDataPlaneHook(conn_id, **fast).trigger_upload(source_id="s")

    expected = base64.b64encode(b"admin:pw-SECRET-dp").decode()
    assert httpserver.log[0][0].headers["Authorization"] == f"Basic {expected}"
    assert expected not in redact(f"header Basic {expected}")


def test_a_data_plane_connection_without_host_says_what_to_set(monkeypatch, fast):
    monkeypatch.setenv("AIRFLOW_CONN_RS_DP_EMPTY", json.dumps({"conn_type": "http"}))
    with pytest.raises(ValueError, match="data plane URL"):
        RudderStackDataPlaneHook("rs_dp_empty", **fast).pending_events("src_1", "run-1")
