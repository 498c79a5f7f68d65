"""Segment's Delivery Overview metrics: the emulator serves them from what it did (checked against the ledger
and a real webhook receiver), validates like the documented API, and the library's hook reads them (window
splitting, pagination, beta Accept header, 403/404 as "not available")."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from segment.analytics import Client

from sandbox.common import ServerThread
from sandbox.ledger import Ledger
from sandbox.segment import WEBHOOKS_METADATA_ID, SegmentEmulator, SegmentSettings, SourceSeed
from sandbox.warehouse import Warehouse
from segment_rudderstack.hooks.segment_delivery import (
    BETA_ACCEPT,
    DeliveryOverviewUnavailable,
    SegmentMetricsHook,
    split_window,
)

TOKEN = "sandbox-segment-token"
_n = itertools.count(1)


class Receiver:
    """Answers 400 (not retried by Segment: a failed delivery) to events whose name is 'Rejected', else 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request):
            body = json.loads(await request.body())
            if body.get("event") == "Rejected":
                return Response(status_code=400)
            with self.lock:
                self.accepted.append(body["messageId"])
            return Response(status_code=200)

        self.server = ServerThread(app).start()
        self.url = f"{self.server.url}/hook"


@pytest.fixture
def world(pg_dsn, monkeypatch):
    tag = f"{int(time.time() * 1000) % 10_000_000}_{next(_n)}"
    receiver = Receiver()
    settings = SegmentSettings(
        sources=[SourceSeed("src_web_app", "web_app", "Web App", "wk_seg_web_app", f"do_test_{tag}")],
        warehouses=[],
        load_interval_s=None,
        webhook_initial_backoff_s=0.05,
        webhook_max_backoff_s=0.2,
        classic_webhooks_available=True,
    )
    ledger = Ledger(pg_dsn, schema=f"ledger_do_{tag}")
    emulator = SegmentEmulator(settings, Warehouse(pg_dsn), ledger)
    server = ServerThread(emulator.app).start()
    emulator.start_background()
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    destination = api.post(
        "/destinations",
        json={
            "sourceId": "src_web_app",
            "metadataId": WEBHOOKS_METADATA_ID,
            "name": "RudderStack",
            "enabled": True,
            "settings": {"hooks": [{"hook": receiver.url}]},
        },
    ).json()["data"]["destination"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMENT_DO", json.dumps({"conn_type": "http", "host": server.url, "password": TOKEN})
    )
    yield emulator, api, destination, ledger, receiver, server.url
    api.close()
    emulator.stop_background()
    server.stop()
    receiver.server.stop()
    ledger.close()


def _send(url: str, ledger: Ledger, plan: list[tuple[str, str]]) -> None:
    """Send (event name, app version) through the real Segment SDK, each recorded in the ledger first."""
    client = Client("wk_seg_web_app", host=url, sync_mode=True)
    for n, (event, version) in enumerate(plan):
        message_id = f"do-{event}-{version}-{n}-{time.time_ns()}"
        ledger.record_sent(
            message_id,
            event_type="track",
            sdk="segment",
            sender=f"install-{version}",
            source="src_web_app",
            sent_at=datetime.now(UTC),
        )
        client.track(
            f"user-{n}",
            event,
            {"n": n},
            context={"app": {"name": "Shop", "version": version}},
            message_id=message_id,
        )


def test_the_emulators_counts_agree_with_the_ledger_and_the_receiver(world):
    emulator, _, destination, ledger, receiver, url = world
    start = datetime.now(UTC) - timedelta(minutes=1)
    plan = (
        [("Order Completed", "1.9.4")] * 5 + [("Order Completed", "1.8.2")] * 3 + [("Rejected", "1.9.4")] * 2
    )
    _send(url, ledger, plan)
    assert emulator.wait_webhooks_idle(10)
    end = datetime.now(UTC) + timedelta(minutes=1)
    hook = SegmentMetricsHook("segment_do")

    received = hook.delivery_metrics(
        "successfully-received",
        source_id="src_web_app",
        start=start,
        end=end,
        granularity="MINUTE",
        group_by="appVersion",
    )
    sent_by_version: dict[str, int] = {}
    for row in ledger.sent(source="src_web_app"):
        version = row["sender"].removeprefix("install-")
        sent_by_version[version] = sent_by_version.get(version, 0) + 1
    assert received.by_group() == sent_by_version == {"1.9.4": 7, "1.8.2": 3}
    assert sum(received.by_bucket().values()) == len(ledger.sent(source="src_web_app"))

    delivered = hook.delivery_metrics(
        "successful-delivery",
        source_id="src_web_app",
        destination_config_id=destination["id"],
        start=start,
        end=end,
        granularity="MINUTE",
    )
    assert delivered.total == len(receiver.accepted) == 8
    failed = hook.delivery_metrics(
        "failed-delivery",
        source_id="src_web_app",
        destination_config_id=destination["id"],
        start=start,
        end=end,
        granularity="MINUTE",
        group_by="discardReason",
    )
    assert failed.by_group() == {"400": 2}  # Segment's discard reason is the HTTP code the endpoint answered
    filtered = hook.delivery_metrics(
        "filtered-at-destination",
        source_id="src_web_app",
        destination_config_id=destination["id"],
        start=start,
        end=end,
        granularity="MINUTE",
    )
    assert filtered.total == 0


