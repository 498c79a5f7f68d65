"""Wiring of the shape-continuity checks (docs/shape-continuity.md) into the migration DAG: per lane, the
preflight's shape check before any change; the shadow destination beside the real one, its comparison before
Segment's warehouse is switched off (then removed); the continuity and discards check before Segment's webhook
is switched off. An ``approve`` finding reaches an approval gate (asked only when there is one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from airflow.sdk import TaskGroup

from segment_rudderstack.operators.approval import MigrationApprovalOperator
from segment_rudderstack.operators.shape import (
    APPROVAL_TEXT_KEY,
    NEEDS_APPROVAL_KEY,
    CompareShadowOperator,
    EnsureShadowDestinationOperator,
    RemoveShadowOperator,
    ShapeContinuityOperator,
    ShapePreflightOperator,
)
from segment_rudderstack.plan.model import Lane, Plan
from segment_rudderstack.sensors.migration import RudderStackUploadSensor

GROUP = "shape"


class ShapeTasks(NamedTuple):
    result_task_ids: list[str]  # the checks whose results the report reads


def _check_args(w: Any) -> dict[str, Any]:
    """What the shadow comparison and the continuity check share: the plan's windows, thresholds and grades."""
    plan, shape = w.plan, w.plan.shape
    return {
        "warehouse_conn_id": plan.warehouse.conn_id,
        "lookback_hours": shape.lookback_hours,
        "min_rows": shape.min_rows,
        "fill_drop": shape.fill_drop,
        "grades": shape.all_grades(),
        "dry_run": w.common["dry_run"],
        "deferrable": plan.waits.deferrable,
        "transient_budget_seconds": w.common["transient_budget_seconds"],
    }


def _approval_gate(
    task_id: str, subject: str, checks: Sequence[Any], plan: Plan
) -> MigrationApprovalOperator:
    """Asks only when one of ``checks`` found a difference graded ``approve`` (its XCom ``needs_approval``)."""
    ids = [c.task_id for c in checks]
    needs = " or ".join(f"ti.xcom_pull(task_ids='{t}', key='{NEEDS_APPROVAL_KEY}')" for t in ids)
    texts = "\n".join(f"{{{{ ti.xcom_pull(task_ids='{t}', key='{APPROVAL_TEXT_KEY}') or '' }}}}" for t in ids)
    return MigrationApprovalOperator(
        task_id=task_id,
        subject=subject,
        body="The shape check found differences graded `approve` (docs/shape-continuity.md):\n\n" + texts,
        required="{{ " + f"({needs}) and True or False" + " }}",
        plan_name=plan.name,
    )


def _prefix(plan: Plan, lane: Lane) -> str:
    return "" if len(plan.lanes) == 1 else f"{lane.name}__"


def shape_preflight(w: Any) -> dict[str, tuple[ShapePreflightOperator, MigrationApprovalOperator]]:
    """Per lane, the read-only preflight check and the gate after it (asked only when a finding is graded
    ``approve``, e.g. the shadow load's cost over the plan's budget): both before any change."""
    plan, shape = w.plan, w.plan.shape
    with TaskGroup(
        GROUP, tooltip="Shape continuity: the warehouse keeps its shape (docs/shape-continuity.md)"
    ):
        steps = {}
        for lane in w.lanes:
            prefix = _prefix(plan, lane)
            check = ShapePreflightOperator(
                task_id=f"{prefix}check_shape",
                warehouse_conn_id=plan.warehouse.conn_id,
                namespace=lane.schema,
                sample_rows=shape.sample_rows,
                lookback_hours=shape.lookback_hours,
                shadow_schema=plan.shadow_schema(lane) if shape.shadow.enabled else None,
                shadow_overlap_hours=shape.shadow.overlap_hours,
                shadow_max_rows=shape.shadow.max_rows,
                shadow_max_bytes=shape.shadow.max_bytes,
                grades=shape.all_grades(),
                deferrable=plan.waits.deferrable,
                transient_budget_seconds=w.common["transient_budget_seconds"],
            )
            gate = _approval_gate(
                f"{prefix}approve_shape_preflight", "Accept these findings before any change?", [check], plan
            )
            check >> gate
            steps[lane.name] = (check, gate)
    return steps


