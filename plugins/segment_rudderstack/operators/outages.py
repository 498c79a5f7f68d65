"""Every step rides out an outage of the services it calls, without holding a worker slot.

A step (an operator's ``execute``) that meets a transient error (``waits/transient.py``: connection refused or
reset, a timeout, a 5xx or 429, a truncated or garbled 2xx body, a warehouse connection drop) does not fail:

1. it warns once per outage, naming the service and its budget (``transient_budget_seconds``, the plan's
   ``waits.transient_budget_minutes``; the release has its own, longer one);
2. it defers to the library's one trigger (:class:`~segment_rudderstack.triggers.condition.ConditionTrigger`)
   watching "the service answers again" (:class:`~segment_rudderstack.waits.outage.ServiceAnswersWatch`): no
   worker slot is held while it waits (with ``deferrable=False`` the same trigger runs in the worker);
3. when the service answers, the task resumes in a worker and runs the step again from its first read: every
   step re-reads before it changes, and an intent the write-ahead log holds from the call whose answer was lost
   is settled from the real state; no observation from before the outage is reused (only the outage record
   travels to the resumed task);
4. when the budget is spent first, the task fails once (``AirflowFailException``: no Airflow retry on top),
   saying what was down, since when and for how long.

While it waits, the task's XCom ``outage`` holds the record (:class:`~segment_rudderstack.waits.outage.Outage`);
the report and the migration view show it, and keep it once the step went through (``ended`` set).
Configuration errors (401, 403, 404, a missing connection, a bad login) still fail at once
(``safety/failfast.py``). Why deferral and not Airflow's retries: docs/design.md, "Outages".
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from segment_rudderstack.safety.failfast import fail_fast
from segment_rudderstack.triggers.condition import ConditionTrigger
from segment_rudderstack.waits.outage import (
    OUTAGE_XCOM_KEY,
    Outage,
    ServiceAnswersWatch,
    probe_for,
    probe_interval,
)
from segment_rudderstack.waits.transient import (
    DEFAULT_TRANSIENT_BUDGET_SECONDS,
    is_transient,
    span,
    utc_minute,
)

#: the step's connection ids by role, read from these attributes (which service to read again)
CONN_ATTRIBUTES = {
    "segment": "segment_conn_id",
    "rudderstack": "rudderstack_conn_id",
    "data_plane": "rudderstack_data_plane_conn_id",
    "warehouse": "warehouse_conn_id",
}
#: the resumed task's method (Airflow calls it with the trigger's event and the outage record)
RESUME_METHOD = "execute_after_outage"


def rides_out_outages(execute: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an ``execute``: configuration errors fail at once (:func:`fail_fast`), outages are waited out."""
    if getattr(execute, "__rides_out__", False):
        return execute
    checked = fail_fast(execute)

    @functools.wraps(execute)
    def wrapper(self: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        while True:
            try:
                result = checked(self, context, *args, **kwargs)
            except AirflowException:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.wait_out_outage(context, exc)  # defers; or, not deferrable, returns once it answers
                continue
            self.outage_over(context)
            return result

    wrapper.__rides_out__ = True  # type: ignore[attr-defined]
    return wrapper


def run_inline(trigger: ConditionTrigger) -> dict[str, Any]:
    """The trigger's first event, waited for in this process (a step that may not defer)."""

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        return {"status": "error", "permanent": False, "message": "the trigger ended without an event"}

    return asyncio.run(first())


class OutageRidingOperator(BaseOperator):
    """Base of the operators that call Segment, RudderStack or the warehouse: their ``execute`` rides out
    outages (see the module docstring) and fails at once on configuration errors.

    :param transient_budget_seconds: how long in all the step waits for a service that does not answer
        (connection refused or reset, timeout, 5xx, 429, garbled 2xx, warehouse connection drop) before it fails.
    :param deferrable: wait in the triggerer (no worker slot held); ``False``: in the worker.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "execute" in cls.__dict__:
            cls.execute = rides_out_outages(cls.__dict__["execute"])

    def __init__(
        self,
        *,
        transient_budget_seconds: float = DEFAULT_TRANSIENT_BUDGET_SECONDS,
        deferrable: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.transient_budget_seconds = float(transient_budget_seconds)
        self.deferrable = deferrable
        self._outage: Outage | None = None

    def outage_world_state(self, context: Any) -> str:
        """What a person should know while this step waits (the release: nothing loads meanwhile)."""
        return "Nothing is lost meanwhile; the step runs again from its first read once the service answers."

    def wait_out_outage(self, context: Any, exc: BaseException) -> None:
        """Count ``exc`` in the current outage (or start one), then wait for the service to answer again:
        defer (raises ``TaskDeferred``) or, not deferrable, wait here. Fails once the budget is spent."""
        now = time.time()
        outage = self._outage
        if outage is not None and outage.continues_with(exc, now):
            outage.failed_again(exc)
            self.log.info(
                "%s still does not answer (%d failed attempts over %s): %s",
                outage.service,
                outage.errors,
                span(outage.elapsed(now)),
                outage.last_error,
            )
        else:
            outage = Outage.begin(
                exc, budget_seconds=self.transient_budget_seconds, task_id=self.task_id, now=now
            )
            self.log.warning(
                "%s does not answer (%s). %s waits for it to answer again (%s), for up to %s (until %s). %s",
                outage.service,
                outage.last_error,
                self.task_id,
                "deferred: no worker slot held" if self.deferrable else "in this worker",
                span(outage.budget_seconds),
                utc_minute(outage.since + outage.budget_seconds),
                self.outage_world_state(context),
            )
        self._outage = outage
        if outage.spent(now):
            raise AirflowFailException(f"{self.task_id}: {outage.failure_message()}") from exc
        self._push_outage(context, outage)
        interval = probe_interval(outage.budget_seconds)
        trigger = ConditionTrigger(
            watch=ServiceAnswersWatch(**probe_for(exc, self._conn_ids())).spec(),
            poke_interval=interval,
            first_check_at=now + min(interval, outage.remaining(now)),
            memory=[outage.to_dict()],  # back in the event too (`airflow dags test` keeps only the event)
            transient_budget={
                "seconds": outage.budget_seconds,
                "since": outage.since,
                "errors": outage.errors,
            },
        )
        if self.deferrable:
            self.defer(
                trigger=trigger,
                method_name=RESUME_METHOD,
                kwargs={"outage": outage.to_dict()},
                timeout=timedelta(seconds=outage.remaining(now) + 600),
            )
        self._answered(run_inline(trigger), outage)

    def execute_after_outage(
        self, context: Any, event: dict[str, Any], outage: dict[str, Any] | None = None
    ) -> Any:
        """Resumed from the trigger: fail when the budget was spent, else run the step again from the start.
        The outage record comes in the deferral's kwargs (the triggerer adds the event to them) or in the
        event's memory (``airflow dags test`` passes the event alone)."""
        memory = (event or {}).get("memory") or [None]
        record = Outage.from_dict(outage or (memory[0] if isinstance(memory[0], dict) else None))
        if record is None:  # neither carried it: what the event says still decides
            record = Outage(
                service="the service", since=time.time(), budget_seconds=0.0, task_id=self.task_id
            )
        self._outage = record
        self._answered(event, record)
        return self.execute(context)

    def _answered(self, event: dict[str, Any], outage: Outage) -> None:
        """The trigger's event: the service answers again (go on), or the wait failed (fail once, clearly)."""
        status = (event or {}).get("status")
        if status == "decided":
            outage.answered_at = time.time()
            self.log.info(
                "%s answers again after %s; %s runs again from its first read",
                outage.service,
                span(outage.elapsed()),
                self.task_id,
            )
            return
        if status == "error" and event.get("permanent"):
            raise AirflowFailException(
                f"{self.task_id}: while waiting for {outage.service} to answer again: {event.get('message')}"
            )
        raise AirflowFailException(f"{self.task_id}: {outage.failure_message(event.get('error'))}")

    def outage_over(self, context: Any) -> None:
        """The step went through: the outage it rode out (if any) is kept, ended, for the report."""
        outage, self._outage = self._outage, None
        if outage is None:
            return
        outage.ended = time.time()
        self.log.info("%s went through: %s", self.task_id, outage.ridden_line())
        self._push_outage(context, outage)

    def _push_outage(self, context: Any, outage: Outage) -> None:
        ti = context.get("ti") if context else None
        push = getattr(ti, "xcom_push", None)
        if push is None:
            return
        try:
            push(key=OUTAGE_XCOM_KEY, value=outage.to_dict())
        except Exception:  # noqa: BLE001 - the record is for people; the step goes on without it
            self.log.warning("could not record the outage for the report", exc_info=True)

    def _conn_ids(self) -> dict[str, str | None]:
        return {role: getattr(self, attr, None) for role, attr in CONN_ATTRIBUTES.items()}
