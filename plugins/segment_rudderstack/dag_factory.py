"""Builds the migration DAG and the rollback DAG of a plan: wiring only, no I/O.

Task groups follow the runbook (DESIGN.md section 1): preflight → set up RudderStack → route Segment to
RudderStack → server-side drain → Segment's final load and its warehouse switched off → release
RudderStack's sync and wait for its upload → duplicate check → client adoption → Segment's webhook off →
report. Run-time choices come from the trigger form (params), validated by JSON schema at trigger time.
"""

from __future__ import annotations

import pathlib
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, TaskGroup
from airflow.sdk.definitions.param import ParamsDict

from segment_rudderstack.operators.approval import MigrationApprovalOperator
from segment_rudderstack.operators.lifecycle import (
    MigrationReportOperator,
    MigrationStatusOperator,
    RollbackOperator,
)
from segment_rudderstack.operators.preflight import PreflightOperator
from segment_rudderstack.operators.rudderstack import (
    EnsureRudderStackDestinationOperator,
    EnsureRudderStackSegmentSourceOperator,
    HoldRudderStackSyncOperator,
    ReleaseRudderStackSyncOperator,
)
from segment_rudderstack.operators.segment import (
    DisableSegmentWarehouseOperator,
    DisableSegmentWebhookOperator,
    EnsureSegmentWebhookOperator,
)
from segment_rudderstack.operators.warehouse import DuplicateCheckOperator
from segment_rudderstack.plan import Plan
from segment_rudderstack.sensors.migration import (
    ClientAdoptionSensor,
    RudderStackSyncGateSensor,
    RudderStackUploadSensor,
    SegmentSourceDrainedSensor,
    SegmentWarehouseLoadSensor,
)

TAGS = ["segment", "rudderstack", "migration"]
# The switch-off waits in a worker slot for a load that started after the final one: one load's length at most.
MAX_RUNNING_LOAD_WAIT_SECONDS = 3600
START = datetime(2026, 1, 1)

T_DESTINATION = "setup_rudderstack.ensure_destination"
T_SEGMENT_SOURCE = "setup_rudderstack.ensure_segment_source"
T_WEBHOOKS = "route_segment_to_rudderstack.ensure_webhooks"


def _xcom(task_id: str, key: str | None = None) -> str:
    pulled = f"ti.xcom_pull(task_ids='{task_id}')"
    return "{{ " + (f"({pulled} or {{}}).get('{key}')" if key else pulled) + " }}"


def _selected(ids: list[str]) -> str:
    """Template: the plan's ids of one kind that the trigger form selected (params.sources)."""
    return "{{ params.sources | select('in', " + repr(ids) + ") | list }}"


def migration_params(plan: Plan) -> dict[str, Param]:
    source_ids = [s.id for s in plan.sources]
    return {
        "dry_run": Param(
            plan.dry_run, type="boolean", title="Dry run",
            description="Read everything and change nothing; every task logs what it would change.",
        ),
        "sources": Param(
            source_ids, type="array", title="Segment sources",
            items={"type": "string", "enum": source_ids}, minItems=1, uniqueItems=True,
            description="Which of the plan's Segment sources this run migrates (default: all of them).",
        ),
        "adoption_threshold": Param(
            plan.adoption.threshold, type="number", minimum=0, maximum=1, title="Adoption threshold",
            description="Segment's webhook is disabled only when at most this share (0-1) of events still "
            "arrives through it.",
        ),
        "adoption_window_seconds": Param(
            plan.adoption.window_seconds, type="integer", minimum=1, title="Adoption window (seconds)",
            description="Trailing window over which each adoption check counts events.",
        ),
        "adoption_consecutive_checks": Param(
            plan.adoption.consecutive_checks, type="integer", minimum=1, maximum=1000,
            title="Consecutive adoption checks",
            description="How many checks in a row must be at or below the threshold before the webhook is disabled.",
        ),
        "repair_duplicates": Param(
            plan.duplicates.repair, type="boolean", title="Repair duplicates",
            description="When duplicate message ids are found in the overlap window, keep exactly one row per id.",
        ),
        "duplicate_lookback_hours": Param(
            plan.duplicates.lookback_hours, type="number", exclusiveMinimum=0, title="Duplicate lookback (hours)",
            description="How far back the duplicate check looks (the overlap window).",
        ),
        "require_approvals": Param(
            plan.require_approvals, type="boolean", title="Require approvals",
            description="Pause for a human approval before switching server-side clients and before disabling "
            "Segment's warehouse (only where the plan defines approval gates).",
        ),
    }


