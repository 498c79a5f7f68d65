"""Wiring a plan's ``notify`` section into its DAGs (no I/O): the run-started, milestone, failure and approval
notifiers on the tasks, the sensors' overdue notices, and the DAG-run Deadline Alert."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from segment_rudderstack.notify.notifier import MigrationNotifier, run_past_deadline
from segment_rudderstack.plan.model import Plan


def _callbacks(existing: Any) -> list[Any]:
    if existing is None:
        return []
    return list(existing) if isinstance(existing, list | tuple) else [existing]


def deadline_alert(plan: Plan) -> Any:
    """The DAG-run Deadline Alert of ``notify.run_deadline_minutes`` (runs in the triggerer), or ``None``."""
    notify = plan.notify
    if notify is None or not notify.run_deadline_minutes:
        return None
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=notify.run_deadline_minutes),
        callback=AsyncCallback(
            run_past_deadline,
            kwargs={"plan_name": plan.name, "dag_id": plan.dag_id, "settings": notify.as_settings()},
        ),
        name=f"{plan.name}: run past notify.run_deadline_minutes",
    )


def attach_notifications(dag: Any, plan: Plan, first: Any, milestones: Mapping[str, Iterable[Any]]) -> None:
    """Every task notifies its failure; ``first`` the run's start; each milestone's tasks their success; the
    approval gates (Airflow HITL) their request, assigned to ``notify.approvers``; sensors their overdue phase."""
    if plan.notify is None:
        return
    from airflow.providers.standard.operators.hitl import HITLOperator

    from segment_rudderstack.sensors.base import ConditionSensor

    settings = plan.notify.as_settings()

    def notifier(event: str, milestone: str | None = None) -> MigrationNotifier:
        return MigrationNotifier(event=event, settings=settings, plan_name=plan.name, milestone=milestone)

    approvers = [{"id": user, "name": user} for user in plan.notify.approvers]
    for task in dag.tasks:
        task.on_failure_callback = [*_callbacks(task.on_failure_callback), notifier("failure")]
        if isinstance(task, ConditionSensor):
            task.notify_settings, task.plan_name = settings, plan.name
        if isinstance(task, HITLOperator):
            task.notifiers = [*task.notifiers, notifier("approval")]
            task.assigned_users = approvers or task.assigned_users
    if first is not None:
        first.on_execute_callback = [*_callbacks(first.on_execute_callback), notifier("run_started")]
    for name, tasks in milestones.items():
        for task in tasks:
            task.on_success_callback = [*_callbacks(task.on_success_callback), notifier("milestone", name)]
