"""Classic Webhooks delivery from the Segment emulator to a real local receiver."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from segment.analytics import Client

from sandbox.common import ServerThread
from sandbox.ledger import Ledger
from sandbox.segment import WEBHOOKS_METADATA_ID, SegmentEmulator, SegmentSettings, SourceSeed
from sandbox.warehouse import Warehouse

TOKEN = "sandbox-segment-token"
SECRET = "shared-secret-for-tests"
_n = itertools.count(1)


class Receiver:
    """A webhook receiver that checks X-Signature itself and can answer 503 to the first N requests."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503):
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request):
            body = await request.body()
            expected = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
            with self.lock:
                self.requests.append(
                    {
                        "body": json.loads(body),
                        "headers": dict(request.headers),
                        "signature_ok": request.headers.get("x-signature") == expected,
                    }
                )
                failing = len(self.requests) <= self.fail_first
            return Response(status_code=self.fail_status if failing else 200)

        self.server = ServerThread(app).start()
        self.url = f"{self.server.url}/hook"

    def delivered_ids(self) -> list[str]:
        with self.lock:
            return [r["body"]["messageId"] for r in self.requests]


@pytest.fixture
def setup(pg_dsn: str):
    started = []

    def make(receiver: Receiver, **overrides):
        tag = f"{int(time.time() * 1000) % 10_000_000}_{next(_n)}"
        settings = SegmentSettings(
            sources=[SourceSeed("src_web_app", "web_app", "Web App", "wk_seg_web_app", f"hook_test_{tag}")],
            warehouses=[],
            load_interval_s=None,
            classic_webhooks_available=True,
            **{"webhook_initial_backoff_s": 0.05, "webhook_max_backoff_s": 0.2, **overrides},
        )
        ledger = Ledger(pg_dsn, schema=f"ledger_hook_{tag}")
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
                "settings": {
                    "sharedSecret": SECRET,
                    "hooks": [{"hook": receiver.url, "headers": [{"key": "X-Team", "value": "data"}]}],
                },
            },
        ).json()["data"]["destination"]
        started.append((emulator, server, api, ledger, receiver))
        return emulator, api, Client("wk_seg_web_app", host=server.url, sync_mode=True), destination, ledger

    yield make
    for emulator, server, api, ledger, receiver in started:
        api.close()
        emulator.stop_background()
        server.stop()
        receiver.server.stop()
        ledger.close()


def test_each_event_is_posted_once_signed_with_its_message_id(setup):
    receiver = Receiver()
    emulator, _, client, destination, ledger = setup(receiver)
    sent = [client.track("user-1", "Order Completed", {"n": n})[1]["messageId"] for n in range(3)]
    sent.append(client.identify("user-1", {"plan": "pro"})[1]["messageId"])

    assert emulator.wait_webhooks_idle(10)

    assert sorted(receiver.delivered_ids()) == sorted(sent)  # once each; two workers may reorder
    assert all(r["signature_ok"] for r in receiver.requests)
    first = next(r for r in receiver.requests if r["body"]["messageId"] == sent[0])
    assert first["headers"]["x-team"] == "data" and first["headers"]["content-type"] == "application/json"
    assert first["body"]["type"] == "track" and first["body"]["receivedAt"]
    assert f"webhook:{destination['id']}" in emulator.paths(sent[0])
    assert ledger.dropped() == []  # a webhook is an open path even without a warehouse


def test_5xx_answers_are_retried_until_delivered(setup):
    receiver = Receiver(fail_first=2)
    emulator, _, client, _, _ = setup(receiver)
    _, msg = client.track("user-1", "Retried")

    assert emulator.wait_webhooks_idle(10)

    assert receiver.delivered_ids() == [msg["messageId"]] * 3
    assert emulator.state()["counters"]["webhook_retried"] == 2
    assert emulator.state()["counters"]["webhook_delivered"] == 1


def test_retries_are_bounded_and_a_give_up_is_logged(setup):
    receiver = Receiver(fail_first=100)
    emulator, _, client, destination, _ = setup(receiver, webhook_max_attempts=3)
    _, msg = client.track("user-1", "Never Accepted")

    assert emulator.wait_webhooks_idle(10)

    assert len(receiver.requests) == 3
    gave_up = emulator.log.entries("webhook")
    assert gave_up[0]["outcome"] == "gave_up" and gave_up[0]["messageId"] == msg["messageId"]
    assert f"webhook_failed:{destination['id']}" in emulator.paths(msg["messageId"])


def test_injected_delivery_failures_are_retried(setup):
    receiver = Receiver()
    emulator, api, client, _, _ = setup(receiver)
    api.post("/sandbox/faults", json={"webhook_failure": {"count": 2}})
    _, msg = client.track("user-1", "Through A Flaky Network")

    assert emulator.wait_webhooks_idle(10)

    assert receiver.delivered_ids() == [msg["messageId"]]
    assert emulator.state()["counters"]["webhook_retried"] == 2


def test_disabling_stops_later_events_but_delivers_those_received_before(setup):
    receiver = Receiver(fail_first=1)  # the first event is still being retried when the hook is disabled
    emulator, api, client, destination, ledger = setup(receiver)
    _, before = client.track("user-1", "Before Disable")

    api.patch(f"/destinations/{destination['id']}", json={"enabled": False})
    _, after = client.track("user-1", "After Disable")
    assert emulator.wait_webhooks_idle(10)

    assert set(receiver.delivered_ids()) == {before["messageId"]}
    # no warehouse and no enabled webhook: the later event had no open path
    assert [d["message_id"] for d in ledger.dropped()] == [after["messageId"]]
