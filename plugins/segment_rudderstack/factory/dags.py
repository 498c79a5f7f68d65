"""Builds the migration DAG and the rollback DAG of a plan: wiring only, no I/O.

Task groups follow the runbook (docs/design.md section 1): preflight → set up RudderStack → route Segment to
RudderStack → server-side drain → Segment's final load and its warehouse switched off → release
RudderStack's sync and wait for its upload → duplicate check → client adoption → Segment's webhook off →
report. Run-time choices come from the trigger form (params), validated by JSON schema at trigger time.
"""

from __future__ import annotations

import pathlib
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from airflow.sdk import DAG, Param, TaskGroup, TriggerRule, chain
from airflow.sdk.definitions.param import ParamsDict

from segment_rudderstack.evidence.dry_run_plan import run_order
from segment_rudderstack.factory.downstream import cutover_assets_args, writer_change_args
from segment_rudderstack.factory.notifications import attach_notifications, deadline_alert
from segment_rudderstack.lineage.assets import DUPLICATE_CHECKED, FIRST_LOAD
from segment_rudderstack.lineage.openlineage import RELEASE, SEGMENT_SWITCH_OFF
from segment_rudderstack.operators.approval import (
    HoldPlanOperator,
    MigrationApprovalOperator,
    ProofGapChoiceOperator,
    StopAfterRollbackOperator,
)
from segment_rudderstack.operators.lanes import (
    CutoverPointOperator,
    LaneSelectedOperator,
    selected_source_ids,
)
from segment_rudderstack.operators.preflight import PreflightOperator
from segment_rudderstack.operators.proof import VerifyWebhookPathOperator
from segment_rudderstack.operators.report import MigrationReportOperator
from segment_rudderstack.operators.rollback import RollbackOperator
from segment_rudderstack.operators.rudderstack import (
    EnsureRudderStackDestinationOperator,
    EnsureRudderStackSegmentSourceOperator,
    HoldRudderStackSyncOperator,
    ReleaseRudderStackSyncOperator,
    RestoreAppendModeOperator,
)
from segment_rudderstack.operators.segment import (
    DisableSegmentWarehouseOperator,
    DisableSegmentWebhookOperator,
    EnsureSegmentWebhookOperator,
)
from segment_rudderstack.operators.status import MigrationStatusOperator
from segment_rudderstack.operators.warehouse import DuplicateCheckOperator
from segment_rudderstack.plan.model import Lane, Plan
from segment_rudderstack.sensors.migration import (
    ClientAdoptionSensor,
    RudderStackSyncGateSensor,
    RudderStackUploadSensor,
    SegmentSourceDrainedSensor,
    SegmentWarehouseLoadSensor,
)
from segment_rudderstack.sensors.proof import SegmentAdoptionSensor

TAGS = ["segment", "rudderstack", "migration"]
# The switch-off waits in a worker slot for a load that started after the final one: one load's length at most.
MAX_RUNNING_LOAD_WAIT_SECONDS = 3600
START = datetime(2026, 1, 1)
# The sources this run migrates: selected in the trigger form, in a selected lane (operators/lanes.py).
SELECTED_SOURCES = "{{ selected_sources(params) }}"


def _selected(ids: list[str]) -> str:
    """Template: those of ``ids`` that this run migrates."""
    return "{{ selected_sources(params) | select('in', " + repr(ids) + ") | list }}"


class Span(NamedTuple):
    """A task group's entry and exit: what its upstream points at, and what its downstream follows."""

    first: Any
    last: Any
    proof: Any = None  # client_adoption: the webhook path verification (its result goes to the report)


@dataclass(frozen=True)
class _Wiring:
    """The arguments the tasks of one plan's DAG share, written once."""

    plan: Plan
    common: dict[str, Any]
    sensor_common: dict[str, Any]
    segment: dict[str, Any]
    sync_list_limit: dict[str, Any]

    @classmethod
    def of(cls, plan: Plan) -> _Wiring:
        waits = plan.waits
        dry_run = "{{ params.dry_run }}"
        outages = {"transient_budget_seconds": waits.transient_budget_minutes * 60}
        return cls(
            plan=plan,
            common={
                "change_log_key": plan.change_log_key,
                "dry_run": dry_run,
                "deferrable": waits.deferrable,
                **outages,
            },
            sensor_common={
                "deferrable": waits.deferrable,
                "poke_interval": waits.poke_interval_seconds,
                "timeout": waits.timeout_seconds,
                "dry_run": dry_run,
                **outages,
            },
            segment={"segment_conn_id": plan.segment.conn_id},
            sync_list_limit={"sync_list_requests_per_minute": plan.segment.sync_list_requests_per_minute},
        )

    @property
    def lanes(self) -> list[Lane]:
        return self.plan.lanes

    @property
    def destination_settings(self) -> dict[str, Any]:
        return destination_settings(self.plan)

    @property
    def multi(self) -> bool:
        """Several lanes: each phase holds one task group per lane."""
        return len(self.plan.lanes) > 1

    def final_load_args(self, cutover: Any, source_ids: str = SELECTED_SOURCES) -> dict[str, Any]:
        """Segment's final load, as every task that waits for it or re-checks it sees it."""
        return {
            "warehouse_id": self.plan.segment.warehouse_id,
            "started_after": cutover,
            "source_ids": source_ids,
            "allow_partial": self.plan.segment.allow_partial_loads,
        }

    def approval(self, task_id: str, subject: str, body: str) -> MigrationApprovalOperator:
        return MigrationApprovalOperator(
            task_id=task_id,
            subject=subject,
            body=body,
            required="{{ params.require_approvals }}",
            plan_name=self.plan.name,
        )


