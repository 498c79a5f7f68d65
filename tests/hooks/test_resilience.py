"""Behaviour every hook must have, against a real local HTTP server: retries, rate limits, errors, secrets."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time

import pytest
from werkzeug import Response

from segment_rudderstack.hooks import (
    ApiError,
    ResponseFormatError,
    RudderStackDataPlaneHook,
    RudderStackHook,
    SegmentHook,
)

PENDING = {"pending_events": True, "pending_staging_files": 2, "pending_uploads": 1, "aborted_events": False}


class Case:
    def __init__(self, name, make, call, acall, method, path, ok, expected, error_body, error_text):
        self.name, self.make, self.call, self.acall = name, make, call, acall
        self.method, self.path, self.ok, self.expected = method, path, ok, expected
        self.error_body, self.error_text = error_body, error_text

    def __repr__(self) -> str:
        return self.name


CASES = [
    Case(
        "segment",
        make=lambda conn, **kw: SegmentHook(conn, **kw),
        call=lambda hook: hook.get_warehouse("wh_1"),
        acall=lambda hook: hook.aget_warehouse("wh_1"),
        method="GET",
        path="/warehouses/wh_1",
        ok={"data": {"warehouse": {"id": "wh_1", "enabled": True}}},
        expected={"id": "wh_1", "enabled": True},
        error_body={"errors": [{"type": "not-found", "message": "Warehouse wh_1 does not exist"}]},
        error_text="Warehouse wh_1 does not exist",
    ),
    Case(
        "rudderstack",
        make=lambda conn, **kw: RudderStackHook(conn, **kw),
        call=lambda hook: hook.get_destination("dst_1"),
        acall=None,
        method="GET",
        path="/v2/destinations/dst_1",
        ok={"destination": {"id": "dst_1", "name": "wh", "config": {"namespace": "prod"}}},
        expected={"id": "dst_1", "name": "wh", "config": {"namespace": "prod"}},
        error_body={"error": "destination dst_1 not found in workspace"},
        error_text="destination dst_1 not found in workspace",
    ),
    Case(
        "data_plane",
        make=lambda conn, **kw: RudderStackDataPlaneHook(conn, **kw),
        call=lambda hook: hook.pending_events("src_1", "run-1"),
        acall=lambda hook: hook.apending_events("src_1", "run-1"),
        method="POST",
        path="/internal/v1/warehouse/pending-events",
        ok=PENDING,
        expected=PENDING,
        error_body="invalid source id src_1",
        error_text="invalid source id src_1",
    ),
]
ASYNC_CASES = [case for case in CASES if case.acall]


def _error_response(case: Case, status: int) -> Response:
    body = case.error_body if isinstance(case.error_body, str) else json.dumps(case.error_body)
    return Response(body, status=status, content_type="application/json")


@pytest.fixture(params=CASES, ids=repr)
def case(request) -> Case:
    return request.param


@pytest.fixture(params=ASYNC_CASES, ids=repr)
def async_case(request) -> Case:
    return request.param


def test_a_5xx_is_retried_and_the_call_then_succeeds(case, connect, httpserver, fast):
    httpserver.expect_oneshot_request(case.path, method=case.method).respond_with_data("down", status=503)
    httpserver.expect_oneshot_request(case.path, method=case.method).respond_with_data("oops", status=500)
    httpserver.expect_request(case.path, method=case.method).respond_with_json(case.ok)
    hook = case.make(connect("api_test"), **fast)

    assert case.call(hook) == case.expected
    assert len(httpserver.log) == 3


def test_a_5xx_that_persists_gives_up_after_the_configured_attempts(case, connect, httpserver, fast):
    httpserver.expect_request(case.path, method=case.method).respond_with_response(_error_response(case, 502))
    hook = case.make(connect("api_test"), **{**fast, "max_attempts": 4})

    with pytest.raises(ApiError) as caught:
        case.call(hook)

    error = caught.value
    assert len(httpserver.log) == 4
    assert (error.status, error.retryable, error.attempts) == (502, True, 4)
    assert error.endpoint == f"{case.method} {case.path}"
    assert f"{case.method} {case.path}" in str(error) and "HTTP 502" in str(error)
    assert "gave up after 4 attempts" in str(error)


def test_attempts_can_be_set_in_the_connection_extras(case, connect, httpserver):
    httpserver.expect_request(case.path, method=case.method).respond_with_data("down", status=503)
    conn_id = connect("api_test", extra={"max_attempts": 2, "backoff_initial": 0.01, "timeout": 2})

    with pytest.raises(ApiError):
        case.call(case.make(conn_id))
    assert len(httpserver.log) == 2


@pytest.mark.parametrize("status", [400, 401, 404])
def test_other_4xx_is_not_retried_and_names_endpoint_status_and_message(
    case, status, connect, httpserver, fast
):
    httpserver.expect_request(case.path, method=case.method).respond_with_response(
        _error_response(case, status)
    )
    hook = case.make(connect("api_test"), **fast)

    with pytest.raises(ApiError) as caught:
        case.call(hook)

    error = caught.value
    assert len(httpserver.log) == 1
    assert (error.status, error.retryable) == (status, False)
    assert case.error_text in error.message
    text = str(error)
    assert f"{case.method} {case.path}" in text and f"HTTP {status}" in text and case.error_text in text


def _logs(caplog, capsys) -> str:
    """Everything logged: Airflow's task loggers print through structlog, stdlib records go to caplog."""
    captured = capsys.readouterr()
    return "\n".join([caplog.text, captured.out, captured.err])


