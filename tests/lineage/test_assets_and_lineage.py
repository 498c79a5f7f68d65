"""Assets and lineage for what reads the warehouse downstream (docs/downstream.md): URIs as the Postgres and
Snowflake providers spell them, the aliases a DAG file can name without I/O, what an event's extra carries, the
writer-change facet as OpenLineage serializes it, and a library that works without the OpenLineage provider."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest
from airflow.models.connection import Connection
from airflow.sdk import Asset

from segment_rudderstack.lineage.assets import (
    DUPLICATE_CHECKED,
    FIRST_LOAD,
    alias_name,
    cutover_extra,
    duplicate_details,
    migrated_tables,
    warehouse_address,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
PG = Connection(conn_id="wh", conn_type="postgres", host="DB.example.com", port=6543, schema="analytics")
SF = Connection(
    conn_id="sf", conn_type="snowflake", extra=json.dumps({"account": "XY12345.eu-west-1", "database": "raw"})
)


def test_a_postgres_table_asset_is_the_one_the_postgres_provider_builds():
    from airflow.providers.postgres.assets.postgres import create_asset

    uri = warehouse_address(PG).table_uri("app_events", "tracks")

    assert uri == "postgres://db.example.com:6543/analytics/app_events/tracks"
    provider = create_asset(
        host="db.example.com", port=6543, database="analytics", schema="app_events", table="tracks"
    )
    assert Asset(uri=uri).uri == provider.uri == uri  # Airflow's own normalisation leaves it as it is
    assert Asset(uri=uri).name == uri


def test_the_postgres_port_is_always_written_as_the_provider_normalises_it():
    no_port = Connection(conn_id="wh", conn_type="postgres", host="db", schema="analytics")
    uri = warehouse_address(no_port).table_uri("app_events", "pages")
    assert uri == "postgres://db:5432/analytics/app_events/pages" == Asset(uri=uri).uri


def test_a_snowflake_table_asset_is_the_one_the_snowflake_provider_builds_in_snowflakes_case():
    from airflow.providers.snowflake.assets.snowflake import create_asset

    uri = warehouse_address(SF).table_uri("app_events", "tracks")

    assert uri == "snowflake://xy12345.eu-west-1/RAW/APP_EVENTS/TRACKS"
    provider = create_asset(account="xy12345.eu-west-1", database="RAW", schema="APP_EVENTS", table="TRACKS")
    assert Asset(uri=uri).uri == provider.uri == uri


def test_a_unix_socket_postgres_connection_is_on_localhost():
    socket = Connection(conn_id="wh", uri="postgresql://postgres@/warehouse?host=/tmp/pg-socket&port=5433")
    assert warehouse_address(socket).table_uri("s", "t") == "postgres://localhost:5433/warehouse/s/t"


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        (Connection(conn_id="wh", conn_type="postgres", schema="analytics"), "names no host or database"),
        (
            Connection(conn_id="sf", conn_type="snowflake", extra='{"account": "xy"}'),
            "no extra 'account' or 'database'",
        ),
        (Connection(conn_id="rs", conn_type="redshift", host="h"), "postgres and snowflake connections only"),
    ],
)
def test_a_connection_without_an_address_says_what_is_missing(conn, expected):
    with pytest.raises(ValueError, match=expected):
        warehouse_address(conn)


def test_the_openlineage_datasets_are_named_as_the_providers_convert_the_same_assets():
    from airflow.providers.postgres.assets.postgres import convert_asset_to_openlineage as pg
    from airflow.providers.snowflake.assets.snowflake import convert_asset_to_openlineage as sf

    from segment_rudderstack.lineage.openlineage import writer_change_datasets

    change = {"step": "release_rudderstack_sync", "lanes": [{"lane": "app_events", "schema": "app_events"}]}
    for conn, convert in ((PG, pg), (SF, sf)):
        address = warehouse_address(conn)
        (dataset,) = writer_change_datasets(change, lambda schema: ["tracks"], address)
        expected = convert(Asset(uri=address.table_uri("app_events", "tracks")), None)
        assert (dataset.namespace, dataset.name) == (expected.namespace, expected.name)


def test_the_writer_change_facet_says_segment_to_rudderstack_at_the_cutover():
    from openlineage.client.serde import Serde

    from segment_rudderstack.lineage.openlineage import FACET_NAME, FACET_SCHEMA_URL, writer_change_datasets

    change = {
        "step": "switch_off_segment_warehouse",
        "plan": "sandbox",
        "cutover_at": "2026-12-02T05:00:00+00:00",
        "segment_warehouse_id": "wh_1",
        "lanes": [
            {"lane": "app_events", "schema": "app_events", "destination_id": "dst_a"},
            {"lane": "mobile_events", "schema": "mobile_events", "destination_id": "dst_m"},
        ],
    }
    datasets = writer_change_datasets(change, lambda schema: ["pages", "tracks"], warehouse_address(PG))

    assert [d.name for d in datasets] == [
        "analytics.app_events.pages",
        "analytics.app_events.tracks",
        "analytics.mobile_events.pages",
        "analytics.mobile_events.tracks",
    ]
    facet = Serde.to_dict(datasets[-1])["facets"][FACET_NAME]
    assert facet["_schemaURL"] == FACET_SCHEMA_URL
    assert {k: v for k, v in facet.items() if not k.startswith("_")} == {
        "previousWriter": "segment",
        "writer": "rudderstack",
        "step": "switch_off_segment_warehouse",
        "cutoverAt": "2026-12-02T05:00:00+00:00",
        "plan": "sandbox",
        "lane": "mobile_events",
        "segmentWarehouseId": "wh_1",
        "rudderstackDestinationId": "dst_m",
    }


def test_an_events_extra_carries_the_cutover_point_the_overlap_window_and_the_destination():
    announcement = {
        "plan": "sandbox",
        "lane": "app_events",
        "schema": "app_events",
        "stage": DUPLICATE_CHECKED,
        "cutover_at": "2026-12-02T05:00:00+00:00",
        "released_at": "2026-12-02T05:03:00+00:00",
        "destination_id": "dst_a",
        "segment_warehouse_id": "wh_1",
    }
    result = {"since": "2026-11-29T05:04:00+00:00", "duplicates": {"tracks": 2}, "removed": {"tracks": 2}}

    extra = cutover_extra(announcement, "tracks", duplicate_details(result, "tracks"))

    assert extra == {
        "plan": "sandbox",
        "lane": "app_events",
        "schema": "app_events",
        "table": "tracks",
        "stage": "duplicate_checked",
        "previous_writer": "segment",
        "writer": "rudderstack",
        "cutover_at": "2026-12-02T05:00:00+00:00",
        "overlap_window": {"start": "2026-12-02T05:00:00+00:00", "end": "2026-12-02T05:03:00+00:00"},
        "rudderstack_destination_id": "dst_a",
        "segment_warehouse_id": "wh_1",
        "duplicates": {"since": "2026-11-29T05:04:00+00:00", "found": 2, "removed": 2},
    }
    assert json.loads(json.dumps(extra)) == extra  # an asset event's extra is JSON


def test_rudderstacks_own_tables_are_not_announced():
    assert migrated_tables({"tracks", "rudder_discards", "pages", "rudder_identity_mappings"}) == [
        "pages",
        "tracks",
    ]


def test_a_lanes_aliases_come_from_the_plan_alone():
    assert alias_name("sandbox", "app_events", FIRST_LOAD) == (
        "segment_to_rudderstack__sandbox__app_events__rudderstack_first_load"
    )
    assert alias_name("sandbox", "app_events", DUPLICATE_CHECKED) == (
        "segment_to_rudderstack__sandbox__app_events__duplicate_checked"
    )
    with pytest.raises(ValueError, match="stage must be one of"):
        alias_name("sandbox", "app_events", "done")


# Without the OpenLineage provider (and openlineage-python) the library imports, the plans' DAGs build, and the
# lineage hook answers None. The subprocess runs on a copy of site-packages made of links to everything but them
# (python -S: no other site directory), as on a machine where they were never installed.
WITHOUT_OPENLINEAGE = textwrap.dedent(
    """
    import importlib.util, sys
    assert importlib.util.find_spec("openlineage") is None, "openlineage-python is still importable"
    from segment_rudderstack.factory.dags import build_all

    dags = build_all(PLANS, reports_dir="/tmp/srm-no-openlineage-reports")
    release = dags["segment_to_rudderstack__sandbox"].get_task("release_rudderstack.release_sync")
    switch_off = dags["segment_to_rudderstack__sandbox"].get_task("segment_final_load.disable_segment_warehouse")
    assert release.writer_change and switch_off.writer_change
    release.dry_run = switch_off.dry_run = False
    lineage = [task.get_openlineage_facets_on_complete(None) for task in (release, switch_off)]
    assert not any(m.startswith(("openlineage", "airflow.providers.openlineage")) for m in sys.modules)
    assert importlib.util.find_spec("airflow.providers.openlineage") is None, "the provider is still importable"
    print(len(dags), lineage)
    """
)


def _is_openlineage(path: pathlib.Path) -> bool:
    return (
        path.name.lower()
        .replace("-", "_")
        .startswith(("openlineage", "apache_airflow_providers_openlineage"))
    )


def _site_without_openlineage(site: pathlib.Path, into: pathlib.Path) -> pathlib.Path:
    into.mkdir()
    for entry in site.iterdir():
        if entry.name == "airflow":
            (into / "airflow").mkdir()
            for part in entry.iterdir():
                if part.name != "providers":
                    (into / "airflow" / part.name).symlink_to(part)
            (into / "airflow" / "providers").mkdir()
            for provider in (entry / "providers").iterdir():
                if provider.name != "openlineage":
                    (into / "airflow" / "providers" / provider.name).symlink_to(provider)
        elif not _is_openlineage(entry):
            (into / entry.name).symlink_to(entry)
    return into


def test_without_the_openlineage_provider_nothing_breaks(tmp_path):
    import airflow

    site = pathlib.Path(airflow.__file__).resolve().parents[1]
    assert (site / "airflow" / "providers" / "openlineage").exists(), (
        "this check needs the provider installed"
    )
    bare = _site_without_openlineage(site, tmp_path / "site")
    code = f"PLANS = {str(ROOT / 'include' / 'plans')!r}\n" + WITHOUT_OPENLINEAGE
    env = {**__import__("os").environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT / 'include'}:{bare}"}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("[None, None]"), done.stdout
