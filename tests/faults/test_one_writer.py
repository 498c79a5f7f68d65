"""Finding 1 of issue 10 and the one-writer rule: a rollback during a running migration. Before, the rollback
disabled the webhook, the migration then still disabled Segment's warehouse and marked the plan complete
(48 of 196 events lost). Now the rollback refuses while a migration run is active; forced, it fences the
migration, which stops before its next change; Segment keeps loading and nothing is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sandbox import invariants
from segment_rudderstack.operators.report import MigrationReportOperator
from segment_rudderstack.operators.rollback import RollbackOperator
from segment_rudderstack.operators.segment import (
    DisableSegmentWarehouseOperator,
    EnsureSegmentWebhookOperator,
)
from segment_rudderstack.safety.writer import PlanWriter
from tests.library.world import BACKEND, RUDDERSTACK_CONN, SEGMENT_CONN, WAREHOUSE_ID, WEB

MIGRATION_DAG = "segment_to_rudderstack__p"


def run_context(run_id: str, started: datetime, *, dag_id: str = MIGRATION_DAG, running: dict | None = None):
    """A task context as the Task SDK gives it: ti.run_id/dag_id, ti.get_dr_count / get_dagrun_state, dag_run."""
    running = running if running is not None else {}
    ti = SimpleNamespace(
        run_id=run_id,
        dag_id=dag_id,
        xcom_pull=lambda **_: None,
        get_dr_count=lambda dag_id, states=None, **_: len(running.get(dag_id, [])),
        get_dagrun_state=lambda dag_id, run_id: "running" if run_id in running.get(dag_id, []) else "success",
    )
    return {"ti": ti, "dag_run": SimpleNamespace(run_id=run_id, dag_id=dag_id, start_date=started)}


def rollback(world, **kwargs):
    return RollbackOperator(
        task_id="rollback",
        plan_name="p",
        segment_conn_id=SEGMENT_CONN,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        change_log_key=world.change_log_key,
        migration_dag_id=MIGRATION_DAG,
        **kwargs,
    )


def test_rollback_during_a_running_migration_loses_nothing(world):
    running = {MIGRATION_DAG: ["scheduled__1"]}
    migration = run_context("scheduled__1", datetime.now(UTC) - timedelta(minutes=5), running=running)
    rs_source = world.make_rs_segment_source(world.make_rs_destination())
    cutover = EnsureSegmentWebhookOperator(
        task_id="ensure_webhooks",
        source_ids=[WEB],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
    ).execute(migration)["cutover_at"]
    sent = world.track(count=5)

    # 1. Not forced: the rollback refuses while the migration run is active, and changes nothing.
    mark = world.mark()
    roll = run_context(
        "manual__rb1", datetime.now(UTC), dag_id="segment_to_rudderstack_rollback__p", running=running
    )
    with pytest.raises(AirflowFailException, match="migration DAG .* running"):
        rollback(world).execute(roll)
    assert world.changes(mark) == []

    # 2. Forced: it undoes the webhook and fences the running migration run.
    roll = run_context(
        "manual__rb2", datetime.now(UTC), dag_id="segment_to_rudderstack_rollback__p", running=running
    )
    [webhook] = (
        world.webhooks()
    )  # Webhooks (Actions): the destination and its Send mapping are both switched off
    assert rollback(world, force=True).execute(roll)["undone"] == [
        f"disabled Segment webhook destination {webhook['id']}",
        f"disabled Segment webhook mapping {webhook['id']}/{webhook['mappings'][0]['id']}",
    ]
    # 3. The migration goes on (Segment's final load finished): its next change is refused, before any call.
    world.load()
    mark = world.mark()
    with pytest.raises(AirflowFailException, match="a rollback of this plan .* started"):
        DisableSegmentWarehouseOperator(
            task_id="disable_segment_warehouse",
            warehouse_id=WAREHOUSE_ID,
            started_after=cutover,
            source_ids=[WEB, BACKEND],
            change_log_key=world.change_log_key,
        ).execute(migration)
    with pytest.raises(AirflowFailException, match="a rollback of this plan"):
        MigrationReportOperator(
            task_id="report",
            plan_name="p",
            reports_dir=str(world_tmp(world)),
            task_ids={},
            change_log_key=world.change_log_key,
        ).execute(migration)
    assert world.segment_changes(mark) == []
    assert world.segment_warehouse()["enabled"] is True
    # Events keep flowing through Segment's own warehouse load: none is lost.
    later = world.track(count=5)
    world.load()
    loaded = world.warehouse.event_ids(world.schema)
    assert {i: loaded[i] for i in sent + later} == dict.fromkeys(sent + later, 1)  # each exactly once
    assert invariants.check(world.segment.log.entries(), world.rudderstack.log.entries()) == []


def world_tmp(world):
    import pathlib
    import tempfile

    return pathlib.Path(tempfile.mkdtemp(prefix=f"report-{world.schema}-"))


def test_a_new_migration_run_after_the_rollback_may_change_again(world):
    writer = PlanWriter(world.change_log_key)
    old = run_context("scheduled__old", datetime.now(UTC) - timedelta(hours=1))
    writer.start_rollback(
        run_context("manual__rb", datetime.now(UTC), dag_id="rb"), migration_dag_id=MIGRATION_DAG, force=False
    )
    writer.release(run_context("manual__rb", datetime.now(UTC), dag_id="rb"))
    with pytest.raises(AirflowFailException, match="rollback"):
        writer.acquire(old, "migration")
    assert (
        writer.acquire(run_context("manual__new", datetime.now(UTC)), "migration")["run_id"] == "manual__new"
    )


def test_two_runs_never_write_at_once_and_a_crashed_holder_does_not_block_forever(world):
    running = {MIGRATION_DAG: ["a"]}
    writer = PlanWriter(world.change_log_key, lease_seconds=600)
    writer.acquire(run_context("a", datetime.now(UTC), running=running), "migration")
    with pytest.raises(AirflowFailException, match="another run is changing this plan: migration run a"):
        writer.acquire(run_context("b", datetime.now(UTC), running=running), "migration")
    # Run "a" died with its worker and Airflow marked it failed: its lease no longer counts.
    running[MIGRATION_DAG] = []
    assert writer.acquire(run_context("b", datetime.now(UTC), running=running), "migration")["run_id"] == "b"
    # A holder nobody can ask about (no run state available) blocks only until its lease expires.
    short = PlanWriter(world.change_log_key + "_other", lease_seconds=0)
    short.acquire({"ti": SimpleNamespace(run_id="c", dag_id=None)}, "migration")
    assert short.acquire({"ti": SimpleNamespace(run_id="d", dag_id=None)}, "migration")["run_id"] == "d"


def test_two_plans_sharing_a_segment_warehouse_do_not_switch_it_concurrently(world):
    cutover = world.cutover()
    world.load()
    now = datetime.now(UTC)

    def disable(plan_key: str, run_id: str, running: dict):
        return DisableSegmentWarehouseOperator(
            task_id="disable_segment_warehouse",
            warehouse_id=WAREHOUSE_ID,
            started_after=cutover,
            source_ids=[WEB] if plan_key.endswith("a") else [BACKEND],
            final_step="disconnect_sources",
            change_log_key=plan_key,
        ).execute(run_context(run_id, now, dag_id=f"dag_{plan_key}", running=running))

    running = {f"dag_{world.change_log_key}_a": ["ra"], f"dag_{world.change_log_key}_b": ["rb"]}
    disable(f"{world.change_log_key}_a", "ra", running)
    mark = world.mark()
    with pytest.raises(AirflowFailException, match="in the middle of another plan's irreversible steps"):
        disable(f"{world.change_log_key}_b", "rb", running)
    assert world.segment_changes(mark) == []
    running[f"dag_{world.change_log_key}_a"] = []  # plan a's run is over (its release would also free it)
    assert disable(f"{world.change_log_key}_b", "rb", running)["disabled"] is True
