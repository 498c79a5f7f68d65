"""The shape checks in the DAG (docs/shape-continuity.md): the preflight's shape check before any change, the
shadow comparison before Segment's warehouse is switched off, the continuity and discards check before Segment's
webhook is switched off; each approval gate after its check; and the plan switches them off."""

from __future__ import annotations

import yaml

from segment_rudderstack.factory.dags import build_all
from tests.dags.test_migration_dag import PLANS, upstream_closure

WAREHOUSE_OFF = "segment_final_load.disable_segment_warehouse"
WEBHOOK_OFF = "client_adoption.disable_segment_webhook"


def _dag(tmp_path, plan_file: str = "sandbox.yaml", **shape):
    plan = yaml.safe_load((PLANS / plan_file).read_text())
    plan["name"] = "shaped"
    plan["shape"] = {**plan.get("shape", {}), **shape}
    (tmp_path / "shaped.yaml").write_text(yaml.safe_dump(plan))
    return build_all(tmp_path, reports_dir=tmp_path)["segment_to_rudderstack__shaped"]


def test_the_shape_preflight_runs_after_the_preflight_and_before_any_change(tmp_path):
    dag = _dag(tmp_path)
    check = dag.get_task("shape.check_shape")
    assert check.upstream_task_ids == {"preflight"}
    # its gate (asked only for findings graded approve, e.g. the shadow load over budget) before any change
    assert check.downstream_task_ids == {"shape.approve_shape_preflight"}
    assert (
        "setup_rudderstack.ensure_destination"
        in dag.get_task("shape.approve_shape_preflight").downstream_task_ids
    )
    assert check.shadow_schema == "app_events_rs_shadow"
    assert (check.shadow_overlap_hours, check.shadow_max_rows, check.shadow_max_bytes) == (24, None, None)


def test_segment_warehouse_is_switched_off_only_after_the_shadow_comparison_and_its_gate(tmp_path):
    dag = _dag(tmp_path)
    before_off = upstream_closure(dag, WAREHOUSE_OFF)
    for task_id in (
        "shape_checks.ensure_shadow_destination",
        "shape_checks.wait_shadow_load",
        "shape_checks.compare_shadow",
        "shape_checks.approve_shadow_differences",
    ):
        assert task_id in before_off, task_id
    compare = dag.get_task("shape_checks.compare_shadow")
    # Segment's rows of the overlap are in only after its final load
    assert {
        "shape_checks.wait_shadow_load",
        "segment_final_load.wait_final_load",
    } <= compare.upstream_task_ids
    assert "shape_checks.remove_shadow" in compare.downstream_task_ids
    assert "setup_rudderstack.ensure_segment_source" in upstream_closure(
        dag, "shape_checks.ensure_shadow_destination"
    )


def test_segment_webhook_is_switched_off_only_after_the_continuity_check_over_the_whole_adoption_wait(
    tmp_path,
):
    dag = _dag(tmp_path)
    check = "shape_checks.check_shape_continuity"
    assert {check, "shape_checks.approve_shape_continuity"} <= upstream_closure(dag, WEBHOOK_OFF)
    assert "client_adoption.wait_client_adoption" in upstream_closure(dag, check)
    assert "release_rudderstack.wait_upload" in upstream_closure(dag, check)
    report = dag.get_task("report")
    assert set(report.shape_task_ids) == {
        "shape.check_shape",
        "shape_checks.compare_shadow",
        "shape_checks.check_shape_continuity",
    }


def test_the_plan_switches_the_shadow_load_or_all_shape_checks_off(tmp_path):
    no_shadow = _dag(tmp_path, shadow={"enabled": False})
    assert not [t for t in no_shadow.task_ids if "shadow" in t]
    assert "shape_checks.check_shape_continuity" in no_shadow.task_ids
    assert no_shadow.get_task("shape.check_shape").shadow_schema is None
    off = _dag(tmp_path, enabled=False)
    assert not [t for t in off.task_ids if t.startswith("shape")]
    assert "setup_rudderstack.ensure_destination" in off.get_task("preflight").downstream_task_ids


def test_each_lane_gets_its_own_checks_and_scratch_schema(tmp_path):
    dag = _dag(tmp_path, "sandbox_multi.yaml")
    checks = sorted(t for t in dag.task_ids if t.endswith("check_shape"))
    assert len(checks) == 2
    schemas = {dag.get_task(t).shadow_schema for t in checks}
    assert schemas == {f"{dag.get_task(t).namespace}_rs_shadow" for t in checks}
    compares = [t for t in dag.task_ids if t.endswith("compare_shadow")]
    gate = dag.get_task("shape_checks.approve_shadow_differences")
    assert set(compares) == gate.upstream_task_ids
