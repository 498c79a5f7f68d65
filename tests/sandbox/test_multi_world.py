"""The multi-schema sandbox world: 3 client sources in 2 schemas plus a server-side source, clients per source."""

from __future__ import annotations

import dataclasses

import pytest

from sandbox.clients import AdoptionCurve, ClientFleet, plan_event
from sandbox.config import load_config


@pytest.fixture(scope="module")
def config():
    return load_config(world="multi")


def test_world_has_three_client_sources_in_two_schemas_and_a_backend(config):
    schema_of = {s.id: s.schema for s in config.segment.sources}
    assert schema_of == {
        "src_web_app": "app_events",
        "src_backend": "app_events",
        "src_ios_app": "mobile_events",
        "src_android_app": "mobile_events",
    }
    assert config.segment.warehouses[0].connected_sources == list(schema_of)
    assert {s["id"] for s in config.rudderstack.sources} >= {"rs_src_app", "rs_src_ios", "rs_src_android"}


def test_each_install_sends_to_its_platforms_source_and_the_ledger_names_that_schema(config):
    clients = dataclasses.replace(
        config.clients, adoption=AdoptionCurve(start_delay_s=1e9)
    )  # nobody upgraded
    fleet = ClientFleet(clients, ledger=None, segment_url="http://x", rudderstack_url="http://y")
    seen: dict[tuple[str, str], set[str]] = {}
    for k in range(400):
        event = plan_event(config.clients, k)
        sdk, source, _ = fleet.route(event)
        assert sdk == "segment"
        seen.setdefault((event.platform, source), set()).add(fleet.schema_of(event))
    assert seen[("web", "src_web_app")] == {"app_events"}
    assert seen[("ios", "src_ios_app")] == {"mobile_events"}
    assert seen[("android", "src_android_app")] == {"mobile_events"}
    assert seen[("server", "src_backend")] == {"app_events"}
    assert {source for _, source in seen} == {"src_web_app", "src_ios_app", "src_android_app", "src_backend"}


def test_new_app_versions_send_to_their_own_rudderstack_source(config):
    clients = dataclasses.replace(config.clients, adoption=AdoptionCurve())  # the ramp counts from the start
    fleet = ClientFleet(clients, ledger=None, segment_url="http://x", rudderstack_url="http://y")
    fleet._started_at = 0.0
    late = [plan_event(config.clients, k) for k in range(10_000, 10_400)]  # planned long after the ramp
    routes = {(e.platform, fleet.route(e)[1]) for e in late if e.kind == "app"}
    assert routes == {("web", "rs_src_app"), ("ios", "rs_src_ios"), ("android", "rs_src_android")}


def test_unknown_world_is_refused():
    with pytest.raises(ValueError, match="unknown sandbox world 'tiny'"):
        load_config(world="tiny")
