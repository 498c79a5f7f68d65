"""The sensor side of a watch: ``poke`` in a worker, or defer to :class:`ConditionTrigger`.

Both paths observe through the same watch and decide with the same pure function; a failed decision
fails the task (no retry would change it), a timeout raises ``AirflowSensorTimeout`` in both modes.
"""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from segment_rudderstack.evidence.dry_run_plan import WAIT, note_entry, push_entries
from segment_rudderstack.evidence.eta import Eta
from segment_rudderstack.rendered import as_bool
from segment_rudderstack.sensors.estimates import record_estimate
from segment_rudderstack.triggers.condition import ConditionTrigger, TriggerStatus
from segment_rudderstack.waits.conditions import Decision
from segment_rudderstack.waits.transient import (
    DEFAULT_TRANSIENT_BUDGET_SECONDS,
    DEFAULT_TRANSIENT_MAX_ERRORS,
    TransientBudget,
    permanent_message,
)
from segment_rudderstack.waits.watches import Watch


class ConditionSensor(BaseSensorOperator):
    """Base class of the migration's sensors: subclasses implement :meth:`build_watch`; the rest is shared.

    The first check is the first :meth:`poke` (the same error rules as every later poke and as the
    trigger); when the condition does not hold yet the sensor defers to :class:`ConditionTrigger` (or, with
    ``deferrable=False``, keeps poking in the worker).

    :param deferrable: wait in the triggerer (no worker slot held) rather than poking in a worker.
    :param dry_run: check once and report; never wait (a dry run changes nothing upstream, so the awaited
        state may never come). Also accepts a rendered template (``"True"``/``"False"``).
    :param transient_budget_seconds: how long observation errors that may pass (database connection refused
        or reset, a truncated 2xx body, 5xx after the hooks' own retries) are ridden out in a row before the
        task fails, once, naming the service (the plan's ``waits.transient_budget_minutes``); permanent errors
        (401, 403, 404, a missing connection) fail at once, without retries.
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
        self._watch: Watch | None = None
        self._last_decision: Decision | None = None
        self._budget = TransientBudget(self.transient_budget_seconds, self.transient_max_errors)
        # True between the first check (made by execute) and the poke loop's first call: that call is skipped
        # so the loop starts with a wait (two back-to-back requests would break a 2-per-minute rate limit).
        self._first_check_made = False

    def build_watch(self, context) -> Watch:
        raise NotImplementedError

    #: the plan's notify settings and name (set by the factory): an overdue notice when the ETA passes
    notify_settings: dict[str, Any] | None = None
    plan_name: str = ""
    _last_observation: Any = None

    def estimate(self, context) -> Eta | None:
        """When the wait is expected to end, from the last observation (:mod:`segment_rudderstack.evidence.eta`);
        ``None``: this sensor makes no estimate."""
        return None

    def watch(self, context) -> Watch:
        """The watch of this task run, built once."""
        if self._watch is None:
            self._watch = self.build_watch(context)
        return self._watch

    def _interval(self) -> float:
        return max(float(self.poke_interval), float(self.min_poke_interval))

    def _log_decision(self, decision: Decision) -> None:
        self.log.info("%s: %s", decision.outcome.value, decision.reason)

    def _finish(self, decision: Decision) -> dict[str, Any]:
        """The task's result for a decision that ends the wait; anything but DONE fails the task."""
        if decision.failed:
            raise AirflowFailException(decision.reason)
        if not decision.done:  # fail closed: only a DONE decision may reach the success path
            raise AirflowFailException(
                f"{self.task_id}: the wait ended without the condition holding ({decision.outcome.value}: "
                f"{decision.reason}); re-run this task"
            )
        result = {"reason": decision.reason, **decision.details}
        if self._memory:
            result["history"] = self._memory
        return result

    def execute(self, context) -> Any:
        dry_run = as_bool(self.dry_run)
        self._budget = TransientBudget(self.transient_budget_seconds, self.transient_max_errors)
        try:
            first = self.poke(context)  # the first check is the first poke: one check path
        except (ValueError, LookupError) as exc:  # only a dry run lets these through poke
            # In a dry run what this sensor watches may not exist yet (it would have been created upstream).
            self.log.info("DRY RUN: cannot check yet (%s); the real run would wait here", exc)
            push_entries(
                context, [note_entry(f"{self.task_id}: a real run waits here (not checked: {exc})", WAIT)]
            )
            return {"reason": f"not checked: {exc}", "dry_run": True}
        if first.is_done:
            return first.xcom_value
        if dry_run:
            # A dry run changes nothing upstream, so the awaited state may never come: report and move on.
            decision = self._last_decision
            self.log.info(
                "DRY RUN: would wait here: %s", decision.reason if decision else "state not observed"
            )
            push_entries(context, [note_entry(decision.reason if decision else "state not observed", WAIT)])
            return {
                "reason": decision.reason if decision else "not observed",
                "dry_run": True,
                **(decision.details if decision else {}),
            }
        notice = record_estimate(self, context)  # the phase's ETA (XCom "eta"), and its overdue notice
        if not self.deferrable:
            self.poke_interval = self._interval()
            self._first_check_made = True
            return super().execute(context)
        self.defer(
            trigger=ConditionTrigger(
                watch=self.watch(context).spec(),
                poke_interval=self._interval(),
                deadline=time.time() + float(self.timeout),
                memory=self._memory,
                first_check_at=time.time() + self._interval(),  # this check counts as the trigger's first
                transient_budget=self._budget.to_dict(),
                **({"notice": notice} if notice else {}),
            ),
            method_name="execute_complete",
        )

    def _transient(self, exc: BaseException) -> None:
        """Count a transient observation error; fail clearly once the budget is spent."""
        self._budget.failed()
        if self._budget.spent():  # fails once: the budget is the policy, no Airflow retry on top of it
            raise AirflowFailException(f"{self.task_id}: {self._budget.failure_message(exc)}") from exc
        self._budget.log_failure(self.log, exc, self.task_id)

    def poke(self, context) -> PokeReturnValue:
        if self._first_check_made:
            self._first_check_made = False  # execute made this check already
            return PokeReturnValue(is_done=False)
        watch = self.watch(context)
        try:
            check = watch.check(self._memory)
        except Exception as exc:
            # The same rule as the trigger's: an error worth another check waits for the next poke (within the
            # budget); any other error fails at once, except what a dry run reports instead (see execute).
            if watch.is_transient(exc):
                self._transient(exc)
                return PokeReturnValue(is_done=False)
            if as_bool(self.dry_run) and isinstance(exc, (ValueError, LookupError)):
                raise
            raise AirflowFailException(permanent_message(exc)) from exc
        self._budget.ok()
        self._memory = check.memory
        self._last_observation = check.observation  # what estimate() reads
        self._last_decision = decision = check.decision
        self._log_decision(decision)
        if decision.waiting:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(decision))

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        status = event.get("status")
        if status == TriggerStatus.TIMEOUT:
            raise AirflowSensorTimeout(
                f"{self.task_id}: the condition did not hold within {self.timeout:.0f} s "
                f"({event.get('checks')} checks). Raise the timeout or look at the last check in the triggerer log."
            )
        if status == TriggerStatus.ERROR:
            if event.get("permanent", True):
                raise AirflowFailException(f"{self.task_id}: could not observe state: {event.get('message')}")
            # transient errors outlasted their budget: a clear failure, once (no Airflow retry on top of it)
            raise AirflowFailException(f"{self.task_id}: {event.get('message')}")
        if status != TriggerStatus.DECIDED or not isinstance(event.get("decision"), dict):
            # Fail closed: an event this sensor does not model must not reach the success path.
            raise AirflowFailException(
                f"{self.task_id}: the trigger sent an event this sensor does not know (status {status!r}); "
                "expected 'decided', 'timeout' or 'error'. Nothing was decided: re-run this task, and check that "
                "the triggerer runs the same library version as the workers."
            )
        self._memory = list(event.get("memory") or [])
        decision = Decision.from_dict(event["decision"])
        self._log_decision(decision)
        return self._finish(decision)
