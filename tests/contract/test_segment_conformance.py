"""Every Segment emulator answer the hooks read conforms to Segment's own Public API SDK models.

The JSON Schemas in ``schemas/`` are written from the pydantic models of ``segmentio/public-api-sdk-python``
(``segment_public_api/models/*.py``; each schema names its model and file): required fields, their types,
enums and nullability. A 2xx answer is ``{"data": <Output model>}``; an error is a ``RequestErrorEnvelope``.
The calls below are the ones :class:`~segment_rudderstack.hooks.segment.SegmentHook` makes, on the same paths.
"""

from __future__ import annotations

import itertools
import json
import pathlib
import threading
import time

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from sandbox.common import ServerThread
from sandbox.segment import SegmentEmulator, SegmentSettings, SourceSeed, WarehouseSeed
from sandbox.warehouse import Warehouse
from segment_rudderstack.vocabulary import (
    ALL_EVENT_TYPES_TRIGGER,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_ACTIONS_SEND_ACTION_ID,
    send_mapping_settings,
)

SCHEMAS = pathlib.Path(__file__).parent / "schemas"
TOKEN = "sandbox-segment-token"
WH = "wh_conformance"
_n = itertools.count(1)


def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def problems(model: str, instance) -> list[str]:
    """What in ``instance`` does not conform to the SDK model ``model`` (empty: it conforms)."""
    schema = REGISTRY.contents(f"{model}.json")
    validator = Draft202012Validator(schema, registry=REGISTRY)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def data_of(response: httpx.Response, model: str, status: int = 200):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"data"}, f"expected the {{'data': ...}} envelope, got keys {sorted(body)}"
    assert problems(model, body["data"]) == []
    return body["data"]


def test_every_schema_names_the_sdk_model_it_comes_from():
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        assert schema["title"] == path.stem and "segment_public_api/models/" in schema["description"]
        Draft202012Validator.check_schema(schema)


@pytest.fixture(scope="module")
def segment(pg_dsn: str):
    tag = f"{int(time.time() * 1000) % 10_000_000}_{next(_n)}"
    settings = SegmentSettings(
        sources=[
            SourceSeed("src_a", "app", "App", "wk_conf_a", f"conf_{tag}"),
            SourceSeed("src_b", "backend", "Backend", "wk_conf_b", f"conf_{tag}"),
        ],
        warehouses=[WarehouseSeed(id=WH, connected_sources=["src_a", "src_b"])],
        load_interval_s=None,
        load_duration_s=0.1,
        sync_list_per_minute=1000,
        page_size=2,
        subscription_writes_per_minute=1000,
        advanced_sync_schedule={
            "enabled": True,
            "schedule": {"times": [{"hourOfDay": 3, "enabled": True}], "timezone": "UTC"},
        },
    )
    emulator = SegmentEmulator(settings, Warehouse(pg_dsn), None)
    server = ServerThread(emulator.app).start()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as api:
        yield emulator, api
    server.stop()


def test_workspace_and_source_answers(segment):
    _, api = segment
    data_of(api.get("/"), "GetWorkspaceV1Output")
    data_of(api.get("/sources/src_a"), "GetSourceV1Output")
    data_of(api.get("/sources/src_a/connected-warehouses"), "ListConnectedWarehousesFromSourceV1Output")


def test_warehouse_answers(segment):
    _, api = segment
    data_of(api.get(f"/warehouses/{WH}"), "GetWarehouseV1Output")
    data_of(
        api.get(f"/warehouses/{WH}/advanced-sync-schedule"), "GetAdvancedSyncScheduleFromWarehouseV1Output"
    )
    data_of(api.patch(f"/warehouses/{WH}", json={"enabled": True, "settings": {}}), "UpdateWarehouseV1Output")
    data_of(
        api.delete(f"/warehouses/{WH}/connected-sources/src_b"), "RemoveSourceConnectionFromWarehouseV1Output"
    )
    connected = data_of(
        api.post(f"/warehouses/{WH}/connected-sources/src_b"),
        "AddConnectionFromSourceToWarehouseV1Output",
        status=201,
    )
    assert connected == {"status": "CONNECTED"}


def test_sync_reports_finished_failed_and_running(segment):
    emulator, api = segment
    emulator.run_load(WH)
    emulator.faults.arm({"load_failure": {"count": 1, "message": "permission denied (injected)"}})
    emulator.run_load(WH)
    emulator.settings.load_duration_s = 1.0  # a running load must be listed (and conform) while it runs
    running = threading.Thread(target=emulator.run_load, args=(WH,), daemon=True)
    running.start()
    time.sleep(0.3)
    try:
        reports = data_of(
            api.get(f"/warehouses/{WH}/syncs", params={"pagination.count": 10}),
            "ListSyncsFromWarehouseV1Output",
        )["reports"]
        one = data_of(
            api.get(f"/warehouses/{WH}/connected-sources/src_a/syncs"),
            "ListSyncsFromWarehouseAndSourceV1Output",
        )
    finally:
        running.join(5)
        emulator.settings.load_duration_s = 0.1
    assert {r["end"] is None for r in reports} == {True, False}  # a running one was checked too
    assert any(r["notices"] for r in reports)  # and a failed one with notices
    assert one["reports"] and "current" in one["pagination"]