def _shadow_lane(w: Any, lane: Lane, setup: Any, cutover: Any, final_load: Any) -> tuple[Any, Any]:
    plan, rs, dest, shape = w.plan, w.plan.rudderstack, w.plan.rudderstack.destination, w.plan.shape
    prefix, schema = _prefix(plan, lane), plan.shadow_schema(lane)
    namespace = schema.upper() if dest.type.upper() == "SNOWFLAKE" else schema
    name = f"{lane.destination_name} (shape shadow)"
    sources = [setup.segment_source.output, *lane.rudderstack_source_ids]
    shadow = EnsureShadowDestinationOperator(
        task_id=f"{prefix}ensure_shadow_destination",
        rudderstack_conn_id=rs.conn_id,
        warehouse_conn_id=plan.warehouse.conn_id,
        namespace=namespace,
        destination_type=dest.type,
        destination_name=name,
        config=dest.config,
        connect_source_ids=sources,
        **w.destination_settings,
        **w.common,
    )
    loaded = RudderStackUploadSensor(
        task_id=f"{prefix}wait_shadow_load",
        source_ids=sources,
        rudderstack_data_plane_conn_id=rs.data_plane_conn_id,
        warehouse_conn_id=plan.warehouse.conn_id,
        namespace=schema,
        destination_id=shadow.output,
        loaded_after=cutover,
        **w.sensor_common,
    )
    compare = CompareShadowOperator(
        task_id=f"{prefix}compare_shadow",
        namespace=lane.schema,
        shadow_schema=schema,
        shadow_destination_id=shadow.output,
        cutover_at=cutover,
        sample_rows=max(shape.sample_rows, 1),
        **_check_args(w),
    )
    remove = RemoveShadowOperator(
        task_id=f"{prefix}remove_shadow",
        rudderstack_conn_id=rs.conn_id,
        warehouse_conn_id=plan.warehouse.conn_id,
        destination_name=name,
        shadow_schema=schema,
        **w.common,
    )
    setup.segment_source >> shadow >> loaded >> compare >> remove
    final_load >> compare
    return compare, remove


def shape_checks(
    w: Any, setup: dict, route: Any, final_load: Any, release: dict, adoption: dict
) -> ShapeTasks:
    """The shadow comparison (gating ``final_load.last``, Segment's warehouse switch-off) and, per lane, the
    continuity check between its adoption wait and its webhook switch-off."""
    plan, shape = w.plan, w.plan.shape
    result_ids: list[str] = []
    with _group():
        shadow_gate = None
        if shape.shadow.enabled:
            compares = []
            for lane in w.lanes:
                compare, _ = _shadow_lane(w, lane, setup[lane.name], route.cutover, final_load.first)
                compares.append(compare)
            shadow_gate = _approval_gate(
                "approve_shadow_differences", "Accept these shape differences?", compares, plan
            )
            compares >> shadow_gate >> final_load.last
            result_ids += [c.task_id for c in compares]
        gates = {}
        for lane in w.lanes:
            prefix = _prefix(plan, lane)
            continuity = ShapeContinuityOperator(
                task_id=f"{prefix}check_shape_continuity",
                namespace=lane.schema,
                destination_id=setup[lane.name].destination.output,
                cutover_at=route.cutover,
                released_at=release[lane.name].release.output["released_at"],
                preflight_task_id=f"{GROUP}.{prefix}check_shape",
                **_check_args(w),
            )
            gate = _approval_gate(
                f"{prefix}approve_shape_continuity", "Accept these shape differences?", [continuity], plan
            )
            adoption[lane.name].first >> continuity >> gate >> adoption[lane.name].last
            release[lane.name].upload >> continuity
            gates[lane.name] = gate
            result_ids.append(continuity.task_id)
    return ShapeTasks(result_ids)


def _group() -> TaskGroup:
    return TaskGroup(f"{GROUP}_checks", tooltip="Shape continuity before each irreversible step")
