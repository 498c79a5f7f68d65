"""Webhooks (Actions) in the Segment emulator: the destination, its "Send" mappings (destination subscriptions)
and the requests they send, shaped and limited as Segment's Public API SDK and catalog say."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from segment.analytics import Client

from sandbox.common import ServerThread
from sandbox.segment import (
    SEND_ACTION_ID,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_METADATA_ID,
    SourceSeed,
)

TOKEN = "sandbox-segment-token"
SECRET = "actions-shared-secret"
ALL_TYPES = 'type = "track" or type = "identify" or type = "page" or type = "screen" or type = "group" or type = "alias"'


class Receiver:
    """Records every request (method, body, headers) it gets; answers 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        app = FastAPI()

        @app.api_route("/hook", methods=["POST", "PUT", "PATCH"])
        async def hook(request: Request):
            body = await request.body()
            with self.lock:
                self.requests.append(
                    {
                        "method": request.method,
                        "raw": body,
                        "body": json.loads(body),
                        "headers": dict(request.headers),
                        "query": dict(request.query_params),
                    }
                )
            return Response(status_code=200)

        self.server = ServerThread(app).start()
        self.url = f"{self.server.url}/hook?writeKey=wk-RS-SECRET-1"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.stop()


@pytest.fixture
def segment(make_segment, namespace):
    emulator, url = make_segment(
        sources=[SourceSeed("src_web_app", "web_app", "Web App", "wk_seg_web_app", namespace)],
        warehouses=[],
        webhook_initial_backoff_s=0.05,
    )
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as api:
        yield emulator, url, api


def make_destination(api, settings=None, enabled=True):
    response = api.post(
        "/destinations",
        json={
            "sourceId": "src_web_app",
            "metadataId": WEBHOOKS_ACTIONS_METADATA_ID,
            "name": "RudderStack (migration)",
            "enabled": enabled,
            "settings": {"sharedSecret": SECRET} if settings is None else settings,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["destination"]


def send_mapping(url, **changes):
    return {
        "name": "RudderStack (migration): Send",
        "actionId": SEND_ACTION_ID,
        "trigger": ALL_TYPES,
        "enabled": True,
        **changes,
        "settings": {
            "url": url,
            "method": "POST",
            "headers": {"X-Team": "data"},
            "data": {"@path": "$."},
            "enable_batching": False,
            **changes.pop("settings", {}),
        },
    }


def test_a_send_mapping_posts_each_event_once_whole_and_signed(segment, receiver):
    emulator, url, api = segment
    destination = make_destination(api)
    created = api.post(f"/destinations/{destination['id']}/subscriptions", json=send_mapping(receiver.url))
    assert created.status_code == 200
    mapping = created.json()["data"]["destinationSubscription"]  # CreateDestinationSubscriptionAlphaOutput
    assert (mapping["actionSlug"], mapping["destinationId"], mapping["enabled"]) == (
        "send",
        destination["id"],
        True,
    )

    client = Client("wk_seg_web_app", host=url, sync_mode=True)
    sent = [
        client.track("u1", "Order Completed")[1]["messageId"],
        client.identify("u1", {"plan": "pro"})[1]["messageId"],
    ]
    assert emulator.wait_webhooks_idle(10)

    assert sorted(r["body"]["messageId"] for r in receiver.requests) == sorted(sent)  # one POST per event
    for request in receiver.requests:
        assert request["method"] == "POST" and request["query"] == {"writeKey": "wk-RS-SECRET-1"}
        assert (
            request["body"]["type"] in ("track", "identify") and request["body"]["receivedAt"]
        )  # the whole event
        assert request["headers"]["x-team"] == "data"
        assert (
            request["headers"]["x-signature"]
            == hmac.new(SECRET.encode(), request["raw"], hashlib.sha1).hexdigest()
        )


def test_a_disabled_mapping_or_destination_sends_nothing_and_the_event_is_dropped(segment, receiver):
    emulator, url, api = segment
    destination = make_destination(api)
    mapping = api.post(
        f"/destinations/{destination['id']}/subscriptions", json=send_mapping(receiver.url, enabled=False)
    ).json()["data"]["destinationSubscription"]
    client = Client("wk_seg_web_app", host=url, sync_mode=True)
    _, first = client.track("u1", "Not Sent")
    assert emulator.wait_webhooks_idle(5) and receiver.requests == []
    assert emulator.paths(first["messageId"])[-1] == "dropped"  # no warehouse, no enabled mapping

    patched = api.patch(
        f"/destinations/{destination['id']}/subscriptions/{mapping['id']}", json={"input": {"enabled": True}}
    )
    assert patched.status_code == 200 and patched.json()["data"]["subscription"]["enabled"] is True
    client.track("u1", "Sent")
    assert emulator.wait_webhooks_idle(5) and len(receiver.requests) == 1


def test_batching_on_sends_a_json_array_not_an_event(segment, receiver):
    emulator, url, api = segment
    destination = make_destination(api)
    api.post(
        f"/destinations/{destination['id']}/subscriptions",
        json=send_mapping(receiver.url, settings={"enable_batching": True}),
    ).raise_for_status()
    Client("wk_seg_web_app", host=url, sync_mode=True).track("u1", "Batched")
    assert emulator.wait_webhooks_idle(5)
    assert isinstance(receiver.requests[0]["body"], list)  # RudderStack's Segment source expects one event


def test_classic_webhooks_is_refused_like_a_workspace_without_it(segment):
    _, _, api = segment
    refused = api.post(
        "/destinations",
        json={
            "sourceId": "src_web_app",
            "metadataId": WEBHOOKS_METADATA_ID,
            "name": "old",
            "enabled": True,
            "settings": {"hooks": [{"hook": "http://127.0.0.1:9/x", "headers": []}]},
        },
    )
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["field"] == "metadataId" and "not available in this workspace" in error["message"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"settings": {"hooks": [{"hook": "http://127.0.0.1:9/x"}]}}, "not a setting of Webhooks (Actions)"),
    ],
    ids=["url-in-destination-settings"],
)
def test_the_destination_holds_only_a_shared_secret(segment, change, message):
    _, _, api = segment
    body = {
        "sourceId": "src_web_app",
        "metadataId": WEBHOOKS_ACTIONS_METADATA_ID,
        "name": "x",
        "enabled": True,
        **change,
    }
    refused = api.post("/destinations", json=body)
    assert refused.status_code == 422 and message in refused.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"actionId": "not-an-action"}, "not an action of Webhooks (Actions)"),
        ({"trigger": "event = 'Order Completed'"}, "FQL"),
        ({"settings": {"hook": "http://x"}}, "not a field of the Send action"),
        ({"settings": {"method": "GET"}}, "POST, PUT or PATCH"),
        ({"settings": {"data": {"@template": "{{x}}"}}}, "@path"),
        ({"enabled": "yes"}, "enabled is required"),
    ],
    ids=[
        "unknown-action",
        "unsupported-trigger",
        "unknown-field",
        "bad-method",
        "unknown-directive",
        "enabled",
    ],
)
def test_mapping_validation(segment, receiver, mapping, message):
    _, _, api = segment
    destination = make_destination(api)
    body = send_mapping(receiver.url, **mapping)
    refused = api.post(f"/destinations/{destination['id']}/subscriptions", json=body)
    assert refused.status_code == 422 and message in refused.json()["errors"][0]["message"]


