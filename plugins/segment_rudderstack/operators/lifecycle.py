"""The migration's beginning and end: is there anything left to do, the rollback, and the report."""

from __future__ import annotations

import pathlib
from dataclasses import asdict
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from segment_rudderstack.operators.base import MigrationOperator, as_bool
from segment_rudderstack.rendered import as_list
from segment_rudderstack.safety.changelog import DONE, INTENT, NOT_APPLIED, Change, ChangeLog
from segment_rudderstack.safety.trigger_conf import check_trigger_conf, dag_param_names
from segment_rudderstack.vocabulary import ChangeTarget

MIGRATION = ChangeTarget.MIGRATION
STATUS = "status"
COMPLETE = "complete"
ROLLED_BACK = "rolled_back"


def migration_status(log: ChangeLog, plan_name: str) -> Change | None:
    return log.last(MIGRATION, plan_name, STATUS)


class MigrationStatusOperator(BaseOperator):
    """First task of a migration run: when the plan's migration is already complete (and not rolled back
    since), say so and skip every other task, so a scheduled run after completion is a no-op.

    :param plan_name: the plan's name (the change log's migration status entry is keyed by it).
    :param change_log_key: the Airflow Variable holding the plan's change log.
    """

    ui_color = "#eeeeee"

    def __init__(self, *, plan_name: str, change_log_key: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.plan_name = plan_name
        self.change_log_key = change_log_key

    def execute(self, context: Any) -> dict[str, Any]:
        check_trigger_conf(context, dag_param_names(self))  # a misspelled param stops the run here
        status = migration_status(ChangeLog(self.change_log_key), self.plan_name)
        if status is not None and status.after == COMPLETE:
            message = (
                f"migration {self.plan_name!r} is already complete (at {status.at}, run {status.run_id}); "
                "nothing to do. Run the rollback DAG first to migrate again."
            )
            self.log.info(message)
            raise AirflowSkipException(message)
        self.log.info("migration %r: %s", self.plan_name, status.after if status else "not started")
        return {"status": status.after if status else "not started"}


class RollbackOperator(MigrationOperator):
    """Undo the migration's outside changes using its change log: re-enable Segment's warehouse (or reconnect
    its sources), disable the Webhooks destinations, and hold RudderStack's sync. Idempotent and dry-runnable.

    :param plan_name: the plan's name (its migration status becomes ``rolled_back``).
    :param segment_conn_id: the Segment Public API connection.
    :param rudderstack_conn_id: the RudderStack control plane connection.
    :param migration_dag_id: the plan's migration DAG: the rollback refuses while a run of it is active.
    :param force: roll back even while a migration run is active (that run stops before its next change).
    """

    def __init__(
        self,
        *,
        plan_name: str,
        segment_conn_id: str,
        rudderstack_conn_id: str,
        migration_dag_id: str | None = None,
        force: bool | str = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.plan_name = plan_name
        self.segment_conn_id = segment_conn_id
        self.rudderstack_conn_id = rudderstack_conn_id
        self.migration_dag_id = migration_dag_id
        self.force = force

    writer_kind = "rollback"
    template_fields = (*MigrationOperator.template_fields, "force")

    def _hooks(self):
        from segment_rudderstack.hooks.rudderstack import RudderStackHook
        from segment_rudderstack.hooks.segment import SegmentHook

        return SegmentHook(segment_conn_id=self.segment_conn_id), RudderStackHook(
            rudderstack_conn_id=self.rudderstack_conn_id
        )

    def _undo_steps(self, segment, rudderstack) -> dict[tuple[ChangeTarget, str], Any]:
        """How each kind of recorded change is undone: ``(target, field)`` -> step(context, target_id, field,
        change) returning what was done (``None``: already undone). Field ``"config."`` matches every config key."""
        from segment_rudderstack.operators.indexes import received_at_index_undo_steps

        return {
            **self._segment_undo_steps(segment),
            **self._mapping_undo_steps(segment),
            **self._rudderstack_undo_steps(rudderstack),
            **received_at_index_undo_steps(self),
        }

    def _segment_undo_steps(self, segment) -> dict[tuple[ChangeTarget, str], Any]:
        from segment_rudderstack.operators.segment import is_connected

        def warehouse_enabled(context, target_id, field, change=None):
            current = bool(segment.get_warehouse(target_id).get("enabled"))
            if self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_WAREHOUSE,
                target_id=target_id,
                field=field,
                before=current,
                after=True,
                apply=lambda: segment.set_warehouse_enabled(target_id, True),
            ):
                return f"re-enabled Segment warehouse {target_id}"
            return None

        def source_connected(context, target_id, field, change=None):
            warehouse_id, _, source_id = target_id.partition(":")
            if self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_WAREHOUSE_SOURCE,
                target_id=target_id,
                field=field,
                before=is_connected(segment, warehouse_id, source_id),
                after=True,
                apply=lambda: segment.connect_warehouse_source(warehouse_id, source_id),
            ):
                return f"reconnected Segment source {source_id} to warehouse {warehouse_id}"
            return None

        def webhook_enabled(context, target_id, field, change=None):
            current = bool(segment.get_destination(target_id).get("enabled"))
            if self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_DESTINATION,
                target_id=target_id,
                field=field,
                before=current,
                after=False,
                apply=lambda: segment.set_destination_enabled(target_id, False),
            ):
                return f"disabled Segment webhook destination {target_id}"
            return None

        def webhook_created(context, target_id, field, change):
            # Created by this plan (perhaps by an attempt that died before writing the outcome): find it by its
            # deterministic name (<source id>:<destination name>) and make sure it no longer forwards events.
            source_id, _, name = target_id.partition(":")
            found = [
                d
                for d in segment.list_connected_destinations(source_id)
                if d.get("id") == change.object_id or d.get("name") == name
            ]
            self._settle_by_rollback(change, found[0].get("id") if found else None)
            return [text for d in found if (text := webhook_enabled(context, d["id"], "enabled"))]

        return {
            (ChangeTarget.SEGMENT_DESTINATION, "exists"): webhook_created,
            (ChangeTarget.SEGMENT_WAREHOUSE, "enabled"): warehouse_enabled,
            (ChangeTarget.SEGMENT_WAREHOUSE_SOURCE, "connected"): source_connected,
            (ChangeTarget.SEGMENT_DESTINATION, "enabled"): webhook_enabled,
        }

    def _mapping_undo_steps(self, segment) -> dict[tuple[ChangeTarget, str], Any]:
        """Webhooks (Actions) mappings (id ``<destination>/<mapping>``): switched off, never deleted."""

        def mapping_enabled(context, target_id, field, change=None):
            destination_id, _, mapping_id = target_id.partition("/")
            current = bool(segment.get_destination_subscription(destination_id, mapping_id).get("enabled"))
            if self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION,
                target_id=target_id,
                field=field,
                before=current,
                after=False,
                apply=lambda: segment.set_destination_subscription_enabled(destination_id, mapping_id, False),
            ):
                return f"disabled Segment webhook mapping {target_id}"
            return None

        def mapping_created(context, target_id, field, change):
            # Created by this plan (perhaps by an attempt that died before writing the outcome): found by its
            # deterministic name (<destination id>/<mapping name>) and switched off.
            destination_id, _, name = target_id.partition("/")
            found = [
                m
                for m in segment.list_destination_subscriptions(destination_id)
                if m.get("id") == change.object_id or m.get("name") == name
            ]
            self._settle_by_rollback(change, found[0].get("id") if found else None)
            return [
                text
                for m in found
                if (text := mapping_enabled(context, f"{destination_id}/{m['id']}", "enabled"))
            ]

        return {
            (ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION, "exists"): mapping_created,
            (ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION, "enabled"): mapping_enabled,
        }

    def _rudderstack_undo_steps(self, rudderstack) -> dict[tuple[ChangeTarget, str], Any]:
        def sync_held(context, target_id, field, change=None):
            config = rudderstack.get_destination(target_id).get("config") or {}
            before = bool(config.get("manualSync", False))
            if self.set_destination_config(context, rudderstack, target_id, "manualSync", before, True):
                return f"held RudderStack sync on destination {target_id}"
            return None

        def destination_created(context, target_id, field, change):
            matches = [
                d
                for d in rudderstack.list_destinations()
                if d.get("id") == change.object_id or d.get("name") == target_id
            ]
            self._settle_by_rollback(change, matches[0].get("id") if matches else None)
            return sync_held(context, matches[0]["id"], "config.manualSync") if matches else None

        def append_mode_restored(context, target_id, field, change):
            # This plan switched preferAppend off for the overlap (merge mode): give back what it was. A latest
            # change that already restored it (restore_append_after_duplicate_check) leaves nothing to undo.
            done = [text for text in [sync_held(context, target_id, "config.manualSync")] if text]
            if change is None or change.after is not False:
                return done
            current = (rudderstack.get_destination(target_id).get("config") or {}).get("preferAppend")
            if self.set_destination_config(
                context, rudderstack, target_id, "preferAppend", current, change.before
            ):
                done.append(f"restored preferAppend={change.before!r} on RudderStack destination {target_id}")
            return done

        return {
            (ChangeTarget.RUDDERSTACK_DESTINATION, "exists"): destination_created,
            (ChangeTarget.RUDDERSTACK_DESTINATION, "config.preferAppend"): append_mode_restored,
            (
                ChangeTarget.RUDDERSTACK_DESTINATION,
                "config.",
            ): sync_held,  # any other config key: hold the sync
        }

    def execute(self, context: Any) -> dict[str, Any]:
        check_trigger_conf(context, dag_param_names(self))
        if not self.is_dry_run and self.change_log_key:
            # Refuse while a migration run is active (unless forced: then that run stops before its next change).
            from segment_rudderstack.safety.writer import PlanWriter

            PlanWriter(self.change_log_key).start_rollback(
                context, migration_dag_id=self.migration_dag_id, force=as_bool(self.force)
            )
        segment, rudderstack = self._hooks()
        steps = self._undo_steps(segment, rudderstack)
        log = self.change_log
        # The latest change of every object this plan touched, plus the intents a task left open when it died
        # mid-change: what they aimed at is read from the real state (objects carry deterministic names).
        recorded = log.latest()
        open_intents = log.open_intents()
        empty = not recorded and not open_intents
        done: list[str] = []
        by_target: dict[tuple[str, str, str], Change] = {}
        for change in [*recorded, *open_intents]:
            by_target.setdefault((change.target, change.target_id, change.field), change)
        for (target, target_id, field), change in sorted(by_target.items()):
            key = "config." if field.startswith("config.") else field
            step = steps.get((target, field)) or steps.get((target, key))
            if step is not None and (outcome := step(context, target_id, field, change)):
                done += [outcome] if isinstance(outcome, str) else outcome
        status = migration_status(self.change_log, self.plan_name)
        if status is not None and status.after != ROLLED_BACK:
            self.apply_change(
                context,
                target=MIGRATION,
                target_id=self.plan_name,
                field=STATUS,
                before=status.after,
                after=ROLLED_BACK,
                apply=lambda: None,
            )
        self.log.info(
            "rollback: %s",
            rollback_summary(done, empty=empty, dry_run=self.is_dry_run, change_log_key=self.change_log_key),
        )
        if not self.is_dry_run and self.change_log_key:
            from segment_rudderstack.safety.writer import PlanWriter

            PlanWriter(self.change_log_key).release(context)
        return {"undone": done, "dry_run": self.is_dry_run}

    def _settle_by_rollback(self, change: Change, object_id: str | None) -> None:
        """An intent left open by a task that died mid-creation: settled from what the rollback found."""
        if self.is_dry_run or change.status != INTENT:
            return
        found = object_id is not None
        self.log.warning(
            "open intent #%s (task %s died mid-change: %s): %s",
            change.seq,
            change.task_id,
            change.describe(),
            "it went through; undone now" if found else "settled as not applied",
        )
        self.change_log.resolve(
            change.seq,
            DONE if found else NOT_APPLIED,
            resolved_by="rollback",
            **({"object_id": object_id} if object_id else {}),
        )


