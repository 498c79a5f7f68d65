"""Optional human gates (Airflow's human-in-the-loop approval) before the steps that cannot be taken back
lightly. When approvals are switched off for a run, the gate logs that and lets the run through."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from segment_rudderstack.operators.base import as_bool


class MigrationApprovalOperator(ApprovalOperator):
    """Airflow's approval gate (human in the loop) before a step that cannot be taken back lightly; a
    rejection fails the run. Other arguments as Airflow's ``ApprovalOperator`` (``subject``, ``body``, ...).

    :param required: ask a person (``True``) or pass at once (``False``, also a rendered template): lets a plan
        or a param switch the gate off.
    """

    template_fields = (*ApprovalOperator.template_fields, "required")

    def __init__(self, *, required: bool | str = True, **kwargs: Any):
        # A rejection stops the migration: nothing after the gate may run on a "no".
        kwargs.setdefault("fail_on_reject", True)
        super().__init__(**kwargs)
        self.required = required

    def execute(self, context: Any) -> Any:
        if not as_bool(self.required):
            self.log.info(
                "approval %r not required for this run (require_approvals=false): continuing", self.subject
            )
            return {"chosen_options": [self.APPROVE], "approved_by": "require_approvals=false"}
        return super().execute(context)
