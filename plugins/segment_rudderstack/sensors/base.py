"""The sensor side of a watch: ``poke`` in a worker, or defer to :class:`ConditionTrigger`.

Both paths observe through the same watch and decide with the same pure function; a failed decision
fails the task (no retry would change it), a timeout raises ``AirflowSensorTimeout`` in both modes.
"""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from segment_rudderstack.conditions import Decision
from segment_rudderstack.rendered import as_bool
from segment_rudderstack.transient import (
    DEFAULT_TRANSIENT_BUDGET_SECONDS,
    DEFAULT_TRANSIENT_MAX_ERRORS,
    TransientBudget,
    permanent_message,
)
from segment_rudderstack.triggers.condition import ConditionTrigger
from segment_rudderstack.watches import Watch

_UNOBSERVED = object()


class ConditionSensor(BaseSensorOperator):
    """Base class: subclasses implement :meth:`build_watch`; the rest is shared.

    :param transient_budget_seconds: how long observation errors that may pass (database connection refused
        or reset, a truncated 2xx body, 5xx after the hooks' own retries) are ridden out in a row before the
        task fails; permanent errors (401, 403, 404, a missing connection) fail at once, without retries.
    :param transient_max_errors: the same bound as a count of failed checks in a row.
    """

    ui_color = "#d9ecf2"
    template_fields: tuple[str, ...] = ("dry_run",)
    #: lower bound for ``poke_interval`` (a rate-limited API); subclasses may raise it per instance
    min_poke_interval: float = 0.0

    def __init__(
        self,
        *,
        deferrable: bool = True,
        dry_run: bool | str = False,
        transient_budget_seconds: float = DEFAULT_TRANSIENT_BUDGET_SECONDS,
        transient_max_errors: int = DEFAULT_TRANSIENT_MAX_ERRORS,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.transient_budget_seconds = float(transient_budget_seconds)
        self.transient_max_errors = int(transient_max_errors)
        self.deferrable = deferrable
        self.dry_run = dry_run
        self._memory: list[Any] = []

    def build_watch(self, context) -> Watch:
        raise NotImplementedError

    def _interval(self) -> float:
        return max(float(self.poke_interval), float(self.min_poke_interval))

    def _log_decision(self, decision: Decision) -> None:
        self.log.info("%s: %s", decision.outcome.value, decision.reason)

    def _finish(self, decision: Decision) -> dict[str, Any]:
        if decision.failed:
            raise AirflowFailException(decision.reason)
        result = {"reason": decision.reason, **decision.details}
        if self._memory:
            result["history"] = self._memory
        return result

    def execute(self, context) -> Any:
        watch = self.build_watch(context)
        self._watch = watch
        # One check first: when the condition already holds there is nothing to wait for.
        dry_run = as_bool(self.dry_run)
        self._budget = TransientBudget(self.transient_budget_seconds, self.transient_max_errors)
        try:
            observation = watch.observe()
        except (ValueError, LookupError) as exc:
            if not dry_run and not watch.is_transient(exc):
                raise AirflowFailException(permanent_message(exc)) from exc
            if not dry_run:
                observation = self._transient(exc)
            else:
                # In a dry run what this sensor watches may not exist yet (it would have been created upstream).
                self.log.info("DRY RUN: cannot check yet (%s); the real run would wait here", exc)
                return {"reason": f"not checked: {exc}", "dry_run": True}
        except Exception as exc:
            if not watch.is_transient(exc):
                raise AirflowFailException(permanent_message(exc)) from exc
            observation = self._transient(exc)
        if observation is not _UNOBSERVED:
            decision, self._memory = watch.decide(observation, self._memory)
            self._log_decision(decision)
            if decision.outcome.value != "wait":
                return self._finish(decision)
        else:
            decision = None
        if dry_run:
            # A dry run changes nothing upstream, so the awaited state may never come: report and move on.
            self.log.info("DRY RUN: would wait here: %s", decision.reason if decision else "state not observed")
            return {"reason": decision.reason if decision else "not observed", "dry_run": True,
                    **(decision.details if decision else {})}
        if not self.deferrable:
            self.poke_interval = self._interval()
            # The check above was the first poke: the poke loop starts with the wait, not with a second request
            # right away (two back-to-back calls would break a 2-requests-per-minute limit at the floor).
            self._checked_already = True
            return super().execute(context)
        self.defer(
            trigger=ConditionTrigger(
                watch=watch.spec(),
                poke_interval=self._interval(),
                deadline=time.time() + float(self.timeout),
                memory=self._memory,
                first_check_at=time.time() + self._interval(),  # this check counts as the trigger's first
                transient_budget=self._budget.to_dict(),
            ),
            method_name="execute_complete",
        )

    def _get_budget(self) -> TransientBudget:
        if getattr(self, "_budget", None) is None:
            self._budget = TransientBudget(self.transient_budget_seconds, self.transient_max_errors)
        return self._budget

    def _transient(self, exc: BaseException) -> object:
        """Count a transient observation error; fail clearly once the budget is spent."""
        budget = self._get_budget()
        budget.failed()
        if budget.spent():
            raise AirflowException(f"{self.task_id}: {budget.failure_message(exc)}") from exc
        budget.log_failure(self.log, exc, self.task_id)
        return _UNOBSERVED

    def poke(self, context) -> PokeReturnValue:
        if getattr(self, "_checked_already", False):
            self._checked_already = False
            return PokeReturnValue(is_done=False)
        watch = getattr(self, "_watch", None) or self.build_watch(context)
        try:
            observation = watch.observe()
        except Exception as exc:
            # The same rule as the trigger's: an error worth another check waits for the next poke.
            if not watch.is_transient(exc):
                raise AirflowFailException(permanent_message(exc)) from exc
            self._transient(exc)
            return PokeReturnValue(is_done=False)
        self._get_budget().ok()
        decision, self._memory = watch.decide(observation, self._memory)
        self._log_decision(decision)
        if decision.outcome.value == "wait":
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(decision))

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        status = event.get("status")
        if status == "timeout":
            raise AirflowSensorTimeout(
                f"{self.task_id}: the condition did not hold within {self.timeout:.0f} s "
                f"({event.get('checks')} checks). Raise the timeout or look at the last check in the triggerer log."
            )
        if status == "error":
            if event.get("permanent", True):
                raise AirflowFailException(f"{self.task_id}: could not observe state: {event.get('message')}")
            # transient errors outlasted their budget: a clear failure, which Airflow's retries may still take up
            raise AirflowException(f"{self.task_id}: {event.get('message')}")
        self._memory = list(event.get("memory") or [])
        decision = Decision.from_dict(event["decision"])
        self._log_decision(decision)
        return self._finish(decision)
