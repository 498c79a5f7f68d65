"""The migration's notifier: an Airflow ``BaseNotifier`` the factory attaches where something happens (the first
task's ``on_execute_callback``: run started; a milestone task's ``on_success_callback``; every task's
``on_failure_callback``; an approval gate's HITL ``notifiers``), and the DAG-run Deadline Alert's callback.

It reads what happened from the task's context, builds the message (:mod:`segment_rudderstack.notify.messages`)
and delivers it (:mod:`segment_rudderstack.notify.channels`). It never fails the task it is attached to.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

from segment_rudderstack.notify import messages
from segment_rudderstack.notify.channels import adeliver, deliver, wants

log = logging.getLogger(__name__)
VIEW_PATH = "/segment-rudderstack/dags/"


def base_url(settings: Mapping[str, Any] | None) -> str:
    """Where links point: the plan's ``notify.base_url``, else Airflow's ``[api] base_url``."""
    configured = (settings or {}).get("base_url")
    if configured:
        return str(configured).rstrip("/")
    try:
        from airflow.configuration import conf

        return str(conf.get("api", "base_url", fallback="http://localhost:8080")).rstrip("/")
    except Exception:
        return "http://localhost:8080"


def view_link(settings: Mapping[str, Any] | None, dag_id: str) -> str:
    return f"{base_url(settings)}{VIEW_PATH}{dag_id}"


class MigrationNotifier(BaseNotifier):
    """Send one kind of migration message to the plan's channels.

    :param event: ``run_started``, ``milestone``, ``approval`` or ``failure``.
    :param settings: the plan's notify section as data (``NotifySettings.as_settings()``).
    :param plan_name: the plan's name (in every subject).
    :param milestone: for ``milestone``: which one (``messages.MILESTONES``).
    """

    def __init__(
        self, *, event: str, settings: Mapping[str, Any], plan_name: str, milestone: str | None = None
    ):
        super().__init__()
        self.event = event
        self.settings = dict(settings)
        self.plan_name = plan_name
        self.milestone = milestone

    def notify(self, context: Any) -> None:
        if not wants(self.settings, self.event):
            return
        try:
            message = self.message(context)
        except Exception as exc:  # a message that cannot be built is logged, never fails the task
            log.warning("no %s notification: %s: %s", self.event, type(exc).__name__, messages.safe_text(exc))
            return
        if message is not None:
            deliver(message, self.settings, context)

    def message(self, context: Any) -> messages.Message | None:
        ti = context.get("ti") or context.get("task_instance")
        run_id = getattr(ti, "run_id", None) or ""
        dag_id = getattr(ti, "dag_id", None) or ""
        dry_run = _dry_run(context)
        link = view_link(self.settings, dag_id)
        if self.event == "run_started":
            return messages.run_started(self.plan_name, run_id, dry_run=dry_run, link=link)
        if self.event == "failure":
            return self._failure(context, ti, run_id)
        if self.event == "approval":
            return self._approval(context, run_id, link)
        if self.event == "milestone":
            result = ti.xcom_pull(task_ids=ti.task_id) if ti is not None else None
            if dry_run:  # a dry run reaches no milestone; its end says what a real run would change
                if self.milestone != "complete":
                    return None
                return messages.dry_run_finished(self.plan_name, run_id, _dry_run_changes(ti), result, link)
            return messages.milestone(self.plan_name, run_id, self.milestone or "", result, link=link)
        return None

    def _failure(self, context: Any, ti: Any, run_id: str) -> messages.Message:
        from segment_rudderstack.evidence.report_facts import phase_of

        task_id = getattr(ti, "task_id", "?")
        phase = phase_of(task_id)
        reason = context.get("exception") or context.get("reason") or "(the task log has the reason)"
        todo = phase.on_failure if phase else "read the task's log, fix the cause and clear the task"
        return messages.failure(
            self.plan_name,
            run_id,
            task_id,
            phase=phase.label if phase else "outside the runbook's phases",
            reason=f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else reason,
            todo=todo + ". To undo what the migration changed, trigger its rollback DAG",
            link=_log_url(ti) or view_link(self.settings, getattr(ti, "dag_id", "")),
        )

    def _approval(self, context: Any, run_id: str, fallback: str) -> messages.Message:
        task = context.get("task")
        link = fallback
        try:
            from airflow.providers.standard.operators.hitl import HITLOperator

            link = HITLOperator.generate_link_to_ui_from_context(
                context=context, base_url=base_url(self.settings)
            )
        except Exception:  # no base URL configured, or not a HITL task: the migration view
            pass
        assigned = [str(u.get("name") or u.get("id")) for u in (getattr(task, "assigned_users", None) or [])]
        return messages.approval(
            self.plan_name,
            run_id,
            str(getattr(task, "subject", "") or ""),
            str(getattr(task, "body", "") or ""),
            assigned=assigned,
            link=link,
        )


def _dry_run(context: Any) -> bool:
    from segment_rudderstack.rendered import as_bool

    params = context.get("params") or {}
    try:
        return as_bool(params.get("dry_run", False))
    except Exception:
        return False


def _dry_run_changes(ti: Any) -> int:
    from segment_rudderstack.evidence.dry_run_plan import PLAN_XCOM_KEY

    try:
        plan = ti.xcom_pull(task_ids=ti.task_id, key=PLAN_XCOM_KEY) or []
    except Exception:
        return 0
    return sum(1 for entry in plan if isinstance(entry, Mapping) and entry.get("kind") == "change")


def _log_url(ti: Any) -> str | None:
    try:
        return str(ti.log_url)
    except Exception:
        return None


async def run_past_deadline(
    plan_name: str, dag_id: str, settings: Mapping[str, Any], context: Any = None
) -> None:
    """The DAG-run Deadline Alert's callback (runs in the triggerer): the run is still going past the plan's
    ``notify.run_deadline_minutes``."""
    if not wants(settings, "stalled"):
        return
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    message = messages.run_stalled(
        plan_name,
        run.get("run_id") or run.get("dag_run_id"),
        deadline=str(deadline or "the deadline"),
        state=run.get("state"),
        link=view_link(settings, dag_id),
    )
    await adeliver(message, settings, {})