def test_connection_refused_is_retried_then_reported(case, connect, closed_port, fast, caplog, capsys):
    hook = case.make(connect("api_test", host=f"http://127.0.0.1:{closed_port}"), **fast)

    with caplog.at_level(logging.WARNING), pytest.raises(ApiError) as caught:
        case.call(hook)

    error = caught.value
    assert error.status is None and error.retryable and error.attempts == 3
    assert "could not connect" in str(error) and "connection refused" in str(error)
    logs = _logs(caplog, capsys)
    assert logs.count("retrying in") == 2, logs


def test_a_slow_response_times_out_is_retried_then_reported(
    case, connect, httpserver, fast, wait_for_requests
):
    def slow(request):
        time.sleep(0.35)
        return Response(json.dumps(case.ok), content_type="application/json")

    httpserver.expect_request(case.path, method=case.method).respond_with_handler(slow)
    hook = case.make(connect("api_test"), **{**fast, "max_attempts": 2, "timeout": 0.1})

    with pytest.raises(ApiError) as caught:
        case.call(hook)

    error = caught.value
    assert error.status is None and error.retryable and error.attempts == 2
    assert "no response" in str(error) and "timeout" in str(error)
    assert wait_for_requests(2) == 2  # both attempts reached the server


def test_429_waits_what_retry_after_says_then_succeeds(case, connect, httpserver, fast):
    httpserver.expect_oneshot_request(case.path, method=case.method).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"}
    )
    httpserver.expect_request(case.path, method=case.method).respond_with_json(case.ok)
    hook = case.make(connect("api_test"), **fast)

    started = time.monotonic()
    assert case.call(hook) == case.expected
    assert time.monotonic() - started >= 0.95  # backoff alone would have waited 0.01 s
    assert len(httpserver.log) == 2


