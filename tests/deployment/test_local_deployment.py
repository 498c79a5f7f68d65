"""The DAG runs in a real multi-process Airflow: triggered over REST like the UI, deferred in the
triggerer, validated at trigger time, and run by the scheduler on its own schedule."""

from __future__ import annotations

import time

import pytest

from tests.deployment.metrics import record

pytestmark = pytest.mark.slow


def test_all_components_run_as_separate_healthy_processes(deployment, api):
    assert set(deployment.running()) == {"scheduler", "dag-processor", "triggerer", "api-server"}
    assert all(deployment.running().values()), deployment.running()
    pids = {proc.pid for proc in deployment.processes.values()}
    assert len(pids) == 4
    health = api.health()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health


def test_ui_style_trigger_runs_to_success_with_sensor_deferred(deployment, api, target):
    api.unpause(target.manual_dag_id)
    response = api.trigger(target.manual_dag_id, target.conf)
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["run_type"] == "manual"
    assert run["conf"] == dict(target.conf)

    began = time.monotonic()
    observed = api.wait_for_run(target.manual_dag_id, run["dag_run_id"], timeout=target.run_timeout)
    record("manual_run_s", round(time.monotonic() - began, 1))

    assert observed.state == "success", (
        f"run ended {observed.state}; task states seen {observed.compact()}\n"
        + api.failure_report(target.manual_dag_id, run["dag_run_id"])
    )
    assert set(observed.final_states().values()) == {"success"}, observed.compact()
    deferred = observed.tasks_seen_in("deferred")
    assert deferred, f"no task instance was seen in state 'deferred': {observed.compact()}"
    assert target.deferred_tasks <= deferred, observed.compact()
    record("deferred_tasks", sorted(deferred))
    target.check_result(api, target, run["dag_run_id"])  # probe: params echoed; migration: reconciliation


def test_invalid_params_are_rejected_at_trigger_time(api, target):
    before = len(api.dag_runs(target.manual_dag_id))
    conf = {**target.conf, target.invalid_param: target.invalid_value}

    response = api.trigger(target.manual_dag_id, conf)

    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert target.invalid_param in str(detail), detail
    assert len(api.dag_runs(target.manual_dag_id)) == before, "a rejected trigger must not create a run"


def test_scheduled_runs_happen_on_their_own(api, target):
    if target.scheduled_dag_id is None:
        pytest.skip(f"deployment target {target.name!r} has no scheduled DAG")
    assert not api.dag_runs(target.scheduled_dag_id), "nothing may run before the DAG is unpaused"
    api.unpause(target.scheduled_dag_id)

    deadline = time.monotonic() + 90
    scheduled: list[dict] = []
    while time.monotonic() < deadline:
        scheduled = [r for r in api.dag_runs(target.scheduled_dag_id) if r["run_type"] == "scheduled"]
        if sum(r["state"] == "success" for r in scheduled) >= target.scheduled_runs_expected:
            break
        time.sleep(1)
    states = [(r["dag_run_id"], r["state"]) for r in scheduled]
    assert sum(r["state"] == "success" for r in scheduled) >= target.scheduled_runs_expected, states
    assert not [r for r in scheduled if r["state"] == "failed"], states
    assert {r["triggered_by"] for r in scheduled} == {"timetable"}, scheduled
    intervals = [(r["data_interval_start"], r["data_interval_end"]) for r in scheduled]
    assert len(set(intervals)) == len(intervals), f"each scheduled run covers its own interval: {intervals}"


def test_a_downstream_dag_runs_on_the_migrations_asset_events_and_reads_the_cutover(api, target):
    """After the migration run above: the DAG scheduled on the plan's asset alias (tests/deployment/dags/
    cutover_downstream.py) ran after the migration's events and read the cutover point and the overlap window from
    their extra; the report says what stays on Segment."""
    downstream = target.extra.get("downstream_dag_id")
    if downstream is None:
        pytest.skip(f"deployment target {target.name!r} has no downstream DAG")
    from tests.deployment.downstream_checks import (
        assert_the_downstream_run_read_the_cutover,
        assert_the_report_lists_what_stays_on_segment,
    )

    migration = [r for r in api.dag_runs(target.manual_dag_id) if r["state"] == "success"]
    assert migration, "the migration run of the test above did not succeed"
    assert_the_downstream_run_read_the_cutover(api, target, downstream, migration[-1])
    assert_the_report_lists_what_stays_on_segment(api, target, migration[-1])
