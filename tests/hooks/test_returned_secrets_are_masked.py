"""Secrets inside resources the hooks *return* (write keys, webhook URLs, shared secrets, header values)
are registered with Airflow's secrets masker, whichever method returned them.

The masker is process-wide, so each test uses values no other test registers (a fresh suffix).
"""

from __future__ import annotations

import uuid

import pytest
from airflow.sdk._shared.secrets_masker import redact

from segment_rudderstack.hooks import WEBHOOKS_METADATA_ID, RudderStackHook, SegmentHook


def _unique(label: str) -> str:
    return f"{label}-SECRET-{uuid.uuid4().hex[:12]}"


def _is_masked(secret: str) -> bool:
    return secret not in redact(f"log line with {secret} inside")


@pytest.fixture
def control(connect, fast) -> RudderStackHook:
    return RudderStackHook(connect("rudderstack_masking"), **fast)


@pytest.fixture
def segment(connect, fast) -> SegmentHook:
    return SegmentHook(connect("segment_masking"), **fast)


def _webhook_settings(write_key: str, shared_secret: str, auth_value: str) -> dict:
    return {
        "hooks": [
            {
                "hook": f"http://127.0.0.1:1/v1/webhook?writeKey={write_key}",
                "headers": [
                    {"key": "Authorization", "value": auth_value},
                    {"key": "Content-Type", "value": "application/json"},
                ],
            }
        ],
        "sharedSecret": shared_secret,
    }


def test_get_source_registers_the_write_key(control, httpserver):
    key = _unique("wk-get")
    httpserver.expect_request("/v2/sources/src_1").respond_with_json(
        {"source": {"id": "src_1", "writeKey": key}}
    )
    assert not _is_masked(key)  # proves the check can fail

    source = control.get_source("src_1")

    assert source["writeKey"] == key  # still returned: operators build the webhook URL from it
    assert _is_masked(key)


def test_list_sources_registers_every_write_key(control, httpserver):
    keys = [_unique("wk-list-a"), _unique("wk-list-b")]
    httpserver.expect_request("/v2/sources").respond_with_json(
        {"sources": [{"id": "a", "writeKey": keys[0]}, {"id": "b", "writeKey": keys[1]}, {"id": "c"}]}
    )
    assert not any(_is_masked(k) for k in keys)

    sources = control.list_sources()

    assert [s.get("writeKey") for s in sources] == [*keys, None]
    assert all(_is_masked(k) for k in keys)


def test_list_connected_destinations_registers_webhook_key_shared_secret_and_headers(segment, httpserver):
    key, shared, auth = _unique("wk-dest"), _unique("shh"), _unique("Bearer hdr")
    settings = _webhook_settings(key, shared, auth)
    httpserver.expect_request("/sources/src_a/connected-destinations").respond_with_json(
        {
            "data": {
                "destinations": [
                    {"id": "d1", "metadata": {"id": WEBHOOKS_METADATA_ID}, "settings": settings},
                    {"id": "d2", "settings": {"apiKey": "not-a-webhook"}},
                ],
                "pagination": {},
            }
        }
    )
    url = settings["hooks"][0]["hook"]
    assert not any(_is_masked(s) for s in (key, shared, auth))

    destinations = segment.list_connected_destinations("src_a")

    assert destinations[0]["settings"] == settings  # returned unchanged
    assert _is_masked(key) and _is_masked(shared) and _is_masked(auth)
    assert key not in redact(f"posting to {url}")
    assert _is_masked("application/json") is False  # plain header values stay readable


def test_get_destination_registers_the_settings_secrets(segment, httpserver):
    key, shared = _unique("wk-getdest"), _unique("shh-get")
    settings = _webhook_settings(key, shared, _unique("tok"))
    httpserver.expect_request("/destinations/d7").respond_with_json(
        {"data": {"destination": {"id": "d7", "settings": settings}}}
    )
    assert not _is_masked(key) and not _is_masked(shared)

    assert segment.get_destination("d7")["settings"] == settings
    assert _is_masked(key) and _is_masked(shared)


def test_set_destination_enabled_registers_the_returned_settings_secrets(segment, httpserver):
    key = _unique("wk-patch")
    settings = _webhook_settings(key, _unique("shh-patch"), _unique("tok"))
    httpserver.expect_request("/destinations/d8", method="PATCH").respond_with_json(
        {"data": {"destination": {"id": "d8", "enabled": True, "settings": settings}}}
    )
    assert not _is_masked(key)

    assert segment.set_destination_enabled("d8", True)["enabled"] is True
    assert _is_masked(key)


def test_webhook_mappings_returned_by_list_get_create_and_update_register_the_url_write_key(
    segment, httpserver
):
    keys = {name: _unique(f"wk-map-{name}") for name in ("list", "get", "create", "patch")}
    auth = _unique("Basic hdr")

    def mapping(key: str) -> dict:
        return {
            "id": "m1",
            "name": "RudderStack: Send",
            "actionId": "a",
            "actionSlug": "send",
            "destinationId": "d1",
            "enabled": True,
            "trigger": 'type = "track"',
            "settings": {
                "url": f"http://127.0.0.1:1/v1/webhook?writeKey={key}",
                "method": "POST",
                "headers": {"Authorization": auth, "Content-Type": "application/json"},
            },
        }

    path = "/destinations/d1/subscriptions"
    httpserver.expect_request(path, method="GET").respond_with_json(
        {"data": {"subscriptions": [mapping(keys["list"])], "pagination": {"current": "c"}}}
    )
    httpserver.expect_request(f"{path}/m1", method="GET").respond_with_json(
        {"data": {"subscription": mapping(keys["get"])}}
    )
    httpserver.expect_request(path, method="POST").respond_with_json(
        {"data": {"destinationSubscription": mapping(keys["create"])}}
    )
    httpserver.expect_request(f"{path}/m1", method="PATCH").respond_with_json(
        {"data": {"subscription": mapping(keys["patch"])}}
    )
    assert not any(_is_masked(k) for k in keys.values())

    assert segment.list_destination_subscriptions("d1")[0]["settings"]["url"].endswith(keys["list"])
    segment.get_destination_subscription("d1", "m1")
    segment.create_destination_subscription(
        "d1",
        name="n",
        action_id="a",
        trigger="t",
        enabled=True,
        settings={"url": "http://127.0.0.1:1/v1/webhook"},
    )
    segment.set_destination_subscription_enabled("d1", "m1", False)

    assert all(_is_masked(k) for k in keys.values()) and _is_masked(auth)
    assert not _is_masked("application/json")
