"""Tasks read the trigger form's values from the DAG's Params (no per-task copy, which only cost parse time)."""

from __future__ import annotations

import pathlib

import pytest
from airflow.sdk.definitions.param import process_params
from airflow.serialization.serialized_objects import DagSerialization

from segment_rudderstack.factory.dags import build_all

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dag():
    return build_all(ROOT / "include" / "plans", reports_dir=ROOT / "reports")[
        "segment_to_rudderstack__sandbox"
    ]


def test_serialized_tasks_carry_no_copy_of_the_dag_params(dag):
    serialized = DagSerialization.to_dict(dag)["dag"]
    assert [name for name, _ in serialized["params"]] == list(dag.params)
    assert all("params" not in task["__var"] for task in serialized["tasks"])


@pytest.mark.parametrize("task_id", ["preflight", "duplicate_check", "client_adoption.wait_client_adoption"])
def test_a_run_conf_still_reaches_every_task_template(dag, task_id):
    task = dag.get_task(task_id)
    params = process_params(
        dag, task, {"dry_run": True, "duplicate_lookback_hours": 6}, suppress_exception=False
    )
    assert params["dry_run"] is True and params["duplicate_lookback_hours"] == 6
    assert params["adoption_threshold"] == dag.params["adoption_threshold"]  # defaults come from the DAG
    rendered = task.render_template(
        "{{ params.dry_run }} {{ params.duplicate_lookback_hours }}", {"params": params}
    )
    assert rendered == "True 6"
