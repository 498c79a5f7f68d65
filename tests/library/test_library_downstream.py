"""Downstream of the cutover against the emulators and the real PostgreSQL (docs/downstream.md): the upload sensor
and the duplicate check add one asset event per migrated table through their alias, on the table's asset URI, with
the cutover point and the overlap window in extra; a dry run adds none. The events are collected by Airflow's own
outlet event accessors, as the task runner hands them to the API server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk import AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from segment_rudderstack.lineage.assets import DUPLICATE_CHECKED, FIRST_LOAD, alias_name
from segment_rudderstack.operators.warehouse import DuplicateCheckOperator
from segment_rudderstack.sensors.migration import RudderStackUploadSensor
from tests.library.test_library_sensors import FAST, connected, defer, first_event, upload_now
from tests.library.test_library_warehouse_and_lifecycle import seed_duplicates
from tests.library.world import RS_APP, WAREHOUSE_CONN, WAREHOUSE_ID, context, rudderstack_event

CUTOVER = datetime.now(UTC) - timedelta(minutes=10)


def announcement(world, stage: str, released: datetime, destination: str | None = "dst_x") -> dict:
    return {
        "alias": alias_name("lib", "lane", stage),
        "stage": stage,
        "plan": "lib",
        "lane": "lane",
        "schema": world.schema,
        "warehouse_conn_id": WAREHOUSE_CONN,
        "cutover_at": CUTOVER.isoformat(),
        "released_at": released.isoformat(),
        "destination_id": destination,
        "segment_warehouse_id": WAREHOUSE_ID,
    }


def with_outlets() -> tuple[dict, OutletEventAccessors]:
    events = OutletEventAccessors()
    return {**context(), "outlet_events": events}, events


def announced(events: OutletEventAccessors, stage: str) -> dict[str, dict]:
    """table URI -> the extra of its event, through the stage's alias."""
    alias_events = events[AssetAlias(alias_name("lib", "lane", stage))].asset_alias_events
    assert all(e.source_alias_name == alias_name("lib", "lane", stage) for e in alias_events)
    return {e.dest_asset_key.uri: e.extra for e in alias_events}


def table_uris(pg_dsn: str, schema: str) -> set[str]:
    """Every table of the schema but RudderStack's own, as asset URIs."""
    from segment_rudderstack.dialects import dialect_for_conn_id

    tables = dialect_for_conn_id(WAREHOUSE_CONN).list_tables(schema)
    return {pg_prefix(pg_dsn, schema) + t for t in tables if not t.startswith("rudder_")}


def pg_prefix(pg_dsn: str, schema: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(pg_dsn)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = parts.hostname or query.get("host", "")
    host = "localhost" if host.startswith("/") else host  # a Unix socket directory
    port = parts.port or query.get("port") or 5432
    return f"postgres://{host}:{port}{parts.path}/{schema}/"


def test_the_upload_sensor_announces_every_table_once_rudderstacks_first_load_is_verified(world, pg_dsn):
    destination = connected(world, RS_APP)
    released = datetime.now(UTC)
    rudderstack_event(world)
    upload_now(world, destination)
    sensor = RudderStackUploadSensor(
        task_id="upload",
        source_ids=[RS_APP],
        destination_id=destination,
        loaded_after=released.isoformat(),
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        deferrable=False,
        cutover_assets=announcement(world, FIRST_LOAD, released, destination),
        outlets=[AssetAlias(alias_name("lib", "lane", FIRST_LOAD))],
        **FAST,
    )
    ctx, events = with_outlets()

    sensor.execute(ctx)

    found = announced(events, FIRST_LOAD)
    assert set(found) == table_uris(pg_dsn, world.schema)
    assert pg_prefix(pg_dsn, world.schema) + "tracks" in found
    extra = found[pg_prefix(pg_dsn, world.schema) + "tracks"]
    assert extra["stage"] == FIRST_LOAD and extra["table"] == "tracks"
    assert extra["cutover_at"] == CUTOVER.isoformat()
    assert extra["overlap_window"] == {"start": CUTOVER.isoformat(), "end": released.isoformat()}
    assert extra["rudderstack_destination_id"] == destination
    assert json.loads(json.dumps(extra)) == extra


def test_a_deferred_upload_sensor_announces_when_it_completes(world, pg_dsn):
    destination = connected(world, RS_APP)
    released = datetime.now(UTC)
    rudderstack_event(world)
    sensor = RudderStackUploadSensor(
        task_id="upload",
        source_ids=[RS_APP],
        destination_id=destination,
        loaded_after=released.isoformat(),
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        cutover_assets=announcement(world, FIRST_LOAD, released, destination),
        **FAST,
    )
    trigger = defer(sensor)  # nothing loaded yet: it defers
    upload_now(world, destination)
    event = first_event(trigger)
    ctx, events = with_outlets()

    sensor.execute_complete(ctx, event)

    assert set(announced(events, FIRST_LOAD)) == table_uris(pg_dsn, world.schema)


@pytest.mark.parametrize("repair", [False, True])
def test_the_duplicate_check_announces_each_tables_findings(world, pg_dsn, repair):
    seed_duplicates(world)
    released = datetime.now(UTC)
    check = DuplicateCheckOperator(
        task_id="duplicates",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        change_log_key=world.change_log_key,
        repair=repair,
        cutover_assets=announcement(world, DUPLICATE_CHECKED, released),
    )
    ctx, events = with_outlets()

    result = check.execute(ctx)

    found = announced(events, DUPLICATE_CHECKED)
    prefix = pg_prefix(pg_dsn, world.schema)
    assert set(found) == table_uris(pg_dsn, world.schema) >= {prefix + "order_completed", prefix + "tracks"}
    assert found[prefix + "tracks"]["duplicates"] == {
        "since": result["since"],
        "found": 1,
        "removed": 1 if repair else 0,
    }
    assert found[prefix + "tracks"]["overlap_window"]["end"] == released.isoformat()


def test_a_dry_run_announces_nothing(world):
    seed_duplicates(world)
    check = DuplicateCheckOperator(
        task_id="duplicates",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        change_log_key=world.change_log_key,
        repair=True,
        dry_run=True,
        cutover_assets=announcement(world, DUPLICATE_CHECKED, datetime.now(UTC)),
    )
    ctx, events = with_outlets()
    check.execute(ctx)
    assert announced(events, DUPLICATE_CHECKED) == {}


# ------------------------------------------------------------------ what stays on Segment


def test_the_preflight_reads_what_stays_on_segment_leaving_out_the_migrations_own_webhooks(world):
    from segment_rudderstack.vocabulary import MIGRATION_WEBHOOK_NAME, WEBHOOKS_ACTIONS_METADATA_ID
    from tests.library.world import WEB, preflight_operator

    with world.segment_api() as api:
        for name in (MIGRATION_WEBHOOK_NAME, "Partner webhook"):
            body = {
                "sourceId": WEB,
                "metadataId": WEBHOOKS_ACTIONS_METADATA_ID,
                "name": name,
                "enabled": True,
                "settings": {},
            }
            api.post("/destinations", json=body).raise_for_status()
    world.track(count=2)
    world.load()

    stays = preflight_operator(world).execute(context())["stays_on_segment"]

    assert [(d["source_id"], d["name"]) for d in stays["destinations"]] == [(WEB, "Partner webhook")]
    assert stays["warehouses"] == []  # the only warehouse is the one being replaced
    assert stays["functions"] == [] and stays["tracking_plans"] == [] and stays["notes"] == []
