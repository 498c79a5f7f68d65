"""The Segment emulator's answers for what stays on Segment (sandbox/segment/functions.py, tracking_plans.py; seeds in settings.py) conform to the SDK's
models: another destination among a source's connected destinations, Functions, tracking plans and their sources;
its refusals are Segment's error envelopes."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest

from sandbox.common import ServerThread
from sandbox.segment import SegmentEmulator, SegmentSettings, SourceSeed, WarehouseSeed
from sandbox.segment.settings import sandbox_workspace
from sandbox.warehouse import Warehouse
from tests.contract.test_segment_conformance import TOKEN, data_of, problems

_n = itertools.count(1)


@pytest.fixture(scope="module")
def segment(pg_dsn: str):
    schema = f"conf_ws_{int(time.time() * 1000) % 10_000_000}_{next(_n)}"
    settings = SegmentSettings(
        sources=[
            SourceSeed("src_web_app", "web_app", "Web App", "wk_ws_web", schema),
            SourceSeed("src_backend", "backend", "Backend", "wk_ws_backend", schema),
        ],
        warehouses=[WarehouseSeed(id="wh_ws", connected_sources=["src_web_app", "src_backend"])],
        load_interval_s=None,
        page_size=1,
        workspace=sandbox_workspace(),
    )
    emulator = SegmentEmulator(settings, Warehouse(pg_dsn), None)
    server = ServerThread(emulator.app).start()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as api:
        yield emulator, api
    server.stop()


def test_another_destination_of_a_source_is_a_complete_destination_v1(segment):
    _, api = segment
    data = data_of(
        api.get("/sources/src_web_app/connected-destinations"), "ListConnectedDestinationsFromSourceV1Output"
    )
    [amplitude] = data["destinations"]
    assert (amplitude["name"], amplitude["metadata"]["name"]) == (
        "Amplitude (product analytics)",
        "Amplitude (Actions)",
    )
    assert (
        data_of(
            api.get("/sources/src_backend/connected-destinations"),
            "ListConnectedDestinationsFromSourceV1Output",
        )["destinations"]
        == []
    )


def test_functions_tracking_plans_and_their_sources_conform(segment):
    _, api = segment
    functions = data_of(
        api.get("/functions", params={"resourceType": "DESTINATION"}), "ListFunctionsV1Output"
    )
    assert [f["displayName"] for f in functions["functions"]] == ["Enrich web events"]
    assert (
        data_of(api.get("/functions", params={"resourceType": "SOURCE"}), "ListFunctionsV1Output")[
            "functions"
        ]
        == []
    )
    plans = data_of(api.get("/tracking-plans"), "ListTrackingPlansV1Output")
    assert [p["id"] for p in plans["trackingPlans"]] == ["tp_web_app"]
    sources = data_of(api.get("/tracking-plans/tp_web_app/sources"), "ListSourcesFromTrackingPlanV1Output")
    assert [s["id"] for s in sources["sources"]] == ["src_web_app"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/functions", {}, 422),  # resourceType is required
        ("/functions", {"resourceType": "WEBHOOK"}, 422),
        ("/tracking-plans", {"type": "DRAFT"}, 422),
        ("/tracking-plans/tp_nope/sources", {}, 404),
    ],
)
def test_refusals_are_request_error_envelopes(segment, path, params, status):
    _, api = segment
    response = api.get(path, params=params)
    assert response.status_code == status, response.text
    assert problems("RequestErrorEnvelope", response.json()) == []


def test_a_token_without_tracking_plan_access_gets_403_and_a_workspace_without_functions_404(segment):
    emulator, api = segment
    emulator.faults.arm({"tracking_plans_forbidden": {"count": 1}, "functions_unavailable": {"count": 1}})
    forbidden = api.get("/tracking-plans")
    missing = api.get("/functions", params={"resourceType": "SOURCE"})
    assert (forbidden.status_code, missing.status_code) == (403, 404)
    assert problems("RequestErrorEnvelope", forbidden.json()) == []
    assert problems("RequestErrorEnvelope", missing.json()) == []
