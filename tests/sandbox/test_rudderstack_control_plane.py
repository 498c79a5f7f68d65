"""Contract of the RudderStack emulator's control plane (/v2): auth, wrapping, validation, audit log."""

from __future__ import annotations

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.rudderstack_definitions import accepted_config

TOKEN = "sandbox-rudderstack-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _warehouse_destination(namespace: str, kind: str = "POSTGRES", **config) -> dict:
    return {
        "name": "Sandbox warehouse",
        "type": kind,
        "enabled": True,
        "config": {k: v for k, v in accepted_config(namespace, kind, **config).items() if v is not None},
    }


def _refusal(url: str, body: dict) -> dict:
    """A create RudderStack refuses: 400 in its API error shape (rudder-iac api/client/common.go APIError)."""
    response = requests.post(f"{url}/v2/destinations", json=body, headers=AUTH, timeout=5)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error"] == error["message"] == "request validation failed" and error["code"]
    return error["details"]


def test_requests_without_a_valid_bearer_token_get_401_with_rudderstack_error_shape(make_rudderstack):
    _, url = make_rudderstack()
    missing = requests.get(f"{url}/v2/destinations", timeout=5)
    wrong = requests.get(f"{url}/v2/sources", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.json()["code"] == "unauthorized" and "Bearer" in missing.json()["error"]
    assert TOKEN not in wrong.text


def test_destination_crud_wraps_objects_and_lists(make_rudderstack, namespace):
    emulator, url = make_rudderstack()
    created = requests.post(
        f"{url}/v2/destinations", json=_warehouse_destination(namespace), headers=AUTH, timeout=5
    )
    assert created.status_code == 200
    dest = created.json()["destination"]
    assert dest["id"] and dest["type"] == "POSTGRES" and dest["enabled"] is True
    assert dest["config"]["namespace"] == namespace and dest["createdAt"].endswith("Z")

    listing = requests.get(f"{url}/v2/destinations", headers=AUTH, timeout=5).json()
    assert [d["id"] for d in listing["destinations"]] == [dest["id"]]
    assert listing["paging"]["total"] == 1

    body = {
        "name": "Renamed",
        "type": "POSTGRES",
        "enabled": False,
        "config": {**dest["config"], "manualSync": True},
    }
    updated = requests.put(f"{url}/v2/destinations/{dest['id']}", json=body, headers=AUTH, timeout=5)
    assert updated.status_code == 200
    assert updated.json()["destination"]["config"]["manualSync"] is True
    fetched = requests.get(f"{url}/v2/destinations/{dest['id']}", headers=AUTH, timeout=5).json()
    assert fetched["destination"]["name"] == "Renamed" and fetched["destination"]["enabled"] is False

    assert requests.delete(f"{url}/v2/destinations/{dest['id']}", headers=AUTH, timeout=5).status_code == 204
    gone = requests.get(f"{url}/v2/destinations/{dest['id']}", headers=AUTH, timeout=5)
    assert gone.status_code == 404 and dest["id"] in gone.json()["error"]

    audit = [(e["action"], e["before"] is None, e["after"] is None) for e in emulator.log.entries("api")]
    assert audit == [
        ("create_destination", True, False),
        ("update_destination", False, False),
        ("delete_destination", False, True),
    ]
    update_entry = emulator.log.entries("api")[1]
    assert update_entry["before"]["config"].get("manualSync") is None
    assert update_entry["after"]["config"]["manualSync"] is True


def test_warehouse_config_is_validated_like_rudderstack(make_rudderstack, namespace):
    _, url = make_rudderstack()
    bad_freq = _refusal(url, _warehouse_destination(namespace, syncFrequency="7"))
    assert "postgres/schema.json properties.syncFrequency.pattern" in bad_freq["config.syncFrequency"]
    no_ns = requests.post(
        f"{url}/v2/destinations",
        json={"name": "x", "type": "POSTGRES", "config": {**accepted_config(namespace), "namespace": ""}},
        headers=AUTH,
        timeout=5,
    )
    assert no_ns.status_code == 400 and "namespace" in no_ns.json()["error"]
    half_window = _warehouse_destination(namespace, excludeWindow={"excludeWindowStartTime": "01:00"})
    assert "Required" in _refusal(url, half_window)["config.excludeWindow.excludeWindowEndTime"]
    webhook = requests.post(
        f"{url}/v2/destinations",
        json={"name": "hook", "type": "WEBHOOK", "config": {"webhookUrl": "x"}},
        headers=AUTH,
        timeout=5,
    )
    assert webhook.status_code == 200  # non-warehouse destinations take any config
    unknown = requests.post(
        f"{url}/v2/destinations", json=_warehouse_destination(namespace, "BQ"), headers=AUTH, timeout=5
    )
    assert unknown.status_code == 400 and "POSTGRES" in unknown.json()["error"]


def test_a_destination_without_staging_storage_is_refused(make_rudderstack, namespace):
    """postgres/schema.json: useRudderStorage is required, and false needs bucketProvider and its keys."""
    _, url = make_rudderstack()
    details = _refusal(url, _warehouse_destination(namespace, useRudderStorage=None))
    assert list(details) == ["config.useRudderStorage"] and "required" in details["config.useRudderStorage"]
    own_bucket = _refusal(url, _warehouse_destination(namespace, useRudderStorage=False))
    assert "allOf[1].then.required" in own_bucket["config.bucketProvider"]
    s3 = _refusal(url, _warehouse_destination(namespace, useRudderStorage=False, bucketProvider="S3"))
    assert (
        "Required" in s3["config.bucketName"]
        and "accessKeyID" in s3["config.accessKeyID|accessKey|iamRoleARN|roleBasedAuth"]
    )
    complete = _warehouse_destination(
        namespace,
        useRudderStorage=False,
        bucketProvider="S3",
        bucketName="rs-staging",
        iamRoleARN="arn:aws:iam::1:role/r",
        roleBasedAuth=True,
    )
    assert requests.post(f"{url}/v2/destinations", json=complete, headers=AUTH, timeout=5).status_code == 200


def test_bad_ssl_modes_and_a_missing_one_are_refused(make_rudderstack, namespace):
    _, url = make_rudderstack()
    for mode in ("prefer", "verify-full", "allow"):
        details = _refusal(url, _warehouse_destination(namespace, sslMode=mode))
        assert "^(disable|require|verify-ca)$" in details["config.sslMode"]
    assert "required" in _refusal(url, _warehouse_destination(namespace, sslMode=None))["config.sslMode"]
    verify_ca = _refusal(url, _warehouse_destination(namespace, sslMode="verify-ca"))
    assert {"config.clientKey", "config.clientCert", "config.serverCA"} <= set(verify_ca)


def test_an_update_is_validated_like_a_create(make_rudderstack, namespace):
    _, url = make_rudderstack()
    dest = requests.post(
        f"{url}/v2/destinations", json=_warehouse_destination(namespace), headers=AUTH, timeout=5
    ).json()["destination"]
    config = {k: v for k, v in dest["config"].items() if k != "sslMode"}
    refused = requests.put(
        f"{url}/v2/destinations/{dest['id']}", json={"config": config}, headers=AUTH, timeout=5
    )
    assert refused.status_code == 400 and "config.sslMode" in refused.json()["details"]
    fetched = requests.get(f"{url}/v2/destinations/{dest['id']}", headers=AUTH, timeout=5).json()
    assert fetched["destination"]["config"]["sslMode"] == "disable"  # nothing stored


def _key(private_format) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    ).decode()