def rollback_summary(done: list[str], *, empty: bool, dry_run: bool, change_log_key: str | None) -> str:
    """One closing line that agrees with itself: an empty log, what was (or would be) undone, or that every
    recorded change was already undone."""
    if empty:
        return f"the change log {change_log_key} is empty: this plan changed nothing, so there is nothing to undo"
    if done:
        return f"{'would undo' if dry_run else 'undid'} {len(done)} change(s): " + "; ".join(done)
    return "every recorded change is already undone (an earlier rollback, or someone undid them by hand)"


class MigrationReportOperator(MigrationOperator):
    """Write the run's report (:mod:`segment_rudderstack.evidence.report`: verdict first, timeline, key figures, chart;
    Markdown, HTML and a sidecar JSON of the raw results), log the verdict, and mark the migration complete
    in the change log (unless it is a dry run). Runs also after a failed step (trigger rule ``all_done``):
    the report then says where it failed and what to do, and the task fails too, so the run stays failed.

    :param plan_name: the plan's name (the report's title and folder).
    :param reports_dir: where reports are written (``<reports_dir>/<plan>/<run>.md`` and the adoption chart).
    :param task_ids: ``{section name: task id}`` of the steps whose results the report shows.
    :param adoption_threshold: the plan's adoption threshold, drawn on the chart.
    :param source_ids: every Segment source of the plan.
    :param selected_source_ids: the sources this run migrates (``params.sources``); the migration is complete
        only when all were.
    :param lane_task_ids: with several schemas, ``{lane: {step: task id}}``: the lanes side by side.
    """

    def __init__(
        self,
        *,
        plan_name: str,
        reports_dir: str,
        task_ids: dict[str, str],
        adoption_threshold: float | str | None = None,
        source_ids: list[str] | None = None,
        selected_source_ids: list[str] | str | None = None,
        lane_task_ids: dict[str, dict[str, str]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.lane_task_ids = lane_task_ids
        self.source_ids = source_ids
        self.selected_source_ids = selected_source_ids
        self.plan_name = plan_name
        self.reports_dir = reports_dir
        self.task_ids = task_ids
        self.adoption_threshold = adoption_threshold

    # task_ids is a template field so that it is kept in the serialized DAG (the migration view reads it).
    template_fields = (
        *MigrationOperator.template_fields,
        "adoption_threshold",
        "selected_source_ids",
        "task_ids",
    )

    def execute(self, context: Any) -> str:
        from segment_rudderstack.evidence.report import ReportFacts, verdict, write_report

        ti = context["ti"]
        run_id = getattr(ti, "run_id", "run")
        tasks = _task_facts(ti)
        if tasks.get("migration_status") is not None and tasks["migration_status"].state == "skipped":
            raise AirflowSkipException(
                "the migration was already complete: this run changed nothing, no report"
            )
        results = {name: ti.xcom_pull(task_ids=task_id) for name, task_id in self.task_ids.items()}
        params = context.get("params") or {}
        selected = as_list(self.selected_source_ids)
        left_out = sorted(set(self.source_ids or []) - set(selected)) if selected is not None else []
        dag_run = context.get("dag_run")
        facts = ReportFacts(
            plan_name=self.plan_name,
            run_id=run_id,
            results=results,
            changes=[asdict(c) for c in self.change_log.entries() if c.run_id == run_id],
            tasks=tasks,
            dry_run=self.is_dry_run,
            threshold=float(self.adoption_threshold) if self.adoption_threshold not in (None, "") else None,
            window_seconds=_number(params.get("adoption_window_seconds")),
            consecutive_checks=int(_number(params.get("adoption_consecutive_checks")) or 0) or None,
            left_out_sources=left_out,
            run_started_at=getattr(dag_run, "start_date", None),
        )
        if self.lane_task_ids:  # several schemas: each lane's figures side by side (lane_report.py)
            from segment_rudderstack.evidence.lane_report import LANES_KEY, run_wide_results

            facts.extra[LANES_KEY] = {
                lane: {step: ti.xcom_pull(task_ids=task_id) for step, task_id in steps.items()}
                for lane, steps in self.lane_task_ids.items()
            }
            for name, value in run_wide_results(facts.extra[LANES_KEY]).items():
                facts.results.setdefault(name, value)
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in run_id)
        paths = write_report(facts, pathlib.Path(self.reports_dir) / self.plan_name, stem)
        result = verdict(facts)
        self.log.info("%s %s", result.text, result.todo)
        self.log.info(
            "report: %s (HTML: %s, raw results: %s)", paths["markdown"], paths["html"], paths["json"]
        )
        if result.kind == "failed":
            raise AirflowFailException(f"{result.text} {result.todo} Report: {paths['markdown']}")
        if result.kind in ("complete", "partial"):
            # Complete only when every source of the plan was migrated; a run over a subset leaves the rest to
            # a later run (which must not be skipped as "already complete").
            outcome = COMPLETE if not left_out else f"partial (not migrated yet: {', '.join(left_out)})"
            status = migration_status(self.change_log, self.plan_name)
            self.apply_change(
                context,
                target=MIGRATION,
                target_id=self.plan_name,
                field=STATUS,
                before=status.after if status else None,
                after=outcome,
                apply=lambda: None,
            )
        return str(paths["markdown"])


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _task_facts(ti: Any) -> dict[str, Any]:
    """States (and durations of finished tasks) of every task of this run, from the Task SDK; empty when
    they cannot be read (outside a running task)."""
    from segment_rudderstack.evidence.report import TaskFact

    try:
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    except Exception:
        return {}
    facts = {task_id: TaskFact(state=str(state) if state else None) for task_id, state in states.items()}
    try:
        for crumb in ti.get_task_breadcrumbs(dag_id=ti.dag_id, run_id=ti.run_id):
            fact = facts.get(crumb.get("task_id"))
            if fact is not None and crumb.get("duration") is not None:
                fact.duration = float(crumb["duration"])
    except Exception:  # durations are a nicety; the states are what the verdict needs
        pass
    return facts