def test_destination_and_mapping_answers(segment):
    _, api = segment
    created = data_of(
        api.post(
            "/destinations",
            json={
                "sourceId": "src_a",
                "metadataId": WEBHOOKS_ACTIONS_METADATA_ID,
                "name": "RudderStack (migration)",
                "enabled": False,
                "settings": {},
            },
        ),
        "CreateDestinationV1Output",
    )["destination"]
    path = f"/destinations/{created['id']}"
    data_of(api.get(path), "GetDestinationV1Output")
    data_of(api.patch(path, json={"enabled": True}), "UpdateDestinationV1Output")
    for n in range(3):  # three pages of two
        api.post(
            "/destinations",
            json={
                "sourceId": "src_a",
                "metadataId": WEBHOOKS_ACTIONS_METADATA_ID,
                "name": f"other {n}",
                "enabled": False,
                "settings": {},
            },
        ).raise_for_status()
    page = data_of(
        api.get("/sources/src_a/connected-destinations"), "ListConnectedDestinationsFromSourceV1Output"
    )
    assert page["pagination"].get("next")
    data_of(
        api.get(
            "/sources/src_a/connected-destinations", params={"pagination.cursor": page["pagination"]["next"]}
        ),
        "ListConnectedDestinationsFromSourceV1Output",
    )

    mapping = data_of(
        api.post(
            f"{path}/subscriptions",
            json={
                "name": "RudderStack (migration): Send",
                "actionId": WEBHOOKS_ACTIONS_SEND_ACTION_ID,
                "trigger": ALL_EVENT_TYPES_TRIGGER,
                "enabled": True,
                "settings": send_mapping_settings("http://127.0.0.1:9/v1/webhook?writeKey=wk"),
            },
        ),
        "CreateDestinationSubscriptionAlphaOutput",
    )["destinationSubscription"]
    data_of(api.get(f"{path}/subscriptions"), "ListSubscriptionsFromDestinationAlphaOutput")
    data_of(api.get(f"{path}/subscriptions/{mapping['id']}"), "GetSubscriptionFromDestinationAlphaOutput")
    data_of(
        api.patch(f"{path}/subscriptions/{mapping['id']}", json={"input": {"enabled": False}}),
        "UpdateSubscriptionForDestinationAlphaOutput",
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.get("/warehouses/wh_nope"),  # 404
        lambda api: api.patch(f"/warehouses/{WH}", json={"enabled": False}),  # 422: settings required
        lambda api: api.post(
            "/destinations", json={"sourceId": "src_a", "metadataId": "nope", "settings": {}}
        ),
    ],
    ids=["not-found", "validation", "unsupported-metadata"],
)
def test_error_answers_are_request_error_envelopes(segment, call):
    _, api = segment
    response = call(api)
    assert response.status_code in (404, 422)
    assert problems("RequestErrorEnvelope", response.json()) == []


def test_a_rate_limited_answer_is_a_request_error_envelope_with_ms_before_next(segment):
    emulator, api = segment
    emulator.faults.arm({"rate_limit": {"count": 1, "retry_after": 2}})
    response = api.get(f"/warehouses/{WH}")
    assert response.status_code == 429 and problems("RequestErrorEnvelope", response.json()) == []
    assert response.json()["errors"][0]["data"]["msBeforeNext"] == 2000


@pytest.mark.parametrize(
    "model, old_answer",
    [
        (
            "SyncV1",
            {
                "sourceId": "s",
                "start": "2026-01-01T00:00:00Z",
                "end": None,
                "status": "Running",
                "duration": None,
                "humanDuration": None,
                "count": 0,
                "notices": [],
            },
        ),
        (
            "SyncV1",
            {
                "sourceId": "s",
                "start": "2026-01-01T00:00:00Z",
                "end": "2026-01-01T00:00:01Z",
                "status": "Failure",
                "duration": 1000,
                "humanDuration": "1.0s",
                "count": 0,
                "notices": ["permission denied"],
            },
        ),
        ("AddConnectionFromSourceToWarehouseV1Output", {"status": "SUCCESS"}),
        (
            "WarehouseMetadataV1",
            {
                "id": "x",
                "slug": "postgres",
                "name": "Postgres",
                "description": "d",
                "logos": {},
                "options": [],
            },
        ),
    ],
    ids=["running-sync-without-duration", "notices-as-strings", "connect-success", "logos-without-default"],
)
def test_the_emulators_former_answers_do_not_conform(model, old_answer):
    """The shapes the emulator answered before it followed the SDK models are refused by the schemas."""
    assert problems(model, old_answer) != []