def migration_params(plan: Plan) -> dict[str, Param]:
    source_ids = [s.id for s in plan.sources]
    lane_names = [lane.name for lane in plan.lanes]
    return {
        "dry_run": Param(
            plan.dry_run,
            type="boolean",
            title="Dry run",
            description="Read everything and change nothing; every task logs what it would change.",
        ),
        "sources": Param(
            source_ids,
            type="array",
            title="Segment sources",
            items={"type": "string", "enum": source_ids},
            minItems=1,
            uniqueItems=True,
            description="Which of the plan's Segment sources this run migrates (default: all of them).",
        ),
        "lanes": Param(
            lane_names,
            type="array",
            title="Lanes (warehouse schemas)",
            items={"type": "string", "enum": lane_names},
            minItems=1,
            uniqueItems=True,
            description="Which schemas this run migrates (default: all); a source is migrated when it and its "
            "lane are selected. "
            + "; ".join(f"{lane.name}: {', '.join(lane.source_ids)}" for lane in plan.lanes),
        ),
        "adoption_threshold": Param(
            plan.adoption.threshold,
            type="number",
            minimum=0,
            maximum=1,
            title="Adoption threshold",
            description="Segment's webhook is disabled only when at most this share (0-1) of events still "
            "arrives through it.",
        ),
        "adoption_window_seconds": Param(
            plan.adoption.window_seconds,
            type="integer",
            minimum=1,
            title="Adoption window (seconds)",
            description="Trailing window over which each adoption check counts events.",
        ),
        "adoption_consecutive_checks": Param(
            plan.adoption.consecutive_checks,
            type="integer",
            minimum=1,
            maximum=1000,
            title="Consecutive adoption checks",
            description="How many checks in a row must be at or below the threshold before the webhook is disabled.",
        ),
        "repair_duplicates": Param(
            plan.duplicates.repair,
            type="boolean",
            title="Repair duplicates",
            description="When duplicate message ids are found in the overlap window, keep exactly one row per id.",
        ),
        "duplicate_lookback_hours": Param(
            plan.duplicates.lookback_hours,
            type="number",
            exclusiveMinimum=0,
            title="Duplicate lookback (hours)",
            description="How far back the duplicate check looks (the overlap window).",
        ),
        "require_approvals": Param(
            plan.require_approvals,
            type="boolean",
            title="Require approvals",
            description="Pause for a human approval before switching server-side clients and before disabling "
            "Segment's warehouse (the gates pass at once when this is off).",
        ),
    }


def tasks_read_params_from_dag(dag: DAG) -> DAG:
    """Tasks carry no copy of the DAG's Params: at run time Airflow merges ``dag.params`` into every task's
    context (``process_params``), so the per-task copies only cost parse time (serializing a task validates
    each of its Params twice with jsonschema: ~80 % of the parse). See docs/scaling.md."""
    for task in dag.tasks:
        task.params = ParamsDict()
    return dag


def _lane_group(w: _Wiring, lane: Lane) -> Any:
    """A lane's own task group inside a phase group; none in a one-lane plan (its task ids stay as they were)."""
    if not w.multi:
        return nullcontext()
    return TaskGroup(lane.name, tooltip=f"schema {lane.schema}: sources {', '.join(lane.source_ids)}")


def destination_settings(plan: Plan) -> dict[str, Any]:
    """What a new destination's config is built from (the preflight checks it, the setup creates it)."""
    dest = plan.rudderstack.destination
    return {
        "credentials_conn_id": plan.warehouse.conn_id if dest.credentials_from_warehouse_connection else None,
        "staging": dest.staging.model_dump(exclude_none=True) if dest.staging else None,
        "sync_frequency_minutes": dest.sync_frequency_minutes,
        "users_table": dest.users_table,
        "allow_users_context_traits": dest.allow_users_context_traits,
    }