def _rfc5322_in(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


def test_429_without_retry_after_waits_for_the_rfc5322_rate_limit_reset(connect, httpserver, fast):
    path = "/warehouses/wh_1/syncs"
    httpserver.expect_oneshot_request(path).respond_with_data(
        "", status=429, headers={"X-RateLimit-Reset": _rfc5322_in(2), "X-RateLimit-Remaining": "0"}
    )
    httpserver.expect_request(path).respond_with_json({"data": {"reports": []}})

    started = time.monotonic()
    assert SegmentHook(connect("api_test"), **fast).list_warehouse_syncs("wh_1") == []
    assert time.monotonic() - started >= 0.95  # backoff alone would have waited 0.01 s
    assert len(httpserver.log) == 2


def _rate_limited_once(connect, httpserver, fast, *, headers, body=""):
    """The wait a single 429 asks for, as the hook read it (no retry: max_attempts=1)."""
    httpserver.expect_request("/warehouses/wh_1").respond_with_data(
        body, status=429, headers=headers, content_type="application/json"
    )
    with pytest.raises(ApiError) as caught:
        SegmentHook(connect("api_test"), **{**fast, "max_attempts": 1}).get_warehouse("wh_1")
    return caught.value.retry_after


SEGMENT_429 = json.dumps(
    {
        "errors": [
            {
                "type": "RequestError",
                "message": "Too many requests",
                "data": {"remainingPoints": 0, "msBeforeNext": 57647, "consumedPoints": 21},
            }
        ]
    }
)


def test_429_body_ms_before_next_is_honoured(connect, httpserver, fast):
    wait = _rate_limited_once(connect, httpserver, fast, headers={}, body=SEGMENT_429)
    assert wait == pytest.approx(57.647)


def test_429_takes_the_longest_of_retry_after_reset_date_and_ms_before_next(connect, httpserver, fast):
    wait = _rate_limited_once(
        connect,
        httpserver,
        fast,
        headers={"Retry-After": "3", "X-RateLimit-Reset": _rfc5322_in(90)},
        body=SEGMENT_429,
    )
    assert 85 <= wait <= 91


def test_429_with_an_epoch_number_in_x_ratelimit_reset_is_not_read_as_a_wait(connect, httpserver, fast):
    # The emulator once sent epoch milliseconds; Segment sends an RFC 5322 date. A number is not Segment's format.
    epoch_ms = str(int((time.time() + 30) * 1000))
    assert _rate_limited_once(connect, httpserver, fast, headers={"X-RateLimit-Reset": epoch_ms}) is None


def test_429_asking_for_longer_than_max_retry_wait_fails_at_once_saying_so(case, connect, httpserver, fast):
    httpserver.expect_request(case.path, method=case.method).respond_with_data(
        "", status=429, headers={"Retry-After": "600"}
    )
    hook = case.make(connect("api_test"), **fast, max_retry_wait=5)

    with pytest.raises(ApiError) as caught:
        case.call(hook)

    assert len(httpserver.log) == 1
    assert caught.value.status == 429 and "wait 600 s" in str(caught.value)


def test_429_storm_is_bounded(connect, httpserver, fast):
    httpserver.expect_request("/warehouses/wh_1").respond_with_data(
        "", status=429, headers={"Retry-After": "0"}
    )

    with pytest.raises(ApiError) as caught:
        SegmentHook(connect("api_test"), **fast).get_warehouse("wh_1")

    assert len(httpserver.log) == 3 and caught.value.status == 429


@pytest.mark.parametrize(
    "body, content_type, expected",
    [
        ("<html>maintenance</html>", "text/html", "expected a JSON body"),
        ('{"unexpected": true}', "application/json", "found only keys"),
        ("[1, 2]", "application/json", "JSON object"),
    ],
    ids=["html", "wrong-envelope", "list"],
)
def test_a_body_that_is_not_the_expected_json_is_a_clear_error(
    case, body, content_type, expected, connect, httpserver, fast
):
    httpserver.expect_request(case.path, method=case.method).respond_with_data(
        body, content_type=content_type
    )
    hook = case.make(connect("api_test"), **fast)

    with pytest.raises(ResponseFormatError) as caught:
        case.call(hook)

    assert expected in str(caught.value) and f"{case.method} {case.path}" in str(caught.value)
    assert len(httpserver.log) == 1  # a malformed answer is not retried


def test_the_token_never_appears_in_logs_or_errors(case, connect, httpserver, fast, token, caplog, capsys):
    echo = f"token {token} rejected; see http://x/v1/webhook?writeKey=wk-SECRET-42"
    httpserver.expect_oneshot_request(case.path, method=case.method).respond_with_data(echo, status=500)
    httpserver.expect_request(case.path, method=case.method).respond_with_data(echo, status=401)
    hook = case.make(connect("api_test"), **fast)

    with caplog.at_level(logging.DEBUG), pytest.raises(ApiError) as caught:
        case.call(hook)

    logs = _logs(caplog, capsys)
    assert "retrying in" in logs  # the retry was logged: the capture works
    texts = [logs, str(caught.value), repr(caught.value), caught.value.message]
    for text in texts:
        assert token not in text and "wk-SECRET-42" not in text
    assert "rejected" in caught.value.message  # the rest of the message is kept


def test_the_token_is_registered_with_the_secrets_masker(case, connect, httpserver, fast, token):
    from airflow.sdk._shared.secrets_masker import redact

    httpserver.expect_request(case.path, method=case.method).respond_with_json(case.ok)
    case.call(case.make(connect("api_test"), **fast))

    assert token not in redact(f"calling with {token}")


def test_the_token_is_sent_as_the_service_expects(case, connect, httpserver, fast, token):
    httpserver.expect_request(case.path, method=case.method).respond_with_json(case.ok)
    case.call(case.make(connect("api_test"), **fast))

    auth = httpserver.log[0][0].headers.get("Authorization")
    if case.name == "data_plane":
        assert auth and auth.startswith("Basic ")  # password alone is the basic-auth user (write-key style)
    else:
        assert auth == f"Bearer {token}"


def test_extras_that_configure_the_hook_are_not_sent_as_headers(case, connect, httpserver):
    httpserver.expect_request(case.path, method=case.method).respond_with_json(case.ok)
    conn_id = connect("api_test", extra={"max_attempts": 2, "timeout": 3, "X-Team": "data"})
    case.call(case.make(conn_id))

    headers = httpserver.log[0][0].headers
    assert headers.get("X-Team") == "data"
    assert "max_attempts" not in {k.lower() for k in headers.keys()}


def test_a_missing_connection_says_how_to_define_it(case, fast):
    with pytest.raises(ValueError, match="AIRFLOW_CONN_NO_SUCH_CONN"):
        case.call(case.make("no_such_conn", **fast))


def test_connection_test_reports_success_and_failure_without_secrets(connect, httpserver, token):
    httpserver.expect_oneshot_request("/").respond_with_json({"data": {"workspace": {"id": "ws"}}})
    httpserver.expect_request("/").respond_with_data(f"bad token {token}", status=401)

    assert SegmentHook(connect("api_test"), max_attempts=1).test_connection() == (
        True,
        "Connection to Segment API works",
    )
    ok, message = SegmentHook(connect("api_test"), max_attempts=1).test_connection()
    assert not ok and "HTTP 401" in message and token not in message


def test_a_create_call_is_not_repeated_after_a_5xx(connect, httpserver, fast):
    httpserver.expect_request("/destinations", method="POST").respond_with_data("boom", status=500)
    hook = SegmentHook(connect("api_test"), **fast)

    with pytest.raises(ApiError) as caught:
        hook.create_destination("src", "meta", "to rudderstack", False, {"hooks": []})

    assert len(httpserver.log) == 1
    assert caught.value.status == 500 and "may have taken effect" in str(caught.value)


def test_errors_survive_pickling(connect, httpserver, fast):
    import pickle

    httpserver.expect_request("/warehouses/wh_1").respond_with_data("nope", status=404)
    with pytest.raises(ApiError) as caught:
        SegmentHook(connect("api_test"), **fast).get_warehouse("wh_1")

    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.status, copy.endpoint, str(copy)) == (404, "GET /warehouses/wh_1", str(caught.value))