def test_snowflake_takes_a_pkcs8_key_and_refuses_a_pkcs1_one(make_rudderstack, namespace):
    """snowflake/schema.json allOf[1]: privateKey matches BEGIN (ENCRYPTED )?PRIVATE KEY (PKCS#8 only)."""
    _, url = make_rudderstack()
    key_pair = {"useKeyPairAuth": True, "password": None}
    pkcs1 = _warehouse_destination(
        namespace, "SNOWFLAKE", **key_pair, privateKey=_key(serialization.PrivateFormat.TraditionalOpenSSL)
    )
    assert "allOf[1].then.properties.privateKey.pattern" in _refusal(url, pkcs1)["config.privateKey"]
    pkcs8 = _warehouse_destination(
        namespace, "SNOWFLAKE", **key_pair, privateKey=_key(serialization.PrivateFormat.PKCS8)
    )
    assert requests.post(f"{url}/v2/destinations", json=pkcs8, headers=AUTH, timeout=5).status_code == 200
    no_password = _refusal(url, _warehouse_destination(namespace, "SNOWFLAKE", password=None))
    assert list(no_password) == ["config.password"]
    gcp = _refusal(
        url,
        _warehouse_destination(
            namespace, "SNOWFLAKE", useRudderStorage=False, cloudProvider="GCP", bucketName="b-1"
        ),
    )
    assert {"config.storageIntegration", "config.credentials"} <= set(gcp)
    secrets = requests.get(f"{url}/sandbox/state", timeout=5).json()
    assert "BEGIN PRIVATE KEY" not in str(secrets)  # the sandbox's own views redact keys