def _preflight(w: _Wiring) -> Span:
    """Nothing changes before the preflight passed: per lane, its schema, its destination and its sources."""
    plan, dest = w.plan, w.plan.rudderstack.destination

    def check(task_id: str, lane: Lane) -> PreflightOperator:
        return PreflightOperator(
            task_id=task_id,
            warehouse_id=plan.segment.warehouse_id,
            source_ids=lane.source_ids,
            rudderstack_conn_id=plan.rudderstack.conn_id,
            destination_id=dest.id,
            destination_name=lane.destination_name,
            destination_type=dest.type,
            warehouse_conn_id=plan.warehouse.conn_id,
            namespace=lane.schema,
            required_tables=plan.warehouse.required_tables,
            change_log_key=plan.change_log_key,
            rudderstack_data_plane_conn_id=plan.rudderstack.data_plane_conn_id,
            selected_source_ids=SELECTED_SOURCES,
            final_step=plan.segment.final_step,
            delivery_overview_granularity=plan.proof.granularity if plan.proof.enabled else None,
            allow_merge_mode_change=dest.allow_merge_mode_change,
            destination_config=dest.config,
            deferrable=plan.waits.deferrable,
            transient_budget_seconds=w.common["transient_budget_seconds"],
            **w.destination_settings,
            **w.segment,
        )

    if not w.multi:
        only = check("preflight", w.lanes[0])
        return Span(only, _received_at_indexes(w, only))
    with TaskGroup("preflight", tooltip="Per lane: its schema, destination, sources and their Segment loads"):
        checks = [check(lane.name, lane) for lane in w.lanes]
    return Span(checks, _received_at_indexes(w, checks))


def _received_at_indexes(w: _Wiring, after: Any) -> Any:
    """With ``warehouse.create_received_at_index``: one task after the preflight creating the window queries'
    index where missing (PostgreSQL; recorded, undone by the rollback). Otherwise the preflight is the last."""
    if not w.plan.warehouse.create_received_at_index:
        return after
    from segment_rudderstack.operators.indexes import EnsureReceivedAtIndexOperator

    schemas = sorted({lane.schema for lane in w.lanes})
    tasks = [
        EnsureReceivedAtIndexOperator(
            task_id="create_received_at_index" + ("" if len(schemas) == 1 else f"__{schema}"),
            warehouse_conn_id=w.plan.warehouse.conn_id,
            namespace=schema,
            **w.common,
        )
        for schema in schemas
    ]
    after >> tasks
    return tasks[0] if len(tasks) == 1 else tasks


class SetupTasks(NamedTuple):
    first: Any
    destination: EnsureRudderStackDestinationOperator
    hold: HoldRudderStackSyncOperator
    segment_source: EnsureRudderStackSegmentSourceOperator


def _setup_lane(w: _Wiring, lane: Lane) -> SetupTasks:
    """Runbook steps 1-2 for one lane: its warehouse destination (namespace = the lane's schema), its sync held,
    then its Segment-type source and the connections of its RudderStack sources (held before any source can
    feed the destination)."""
    rs, dest = w.plan.rudderstack, w.plan.rudderstack.destination
    with _lane_group(w, lane):
        gate = None
        if w.multi:
            gate = LaneSelectedOperator(
                task_id="lane_selected",
                lane=lane.name,
                schema=lane.schema,
                source_ids=lane.source_ids,
                selected_source_ids=SELECTED_SOURCES,
            )
        destination = EnsureRudderStackDestinationOperator(
            task_id="ensure_destination",
            rudderstack_conn_id=rs.conn_id,
            namespace=lane.namespace_for(dest.type),
            destination_type=dest.type,
            destination_name=lane.destination_name,
            destination_id=dest.id,
            config=dest.config,
            **w.destination_settings,
            **w.common,
        )
        hold = HoldRudderStackSyncOperator(
            task_id="hold_sync",
            rudderstack_conn_id=rs.conn_id,
            destination_id=destination.output,
            allow_merge_mode_change=dest.allow_merge_mode_change,
            **w.common,
        )
        segment_source = EnsureRudderStackSegmentSourceOperator(
            task_id="ensure_segment_source",
            rudderstack_conn_id=rs.conn_id,
            destination_id=destination.output,
            source_name=lane.segment_source_name,
            connect_source_ids=lane.rudderstack_source_ids,
            **w.common,
        )
        if gate is not None:
            gate >> destination
        destination >> hold >> segment_source
    return SetupTasks(gate or destination, destination, hold, segment_source)


def _setup_rudderstack(w: _Wiring) -> dict[str, SetupTasks]:
    with TaskGroup("setup_rudderstack", tooltip="Runbook step 1-2: destination, Segment source, hold sync"):
        return {lane.name: _setup_lane(w, lane) for lane in w.lanes}


class RouteTasks(NamedTuple):
    webhooks: dict[str, EnsureSegmentWebhookOperator]
    cutover: Any  # the cutover point (an XComArg)
    last: Any


def _route_segment(w: _Wiring, setup: dict[str, SetupTasks]) -> RouteTasks:
    """Runbook step 3: per lane, a Webhooks destination on each selected client source, to the lane's
    Segment-type source. The cutover point is when the last of them was enabled."""
    rs = w.plan.rudderstack
    with TaskGroup("route_segment_to_rudderstack", tooltip="Runbook step 3: Segment webhook to RudderStack"):
        webhooks = {}
        for lane in w.lanes:
            with _lane_group(w, lane):
                webhooks[lane.name] = EnsureSegmentWebhookOperator(
                    task_id="ensure_webhooks",
                    source_ids=_selected(lane.client_ids),
                    rudderstack_source_id=setup[lane.name].segment_source.output,
                    rudderstack_conn_id=rs.conn_id,
                    rudderstack_data_plane_conn_id=rs.data_plane_conn_id,
                    webhook_kind=w.plan.segment.webhook_kind,
                    enabled=True,
                    multiple_outputs=True,
                    **w.segment,
                    **w.common,
                )
        if not w.multi:
            only = next(iter(webhooks.values()))
            return RouteTasks(webhooks, only.output["cutover_at"], only)
        point = CutoverPointOperator(
            task_id="cutover_point",
            cutovers=[task.output["cutover_at"] for task in webhooks.values()],
            trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        )
    return RouteTasks(webhooks, point.output, point)


