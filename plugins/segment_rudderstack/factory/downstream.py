"""The migration DAG's wiring for what happens downstream of the cutover: the asset aliases (and what their events
carry) on the upload sensor and the duplicate check, and the writer-change lineage on the release and the
switch-off. Wiring only: names from the plan, XComArgs of upstream tasks; no I/O.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetAlias

from segment_rudderstack.lineage.assets import alias_name
from segment_rudderstack.lineage.openlineage import RELEASE, SEGMENT_SWITCH_OFF
from segment_rudderstack.plan.model import Lane, Plan


def lane_aliases(plan: Plan, lane: Lane) -> dict[str, AssetAlias]:
    """A lane's asset aliases by stage (what a downstream DAG schedules on)."""
    from segment_rudderstack.lineage.assets import STAGES

    return {stage: AssetAlias(alias_name(plan.name, lane.name, stage)) for stage in STAGES}


def cutover_assets_args(
    plan: Plan, lane: Lane, stage: str, *, cutover: Any, released_at: Any, destination_id: Any
) -> dict[str, Any]:
    """``outlets`` and ``cutover_assets`` of a task that announces the lane's tables at ``stage``."""
    name = alias_name(plan.name, lane.name, stage)
    return {
        "outlets": [AssetAlias(name)],
        "cutover_assets": {
            "alias": name,
            "stage": stage,
            "plan": plan.name,
            "lane": lane.name,
            "schema": lane.schema,
            "warehouse_conn_id": plan.warehouse.conn_id,
            "cutover_at": cutover,
            "released_at": released_at,
            "destination_id": destination_id,
            "segment_warehouse_id": plan.segment.warehouse_id,
        },
    }


def writer_change_args(
    plan: Plan, lanes: list[tuple[Lane, Any]], *, cutover: Any, step: str
) -> dict[str, Any]:
    """``writer_change`` of a step that switches the tables of ``lanes`` ((lane, its destination id XComArg))
    from Segment to RudderStack: the release (one lane) or Segment's switch-off (every lane)."""
    if step not in (RELEASE, SEGMENT_SWITCH_OFF):
        raise ValueError(f"step must be {RELEASE!r} or {SEGMENT_SWITCH_OFF!r}, got {step!r}")
    return {
        "writer_change": {
            "step": step,
            "plan": plan.name,
            "warehouse_conn_id": plan.warehouse.conn_id,
            "cutover_at": cutover,
            "segment_warehouse_id": plan.segment.warehouse_id,
            "lanes": [
                {"lane": lane.name, "schema": lane.schema, "destination_id": destination}
                for lane, destination in lanes
            ],
        }
    }
