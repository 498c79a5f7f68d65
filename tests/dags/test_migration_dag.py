"""The migration DAG's wiring keeps the runbook's order, and its trigger form rejects bad values."""

from __future__ import annotations

import copy
import pathlib

import pytest
from airflow.sdk.exceptions import ParamValidationError

from segment_rudderstack.factory.dags import build_all

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLANS = ROOT / "include" / "plans"


@pytest.fixture(scope="module")
def dags():
    return build_all(PLANS, reports_dir=ROOT / "reports")


@pytest.fixture(scope="module")
def dag(dags):
    return dags["segment_to_rudderstack__sandbox"]


def upstream_closure(dag, task_id):
    seen, todo = set(), [task_id]
    while todo:
        for up in dag.get_task(todo.pop()).upstream_task_ids:
            if up not in seen:
                seen.add(up)
                todo.append(up)
    return seen


def test_each_plan_has_a_migration_and_a_rollback_dag(dags):
    assert {"segment_to_rudderstack__sandbox", "segment_to_rudderstack_rollback__sandbox"} <= set(dags)


@pytest.mark.parametrize(
    ("task", "must_follow"),
    [
        ("segment_final_load.disable_segment_warehouse", "segment_final_load.wait_final_load"),
        ("segment_final_load.disable_segment_warehouse", "server_side.wait_drained__src_backend"),
        ("segment_final_load.wait_final_load", "route_segment_to_rudderstack.ensure_webhooks"),
        ("route_segment_to_rudderstack.ensure_webhooks", "setup_rudderstack.hold_sync"),
        ("setup_rudderstack.ensure_segment_source", "setup_rudderstack.hold_sync"),
        ("release_rudderstack.release_sync", "release_rudderstack.wait_sync_gate"),
        ("release_rudderstack.release_sync", "segment_final_load.disable_segment_warehouse"),
        ("client_adoption.disable_segment_webhook", "client_adoption.wait_client_adoption"),
        ("client_adoption.disable_segment_webhook", "release_rudderstack.wait_upload"),
        ("setup_rudderstack.ensure_destination", "preflight"),
        ("report", "client_adoption.disable_segment_webhook"),
    ],
)
def test_runbook_order(dag, task, must_follow):
    assert must_follow in upstream_closure(dag, task)


def test_every_wait_can_defer(dag):
    sensors = [t for t in dag.tasks if getattr(t, "_is_sensor", False)]
    assert len(sensors) == 6  # with the shape check's wait for the shadow load
    assert all(t.deferrable for t in sensors)


def validate(dag, **conf):
    params = copy.deepcopy(dag.params)  # a copy: validation must not change the DAG
    params.update(conf)
    return params.validate()


def test_trigger_form_defaults_are_valid(dag):
    values = validate(dag)
    assert values["dry_run"] is False and values["sources"] == ["src_web_app", "src_backend"]
    assert all(dag.params.get_param(name).description for name in dag.params)


@pytest.mark.parametrize(
    ("conf", "param"),
    [
        ({"adoption_threshold": 2}, "adoption_threshold"),
        ({"adoption_threshold": "low"}, "adoption_threshold"),
        ({"adoption_window_seconds": 0}, "adoption_window_seconds"),
        ({"adoption_consecutive_checks": -1}, "adoption_consecutive_checks"),
        ({"sources": ["src_unknown"]}, "sources"),
        ({"sources": []}, "sources"),
        ({"dry_run": "maybe"}, "dry_run"),
        ({"duplicate_lookback_hours": 0}, "duplicate_lookback_hours"),
    ],
)
def test_trigger_form_rejects_bad_values(dag, conf, param):
    with pytest.raises(ParamValidationError) as err:
        validate(dag, **conf)
    assert param in str(err.value)


def test_approval_gates_guard_the_irreversible_steps(tmp_path):
    plan = (PLANS / "sandbox.yaml").read_text().replace("require_approvals: false", "require_approvals: true")
    (tmp_path / "gated.yaml").write_text(plan.replace("name: sandbox", "name: gated"))
    dag = build_all(tmp_path, reports_dir=tmp_path)["segment_to_rudderstack__gated"]
    assert "segment_final_load.approve_disable_segment_warehouse" in upstream_closure(
        dag, "segment_final_load.disable_segment_warehouse"
    )
    assert "server_side.approve_server_side_switched" in upstream_closure(
        dag, "server_side.wait_drained__src_backend"
    )
    gate = dag.get_task("segment_final_load.approve_disable_segment_warehouse")
    assert gate.fail_on_reject is True  # a "Reject" stops the migration instead of skipping ahead


def test_approval_gate_lets_the_run_through_when_approvals_are_off_for_this_run():
    from segment_rudderstack.operators.approval import MigrationApprovalOperator

    gate = MigrationApprovalOperator(task_id="gate", subject="Disable?", required=False)
    assert gate.execute({}) == {"chosen_options": ["Approve"], "approved_by": "require_approvals=false"}


def test_a_subset_of_sources_cannot_switch_the_shared_warehouse_off():
    from segment_rudderstack.operators.preflight import PreflightOperator

    preflight = PreflightOperator(
        task_id="p",
        segment_conn_id="s",
        warehouse_id="w",
        source_ids=["src_web_app", "src_backend"],
        rudderstack_conn_id="r",
        destination_id=None,
        destination_name="d",
        destination_type="POSTGRES",
        warehouse_conn_id="x",
        namespace="app_events",
        selected_source_ids="['src_web_app']",
    )
    problems: list[str] = []
    preflight._check_selection(problems)
    assert problems and "would also stop loading ['src_backend']" in problems[0]
    preflight.final_step = "disconnect_sources"  # only this run's sources are disconnected: allowed
    problems.clear()
    preflight._check_selection(problems)
    assert problems == []


def test_drain_sensor_of_a_source_left_out_of_the_run_does_not_wait():
    from segment_rudderstack.sensors.migration import SegmentSourceDrainedSensor

    sensor = SegmentSourceDrainedSensor(
        task_id="drain",
        warehouse_id="w",
        source_id="src_backend",
        started_after="2026-01-01T00:00:00+00:00",
        selected_source_ids=["src_web_app"],
        segment_conn_id="not_configured",
    )
    assert sensor.execute({}) == {"reason": "source not selected in this run"}


def test_append_mode_is_restored_only_when_the_plan_asks_and_only_after_the_duplicate_check(dag, tmp_path):
    assert "restore_append_mode" not in dag.task_ids
    plan = (
        (PLANS / "sandbox.yaml")
        .read_text()
        .replace(
            "    sync_start_margin_minutes: 0",
            "    sync_start_margin_minutes: 0\n    restore_append_after_duplicate_check: true",
        )
    )
    assert "restore_append_after_duplicate_check: true" in plan
    (tmp_path / "restore.yaml").write_text(plan.replace("name: sandbox", "name: restore"))
    restoring = build_all(tmp_path, reports_dir=tmp_path)["segment_to_rudderstack__restore"]
    assert "duplicate_check" in upstream_closure(restoring, "restore_append_mode")
    assert "restore_append_mode" in upstream_closure(restoring, "client_adoption.wait_client_adoption")