def _server_side(w: _Wiring, cutover: Any) -> Span | None:
    """Server-side sources (warehouse-wide): (approval that the deploy is done, then) wait until Segment
    drained each one."""
    server_ids = [s.id for s in w.plan.server_sources]
    if not server_ids:
        return None
    with TaskGroup("server_side", tooltip="Server-side sources: switch, then wait for Segment to drain"):
        # Every DAG has its gates; the param require_approvals (default: the plan's) switches them on for a run.
        gate = w.approval(
            "approve_server_side_switched",
            "Server-side clients switched to RudderStack?",
            "Approve once every server-side service sends to RudderStack (deploy done).",
        )
        drains = [
            SegmentSourceDrainedSensor(
                task_id=f"wait_drained__{source_id}",
                warehouse_id=w.plan.segment.warehouse_id,
                source_id=source_id,
                started_after=cutover,
                consecutive_loads=w.plan.waits.drain_consecutive_loads,
                selected_source_ids=SELECTED_SOURCES,
                **w.sync_list_limit,
                **w.segment,
                **w.sensor_common,
            )
            for source_id in server_ids
        ]
        if gate is not None:
            gate >> drains
    return Span(gate or drains, drains)


def _segment_final_load(w: _Wiring, cutover: Any, setup: dict[str, SetupTasks]) -> Span:
    """Runbook step 5 (warehouse-wide): Segment's final load, (an approval,) then its warehouse switched off
    (or, with ``disconnect_sources``, the plan's sources disconnected from it)."""
    with TaskGroup(
        "segment_final_load", tooltip="Runbook step 5: Segment's final load, then its warehouse off"
    ):
        final_load = SegmentWarehouseLoadSensor(
            task_id="wait_final_load",
            **w.final_load_args(cutover),
            **w.sync_list_limit,
            **w.segment,
            **w.sensor_common,
        )
        upstream = w.approval(
            "approve_disable_segment_warehouse",
            "Disable Segment's warehouse now?",
            "Segment's final load finished. Approve to switch Segment's warehouse loads off.",
        )
        final_load >> upstream
        disable_warehouse = DisableSegmentWarehouseOperator(
            task_id="disable_segment_warehouse",
            **w.final_load_args(cutover),
            **w.sync_list_limit,
            running_load_wait_seconds=min(w.plan.waits.timeout_seconds, MAX_RUNNING_LOAD_WAIT_SECONDS),
            final_step=w.plan.segment.final_step,
            **_replacement_path(w, setup),
            **writer_change_args(
                w.plan,
                [(lane, setup[lane.name].destination.output) for lane in w.lanes],
                cutover=cutover,
                step=SEGMENT_SWITCH_OFF,
            ),
            **w.segment,
            **w.common,
        )
        upstream >> disable_warehouse
    return Span(final_load, disable_warehouse)


def _replacement_path(w: _Wiring, setup: dict[str, SetupTasks]) -> dict[str, Any]:
    """What the switch-off re-checks right before it: each lane's client sources' webhooks to a reachable data
    plane, the lane's destination still writing to the lane's schema."""
    rs = w.plan.rudderstack
    paths = [
        {
            "client_source_ids": _selected(lane.client_ids),
            "rudderstack_source_id": setup[lane.name].segment_source.output,
            "destination_id": setup[lane.name].destination.output,
            "namespace": lane.schema,
        }
        for lane in w.lanes
    ]
    shared = {"rudderstack_conn_id": rs.conn_id, "rudderstack_data_plane_conn_id": rs.data_plane_conn_id}
    return {**shared, **paths[0]} if not w.multi else {**shared, "replacement_paths": paths}


class ReleaseTasks(NamedTuple):
    gate: RudderStackSyncGateSensor
    release: ReleaseRudderStackSyncOperator
    upload: RudderStackUploadSensor