def tasks_read_params_from_dag(dag: DAG) -> DAG:
    """Tasks carry no copy of the DAG's Params: at run time Airflow merges ``dag.params`` into every task's
    context (``process_params``), so the per-task copies only cost parse time (serializing a task validates
    each of its Params twice with jsonschema: ~80 % of the parse). See docs/scaling.md."""
    for task in dag.tasks:
        task.params = ParamsDict()
    return dag


def build_migration_dag(plan: Plan, *, reports_dir: str | pathlib.Path) -> DAG:
    rs = plan.rudderstack
    dest = rs.destination
    waits = plan.waits
    client_ids = [s.id for s in plan.client_sources]
    server_ids = [s.id for s in plan.server_sources]
    rs_source_ids = sorted({s.rudderstack_source_id for s in plan.sources if s.rudderstack_source_id})
    dry_run = "{{ params.dry_run }}"
    common = {"change_log_key": plan.change_log_key, "dry_run": dry_run}
    sensor_common = {"deferrable": waits.deferrable, "poke_interval": waits.poke_interval_seconds,
                     "timeout": waits.timeout_seconds, "dry_run": dry_run}
    segment = {"segment_conn_id": plan.segment.conn_id}
    cutover = _xcom(T_WEBHOOKS, "cutover_at")
    destination_id = _xcom(T_DESTINATION)
    segment_source_id = _xcom(T_SEGMENT_SOURCE)
    # Segment's final load, as every task that waits for it or re-checks it sees it.
    final_load_args = {
        "warehouse_id": plan.segment.warehouse_id,
        "started_after": cutover,
        "source_ids": "{{ params.sources }}",
        "allow_partial": plan.segment.allow_partial_loads,
    }
    sync_list_limit = {"sync_list_requests_per_minute": plan.segment.sync_list_requests_per_minute}

    def approval(task_id: str, subject: str, body: str) -> MigrationApprovalOperator:
        return MigrationApprovalOperator(
            task_id=task_id, subject=subject, body=body, required="{{ params.require_approvals }}"
        )

    with DAG(
        dag_id=plan.dag_id,
        description=plan.description or f"Move warehouse loads of plan {plan.name} from Segment to RudderStack",
        schedule=plan.schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=[*TAGS, plan.name],
        params=migration_params(plan),
        render_template_as_native_obj=True,
        default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
        doc_md=__doc__,
    ) as dag:
        status = MigrationStatusOperator(
            task_id="migration_status", plan_name=plan.name, change_log_key=plan.change_log_key
        )
        preflight = PreflightOperator(
            task_id="preflight",
            warehouse_id=plan.segment.warehouse_id,
            source_ids=[s.id for s in plan.sources],
            rudderstack_conn_id=rs.conn_id,
            destination_id=dest.id,
            destination_name=dest.name,
            destination_type=dest.type,
            warehouse_conn_id=plan.warehouse.conn_id,
            namespace=plan.warehouse.namespace,
            required_tables=plan.warehouse.required_tables,
            change_log_key=plan.change_log_key,
            selected_source_ids="{{ params.sources }}",
            final_step=plan.segment.final_step,
            **segment,
        )
        with TaskGroup("setup_rudderstack", tooltip="Runbook step 1-2: destination, Segment source, hold sync"):
            ensure_destination = EnsureRudderStackDestinationOperator(
                task_id="ensure_destination",
                rudderstack_conn_id=rs.conn_id,
                namespace=plan.warehouse.namespace,
                destination_type=dest.type,
                destination_name=dest.name,
                destination_id=dest.id,
                config=dest.config,
                sync_frequency_minutes=dest.sync_frequency_minutes,
                credentials_conn_id=plan.warehouse.conn_id if dest.credentials_from_warehouse_connection else None,
                **common,
            )
            ensure_source = EnsureRudderStackSegmentSourceOperator(
                task_id="ensure_segment_source",
                rudderstack_conn_id=rs.conn_id,
                destination_id=destination_id,
                source_name=rs.segment_source_name,
                connect_source_ids=rs_source_ids,
                **common,
            )
            hold = HoldRudderStackSyncOperator(
                task_id="hold_sync", rudderstack_conn_id=rs.conn_id, destination_id=destination_id, **common
            )
            ensure_destination >> hold >> ensure_source  # held before any source can feed the destination

        with TaskGroup("route_segment_to_rudderstack", tooltip="Runbook step 3: Segment webhook to RudderStack"):
            webhooks = EnsureSegmentWebhookOperator(
                task_id="ensure_webhooks",
                source_ids=_selected(client_ids),
                rudderstack_source_id=segment_source_id,
                rudderstack_conn_id=rs.conn_id,
                rudderstack_data_plane_conn_id=rs.data_plane_conn_id,
                enabled=True,
                **segment,
                **common,
            )

        last_before_final_load = webhooks
        if server_ids:
            with TaskGroup("server_side", tooltip="Server-side sources: switch, then wait for Segment to drain"):
                upstream = webhooks
                if plan.require_approvals:
                    upstream = approval(
                        "approve_server_side_switched",
                        "Server-side clients switched to RudderStack?",
                        "Approve once every server-side service sends to RudderStack (deploy done).",
                    )
                    webhooks >> upstream
                drains = [
                    SegmentSourceDrainedSensor(
                        task_id=f"wait_drained__{source_id}",
                        warehouse_id=plan.segment.warehouse_id,
                        source_id=source_id,
                        started_after=cutover,
                        consecutive_loads=waits.drain_consecutive_loads,
                        selected_source_ids="{{ params.sources }}",
                        **sync_list_limit,
                        **segment,
                        **sensor_common,
                    )
                    for source_id in server_ids
                ]
                upstream >> drains
                last_before_final_load = drains

        with TaskGroup("segment_final_load", tooltip="Runbook step 5: Segment's final load, then its warehouse off"):
            final_load = SegmentWarehouseLoadSensor(
                task_id="wait_final_load", **final_load_args, **sync_list_limit, **segment, **sensor_common
            )
            disable_upstream = final_load
            if plan.require_approvals:
                gate = approval(
                    "approve_disable_segment_warehouse",
                    "Disable Segment's warehouse now?",
                    "Segment's final load finished. Approve to switch Segment's warehouse loads off.",
                )
                final_load >> gate
                disable_upstream = gate
            disable_warehouse = DisableSegmentWarehouseOperator(
                task_id="disable_segment_warehouse",
                **final_load_args,
                **sync_list_limit,
                running_load_wait_seconds=min(waits.timeout_seconds, MAX_RUNNING_LOAD_WAIT_SECONDS),
                final_step=plan.segment.final_step,
                **segment,
                **common,
            )
            disable_upstream >> disable_warehouse

        with TaskGroup("release_rudderstack", tooltip="Runbook step 4: release RudderStack's sync after Segment"):
            gate_sensor = RudderStackSyncGateSensor(
                task_id="wait_sync_gate", **final_load_args, **sync_list_limit, **segment, **sensor_common
            )
            release = ReleaseRudderStackSyncOperator(
                task_id="release_sync",
                rudderstack_conn_id=rs.conn_id,
                rudderstack_data_plane_conn_id=rs.data_plane_conn_id,
                destination_id=destination_id,
                **final_load_args,
                margin_minutes=dest.sync_start_margin_minutes,
                **segment,
                **common,
            )
            upload = RudderStackUploadSensor(
                task_id="wait_upload",
                source_ids="{{ [ti.xcom_pull(task_ids='" + T_SEGMENT_SOURCE + "')] + " + repr(rs_source_ids) + " }}",
                rudderstack_data_plane_conn_id=rs.data_plane_conn_id,
                warehouse_conn_id=plan.warehouse.conn_id,
                namespace=plan.warehouse.namespace,
                destination_id=destination_id,
                loaded_after=_xcom("release_rudderstack.release_sync", "released_at"),
                **sensor_common,
            )
            gate_sensor >> release >> upload

        duplicates = DuplicateCheckOperator(
            task_id="duplicate_check",
            warehouse_conn_id=plan.warehouse.conn_id,
            namespace=plan.warehouse.namespace,
            lookback_hours="{{ params.duplicate_lookback_hours }}",
            repair="{{ params.repair_duplicates }}",
            **common,
        )

        with TaskGroup("client_adoption", tooltip="Runbook step 6: wait for clients, then Segment's webhook off"):
            adoption = ClientAdoptionSensor(
                task_id="wait_client_adoption",
                warehouse_conn_id=plan.warehouse.conn_id,
                namespace=plan.warehouse.namespace,
                webhook_source_id=segment_source_id,
                threshold="{{ params.adoption_threshold }}",
                window_seconds="{{ params.adoption_window_seconds }}",
                consecutive_checks="{{ params.adoption_consecutive_checks }}",
                min_events=plan.adoption.min_events,
                library_names=plan.adoption.library_names,
                deferrable=waits.deferrable,
                poke_interval=plan.adoption.check_interval_seconds,
                timeout=plan.adoption.timeout_seconds,
                dry_run=dry_run,
            )
            disable_webhook = DisableSegmentWebhookOperator(
                task_id="disable_segment_webhook",
                adoption_guard={
                    "warehouse_conn_id": plan.warehouse.conn_id,
                    "namespace": plan.warehouse.namespace,
                    "threshold": "{{ params.adoption_threshold }}",
                    "window_seconds": "{{ params.adoption_window_seconds }}",
                    "min_events": plan.adoption.min_events,
                    "library_names": plan.adoption.library_names,
                },
                source_ids=_selected(client_ids),
                rudderstack_source_id=segment_source_id,
                rudderstack_conn_id=rs.conn_id,
                rudderstack_data_plane_conn_id=rs.data_plane_conn_id,
                **segment,
                **common,
            )
            adoption >> disable_webhook

        report = MigrationReportOperator(
            task_id="report",
            plan_name=plan.name,
            reports_dir=str(reports_dir),
            adoption_threshold="{{ params.adoption_threshold }}",
            source_ids=[s.id for s in plan.sources],
            selected_source_ids="{{ params.sources }}",
            task_ids={
                "preflight": "preflight",
                "destination": T_DESTINATION,
                "segment_source": T_SEGMENT_SOURCE,
                "webhooks": T_WEBHOOKS,
                "final_load": "segment_final_load.wait_final_load",
                "segment_warehouse": "segment_final_load.disable_segment_warehouse",
                "release": "release_rudderstack.release_sync",
                "upload": "release_rudderstack.wait_upload",
                "duplicates": "duplicate_check",
                "adoption": "client_adoption.wait_client_adoption",
                "webhook_disabled": "client_adoption.disable_segment_webhook",
            },
            **common,
        )

        status >> preflight >> ensure_destination
        ensure_source >> webhooks
        last_before_final_load >> final_load
        disable_warehouse >> gate_sensor
        upload >> duplicates >> adoption
        disable_webhook >> report
    return tasks_read_params_from_dag(dag)


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
            "dry_run": Param(False, type="boolean", title="Dry run",
                             description="Read the change log and the current state; change nothing."),
        },
        render_template_as_native_obj=True,
    ) as dag:
        RollbackOperator(
            task_id="rollback",
            plan_name=plan.name,
            segment_conn_id=plan.segment.conn_id,
            rudderstack_conn_id=plan.rudderstack.conn_id,
            change_log_key=plan.change_log_key,
            dry_run="{{ params.dry_run }}",
        )
    return tasks_read_params_from_dag(dag)


def build_all(plans_dir: str | pathlib.Path, *, reports_dir: str | pathlib.Path) -> dict[str, Any]:
    """Every plan file in ``plans_dir`` becomes a migration DAG and a rollback DAG. A plan that does not
    validate, or shares its name with another file, becomes a placeholder DAG marked INVALID PLAN that names
    the file and the fields (:mod:`segment_rudderstack.invalid_plans`); the other plans are built as usual."""
    from segment_rudderstack.invalid_plans import build_invalid_plan_dag, read_plan_file, sort_plan_files

    files = [read_plan_file(path) for path in sorted(pathlib.Path(plans_dir).glob("*.y*ml"))]
    plans, invalid = sort_plan_files(files)
    dags: dict[str, Any] = {}
    for plan in plans:
        for built in (build_migration_dag(plan, reports_dir=reports_dir), build_rollback_dag(plan)):
            dags[built.dag_id] = built
    for dag_id, (paths, message) in invalid.items():
        dags[dag_id] = build_invalid_plan_dag(dag_id, paths, message, tags=TAGS)
    return dags
