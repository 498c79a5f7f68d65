"""The migration's end: the report (verdict first), and marking the migration complete."""

from __future__ import annotations

import pathlib
from dataclasses import asdict
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from segment_rudderstack.evidence.report_outages import OUTAGES_KEY
from segment_rudderstack.operators.base import MigrationOperator
from segment_rudderstack.operators.status import COMPLETE, MIGRATION, STATUS, migration_status
from segment_rudderstack.rendered import as_list
from segment_rudderstack.waits.outage import OUTAGE_XCOM_KEY


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
    :param task_order: the DAG's task ids in run order (the factory sets it): a dry run's plan lists every task's
        would-be changes in it (:mod:`segment_rudderstack.evidence.dry_run_plan`).
    :param shape_task_ids: the shape checks (their XCom ``shape``: the section "Shape continuity").
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
        task_order: list[str] | None = None,
        shape_task_ids: list[str] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.shape_task_ids = list(shape_task_ids or [])
        self.task_order = list(task_order or [])
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
        "task_order",
        "shape_task_ids",
    )

    def execute(self, context: Any) -> str:
        import segment_rudderstack.evidence.stays_on_segment  # noqa: F401 - its section: "What stays on Segment"
        from segment_rudderstack.evidence.report import verdict
        from segment_rudderstack.evidence.report_facts import ReportFacts
        from segment_rudderstack.evidence.report_render import write_report

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
        self._estimates(ti, facts)  # outages waited out, ETAs, shape checks; in a dry run the dry-run plan
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

    def _outages(self, ti: Any) -> dict[str, Any]:
        """Task id → the outage record (XCom ``outage``) of each step the report shows that met one."""
        lanes = (self.lane_task_ids or {}).values()
        task_ids = {*self.task_ids.values(), *(t for steps in lanes for t in steps.values())}
        records = {
            task_id: ti.xcom_pull(task_ids=task_id, key=OUTAGE_XCOM_KEY) for task_id in sorted(task_ids)
        }
        return {task_id: record for task_id, record in records.items() if isinstance(record, dict)}

    def _shape(self, ti: Any, facts: Any) -> None:
        """The shape checks' results (XCom ``shape``), for the section "Shape continuity"."""
        import segment_rudderstack.evidence.shape_report  # noqa: F401 - registers the section
        from segment_rudderstack.shape.findings import SHAPE_KEY

        pulled = {t: ti.xcom_pull(task_ids=t, key=SHAPE_KEY) for t in self.shape_task_ids}
        facts.extra[SHAPE_KEY] = {t: v for t, v in pulled.items() if isinstance(v, dict)}

    def _estimates(self, ti: Any, facts: Any) -> None:
        """The ETA each waiting sensor recorded (XCom ``eta``), for the report's section "ETA per phase"."""
        from segment_rudderstack.evidence.eta_report import ETAS_KEY
        from segment_rudderstack.sensors.estimates import ETA_KEY

        facts.extra[OUTAGES_KEY] = self._outages(ti)  # what the steps waited out (report_outages.py)
        self._shape(ti, facts)
        etas = {t: ti.xcom_pull(task_ids=t, key=ETA_KEY) for t in self.task_order if t != self.task_id}
        facts.extra[ETAS_KEY] = {t: v for t, v in etas.items() if isinstance(v, dict)}
        if self.is_dry_run:  # every task's would-be changes, in run order
            self._dry_run_plan(ti, facts)

    def _dry_run_plan(self, ti: Any, facts: Any) -> None:
        """Gather the tasks' XCom ``would_change`` in run order into the report, this task's XCom
        ``dry_run_plan`` and the plan's Variable (which the approval gates of a later real run show)."""
        from datetime import UTC, datetime

        from segment_rudderstack.evidence.dry_run_plan import (
            PLAN_KEY,
            PLAN_XCOM_KEY,
            WOULD_CHANGE_KEY,
            consolidate,
            plan_variable,
        )

        by_task = {
            t: ti.xcom_pull(task_ids=t, key=WOULD_CHANGE_KEY) for t in self.task_order if t != self.task_id
        }
        plan = consolidate({t: v for t, v in by_task.items() if v}, self.task_order)
        facts.extra[PLAN_KEY] = plan
        if getattr(ti, "xcom_push", None) is not None:  # a task run (a library test's bare context has none)
            ti.xcom_push(key=PLAN_XCOM_KEY, value=plan)
        saved = {"run_id": facts.run_id, "at": datetime.now(UTC).isoformat(), "entries": plan}
        self.change_log.store.set(plan_variable(self.plan_name), saved, serialize_json=True)
        self.log.info(
            "dry-run plan: %d step(s) a real run would take (report section 'Dry-run plan')", len(plan)
        )


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _task_facts(ti: Any) -> dict[str, Any]:
    """States (and durations of finished tasks) of every task of this run, from the Task SDK; empty when
    they cannot be read (outside a running task)."""
    from segment_rudderstack.evidence.report_facts import TaskFact

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
