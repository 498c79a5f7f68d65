"""Simulated clients: seeded, recorded in the ledger first, routed by adoption curve and server-side switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from sandbox.clients import (
    DRIFT_CHANNEL_EVENT,
    DRIFT_EVENT,
    DRIFT_PROPERTY,
    DRIFT_SKU_EVENT,
    DRIFT_TRAIT_KEY,
    JS_SDK_APP,
    OLD_APP_VERSIONS,
    AdoptionCurve,
    ClientFleet,
    ClientsConfig,
    old_app_version,
    plan_event,
    sent_values,
)
from sandbox.ledger import Ledger
from sandbox.rudderstack_definitions import accepted_config

AUTH = {"Authorization": "Bearer sandbox-rudderstack-token"}


def test_plans_repeat_for_a_seed_and_differ_across_seeds():
    config = ClientsConfig(seed=11)
    first = [plan_event(config, k) for k in range(300)]
    assert first == [plan_event(ClientsConfig(seed=11), k) for k in range(300)]
    assert len({e.message_id for e in first}) == 300
    other = {plan_event(ClientsConfig(seed=12), k).message_id for k in range(300)}
    assert other.isdisjoint(e.message_id for e in first)
    assert {e.event_type for e in first} == {"track", "page", "screen", "identify"}
    assert {e.kind for e in first} == {"app", "server"}


@pytest.mark.parametrize("kind", ["linear", "logistic"])
def test_adoption_curve_ramps_from_none_to_all(kind):
    curve = AdoptionCurve(kind=kind, ramp_s=60, start_delay_s=10)
    shares = [curve.share(t) for t in range(0, 80, 5)]
    assert shares[0] == 0.0 and curve.share(10) == 0.0 and curve.share(70) == 1.0
    assert shares == sorted(shares) and 0.3 < curve.share(40) < 0.7


def test_a_curve_that_starts_at_the_cutover_keeps_every_install_on_segment_until_the_webhook_is_on():
    fleet = ClientFleet(
        ClientsConfig(adoption=AdoptionCurve(ramp_s=10, starts_at="cutover")),
        ledger=None,
        segment_url="http://x",
        rudderstack_url="http://y",
    )
    fleet._started_at = 0.0
    assert fleet.adoption_share(1e6) == 0.0  # no cutover seen: nobody upgraded, however late
    with pytest.raises(ValueError, match="starts_at must be 'clients_start' or 'cutover'"):
        AdoptionCurve(starts_at="release")


def test_the_ramp_starts_when_the_sources_webhook_is_seen(
    make_segment, make_rudderstack, pg_dsn, ledger_schema
):
    seen_at = 120  # the fleet's "cutover": its check answers yes once 120 events were planned
    fleet, ledger, *_ = _run_fleet(
        make_segment,
        make_rudderstack,
        pg_dsn,
        ledger_schema,
        max_events=400,
        adoption=AdoptionCurve(ramp_s=0.1, starts_at="cutover"),
        auto_switch_poll_s=0.0,
    )
    checked: list[str] = []

    def cutover_ready(source_id: str) -> bool:
        checked.append(source_id)
        return fleet._next_index >= seen_at

    fleet.cutover_ready = cutover_ready
    fleet.start()
    sent = _finish(fleet, ledger)
    app = [(plan_event(fleet.config, k), row["sdk"]) for k, row in enumerate(sent)]
    app = [(event.index, sdk) for event, sdk in app if event.kind == "app"]
    assert set(checked) == {"src_web_app"}
    assert {sdk for index, sdk in app if index < seen_at} == {
        "segment"
    }  # before the cutover: all old versions
    late = [sdk for index, sdk in app if index >= seen_at + 100]  # 0.25 s after it: the 0.1 s ramp is over
    assert late and set(late) == {"rudderstack"}


def _run_fleet(make_segment, make_rudderstack, pg_dsn, ledger_schema, **overrides):
    ledger = Ledger(pg_dsn, schema=ledger_schema)
    segment, segment_url = make_segment(ledger)
    rudder, rudder_url = make_rudderstack()
    settings = {
        "seed": 5,
        "events_per_second": 400,
        "max_events": 40,
        "schema": "fleet_test",
        "adoption": AdoptionCurve(ramp_s=0.1),
        "sdk_upload_interval_s": 0.05,
    }
    config = ClientsConfig(**{**settings, **overrides})
    fleet = ClientFleet(config, ledger, segment_url=segment_url, rudderstack_url=rudder_url)
    return fleet, ledger, segment, rudder


def _finish(fleet, ledger):
    assert fleet.wait_done(20)
    fleet.stop(flush=True)
    return ledger.sent()


def test_fleet_records_every_event_then_delivers_it_through_the_real_sdks(
    make_segment, make_rudderstack, pg_dsn, ledger_schema
):
    fleet, ledger, segment, rudder = _run_fleet(make_segment, make_rudderstack, pg_dsn, ledger_schema)
    fleet.start()
    sent = _finish(fleet, ledger)
    assert [r["message_id"] for r in sent] == [plan_event(fleet.config, k).message_id for k in range(40)]
    assert fleet.stats()["failed"] == 0

    by_sdk = {"segment": set(), "rudderstack": set()}
    for row in sent:
        by_sdk[row["sdk"]].add(row["source"])
        if row["sdk"] == "segment":
            assert segment.paths(row["message_id"])[0] == f"received:{row['source']}"
    staged = {e["messageId"]: e for e in rudder.staged_events()}
    rudder_rows = [r for r in sent if r["sdk"] == "rudderstack"]
    assert {r["message_id"] for r in rudder_rows} == set(staged)
    for row in rudder_rows:
        event = staged[row["message_id"]]
        if (
            event["context"]["library"]["name"] == "RudderLabs JavaScript SDK"
        ):  # web installs: the JS SDK's shape
            assert event["channel"] == "web" and "timestamp" not in event and event["originalTimestamp"]
        else:
            assert event["context"]["app"]["version"] == "2.0.0" and event["channel"] == "server"
    assert any(staged[r["message_id"]]["channel"] == "web" for r in rudder_rows)  # some went the JS SDK's way
    # what Segment received from the app carries an old app version (Delivery Overview groups ingress by it)
    now = datetime.now(UTC)
    at_segment = segment.delivery_overview.query(
        "successfully-received",
        "src_web_app",
        None,
        now - timedelta(hours=1),
        now + timedelta(minutes=1),
        "HOUR",
        ["appVersion"],
        {},
    )
    assert {d.get("appVersion") for d in at_segment} <= set(OLD_APP_VERSIONS)
    assert {old_app_version(f"install-{i:05d}") for i in range(4)} == set(OLD_APP_VERSIONS)
    # the ramp moved app installs to RudderStack; server-side services were never switched
    assert by_sdk == {"segment": {"src_web_app", "src_backend"}, "rudderstack": {"rs_src_app"}}


def test_drift_world_changes_a_property_type_with_the_new_app_version(
    make_segment, make_rudderstack, pg_dsn, ledger_schema
):
    fleet, ledger, _, rudder = _run_fleet(make_segment, make_rudderstack, pg_dsn, ledger_schema, drift=True)
    fleet.start()
    _finish(fleet, ledger)
    planned = {plan_event(fleet.config, k).message_id: plan_event(fleet.config, k) for k in range(40)}
    drifted = [e for e in rudder.staged_events() if e.get("event") == DRIFT_EVENT]
    assert drifted, "the seed sends Cart Viewed through RudderStack"
    for event in drifted:
        assert (
            event["properties"][DRIFT_PROPERTY] == f"{planned[event['messageId']].properties['items']} items"
        )
    clean = ClientsConfig()
    assert clean.drift is False  # the default world does not drift


def test_only_the_drift_world_sends_the_keys_that_drift_and_both_send_the_same_events():
    clean, drift = ClientsConfig(seed=5), ClientsConfig(seed=5, drift=True)
    pairs = [(plan_event(clean, k), plan_event(drift, k)) for k in range(400)]
    assert all(a.message_id == b.message_id and a.event_type == b.event_type for a, b in pairs)
    for a, b in pairs:
        assert set(a.properties) | set(a.traits) <= set(b.properties) | set(b.traits)
        assert not {"SKUCode", "channel", DRIFT_TRAIT_KEY} & (set(a.properties) | set(a.traits))
        if b.event == DRIFT_SKU_EVENT:
            assert b.properties["SKUCode"] == b.properties["product_id"].upper()
        if b.event == DRIFT_CHANNEL_EVENT:
            assert b.properties["channel"] in ("newsletter", "push", "affiliate")
        if b.event_type == "identify":
            assert b.traits[DRIFT_TRAIT_KEY] == "CRM-" + b.user_id.split("-")[1]
    assert {b.event for _, b in pairs} >= {DRIFT_SKU_EVENT, DRIFT_CHANNEL_EVENT}


def test_the_ledger_keeps_what_each_client_handed_its_sdk(
    make_segment, make_rudderstack, pg_dsn, ledger_schema
):
    fleet, ledger, _, rudder = _run_fleet(make_segment, make_rudderstack, pg_dsn, ledger_schema, drift=True)
    fleet.start()
    sent = _finish(fleet, ledger)
    recorded = ledger.sent_values()
    # rebuilt from the seed and k alone (plan_event is pure), with the SDK the ledger names
    assert recorded == {
        row["message_id"]: sent_values(fleet.config, plan_event(fleet.config, k), row["sdk"])
        for k, row in enumerate(sent)
    }
    staged = {e["messageId"]: e for e in rudder.staged_events()}
    for row in sent:
        if row["sdk"] != "rudderstack":
            continue
        values, event = recorded[row["message_id"]], staged[row["message_id"]]
        # what RudderStack received is what the ledger says the client set (identify traits in context.traits)
        received = event.get("properties") if values["type"] != "identify" else event["context"]["traits"]
        assert received == values.get("properties", values.get("traits"))
        assert event["context"]["app"] == values["context"]["app"]
        if event["context"]["library"]["name"] == "RudderLabs JavaScript SDK":
            assert values["context"]["app"] == JS_SDK_APP  # the JS SDK's own app, as it goes on the wire


def test_same_seed_sends_the_same_events_the_same_way(make_segment, make_rudderstack, pg_dsn, ledger_schema):
    runs = []
    for suffix in ("a", "b"):
        fleet, ledger, _, _ = _run_fleet(make_segment, make_rudderstack, pg_dsn, f"{ledger_schema}_{suffix}")
        fleet.start()
        runs.append(
            [
                (r["message_id"], r["event_type"], r["sdk"], r["source"], r["sender"])
                for r in _finish(fleet, ledger)
            ]
        )
    assert runs[0] == runs[1]


def test_server_side_switches_automatically_once_a_warehouse_is_connected(
    make_segment, make_rudderstack, pg_dsn, ledger_schema, namespace
):
    fleet, ledger, _, rudder = _run_fleet(
        make_segment,
        make_rudderstack,
        pg_dsn,
        ledger_schema,
        server_side_switch="auto",
        auto_switch_poll_s=0.0,
    )
    fleet.server_side_ready = lambda: bool(rudder.warehouse_destinations_for_source("rs_src_backend"))
    assert not fleet.server_side_ready()
    url = fleet.rudderstack_url
    dest = {"name": "wh", "type": "POSTGRES", "config": accepted_config(namespace)}
    created = requests.post(f"{url}/v2/destinations", json=dest, headers=AUTH, timeout=5).json()[
        "destination"
    ]
    requests.post(
        f"{url}/v2/connections",
        json={"sourceId": "rs_src_backend", "destinationId": created["id"]},
        headers=AUTH,
        timeout=5,
    ).raise_for_status()
    assert fleet.server_side_ready()
    fleet.start()
    sent = _finish(fleet, ledger)
    server_rows = [r for r in sent if r["sender"].endswith("-service")]
    assert server_rows and {r["source"] for r in server_rows} == {"rs_src_backend"}
    assert fleet.stats()["server_side_switched_at"] is not None


def test_the_drift_world_is_one_flag_away(tmp_path, monkeypatch):
    from sandbox.__main__ import build_parser
    from sandbox.config import load_config

    monkeypatch.delenv("SANDBOX_WORLD", raising=False)
    assert load_config().clients.drift is False  # the default world is clean
    assert load_config(world="drift").clients.drift is True
    assert (
        load_config(world="drift", clients={"server_side_switch": "auto"}).clients.drift is True
    )  # make demo's
    settings = tmp_path / "world.yaml"
    settings.write_text("clients: {drift: true}\n")
    assert load_config(settings).clients.drift is True
    settings.write_text("world: drift\n")
    assert load_config(settings).clients.drift is True
    assert build_parser().parse_args(["start", "--world", "drift"]).world == "drift"