def test_mappings_are_listed_got_and_updated_only_through_the_input_envelope(segment, receiver):
    emulator, _, api = segment
    destination = make_destination(api)
    mapping = api.post(
        f"/destinations/{destination['id']}/subscriptions", json=send_mapping(receiver.url)
    ).json()["data"]["destinationSubscription"]

    listed = api.get(f"/destinations/{destination['id']}/subscriptions").json()["data"]
    got = api.get(f"/destinations/{destination['id']}/subscriptions/{mapping['id']}").json()["data"]
    flat = api.patch(
        f"/destinations/{destination['id']}/subscriptions/{mapping['id']}", json={"enabled": False}
    )

    assert [m["id"] for m in listed["subscriptions"]] == [mapping["id"]] and "current" in listed["pagination"]
    assert got["subscription"] == mapping
    assert flat.status_code == 422  # UpdateSubscriptionForDestinationAlphaInput wraps the change in "input"
    # DestinationV1 itself carries no URL: the mapping does, and the emulator's own log masks its write key.
    assert (
        "url" not in api.get(f"/destinations/{destination['id']}").json()["data"]["destination"]["settings"]
    )
    assert "wk-RS-SECRET-1" not in json.dumps(emulator.log.entries())


def test_at_most_five_mappings_per_destination(segment, receiver):
    emulator, _, api = segment
    emulator.settings.subscription_writes_per_minute = 100  # the 5/minute write limit has its own test
    destination = make_destination(api)
    statuses = [
        api.post(
            f"/destinations/{destination['id']}/subscriptions", json=send_mapping(receiver.url, name=f"m{n}")
        ).status_code
        for n in range(6)
    ]
    assert statuses == [200] * 5 + [422]


def test_mapping_writes_are_limited_to_five_a_minute_with_segment_429(segment, receiver):
    _, _, api = segment
    destination = make_destination(api)
    mapping = api.post(
        f"/destinations/{destination['id']}/subscriptions", json=send_mapping(receiver.url)
    ).json()["data"]["destinationSubscription"]
    path = f"/destinations/{destination['id']}/subscriptions/{mapping['id']}"
    statuses = [api.patch(path, json={"input": {"enabled": n % 2 == 0}}) for n in range(6)]

    assert [r.status_code for r in statuses] == [200] * 5 + [429]
    limited = statuses[-1]
    assert (
        0 < limited.json()["errors"][0]["data"]["msBeforeNext"] <= 60_000 and limited.headers["Retry-After"]
    )
    assert api.get(path).status_code == 200  # reads are not held by the write limit