# ---------------------------------------------------------------- async path (deferrable triggers)


def test_async_returns_what_sync_returns(async_case, connect, httpserver, fast):
    httpserver.expect_request(async_case.path, method=async_case.method).respond_with_json(async_case.ok)
    conn_id = connect("api_test")

    sync_result = async_case.call(async_case.make(conn_id, **fast))
    async_result = asyncio.run(async_case.acall(async_case.make(conn_id, **fast)))

    assert async_result == sync_result == async_case.expected
    assert httpserver.log[0][0].headers.get("Authorization") == httpserver.log[1][0].headers.get(
        "Authorization"
    )


def test_async_retries_5xx_then_succeeds(async_case, connect, httpserver, fast):
    httpserver.expect_oneshot_request(async_case.path, method=async_case.method).respond_with_data(
        "", status=503
    )
    httpserver.expect_request(async_case.path, method=async_case.method).respond_with_json(async_case.ok)

    result = asyncio.run(async_case.acall(async_case.make(connect("api_test"), **fast)))

    assert result == async_case.expected and len(httpserver.log) == 2


def test_async_4xx_is_the_same_error_as_sync(async_case, connect, httpserver, fast):
    httpserver.expect_request(async_case.path, method=async_case.method).respond_with_response(
        _error_response(async_case, 404)
    )
    conn_id = connect("api_test")

    with pytest.raises(ApiError) as sync_caught:
        async_case.call(async_case.make(conn_id, **fast))
    with pytest.raises(ApiError) as async_caught:
        asyncio.run(async_case.acall(async_case.make(conn_id, **fast)))

    assert str(async_caught.value) == str(sync_caught.value)
    assert len(httpserver.log) == 2


def test_async_connection_refused_is_bounded(async_case, connect, closed_port, fast):
    hook = async_case.make(connect("api_test", host=f"http://127.0.0.1:{closed_port}"), **fast)

    with pytest.raises(ApiError) as caught:
        asyncio.run(async_case.acall(hook))

    assert caught.value.status is None and caught.value.attempts == 3
    assert "connection refused" in str(caught.value)


def test_async_429_honours_retry_after(connect, httpserver, fast):
    path = "/warehouses/wh_1/syncs"
    httpserver.expect_oneshot_request(path).respond_with_data("", status=429, headers={"Retry-After": "1"})
    httpserver.expect_request(path).respond_with_json({"data": {"reports": []}})

    started = time.monotonic()
    result = asyncio.run(SegmentHook(connect("api_test"), **fast).alist_warehouse_syncs("wh_1"))

    assert result == [] and time.monotonic() - started >= 0.95


def test_backoff_doubles_between_attempts(connect, httpserver, caplog, capsys):
    httpserver.expect_request("/warehouses/wh_1").respond_with_data("", status=503)
    hook = SegmentHook(connect("api_test"), max_attempts=4, backoff_initial=0.1, backoff_max=5, timeout=2)

    with caplog.at_level(logging.WARNING), pytest.raises(ApiError):
        hook.get_warehouse("wh_1")

    logs = _logs(caplog, capsys)
    waits = [
        line.split("retrying in ")[1].split(" s")[0] for line in logs.splitlines() if "retrying in" in line
    ]
    assert waits == ["0.1", "0.2", "0.4"], logs
