"""The value check (sandbox.value_check) on short real runs. Simulated clients send through the real SDKs to the
Segment and RudderStack emulators. Segment's webhook forwards the web app's events to RudderStack's Segment-type
source, as after a cutover. Segment's loader writes PostgreSQL first, then rudder-server's rules load what
RudderStack received, merging over Segment's rows. Then every value each client sent is compared with its row.
The clean world keeps every value; the drift world shows each of its four drifts at its column."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from sandbox.clients import AdoptionCurve, ClientFleet, ClientsConfig
from sandbox.ledger import Ledger
from sandbox.reconcile import reconcile
from sandbox.rudderstack_definitions import accepted_config
from sandbox.rudderstack_emulator import default_sources
from sandbox.segment import SEND_ACTION_ID, WEBHOOKS_ACTIONS_METADATA_ID, SourceSeed, WarehouseSeed
from sandbox.value_check import ValueReport, check_values, same
from sandbox.warehouse import Warehouse

SEGMENT_TOKEN = "sandbox-segment-token"
SEGMENT_SOURCE = {"id": "rs_src_segment", "name": "Segment", "type": "Segment", "writeKey": "wk_rs_segment"}
EVENTS = 200


def _forward_web_app(segment_url: str, rudderstack_url: str) -> None:
    """Segment's Webhooks (Actions) destination on the web app, its Send mapping posting each event to
    RudderStack's Segment-type source (what the migration's cutover step creates)."""
    with httpx.Client(
        base_url=segment_url, headers={"Authorization": f"Bearer {SEGMENT_TOKEN}"}, timeout=10
    ) as api:
        created = api.post(
            "/destinations",
            json={
                "sourceId": "src_web_app",
                "metadataId": WEBHOOKS_ACTIONS_METADATA_ID,
                "name": "RudderStack (migration)",
                "enabled": True,
                "settings": {"sharedSecret": "s"},
            },
        )
        created.raise_for_status()
        destination = created.json()["data"]["destination"]["id"]
        api.post(
            f"/destinations/{destination}/subscriptions",
            json={
                "name": "RudderStack (migration): Send",
                "actionId": SEND_ACTION_ID,
                "trigger": 'type = "track" or type = "identify" or type = "page" or type = "screen"',
                "enabled": True,
                "settings": {
                    "url": f"{rudderstack_url}/v1/webhook?writeKey={SEGMENT_SOURCE['writeKey']}",
                    "method": "POST",
                    "data": {"@path": "$."},
                    "enable_batching": False,
                },
            },
        ).raise_for_status()


@pytest.fixture
def run(make_segment, make_rudderstack, pg_dsn, namespace, ledger_schema):
    """run(drift=...) -> the value check of a short run of EVENTS events (old versions first, then a ramp to
    the new one), and the reconciliation of the same schema."""
    ledgers: list[Ledger] = []

    def go(*, drift: bool) -> tuple[ValueReport, object]:
        ledger = Ledger(pg_dsn, schema=ledger_schema)
        ledgers.append(ledger)
        segment, segment_url = make_segment(
            ledger,
            sources=[
                SourceSeed("src_web_app", "web_app", "Web App", "wk_seg_web_app", namespace),
                SourceSeed("src_backend", "backend", "Backend", "wk_seg_backend", namespace),
            ],
            warehouses=[WarehouseSeed()],
            webhook_initial_backoff_s=0.05,
        )
        rudder, rudder_url = make_rudderstack(sources=[*default_sources(), SEGMENT_SOURCE])
        _forward_web_app(segment_url, rudder_url)
        config = ClientsConfig(
            seed=5,
            events_per_second=400,
            max_events=EVENTS,
            schema=namespace,
            adoption=AdoptionCurve(start_delay_s=0.15, ramp_s=0.2),
            sdk_upload_interval_s=0.05,
            drift=drift,
        )
        fleet = ClientFleet(config, ledger, segment_url=segment_url, rudderstack_url=rudder_url)
        fleet.start()
        assert fleet.wait_done(20)
        fleet.stop(flush=True)
        assert fleet.stats()["failed"] == 0
        assert segment.wait_webhooks_idle(10)
        segment.run_load()  # Segment's load first: it created the tables and their types before any cutover
        warehouse = Warehouse(pg_dsn)
        destination = {"id": "rs_dest_values", "type": "POSTGRES", "config": accepted_config(namespace)}
        for source in (*default_sources()[:1], SEGMENT_SOURCE):
            warehouse.load_rudderstack(
                rudder.staged_events(source["id"]),
                source={"id": source["id"], "type": source["type"]},
                destination=destination,
            )
        return check_values(pg_dsn, namespace, ledger_schema=ledger_schema), reconcile(
            pg_dsn, namespace, ledger_schema=ledger_schema
        )

    yield go
    for ledger in ledgers:
        ledger.close()


def test_the_clean_world_keeps_every_value_in_its_column(run, pg_dsn, namespace):
    began = time.monotonic()
    values, report = run(drift=False)

    assert report.ok, report.format()
    assert values.ok, values.format()
    assert values.rows == report.totals().loaded == EVENTS
    assert values.values == values.kept > 5 * EVENTS
    assert (values.changed, values.moved, values.lost) == (0, 0, 0)
    assert {f.kind for f in values.columns} == {"kept"}
    # every path was compared: Segment's own rows, forwarded rows RudderStack merged over them, the new version's
    tables = {f.table for f in values.columns}
    assert {"tracks", "pages", "screens", "identifies", "cart_viewed", "product_viewed"} <= tables
    writers = Warehouse(pg_dsn)._query(
        f'SELECT DISTINCT context_source_id FROM "{namespace}".tracks'  # noqa: S608 - a test-made schema
    )
    assert {w[0] for w in writers} == {None, "rs_src_app", "rs_src_segment"}
    # the clean world sends no key either loader names its own way and no property named like RudderStack's column
    columns = set(Warehouse(pg_dsn).columns(namespace, "product_viewed"))
    columns |= set(Warehouse(pg_dsn).columns(namespace, "identifies"))
    assert not {"skucode", "sku_code", "crmid", "crm_id"} & columns
    assert "channel" not in {f.column for f in values.columns}  # only RudderStack's own channel column
    # reconcile carries it apart from the ids, and prints it
    assert report.values is not None and report.values.ok and report.values.values == values.values
    text = report.format()
    assert (
        f"Value check: {values.values:,} values in {EVENTS:,} rows: {values.values:,} kept, 0 changed" in text
    )
    assert time.monotonic() - began < 20


def test_the_drift_world_shows_each_drift_at_its_column(run):
    began = time.monotonic()
    values, report = run(drift=True)

    assert report.ok, report.format()  # every id is in the warehouse exactly once: the ids alone say OK
    assert not values.ok and not report.values.ok
    # 1. the new version's "3 items" into Segment's bigint column: NULL, parked in rudder_discards
    lost = values.finding("cart_viewed", "items", "lost")
    assert lost is not None and lost.count > 0
    assert lost.detail == "discarded by RudderStack: incompatible schema conversion from int to string"
    assert values.kinds("cart_viewed", "items")["kept"] > 0  # the old versions' integers
    # 2. SKUCode: Segment's skucode, RudderStack's sku_code
    moved = values.finding("product_viewed", "skucode", "moved")
    assert moved is not None and moved.detail == "to sku_code"
    # 3. the CRMId trait: Segment's crmid, RudderStack's crm_id (also in context_traits_crm_id)
    trait = values.finding("identifies", "crmid", "moved")
    assert trait is not None and trait.detail == "to crm_id, also context_traits_crm_id"
    # 4. a property named channel: RudderStack fills the column with its own (server, web), or NULL from a webhook
    changed = values.finding("order_completed", "channel", "changed")
    assert changed is not None and changed.detail.endswith("; RudderStack fills channel itself")
    assert changed.detail.split(" -> ")[1].split(";")[0] in ("'server'", "'web'")
    assert (
        values.kinds("order_completed", "channel").get("lost", 0) > 0
    )  # forwarded through Segment's webhook
    assert values.kinds("order_completed", "channel")["kept"] > 0  # Segment's own rows (the backend's)
    # and nothing else drifted
    drifted = {(f.table, f.column) for f in values.columns if f.kind != "kept"}
    assert drifted == {
        ("cart_viewed", "items"),
        ("product_viewed", "skucode"),
        ("identifies", "crmid"),
        ("order_completed", "channel"),
    }
    text = values.format()
    assert "  cart_viewed.items: " in text and " lost (discarded by RudderStack: " in text
    assert "  product_viewed.skucode: " in text and " moved (to sku_code), e.g. " in text
    assert time.monotonic() - began < 20


def test_values_are_normalised_before_they_are_compared():
    moment = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert same(3, 3.0) and same(12.34, Decimal("12.34")) and same(3, Decimal("3"))
    assert not same(12.5, 12)  # truncated into an integer column
    assert not same(3, "3") and not same(True, "true")  # stringified into a text column
    assert same("2025-03-01T11:00:00+01:00", moment)  # a timestamp column: the same instant
    assert not same("2025-03-01T10:00:00Z", "2025-03-01T10:00:00.000Z")  # a text column: reformatted
    assert same(["a", "b"], '["a","b"]') and same(True, True) and not same(1, True)
    assert not same("x", None)
