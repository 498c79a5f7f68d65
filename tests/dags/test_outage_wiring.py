"""Issue 24: every step and every wait of a plan's DAG rides out an outage within the plan's
``waits.transient_budget_minutes``; the release within its own, longer ``waits.release_retry_minutes``."""

from __future__ import annotations

import pathlib

import yaml

from segment_rudderstack.factory.dags import build_migration_dag
from segment_rudderstack.operators.outages import OutageRidingOperator
from segment_rudderstack.operators.rudderstack import ReleaseRudderStackSyncOperator
from segment_rudderstack.plan.model import parse_plan
from segment_rudderstack.sensors.base import ConditionSensor

ROOT = pathlib.Path(__file__).resolve().parents[2]


def plan_dag(tmp_path, **waits):
    data = yaml.safe_load((ROOT / "include" / "plans" / "sandbox.yaml").read_text())
    data["waits"] = {**(data.get("waits") or {}), **waits}
    return build_migration_dag(parse_plan(data), reports_dir=tmp_path)


def test_every_step_and_wait_gets_the_plans_outage_budget_and_the_release_its_own(tmp_path):
    dag = plan_dag(tmp_path, transient_budget_minutes=5, release_retry_minutes=60, deferrable=True)
    riders = [t for t in dag.tasks if isinstance(t, (OutageRidingOperator, ConditionSensor))]
    budgets = {t.task_id: t.transient_budget_seconds for t in riders}
    release = [t.task_id for t in riders if isinstance(t, ReleaseRudderStackSyncOperator)]
    assert release and all(budgets.pop(task_id) == 3600 for task_id in release)
    assert set(budgets.values()) == {300.0}, budgets
    assert {"preflight", "segment_final_load.disable_segment_warehouse", "duplicate_check"} <= set(budgets)
    steps = [t for t in riders if isinstance(t, OutageRidingOperator)]
    assert all(t.deferrable is True for t in steps)  # waiting out an outage holds no worker slot
    assert all(t.retries == 1 for t in steps)  # Airflow's one retry stays for a killed worker


def test_the_default_budget_is_fifteen_minutes(tmp_path):
    dag = plan_dag(tmp_path)
    assert dag.get_task("duplicate_check").transient_budget_seconds == 900
