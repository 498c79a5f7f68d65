"""Optional human gates (Airflow's human-in-the-loop operators) before the steps that cannot be taken back
lightly. When approvals are switched off for a run, the gate logs that and lets the run through.

An approval gate shows the part of the plan it approves: the changes its downstream tasks made in the plan's
latest dry run (:mod:`segment_rudderstack.evidence.dry_run_plan`). A gap in the proof from Segment's metrics
asks a three-way question instead of approve-or-fail: proceed, hold the plan, or roll back.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLBranchOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.evidence.dry_run_plan import describe, plan_for_tasks, plan_variable
from segment_rudderstack.operators.base import as_bool

MAX_PLAN_LINES = 20


def approved_plan_text(plan_name: str | None, task_ids: list[str], store: Any = None) -> str:
    """What approving lets happen, from the plan's latest dry run (or how to get it)."""
    if not plan_name:
        return ""
    from segment_rudderstack.safety.changelog import default_store

    try:
        saved = (store or default_store()).get(plan_variable(plan_name), default=None, deserialize_json=True)
    except Exception:
        saved = None
    if not isinstance(saved, dict):
        return (
            "\n\nNo dry run of this plan is recorded: trigger one (param dry_run) to see the exact changes "
            "this approval lets happen."
        )
    entries = plan_for_tasks(saved.get("entries") or [], task_ids)
    if not entries:
        return f"\n\nIn the latest dry run ({saved.get('run_id')}) the steps after this gate changed nothing."
    lines = [f"{e.get('step')}. `{e.get('task_id')}`: {describe(e)}" for e in entries[:MAX_PLAN_LINES]]
    more = len(entries) - len(lines)
    return (
        f"\n\n**What approving lets happen** (the dry run {saved.get('run_id')} of {saved.get('at')}; a real run "
        "reads everything again before each change):\n"
        + "\n".join(f"- {line}" for line in lines)
        + (f"\n- ... and {more} more (see that run's report)" if more > 0 else "")
    )


class MigrationApprovalOperator(ApprovalOperator):
    """Airflow's approval gate (human in the loop) before a step that cannot be taken back lightly; a
    rejection fails the run. Other arguments as Airflow's ``ApprovalOperator`` (``subject``, ``body``, ...).

    :param required: ask a person (``True``) or pass at once (``False``, also a rendered template): lets a plan
        or a param switch the gate off.
    :param plan_name: the plan whose latest dry-run plan the gate shows (the part its downstream tasks make).
    """

    template_fields = (*ApprovalOperator.template_fields, "required")

    def __init__(self, *, required: bool | str = True, plan_name: str | None = None, **kwargs: Any):
        # A rejection stops the migration: nothing after the gate may run on a "no".
        kwargs.setdefault("fail_on_reject", True)
        super().__init__(**kwargs)
        self.required = required
        self.plan_name = plan_name

    def execute(self, context: Any) -> Any:
        if not as_bool(self.required):
            self.log.info(
                "approval %r not required for this run (require_approvals=false): continuing", self.subject
            )
            return {"chosen_options": [self.APPROVE], "approved_by": "require_approvals=false"}
        downstream = sorted(self.get_flat_relative_ids(upstream=False))
        self.body = (self.body or "") + approved_plan_text(self.plan_name, downstream)
        return super().execute(context)


class ProofGapChoiceOperator(HITLBranchOperator):
    """At a gap in the proof from Segment's metrics: a person chooses to proceed (switch Segment's webhook off),
    hold the plan (the switch-off then waits until the hold is released) or roll back (the rollback DAG). Without
    a gap (``required`` false) the run proceeds at once.

    :param required: ask (``True``) or proceed at once (``False``; a rendered template: the proof found a gap).
    :param proceed_task_id: the task a "Proceed" runs.
    :param hold_task_id: the task a "Hold" runs (it sets the plan's hold).
    :param rollback_task_id: the task a "Roll back" runs.
    """

    PROCEED, HOLD, ROLL_BACK = "Proceed", "Hold", "Roll back"
    template_fields = (*HITLBranchOperator.template_fields, "required")

    def __init__(
        self,
        *,
        required: bool | str,
        proceed_task_id: str,
        hold_task_id: str,
        rollback_task_id: str,
        **kwargs: Any,
    ):
        mapping = {self.PROCEED: proceed_task_id, self.HOLD: hold_task_id, self.ROLL_BACK: rollback_task_id}
        super().__init__(options=list(mapping), options_mapping=mapping, multiple=False, **kwargs)
        self.required = required

    def execute(self, context: Any) -> Any:
        if not as_bool(self.required):
            self.log.info("no gap in the proof: proceeding without asking")
            return self.do_branch(context, [self.options_mapping[self.PROCEED]])
        return super().execute(context)


class HoldPlanOperator(BaseOperator):
    """Set the plan's hold (a person chose "Hold" at a gate): the irreversible steps after it wait until someone
    releases it (the migration view, or ``airflow variables delete <key>``).

    :param hold_key: the plan's hold Variable (``segment_rudderstack.safety.hold.hold_key_for_plan``).
    :param reason: why it is held (shown in the view and in the waiting step's log).
    """

    ui_color = "#fff3cd"

    def __init__(self, *, hold_key: str, reason: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.hold_key = hold_key
        self.reason = reason

    def execute(self, context: Any) -> str:
        from segment_rudderstack.safety.changelog import default_store
        from segment_rudderstack.safety.hold import hold_value

        default_store().set(self.hold_key, hold_value(self.reason, by=f"run {context['ti'].run_id}"))
        self.log.info(
            "plan held (%s): release it in the migration view or: airflow variables delete %s",
            self.reason,
            self.hold_key,
        )
        return self.hold_key


class StopAfterRollbackOperator(BaseOperator):
    """After a person chose "Roll back": the migration run stops here, failed, saying so (the rollback DAG runs).

    :param rollback_dag_id: the plan's rollback DAG.
    """

    ui_color = "#f8d7da"

    def __init__(self, *, rollback_dag_id: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.rollback_dag_id = rollback_dag_id

    def execute(self, context: Any) -> None:
        raise AirflowFailException(
            f"a person chose Roll back at the proof gap: the rollback DAG {self.rollback_dag_id} was triggered and "
            "undoes the migration's changes; this migration run stops here. Read the proof in the report, fix the "
            "cause, then trigger the migration again."
        )
