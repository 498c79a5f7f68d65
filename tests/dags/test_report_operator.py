"""The report task runs after a failed step too (trigger rule all_done): it writes the report with the verdict
"FAILED at ... / what to do", fails itself so the run stays failed, and never marks the migration complete;
after a skipped (already complete) run it writes nothing."""

from __future__ import annotations

import pathlib
import uuid
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from segment_rudderstack.factory.dags import build_all
from segment_rudderstack.operators.report import MigrationReportOperator
from segment_rudderstack.operators.status import migration_status
from segment_rudderstack.safety.changelog import ChangeLog

ROOT = pathlib.Path(__file__).resolve().parents[2]


def running_ti(states: dict[str, str]):
    """What the Task SDK gives the report task: its run's task states, durations and the steps' results."""
    return SimpleNamespace(
        dag_id="segment_to_rudderstack__p",
        run_id="manual__1",
        task_id="report",
        get_task_states=lambda dag_id, run_ids: {run_ids[0]: states},
        get_task_breadcrumbs=lambda dag_id, run_id: [{"task_id": t, "duration": 2.0} for t in states],
        xcom_pull=lambda task_ids, key="return_value": None,
    )


def report_task(tmp_path) -> MigrationReportOperator:
    return MigrationReportOperator(
        task_id="report",
        plan_name="p",
        reports_dir=str(tmp_path),
        task_ids={"preflight": "preflight"},
        change_log_key=f"test_report_{uuid.uuid4().hex}",
    )


def test_the_report_task_runs_after_any_upstream_outcome():
    dag = build_all(ROOT / "include" / "plans", reports_dir="/tmp")["segment_to_rudderstack__sandbox"]
    assert dag.get_task("report").trigger_rule == "all_done"


def test_after_a_failed_step_the_report_says_where_and_the_task_fails(tmp_path):
    task = report_task(tmp_path)
    states = {
        "migration_status": "success",
        "preflight": "failed",
        "setup_rudderstack.ensure_destination": "upstream_failed",
        "report": "running",
    }
    with pytest.raises(AirflowFailException, match=r"FAILED at Preflight \(task `preflight`\)"):
        task.execute({"ti": running_ti(states)})
    text = (tmp_path / "p" / "manual__1.md").read_text()
    assert "**FAILED at Preflight (task `preflight`)" in text and "What to do:" in text
    assert migration_status(ChangeLog(task.change_log_key), "p") is None  # not marked complete


def test_after_an_already_complete_run_there_is_no_report(tmp_path):
    task = report_task(tmp_path)
    states = {"migration_status": "skipped", "preflight": "skipped", "report": "running"}
    with pytest.raises(AirflowSkipException, match="already complete"):
        task.execute({"ti": running_ti(states)})
    assert not (tmp_path / "p").exists()