def test_seeded_sources_and_a_new_segment_webhook_source(make_rudderstack):
    _, url = make_rudderstack()
    sources = requests.get(f"{url}/v2/sources", headers=AUTH, timeout=5).json()["sources"]
    by_id = {s["id"]: s for s in sources}
    assert by_id["rs_src_app"]["type"] == "Javascript" and by_id["rs_src_app"]["writeKey"] == "wk_rs_app"
    assert (
        by_id["rs_src_backend"]["type"] == "HTTP" and by_id["rs_src_backend"]["writeKey"] == "wk_rs_backend"
    )

    created = requests.post(
        f"{url}/v2/sources", json={"name": "Segment webhook", "type": "Segment"}, headers=AUTH, timeout=5
    )
    assert created.status_code == 200
    source = created.json()["source"]
    assert source["type"] == "Segment" and source["writeKey"] and source["enabled"] is True
    again = requests.get(f"{url}/v2/sources/{source['id']}", headers=AUTH, timeout=5).json()["source"]
    assert again["writeKey"] == source["writeKey"]


def test_connections_link_existing_objects_once(make_rudderstack, namespace):
    _, url = make_rudderstack()
    dest = requests.post(
        f"{url}/v2/destinations", json=_warehouse_destination(namespace), headers=AUTH, timeout=5
    ).json()["destination"]
    body = {"sourceId": "rs_src_backend", "destinationId": dest["id"], "enabled": True}
    created = requests.post(f"{url}/v2/connections", json=body, headers=AUTH, timeout=5)
    assert created.status_code == 200
    conn = created.json()["connection"]
    assert conn["sourceId"] == "rs_src_backend" and conn["destinationId"] == dest["id"] and conn["enabled"]

    duplicate = requests.post(f"{url}/v2/connections", json=body, headers=AUTH, timeout=5)
    assert duplicate.status_code == 409 and conn["id"] in duplicate.json()["error"]
    unknown = requests.post(
        f"{url}/v2/connections",
        json={"sourceId": "nope", "destinationId": dest["id"]},
        headers=AUTH,
        timeout=5,
    )
    assert unknown.status_code == 400 and "nope" in unknown.json()["error"]

    disabled = requests.put(
        f"{url}/v2/connections/{conn['id']}", json={"enabled": False}, headers=AUTH, timeout=5
    )
    assert disabled.json()["connection"]["enabled"] is False
    listing = requests.get(f"{url}/v2/connections", headers=AUTH, timeout=5).json()
    assert [c["id"] for c in listing["connections"]] == [conn["id"]]

    requests.delete(f"{url}/v2/destinations/{dest['id']}", headers=AUTH, timeout=5)
    assert requests.get(f"{url}/v2/connections", headers=AUTH, timeout=5).json()["connections"] == []


def test_injected_faults_hit_the_api_but_not_sandbox_control(make_rudderstack):
    _, url = make_rudderstack()
    armed = requests.post(
        f"{url}/sandbox/faults",
        json={"rate_limit": {"count": 1, "retry_after": 3}, "server_error": {"count": 1}},
        timeout=5,
    )
    assert armed.status_code == 200
    limited = requests.get(f"{url}/v2/sources", headers=AUTH, timeout=5)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3" and "error" in limited.json()
    failed = requests.get(f"{url}/v2/sources", headers=AUTH, timeout=5)
    assert failed.status_code == 503
    assert requests.get(f"{url}/v2/sources", headers=AUTH, timeout=5).status_code == 200
