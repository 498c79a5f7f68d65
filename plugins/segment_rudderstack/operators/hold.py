"""The irreversible steps honour the plan's hold (:mod:`segment_rudderstack.safety.hold`): deferred while it is
set, resumed from the start once it is released."""

from __future__ import annotations

from typing import Any

from segment_rudderstack.safety.hold import HOLD_CHECK_SECONDS, HoldWatch, hold_key


class HoldHonouring:
    """Mixin of the irreversible steps: :meth:`wait_while_held` at the start of ``execute`` defers the task while
    the plan is held; the trigger's event resumes it in :meth:`execute_after_hold`, which runs ``execute`` again
    from the start (every step reads the world again, so nothing it saw before the hold is trusted)."""

    hold_check_seconds: float = HOLD_CHECK_SECONDS

    def wait_while_held(self, context: Any) -> None:
        key = hold_key(self.change_log_key) if getattr(self, "change_log_key", None) else None
        if key is None:
            return
        watch = HoldWatch(variable=key)
        decision = watch.check().decision
        if decision.done:
            return
        if self.is_dry_run:
            self.dry_run_note(
                context, f"the plan is held: a real run would wait here until it is released ({key})"
            )
            return
        from segment_rudderstack.triggers.condition import ConditionTrigger

        self.log.warning("%s: %s; waiting (deferred, no worker slot held)", self.task_id, decision.reason)
        self.defer(
            trigger=ConditionTrigger(watch=watch.spec(), poke_interval=float(self.hold_check_seconds)),
            method_name="execute_after_hold",
        )

    def execute_after_hold(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        from segment_rudderstack.triggers.condition import TriggerStatus

        status = (event or {}).get("status")
        if status != TriggerStatus.DECIDED.value:
            from airflow.sdk.exceptions import AirflowException

            raise AirflowException(
                f"{self.task_id}: the wait for the plan's hold to be released ended with {status!r} "
                f"({(event or {}).get('message', 'no message')}); clear this task to wait again"
            )
        self.log.info("%s: the plan's hold was released; running the step now", self.task_id)
        return self.execute(context)
