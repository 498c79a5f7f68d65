"""Fault matrix, process kills (issue 10): the real migration DAG on the real local deployment, while it runs:

- the triggerer is SIGKILLed while sensors are deferred, and started again (a supervisor's restart);
- the scheduler is SIGKILLed while a task runs, with its LocalExecutor workers and that task (a task killed with
  its worker, finding 7), and started again.

The run must still succeed, the killed task must be retried within about two minutes (the deployment's
heartbeat/orphan settings), and the reconciliation and the safety invariants must hold: 0 missing, 0 duplicated,
0 lost after close. These scenarios need real processes; everything else in the matrix runs at library level
(tests/faults)."""

from __future__ import annotations

import pathlib
import time
from datetime import datetime

import pytest

from scripts.airflow_local import wait_until
from tests.deployment.metrics import record
from tests.deployment.targets import assert_reconciled, copy_of_sandbox_plan, plan_world

pytestmark = pytest.mark.slow

PLAN_NAME = "sandbox_kills"
DAG_ID = f"segment_to_rudderstack__{PLAN_NAME}"
RETRY_WITHIN_S = 150  # heartbeat timeout 60 s + detection 10 s + retry_delay 30 s, plus scheduling slack


@pytest.fixture
def kills_world(api, target, plan_bundle_folder: pathlib.Path | None, tmp_path):
    if plan_bundle_folder is None:
        pytest.skip(f"deployment target {target.name!r} runs no sandbox, so it has no plan bundle")
    plan = copy_of_sandbox_plan(PLAN_NAME)
    with plan_world(
        api, plan_bundle_folder, tmp_path, plan, test="tests/deployment/test_process_kills.py"
    ) as sandbox:
        yield sandbox


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def tis(api, run_id: str) -> dict[str, dict]:
    return {ti["task_id"]: ti for ti in api.task_instances(DAG_ID, run_id)}


def test_triggerer_and_scheduler_killed_mid_run_lose_nothing(api, deployment, kills_world):
    began = time.monotonic()
    api.wait_for_dag(DAG_ID)
    api.unpause(DAG_ID)
    response = api.trigger(DAG_ID, conf={})
    assert response.status_code in (200, 201), response.text
    run_id = response.json()["dag_run_id"]

    # 1. The triggerer dies while sensors are deferred; a new one takes their triggers over.
    wait_until(
        "a deferred sensor",
        lambda: [t for t, ti in tis(api, run_id).items() if ti["state"] == "deferred"],
        240,
        0.5,
    )
    deployment.kill("triggerer")
    time.sleep(2)
    deployment.restart("triggerer")

    # 2. The scheduler dies while a task runs in one of its LocalExecutor workers: the task dies with them.
    def running_task():
        running = [ti for ti in tis(api, run_id).values() if ti["state"] == "running"]
        return running[0] if running else None

    victim = wait_until("a running task", running_task, 300, 0.2)
    killed_at = datetime.now(victim and _t(victim["start_date"]).tzinfo)
    deployment.kill("scheduler")
    time.sleep(2)
    deployment.restart("scheduler")

    observed = api.wait_for_run(DAG_ID, run_id, timeout=480)
    record("process_kills_run_s", round(time.monotonic() - began, 1))
    assert observed.state == "success", (
        f"run ended {observed.state} after the kills; states seen {observed.compact()}\n"
        + api.failure_report(DAG_ID, run_id)
    )
    after = tis(api, run_id)[victim["task_id"]]
    if after["try_number"] > victim["try_number"]:  # it was still running when the scheduler died: retried
        retry_started = _t(after["start_date"])
        assert (retry_started - killed_at).total_seconds() <= RETRY_WITHIN_S, (victim, after)
    assert_reconciled(kills_world)  # 0 missing, 0 duplicated, 0 lost after close; invariants hold
