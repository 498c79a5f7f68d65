"""One deferrable trigger for every wait condition of the library.

A sensor hands the trigger a *watch* (see ``segment_rudderstack.waits.watches``): a small serializable object
that knows how to observe state (asynchronously here, synchronously in ``poke``) and which pure function
of ``segment_rudderstack.waits.conditions`` decides on it. The trigger polls until the decision is done or
failed, or until the sensor's deadline passes, and then fires one event.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from segment_rudderstack.waits.transient import TransientBudget, describe, permanent_message
from segment_rudderstack.waits.watches import Watch, load_watch


class TriggerStatus(enum.StrEnum):
    """The ``status`` of every event :class:`ConditionTrigger` yields; the sensor fails closed on any other."""

    DECIDED = "decided"
    TIMEOUT = "timeout"
    ERROR = "error"


LOG_EVERY = 20


class _DeadlinePassed(Exception):
    """The sensor's timeout came while a check was still waiting (for its turn or for an answer)."""


class ConditionTrigger(BaseTrigger):
    """Poll a watch until its condition is decided or the deadline passes; fire one event.

    The event is ``{"status": TriggerStatus.DECIDED.value, "decision": ..., "memory": ...}``, ``{"status": TriggerStatus.TIMEOUT.value}`` or
    ``{"status": TriggerStatus.ERROR.value, "permanent": ..., "message": ...}`` (an observation error that another check would not
    fix, or transient errors that outlasted their budget: then ``error`` is the last one, in one line).

    :param watch: the watch's :meth:`~segment_rudderstack.waits.watches.Watch.spec` (class path and fields).
    :param poke_interval: seconds between checks.
    :param deadline: epoch seconds after which the wait ends with a timeout event; ``None``: no deadline.
    :param memory: what the condition carried from earlier checks (the adoption streak).
    :param first_check_at: epoch seconds of the first check (the sensor has just checked before deferring);
        ``None``: check at once.
    :param transient_budget: how long transient observation errors in a row are ridden out
        (:class:`~segment_rudderstack.waits.transient.TransientBudget` as a dict); then an error event
        with ``permanent: False``.
    :param notice: ``{"at": epoch seconds, "settings": notify settings, "message": Message fields}``: sent once
        (:mod:`segment_rudderstack.notify.channels`) when the wait is still going at ``at`` (a phase overdue).
    """

    def __init__(
        self,
        watch: dict[str, Any],
        poke_interval: float,
        deadline: float | None = None,
        memory: list[Any] | None = None,
        first_check_at: float | None = None,
        transient_budget: dict[str, Any] | None = None,
        notice: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.notice = dict(notice) if notice else None
        # how long transient observation errors in a row are ridden out (see segment_rudderstack.waits.transient)
        self.transient_budget = dict(transient_budget or {})
        # epoch seconds of the first check (the sensor has just checked before deferring); None: at once
        self.first_check_at = first_check_at
        self.watch_spec = watch
        self.poke_interval = float(poke_interval)
        self.deadline = deadline  # epoch seconds; None: no deadline
        self.memory = list(memory or [])

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "watch": self.watch_spec,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
                "memory": self.memory,
                "first_check_at": self.first_check_at,
                "transient_budget": self.transient_budget,
                **({"notice": self.notice} if self.notice else {}),
            },
        )

    async def _check_before_deadline(self, watch: Watch, memory: list[Any]):
        if self.deadline is None:
            return await watch.acheck(memory)
        try:
            return await asyncio.wait_for(watch.acheck(memory), max(0.001, self.deadline - time.time()))
        except TimeoutError:
            if time.time() >= self.deadline:
                raise _DeadlinePassed from None
            raise

    def _failed_check_event(
        self, watch: Watch, budget: TransientBudget, exc: Exception, checks: int, memory: list
    ) -> dict[str, Any] | None:
        """The event that ends the wait after a check that failed (a permanent error, or the transient budget
        spent), or None when the failure is ridden out (and logged)."""
        if not watch.is_transient(exc):
            return {
                "status": TriggerStatus.ERROR.value,
                "permanent": True,
                "message": permanent_message(exc),
                "checks": checks,
            }
        budget.failed()
        if budget.spent():
            return {
                "status": TriggerStatus.ERROR.value,
                "permanent": False,
                "message": budget.failure_message(exc),
                "error": describe(exc),
                "checks": checks,
                "memory": memory,
            }
        budget.log_failure(self.log, exc, f"check {checks}")
        return None

    async def _send_notice_when_due(self) -> None:
        """The overdue notice, once, when its time has come while the wait goes on (never ends the wait)."""
        if not self.notice or time.time() < float(self.notice.get("at") or 0):
            return
        notice, self.notice = self.notice, None
        from segment_rudderstack.notify.channels import adeliver
        from segment_rudderstack.notify.messages import Message

        try:
            await adeliver(Message(**notice["message"]), notice.get("settings"))
        except Exception as exc:  # a notice is a help, never a reason to end the wait
            self.log.warning("overdue notice not sent: %s", type(exc).__name__)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch: Watch = load_watch(self.watch_spec)
        memory = list(self.memory)
        budget = TransientBudget(**self.transient_budget)
        checks = 0
        last_reason = None
        if self.first_check_at is not None:
            until = self.first_check_at if self.deadline is None else min(self.first_check_at, self.deadline)
            await asyncio.sleep(max(0.0, until - time.time()))
        while True:
            if self.deadline is not None and time.time() >= self.deadline:
                yield TriggerEvent(
                    {"status": TriggerStatus.TIMEOUT.value, "checks": checks, "memory": memory}
                )
                return
            checks += 1
            try:
                check = await self._check_before_deadline(watch, memory)
            except _DeadlinePassed:
                # e.g. queued behind other sensors for Segment's sync-list budget until the sensor's timeout
                yield TriggerEvent(
                    {"status": TriggerStatus.TIMEOUT.value, "checks": checks - 1, "memory": memory}
                )
                return
            except Exception as exc:  # an observation that cannot be made: ride it out or end the wait
                event = self._failed_check_event(watch, budget, exc, checks, memory)
                if event is not None:
                    yield TriggerEvent(event)
                    return
            else:
                budget.ok()
                decision, memory = check.decision, check.memory
                del check  # holds a page of up to 1000 reports: not kept alive while the trigger sleeps
                # One line when the answer changes (and every LOG_EVERY checks while it does not): hundreds of
                # triggers polling every few seconds would otherwise flood the triggerer log with repeats.
                if decision.reason != last_reason or checks % LOG_EVERY == 1:
                    self.log.info("check %d: %s: %s", checks, decision.outcome.value, decision.reason)
                    last_reason = decision.reason
                if not decision.waiting:
                    yield TriggerEvent(
                        {
                            "status": TriggerStatus.DECIDED.value,
                            "decision": decision.to_dict(),
                            "checks": checks,
                            "memory": memory,
                        }
                    )
                    return
            await self._send_notice_when_due()
            sleep = self.poke_interval
            if self.deadline is not None:
                sleep = max(0.0, min(sleep, self.deadline - time.time()))
            await asyncio.sleep(sleep)
