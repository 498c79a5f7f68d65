"""Through Airflow itself (`airflow dags test`, against the emulators and the real warehouse; docs/downstream.md):
with the OpenLineage provider configured, the release of RudderStack's sync reaches a lineage backend with the
writer change of every table of its lane (the provider's own listener posts over its HTTP transport to a local
receiver); and the duplicate check's asset events, one per table with the cutover point and the overlap window,
are recorded through the lane's alias and queue a DAG scheduled on it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from tests.library.lineage_receiver import LineageReceiver
from tests.library.test_library_rudderstack_operators import connected_destination
from tests.library.world import RS_APP, WAREHOUSE_CONN, WAREHOUSE_ID, WEB

ROOT = pathlib.Path(__file__).resolve().parents[2]
AIRFLOW = pathlib.Path(sys.executable).with_name("airflow")
FACET = "segmentToRudderstackWriterChange"
ALIAS = "segment_to_rudderstack__lib__lane__duplicate_checked"

DAG_FILE = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import AssetAlias
from segment_rudderstack.operators.rudderstack import ReleaseRudderStackSyncOperator
from segment_rudderstack.operators.warehouse import DuplicateCheckOperator

with DAG("lineage_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    release = ReleaseRudderStackSyncOperator(
        task_id="release_sync",
        destination_id={destination!r},
        warehouse_id={warehouse_id!r},
        started_after={cutover!r},
        source_ids=[{web!r}],
        trigger_source_ids=[{rs_app!r}],
        margin_minutes=5,
        change_log_key={change_log_key!r},
        writer_change={writer_change!r},
    )
    check = DuplicateCheckOperator(
        task_id="duplicate_check",
        warehouse_conn_id={warehouse_conn!r},
        namespace={schema!r},
        change_log_key={change_log_key!r},
        outlets=[AssetAlias({alias!r})],
        cutover_assets={announcement!r},
    )
    release >> check

with DAG("lineage_consumer", schedule=[AssetAlias({alias!r})], start_date=datetime(2026, 1, 1), catchup=False,
         is_paused_upon_creation=False):
    EmptyOperator(task_id="read_the_cutover")
"""


def test_the_release_posts_the_writer_change_of_each_table_to_the_lineage_backend(world, tmp_path):
    destination = connected_destination(world, manualSync=True)
    cutover = world.cutover().isoformat()
    world.track(count=2)
    world.load()  # Segment's final load after the cutover: the release's gate holds
    writer_change = {
        "step": "release_rudderstack_sync",
        "plan": "lib",
        "warehouse_conn_id": WAREHOUSE_CONN,
        "cutover_at": cutover,
        "segment_warehouse_id": WAREHOUSE_ID,
        "lanes": [{"lane": "lane", "schema": world.schema, "destination_id": destination}],
    }
    (tmp_path / "lineage_probe.py").write_text(
        DAG_FILE.format(
            destination=destination,
            warehouse_id=WAREHOUSE_ID,
            cutover=cutover,
            web=WEB,
            rs_app=RS_APP,
            change_log_key=world.change_log_key,
            writer_change=writer_change,
            warehouse_conn=WAREHOUSE_CONN,
            schema=world.schema,
            alias=ALIAS,
            announcement={
                "alias": ALIAS,
                "stage": "duplicate_checked",
                "plan": "lib",
                "lane": "lane",
                "schema": world.schema,
                "warehouse_conn_id": WAREHOUSE_CONN,
                "cutover_at": cutover,
                "released_at": cutover,
                "destination_id": destination,
                "segment_warehouse_id": WAREHOUSE_ID,
            },
        )
    )
    with LineageReceiver() as receiver:
        env = {
            **os.environ,  # the world's AIRFLOW_CONN_* settings
            **receiver.airflow_env(),
            "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")]),
        }
        done = subprocess.run(
            [str(AIRFLOW), "dags", "test", "lineage_probe"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = done.stdout + done.stderr
        assert "state=success" in output.rsplit("DagRun Finished", 1)[-1], output[-4000:]
        completed = receiver.completed("lineage_probe.release_sync")

    assert completed, f"no COMPLETE event of the release; got {[e.get('eventType') for e in receiver.events]}"
    outputs = {o["name"]: o for o in completed[-1]["outputs"] if FACET in (o.get("facets") or {})}
    tables = {name.rsplit(".", 1)[-1] for name in outputs}
    assert {"tracks", "order_completed"} <= tables, sorted(outputs)
    assert all(name.split(".")[1] == world.schema for name in outputs), sorted(outputs)
    facet = next(o for n, o in outputs.items() if n.endswith(".tracks"))["facets"][FACET]
    assert (facet["previousWriter"], facet["writer"], facet["cutoverAt"]) == (
        "segment",
        "rudderstack",
        cutover,
    )
    assert facet["rudderstackDestinationId"] == destination and facet["step"] == "release_rudderstack_sync"
    assert json.loads(json.dumps(facet)) == facet
    assert_the_events_were_recorded_and_queued_the_consumer(world.schema, cutover, destination)


def assert_the_events_were_recorded_and_queued_the_consumer(
    schema: str, cutover: str, destination: str
) -> None:
    """What the API server recorded: one event per table through the alias, and the consumer DAG queued."""
    from airflow.models.asset import AssetAliasModel, AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        alias = session.scalar(select(AssetAliasModel).where(AssetAliasModel.name == ALIAS))
        assert alias is not None, f"alias {ALIAS} was not recorded"
        events = [e for e in alias.asset_events if (e.extra or {}).get("cutover_at") == cutover]  # this run
        by_table = {e.extra["table"]: e for e in events}
        assert {"tracks", "order_completed"} <= set(by_table), sorted(by_table)
        tracks = by_table["tracks"]
        assert tracks.asset.uri.endswith(f"/{schema}/tracks") and tracks.asset.uri.startswith("postgres://")
        assert tracks.extra["cutover_at"] == cutover
        assert tracks.extra["overlap_window"] == {"start": cutover, "end": cutover}
        assert tracks.extra["rudderstack_destination_id"] == destination
        queued = session.scalars(
            select(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == "lineage_consumer")
        ).all()
        assert {q.asset_id for q in queued} >= {tracks.asset_id}, (
            "the DAG scheduled on the alias was not queued"
        )
        # one run of the probe per test: later runs find their own events (source_run_id), not these
        session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == "lineage_consumer").delete()