def _release_lane(w: _Wiring, lane: Lane, setup: SetupTasks, cutover: Any) -> ReleaseTasks:
    """Runbook step 4 for one lane: when no Segment load runs, release the lane destination's sync and wait
    until the warehouse shows its upload."""
    rs, dest = w.plan.rudderstack, w.plan.rudderstack.destination
    lane_load = w.final_load_args(cutover, source_ids=_selected(lane.source_ids))
    with _lane_group(w, lane):
        gate = RudderStackSyncGateSensor(
            task_id="wait_sync_gate",
            **lane_load,
            **w.sync_list_limit,
            **w.segment,
            **w.sensor_common,
        )
        release = ReleaseRudderStackSyncOperator(
            task_id="release_sync",
            rudderstack_conn_id=rs.conn_id,
            rudderstack_data_plane_conn_id=rs.data_plane_conn_id,
            destination_id=setup.destination.output,
            trigger_source_ids=[setup.segment_source.output, *lane.rudderstack_source_ids],
            **lane_load,
            margin_minutes=dest.sync_start_margin_minutes,
            allow_merge_mode_change=dest.allow_merge_mode_change,
            retry_budget_minutes=w.plan.waits.release_retry_minutes,
            multiple_outputs=True,
            **writer_change_args(w.plan, [(lane, setup.destination.output)], cutover=cutover, step=RELEASE),
            **w.segment,
            **w.common,
        )
        upload = RudderStackUploadSensor(
            task_id="wait_upload",
            source_ids=[setup.segment_source.output, *lane.rudderstack_source_ids],
            rudderstack_data_plane_conn_id=rs.data_plane_conn_id,
            warehouse_conn_id=w.plan.warehouse.conn_id,
            namespace=lane.schema,
            destination_id=setup.destination.output,
            loaded_after=release.output["released_at"],
            **_announce(w, lane, FIRST_LOAD, cutover, release, setup),
            **w.sensor_common,
        )
        gate >> release >> upload
    return ReleaseTasks(gate, release, upload)


def _release_rudderstack(w: _Wiring, setup: dict[str, SetupTasks], cutover: Any) -> dict[str, ReleaseTasks]:
    with TaskGroup("release_rudderstack", tooltip="Runbook step 4: release RudderStack's sync after Segment"):
        return {lane.name: _release_lane(w, lane, setup[lane.name], cutover) for lane in w.lanes}


def _announce(
    w: _Wiring, lane: Lane, stage: str, cutover: Any, release: Any, setup: SetupTasks
) -> dict[str, Any]:
    """The lane's asset alias at ``stage`` and what its events carry (factory/downstream.py)."""
    return cutover_assets_args(
        w.plan,
        lane,
        stage,
        cutover=cutover,
        released_at=release.output["released_at"],
        destination_id=setup.destination.output,
    )


def _duplicate_checks(
    w: _Wiring, announce: dict[str, dict[str, Any]] | None = None
) -> dict[str, DuplicateCheckOperator]:
    """One duplicate check per lane's schema (a task named ``duplicate_check`` in a one-lane plan);
    ``announce``: per lane, its asset alias and events (:func:`_announce`)."""

    def check(task_id: str, lane: Lane) -> DuplicateCheckOperator:
        return DuplicateCheckOperator(
            task_id=task_id,
            warehouse_conn_id=w.plan.warehouse.conn_id,
            namespace=lane.schema,
            lookback_hours="{{ params.duplicate_lookback_hours }}",
            repair="{{ params.repair_duplicates }}",
            **(announce or {}).get(lane.name, {}),
            **w.common,
        )

    if not w.multi:
        return {w.lanes[0].name: check("duplicate_check", w.lanes[0])}
    with TaskGroup("duplicate_check", tooltip="Per lane: duplicate message ids in the overlap window"):
        return {lane.name: check(lane.name, lane) for lane in w.lanes}


def _restore_append_modes(w: _Wiring, setup: dict[str, SetupTasks]) -> dict[str, RestoreAppendModeOperator]:
    """Plan option: give each lane's destination back its append mode once its overlap passed the duplicate
    check (a task named ``restore_append_mode`` in a one-lane plan)."""

    def restore(task_id: str, lane: Lane) -> RestoreAppendModeOperator:
        return RestoreAppendModeOperator(
            task_id=task_id,
            rudderstack_conn_id=w.plan.rudderstack.conn_id,
            destination_id=setup[lane.name].destination.output,
            **w.common,
        )

    if not w.multi:
        return {w.lanes[0].name: restore("restore_append_mode", w.lanes[0])}
    with TaskGroup("restore_append_mode", tooltip="Per lane: the destination's append mode back"):
        return {lane.name: restore(lane.name, lane) for lane in w.lanes}


