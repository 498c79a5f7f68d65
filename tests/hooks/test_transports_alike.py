"""The sync (requests) and async (httpx) transports treat the same failure the same way, against real local
servers: connection refused, a connection dropped after the request was sent, a read timeout, redirects
(followed, not followed, looping). Same error text, same retry decision, same number of requests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from werkzeug import Response

from segment_rudderstack.hooks import ApiError, RudderStackDataPlaneHook, SegmentHook
from segment_rudderstack.hooks.protocol import RequestSpec

WAREHOUSE = {"data": {"warehouse": {"id": "wh_1", "enabled": True}}}


def sync_get(conn_id, fast):
    return SegmentHook(conn_id, **fast).get_warehouse("wh_1")


def async_get(conn_id, fast):
    return asyncio.run(SegmentHook(conn_id, **fast).aget_warehouse("wh_1"))


# A create call: not idempotent (POST), so it must never be sent twice when it may have arrived.
CREATE = RequestSpec("POST", "/v1/warehouse/jobs", json={"source_id": "src_1"})


def sync_post(conn_id, fast):
    return RudderStackDataPlaneHook(conn_id, **fast).call(CREATE)


def async_post(conn_id, fast):
    return asyncio.run(RudderStackDataPlaneHook(conn_id, **fast).acall(CREATE))


GETS = {"sync": sync_get, "async": async_get}
POSTS = {"sync": sync_post, "async": async_post}


def error_of(call, *args) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)
    return caught.value


@pytest.fixture
def dropping_server():
    """A TCP server on 127.0.0.1 that reads each request and closes the connection without answering."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[int] = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                except OSError:
                    pass
                accepted.append(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join(5)
    server.close()


def test_connection_refused_reads_the_same_and_is_retried_by_both(connect, closed_port, fast):
    conn_id = connect("alike_refused", host=f"http://127.0.0.1:{closed_port}")
    errors = {name: error_of(call, conn_id, fast) for name, call in GETS.items()}
    for error in errors.values():
        assert error.status is None and error.request_sent is False and error.retryable is True
        assert "connection refused" in str(error) and error.attempts == fast["max_attempts"]
    assert str(errors["sync"]) == str(errors["async"])


def test_a_dropped_connection_counts_as_sent_in_both_so_a_post_is_not_repeated(
    connect, dropping_server, fast
):
    url, accepted = dropping_server
    conn_id = connect("alike_dropped", host=url)
    for name, call in POSTS.items():
        before = len(accepted)
        error = error_of(call, conn_id, fast)
        assert error.request_sent is True and error.retryable is False, name
        assert "may have taken effect" in str(error), name
        assert len(accepted) - before == 1, f"{name}: a POST that may have arrived was sent again"
    for name, call in GETS.items():  # an idempotent read is repeated by both
        before = len(accepted)
        error = error_of(call, conn_id, fast)
        assert error.request_sent is True and error.retryable is True, name
        assert len(accepted) - before == fast["max_attempts"], name


def test_a_read_timeout_reads_the_same_in_both(connect, httpserver, fast, wait_for_requests):
    def slow(_request):
        time.sleep(0.6)
        return Response('{"data": {}}', content_type="application/json")

    httpserver.expect_request("/warehouses/wh_1").respond_with_handler(slow)
    conn_id = connect("alike_slow")
    fast = {**fast, "timeout": 0.2, "max_attempts": 2}
    errors = {name: error_of(call, conn_id, fast) for name, call in GETS.items()}
    wait_for_requests(4)
    for error in errors.values():
        assert error.request_sent is True and error.retryable is True and error.attempts == 2
    assert str(errors["sync"]) == str(errors["async"])
    assert "read timeout after 0.2 s" in str(errors["sync"])


def test_redirects_are_followed_alike(connect, httpserver, fast):
    httpserver.expect_request("/warehouses/wh_1").respond_with_response(
        Response(status=307, headers={"Location": httpserver.url_for("/moved/warehouses/wh_1")})
    )
    httpserver.expect_request("/moved/warehouses/wh_1").respond_with_json(WAREHOUSE)
    conn_id = connect("alike_redirect")
    assert sync_get(conn_id, fast) == async_get(conn_id, fast) == {"id": "wh_1", "enabled": True}


def test_with_redirects_off_both_report_the_redirect_status(connect, httpserver, fast):
    httpserver.expect_request("/warehouses/wh_1").respond_with_response(
        Response(status=302, headers={"Location": httpserver.url_for("/elsewhere")})
    )
    conn_id = connect("alike_no_redirect", extra='{"allow_redirects": false}')
    errors = {name: error_of(call, conn_id, fast) for name, call in GETS.items()}
    assert {e.status for e in errors.values()} == {302}
    assert str(errors["sync"]) == str(errors["async"])
    assert not httpserver.log or all(r.path == "/warehouses/wh_1" for r, _ in httpserver.log)


def test_a_redirect_loop_fails_once_in_both_saying_so(connect, httpserver, fast):
    httpserver.expect_request("/warehouses/wh_1").respond_with_response(
        Response(status=302, headers={"Location": httpserver.url_for("/warehouses/wh_1")})
    )
    conn_id = connect("alike_loop", extra='{"max_redirects": 3}')
    for name, call in GETS.items():
        httpserver.clear_log()
        error = error_of(call, conn_id, fast)
        assert error.retryable is False and error.attempts == 1, name
        assert "redirected in a loop" in str(error) and "max_redirects" in str(error), name
        assert len(httpserver.log) == 4, f"{name}: expected the request and 3 redirects, once"