def test_retried_deliveries_are_counted_as_retries_of_successes(world):
    emulator, api, destination, ledger, receiver, url = world
    start = datetime.now(UTC) - timedelta(minutes=1)
    api.post("/sandbox/faults", json={"webhook_failure": {"count": 2}})
    _send(url, ledger, [("Order Completed", "1.9.4")])
    assert emulator.wait_webhooks_idle(10)
    response = api.get(
        "/delivery-overview/successful-delivery",
        headers={"Accept": BETA_ACCEPT},
        params={
            "sourceId": "src_web_app",
            "destinationConfigId": destination["id"],
            "granularity": "MINUTE",
            "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endTime": (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    data = response.json()["data"]
    assert data["total"] == 1
    assert data["dataset"][0]["totalRetryCount"] == 1
    assert sum(p["retryCount"] for p in data["dataset"][0]["series"]) == 1
    assert set(data["pagination"]) >= {"current"}


def test_pages_are_followed_to_the_end_and_give_the_same_counts(world):
    emulator, _, _, ledger, _, url = world
    start = datetime.now(UTC) - timedelta(minutes=1)
    _send(url, ledger, [(f"Event {n}", "2.0.0") for n in range(5)])
    end = datetime.now(UTC) + timedelta(minutes=1)
    hook = SegmentMetricsHook("segment_do")
    paged = hook.delivery_metrics(
        "successfully-received",
        source_id="src_web_app",
        start=start,
        end=end,
        granularity="MINUTE",
        group_by="eventName",
        page_size=2,
    )
    whole = hook.delivery_metrics(
        "successfully-received",
        source_id="src_web_app",
        start=start,
        end=end,
        granularity="MINUTE",
        group_by="eventName",
    )
    assert paged.requests == 3 and whole.requests == 1
    assert paged.by_group() == whole.by_group() == {f"Event {n}": 1 for n in range(5)}


def test_a_long_window_is_split_into_requests_the_granularity_allows(world):
    _, _, _, _, _, _ = world
    now = datetime.now(UTC)
    hook = SegmentMetricsHook("segment_do")
    metrics = hook.delivery_metrics(
        "successfully-received",
        source_id="src_web_app",
        start=now - timedelta(hours=10),
        end=now,
        granularity="MINUTE",
    )
    assert metrics.requests == 3  # 4 h at most per MINUTE request
    pieces = split_window(now - timedelta(days=20), now, "HOUR", now=now)
    assert len(pieces) == 2 and pieces[0][1] - pieces[0][0] <= timedelta(days=14)
    assert pieces[1][0] == pieces[0][1] and pieces[1][0].minute == 0  # cut on an hour boundary
    with pytest.raises(ValueError, match="more than 2 days, 0:00:00 in the past.*granularity HOUR"):
        split_window(now - timedelta(hours=50), now, "MINUTE", now=now)


@pytest.mark.parametrize(
    ("params", "headers", "status", "message"),
    [
        ({"granularity": "MINUTE"}, {}, 400, "sourceId is required"),
        (
            {"sourceId": "src_web_app", "granularity": "MINUTE", "startTime": None},
            {},
            400,
            "startTime is required",
        ),
        ({"sourceId": "src_web_app"}, {}, 400, "granularity is required"),
        ({"sourceId": "src_web_app", "granularity": "SECOND"}, {}, 422, "granularity must be"),
        ({"sourceId": "src_web_app", "granularity": "MINUTE", "hours": 5}, {}, 422, "longer than 4:00:00"),
        ({"sourceId": "src_web_app", "granularity": "MINUTE", "back": 49}, {}, 422, "older than 2 days"),
        ({"sourceId": "src_web_app", "granularity": "DAY", "hours": 24 * 31}, {}, 422, "longer than 30 days"),
        ({"sourceId": "src_web_app", "granularity": "HOUR", "groupBy": "discardReason"}, {}, 422, "groupBy"),
        (
            {"sourceId": "src_web_app", "granularity": "HOUR", "filter": '{"spaceId": ["x"]}'},
            {},
            422,
            "filter keys",
        ),
        (
            {"sourceId": "src_web_app", "granularity": "HOUR", "pagination.count": 0},
            {},
            422,
            "between 1 and 1000",
        ),
        ({"sourceId": "src_nope", "granularity": "HOUR"}, {}, 404, "not found"),
        (
            {"sourceId": "src_web_app", "granularity": "HOUR"},
            {"Accept": "application/json"},
            406,
            BETA_ACCEPT,
        ),
    ],
)
def test_requests_are_validated_like_the_documented_api(world, params, headers, status, message):
    _, api, _, _, _, _ = world
    now = datetime.now(UTC)
    back, hours = params.pop("back", 1), params.pop("hours", 1)
    query = {
        "startTime": (now - timedelta(hours=back)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endTime": (now - timedelta(hours=back) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **params,
    }
    query = {k: v for k, v in query.items() if v is not None}
    response = api.get(
        "/delivery-overview/successfully-received", params=query, headers={"Accept": BETA_ACCEPT, **headers}
    )
    assert response.status_code == status, response.text
    assert message in response.json()["errors"][0]["message"]


def test_egress_needs_a_destination_of_that_source(world):
    _, api, destination, _, _, _ = world
    now = datetime.now(UTC)
    query = {
        "sourceId": "src_web_app",
        "granularity": "HOUR",
        "startTime": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    missing = api.get("/delivery-overview/failed-delivery", params=query, headers={"Accept": BETA_ACCEPT})
    assert missing.status_code == 400 and "destinationConfigId" in missing.text
    other = api.get(
        "/delivery-overview/failed-delivery",
        params={**query, "destinationConfigId": "dst_other"},
        headers={"Accept": BETA_ACCEPT},
    )
    assert other.status_code == 404


def test_403_and_404_mean_not_available(httpserver, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMENT_NO_DO",
        json.dumps({"conn_type": "http", "host": httpserver.url_for("/").rstrip("/"), "password": "tok"}),
    )
    httpserver.expect_request("/delivery-overview/successfully-received").respond_with_json(
        {"errors": [{"type": "forbidden", "message": "This feature is not available on your plan"}]},
        status=403,
    )
    hook = SegmentMetricsHook("segment_no_do", max_attempts=1)
    available, why = hook.delivery_overview_available("src_web_app")
    assert not available and "not available" in why and "warehouse signals alone" in why
    assert httpserver.log[0][0].headers["Accept"] == BETA_ACCEPT
    with pytest.raises(DeliveryOverviewUnavailable):
        hook.delivery_metrics(
            "successfully-received",
            source_id="src_web_app",
            start=datetime.now(UTC) - timedelta(hours=1),
            end=datetime.now(UTC),
        )


def test_rate_limits_are_honoured_by_the_retry_policy(httpserver, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMENT_RL",
        json.dumps({"conn_type": "http", "host": httpserver.url_for("/").rstrip("/"), "password": "tok"}),
    )
    body = {
        "data": {
            "total": 4,
            "dataset": [{"total": 4, "series": [{"time": "2026-01-01T00:00:00.000Z", "count": 4}]}],
            "pagination": {"current": "MA=="},
        }
    }
    httpserver.expect_ordered_request("/delivery-overview/successfully-received").respond_with_json(
        {"errors": [{"type": "too-many-requests", "message": "slow down"}]},
        status=429,
        headers={"Retry-After": "0"},
    )
    httpserver.expect_ordered_request("/delivery-overview/successfully-received").respond_with_json(body)
    hook = SegmentMetricsHook("segment_rl", max_attempts=3, backoff_initial=0.01)
    now = datetime.now(UTC)
    metrics = hook.delivery_metrics(
        "successfully-received", source_id="s", start=now - timedelta(hours=1), end=now
    )
    assert metrics.total == 4 and len(httpserver.log) == 2