def _adoption_lane(w: _Wiring, lane: Lane, segment_source: Any, webhooks: Any) -> Span:
    """Runbook step 6 for one lane: wait until (nearly) all of its clients moved, (prove the webhook path from
    Segment's metrics,) then switch the lane's Segment webhooks off."""
    plan, rs = w.plan, w.plan.rudderstack
    threshold = "{{ params.adoption_threshold }}"
    window = "{{ params.adoption_window_seconds }}"
    # plan proof.adoption_signal: the warehouse share (default), Segment's ingress, or both must hold
    by_segment = plan.proof.enabled and plan.proof.adoption_signal != "warehouse"
    with _lane_group(w, lane):
        adoption = (SegmentAdoptionSensor if by_segment else ClientAdoptionSensor)(
            **(_segment_adoption_args(w, lane, webhooks) if by_segment else {}),
            task_id="wait_client_adoption",
            warehouse_conn_id=plan.warehouse.conn_id,
            namespace=lane.schema,
            webhook_source_id=segment_source.output,
            threshold=threshold,
            window_seconds=window,
            consecutive_checks="{{ params.adoption_consecutive_checks }}",
            min_events=plan.adoption.min_events,
            library_names=plan.adoption.library_names,
            deferrable=plan.waits.deferrable,
            poke_interval=plan.adoption.check_interval_seconds,
            timeout=plan.adoption.timeout_seconds,
            dry_run=w.common["dry_run"],
            transient_budget_seconds=w.common["transient_budget_seconds"],
        )
        disable_webhook = DisableSegmentWebhookOperator(
            task_id="disable_segment_webhook",
            adoption_guard=None
            if by_segment and plan.proof.adoption_signal == "segment_metrics"
            else {
                "warehouse_conn_id": plan.warehouse.conn_id,
                "namespace": lane.schema,
                "threshold": threshold,
                "window_seconds": window,
                "min_events": plan.adoption.min_events,
                "library_names": plan.adoption.library_names,
            },
            source_ids=_selected(lane.client_ids),
            rudderstack_source_id=segment_source.output,
            rudderstack_conn_id=rs.conn_id,
            rudderstack_data_plane_conn_id=rs.data_plane_conn_id,
            webhook_kind=plan.segment.webhook_kind,
            **w.segment,
            **w.common,
        )
        verify, before_switch_off = _verify_webhook_path(w, lane, segment_source, webhooks)
        chain(*(t for t in (adoption, verify, before_switch_off) if t is not None))
        if isinstance(before_switch_off, ProofGapChoiceOperator):
            _gap_branches(w, before_switch_off, disable_webhook)
        else:
            (before_switch_off or verify or adoption) >> disable_webhook
    return Span(adoption, disable_webhook, verify)


def _gap_branches(w: _Wiring, choice: Any, disable_webhook: Any) -> None:
    """The proof gap's three answers: proceed to the switch-off, hold the plan (the switch-off then waits for
    the hold's release), or trigger the rollback DAG and stop this run."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    from segment_rudderstack.safety.hold import hold_key_for_plan

    proceed, hold, roll_back = (
        EmptyOperator(task_id="proceed"),
        HoldPlanOperator(
            task_id="hold_plan",
            hold_key=hold_key_for_plan(w.plan.name),
            reason="a person chose Hold at the gap in the proof from Segment's metrics",
        ),
        TriggerDagRunOperator(
            task_id="roll_back", trigger_dag_id=w.plan.rollback_dag_id, conf={"force": True, "dry_run": False}
        ),
    )
    stop = StopAfterRollbackOperator(task_id="stop_after_roll_back", rollback_dag_id=w.plan.rollback_dag_id)
    choice >> [proceed, hold, roll_back]
    roll_back >> stop
    [proceed, hold] >> disable_webhook
    disable_webhook.trigger_rule = TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS


def _segment_adoption_args(w: _Wiring, lane: Lane, webhooks: Any) -> dict[str, Any]:
    return {
        "segment_conn_id": w.plan.segment.conn_id,
        "source_ids": _selected(lane.client_ids),
        "cutover_at": webhooks["cutover_at"],
        "granularity": w.plan.proof.granularity,
        "signal": w.plan.proof.adoption_signal,
    }


def _verify_webhook_path(w: _Wiring, lane: Lane, segment_source: Any, webhooks: Any) -> tuple[Any, Any]:
    """Before the webhook is switched off: the proof from Segment's Delivery Overview metrics; a gap stops the
    run (``proof.on_gap: fail``) or asks a person (``approve``). Returns (the check, the last task before the
    switch-off)."""
    plan = w.plan
    if not plan.proof.enabled:
        return None, None
    verify = VerifyWebhookPathOperator(
        task_id="verify_webhook_path",
        segment_conn_id=plan.segment.conn_id,
        warehouse_conn_id=plan.warehouse.conn_id,
        namespace=lane.schema,
        webhooks=webhooks,
        rudderstack_source_id=segment_source.output,
        source_ids=_selected(lane.client_ids),
        continuity_source_ids=lane.source_ids,
        granularity=plan.proof.granularity,
        settle_seconds=plan.proof.settle_seconds,
        tolerance_events=plan.proof.tolerance_events,
        tolerance_share=plan.proof.tolerance_share,
        tolerance_failed=plan.proof.tolerance_failed_deliveries,
        adoption_window_seconds="{{ params.adoption_window_seconds }}",
        continuity_buckets_before=plan.proof.continuity_buckets_before,
        on_gap=plan.proof.on_gap,
        **w.common,
    )
    if plan.proof.on_gap != "approve":
        return verify, None
    prefix = verify.task_id.rpartition(".")[0]
    prefix = prefix + "." if prefix else ""
    gate = ProofGapChoiceOperator(
        task_id="approve_webhook_path_gap",
        subject="Segment's metrics and the warehouse differ: proceed, hold or roll back?",
        body="The webhook path check found buckets that differ (see the report's proof section and the task log "
        "of verify_webhook_path). Proceed: switch Segment's webhook off anyway. Hold: hold the plan (the switch-off "
        "waits until the hold is released in the migration view). Roll back: run the rollback DAG and stop here.",
        required="{{ (ti.xcom_pull(task_ids='" + verify.task_id + "') or {}).get('gap', False) }}",
        proceed_task_id=prefix + "proceed",
        hold_task_id=prefix + "hold_plan",
        rollback_task_id=prefix + "roll_back",
    )
    return verify, gate


def _client_adoption(w: _Wiring, setup: dict[str, SetupTasks], route: RouteTasks) -> dict[str, Span]:
    with TaskGroup("client_adoption", tooltip="Runbook step 6: wait for clients, then Segment's webhook off"):
        return {
            lane.name: _adoption_lane(
                w, lane, setup[lane.name].segment_source, route.webhooks[lane.name].output
            )
            for lane in w.lanes
        }


class LaneSteps(NamedTuple):
    setup: SetupTasks
    webhooks: Any
    release: ReleaseTasks
    duplicates: Any
    adoption: Span

    def report_steps(self) -> dict[str, Any]:
        return {
            "destination": self.setup.destination,
            "segment_source": self.setup.segment_source,
            "webhooks": self.webhooks,
            "release": self.release.release,
            "upload": self.release.upload,
            "duplicates": self.duplicates,
            "adoption": self.adoption.first,
            "webhook_disabled": self.adoption.last,
            **({"proof": self.adoption.proof} if self.adoption.proof is not None else {}),
        }


def _report(
    w: _Wiring,
    reports_dir: str | pathlib.Path,
    preflight: Span,
    final_load: Span,
    lanes: dict[str, LaneSteps],
) -> MigrationReportOperator:
    """The report reads each step's result from the task objects it is given (their ids are never retyped).
    A one-lane plan's steps keep their names; with several lanes each lane's steps are also shown side by side."""
    warehouse_wide = {"final_load": final_load.first, "segment_warehouse": final_load.last}
    if not w.multi:
        steps = lanes[w.lanes[0].name].report_steps()
        tasks = {
            "preflight": preflight.first,
            "destination": steps.pop("destination"),
            "segment_source": steps.pop("segment_source"),
            "webhooks": steps.pop("webhooks"),
            **warehouse_wide,
            **steps,
        }
        lane_task_ids = None
    else:
        tasks = {f"preflight {t.task_id.split('.')[-1]}": t for t in preflight.first} | warehouse_wide
        for name, lane in lanes.items():
            tasks |= {f"{step} {name}": task for step, task in lane.report_steps().items()}
        lane_task_ids = {
            name: {step: task.task_id for step, task in lane.report_steps().items()}
            for name, lane in lanes.items()
        }
    return MigrationReportOperator(
        task_id="report",
        plan_name=w.plan.name,
        reports_dir=str(reports_dir),
        adoption_threshold="{{ params.adoption_threshold }}",
        source_ids=[s.id for s in w.plan.sources],
        selected_source_ids=SELECTED_SOURCES,
        task_ids={name: task.task_id for name, task in tasks.items()},
        lane_task_ids=lane_task_ids,
        trigger_rule=TriggerRule.ALL_DONE,  # a failed run gets a report too (verdict: failed at ..., what to do)
        **w.common,
    )


def _migration_dag(plan: Plan) -> DAG:
    lane_sources = {lane.name: lane.source_ids for lane in plan.lanes}
    return DAG(
        dag_id=plan.dag_id,
        description=plan.description
        or f"Move warehouse loads of plan {plan.name} from Segment to RudderStack",
        schedule=plan.schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=[*TAGS, plan.name],
        params=migration_params(plan),
        render_template_as_native_obj=True,
        user_defined_macros={"selected_sources": partial(selected_source_ids, lane_sources)},
        default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
        doc_md=__doc__,
        **({"deadline": alert} if (alert := deadline_alert(plan)) else {}),
    )


def build_migration_dag(plan: Plan, *, reports_dir: str | pathlib.Path) -> DAG:
    w = _Wiring.of(plan)
    with _migration_dag(plan) as dag:
        status = MigrationStatusOperator(
            task_id="migration_status", plan_name=plan.name, change_log_key=plan.change_log_key
        )
        preflight = _preflight(w)
        setup = _setup_rudderstack(w)
        route = _route_segment(w, setup)
        server_side = _server_side(w, route.cutover)
        final_load = _segment_final_load(w, route.cutover, setup)
        release = _release_rudderstack(w, setup, route.cutover)
        duplicates = _duplicate_checks(
            w,
            {
                lane.name: _announce(
                    w, lane, DUPLICATE_CHECKED, route.cutover, release[lane.name].release, setup[lane.name]
                )
                for lane in w.lanes
            },
        )
        adoption = _client_adoption(w, setup, route)
        lanes = {
            lane.name: LaneSteps(
                setup[lane.name],
                route.webhooks[lane.name],
                release[lane.name],
                duplicates[lane.name],
                adoption[lane.name],
            )
            for lane in w.lanes
        }
        report = _report(w, reports_dir, preflight, final_load, lanes)
        shape_before = _shape(w, report, setup, route, final_load, release, adoption)

        status >> preflight.first
        for name, steps in lanes.items():
            if shape_before:
                check, gate = shape_before[name]
                preflight.last >> check
                gate >> steps.setup.first
            else:
                preflight.last >> steps.setup.first
            steps.setup.segment_source >> steps.webhooks
            final_load.last >> steps.release.gate
            steps.release.upload >> steps.duplicates >> steps.adoption.first
            steps.adoption.last >> report
        if plan.rudderstack.destination.restore_append_after_duplicate_check:
            for name, restore in _restore_append_modes(w, setup).items():
                lanes[name].duplicates >> restore >> lanes[name].adoption.first
        if server_side is not None:
            route.last >> server_side.first
            server_side.last >> final_load.first
        else:
            route.last >> final_load.first
        _operations(dag, plan, w, status, report, server_side, final_load, lanes, route)
    return tasks_read_params_from_dag(dag)


def _shape(w: _Wiring, report: Any, setup, route, final_load, release, adoption) -> dict[str, Any] | None:
    """The shape-continuity checks (factory/shape.py): per lane, the preflight check and its gate, which run before
    the lane's setup, or ``None`` with ``shape.enabled: false``. The report reads every check's result."""
    if not w.plan.shape.enabled:
        return None
    from segment_rudderstack.factory.shape import shape_checks, shape_preflight

    before = shape_preflight(w)
    checks = shape_checks(w, setup, route, final_load, release, adoption)
    report.shape_task_ids = [check.task_id for check, _ in before.values()] + checks.result_task_ids
    return before


def _operations(dag, plan, w, status, report, server_side, final_load, lanes, route) -> None:
    """What a long cutover needs around the runbook: the dry-run plan's order (the report gathers the tasks' would-be
    changes in it), the hold's check interval, and the plan's notifications (factory/notifications.py)."""
    report.task_order = run_order(dag.tasks)
    for task in dag.tasks:
        if hasattr(task, "wait_while_held"):
            task.hold_check_seconds = min(60.0, float(plan.waits.poke_interval_seconds))
    each = lambda step: [getattr(steps, step) for steps in lanes.values()]  # noqa: E731
    milestones = {
        "cutover": [route.last],
        "server_side_drained": list(server_side.last) if server_side is not None else [],
        "warehouse_off": [final_load.last],
        "rudderstack_loading": [steps.release.upload for steps in lanes.values()],
        "duplicates": each("duplicates"),
        "webhook_off": [steps.adoption.last for steps in lanes.values()],
        "complete": [report],
    }
    attach_notifications(dag, plan, status, milestones)


def build_rollback_dag(plan: Plan) -> DAG:
    with DAG(
        dag_id=plan.rollback_dag_id,
        description=f"Undo the outside changes of migration plan {plan.name} (from its change log)",
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=[*TAGS, plan.name, "rollback"],
        params={
            "dry_run": Param(
                False,
                type="boolean",
                title="Dry run",
                description="Read the change log and the current state; change nothing.",
            ),
            "force": Param(
                False,
                type="boolean",
                title="Force while a migration runs",
                description="Roll back even while a migration run is active; that run then stops "
                "before its next change. Without it the rollback refuses and changes nothing.",
            ),
        },
        render_template_as_native_obj=True,
    ) as dag:
        rollback = RollbackOperator(
            task_id="rollback",
            plan_name=plan.name,
            segment_conn_id=plan.segment.conn_id,
            rudderstack_conn_id=plan.rudderstack.conn_id,
            change_log_key=plan.change_log_key,
            dry_run="{{ params.dry_run }}",
            migration_dag_id=plan.dag_id,
            force="{{ params.force }}",
        )
        if (
            plan.require_approvals
        ):  # undoing a migration re-enables Segment's loads: as deliberate as doing it
            (
                MigrationApprovalOperator(
                    task_id="approve_rollback",
                    subject=f"Roll back migration {plan.name}?",
                    body="Approve to undo the migration's outside changes from its change log (Segment's warehouse "
                    "back on, the webhooks off, RudderStack's sync held). A dry run needs no approval.",
                    required="{{ not params.dry_run }}",
                )
                >> rollback
            )
        attach_notifications(dag, plan, None, {})  # a failed rollback is announced like any failure
    return tasks_read_params_from_dag(dag)


def build_all(plans_dir: str | pathlib.Path, *, reports_dir: str | pathlib.Path) -> dict[str, Any]:
    """Every plan file in ``plans_dir`` becomes a migration DAG and a rollback DAG. A plan that does not
    validate, or shares its name with another file, becomes a placeholder DAG marked INVALID PLAN that names
    the file and the fields (:mod:`segment_rudderstack.factory.invalid_plans`); the other plans are built as usual."""
    from segment_rudderstack.factory.invalid_plans import (
        build_invalid_plan_dag,
        read_plan_file,
        sort_plan_files,
    )

    files = [read_plan_file(path) for path in sorted(pathlib.Path(plans_dir).glob("*.y*ml"))]
    plans, invalid = sort_plan_files(files)
    dags: dict[str, Any] = {}
    for plan in plans:
        for built in (build_migration_dag(plan, reports_dir=reports_dir), build_rollback_dag(plan)):
            dags[built.dag_id] = built
    for dag_id, (paths, message) in invalid.items():
        dags[dag_id] = build_invalid_plan_dag(dag_id, paths, message, tags=TAGS)
    return dags
