"""An outage a step rides out: which service, since when, within which budget, and how to tell it is over.

A step that changes things (``operators/outages.py``) meets a transient error (``waits/transient.py``): the
service it called is down or failing. The step then waits for that service to answer again and runs once more
from its first read. This module holds what that needs below the operators:

- :class:`Outage`: the record of one outage (plain values: it travels in a trigger's and a resumed task's
  kwargs, and is pushed as the task's XCom ``outage`` for the report and the migration view), with the lines a
  person reads ("waiting for RudderStack's control plane since 12:04 UTC, 3 min; budget 15 min").
- :class:`ServiceAnswersWatch`: the watch of "the service answers again": one cheap read of the service that
  failed (Segment's Get Workspace, RudderStack's source list, the data plane's ``/health``, ``SELECT 1`` in the
  warehouse), decided by :func:`~segment_rudderstack.waits.conditions.service_answers_decision`; the library's
  one trigger polls it.
- :func:`probe_for`: which read that is, from the error (the hooks name their connection on it) or the step's
  own connection ids.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from segment_rudderstack.waits import conditions
from segment_rudderstack.waits.transient import WAREHOUSE, describe, service_of, span, utc_minute
from segment_rudderstack.waits.watches import Watch

#: XCom key of a task's outage record (read by the report and the migration view)
OUTAGE_XCOM_KEY = "outage"
#: a new error of the same service within this long after it answered again continues the same outage
REJOIN_SECONDS = 120.0


def probe_interval(budget_seconds: float) -> float:
    """Seconds between two reads of a service that does not answer: a twentieth of the budget, 1 to 30 s."""
    return min(30.0, max(1.0, float(budget_seconds) / 20.0))


@dataclass
class Outage:
    """One outage of one service as a step meets it (epoch seconds; ``ended`` once the step went through)."""

    service: str
    since: float
    budget_seconds: float
    errors: int = 1
    last_error: str = ""
    task_id: str = ""
    answered_at: float | None = None
    ended: float | None = None

    @classmethod
    def begin(cls, exc: BaseException, *, budget_seconds: float, task_id: str, now: float | None = None):
        return cls(
            service=service_of(exc),
            since=time.time() if now is None else now,
            budget_seconds=float(budget_seconds),
            last_error=describe(exc),
            task_id=task_id,
        )

    def continues_with(self, exc: BaseException, now: float | None = None) -> bool:
        """Whether a new error is this outage going on: the same service, failing again within
        :data:`REJOIN_SECONDS` of answering (or before it answered at all)."""
        now = time.time() if now is None else now
        answered = self.answered_at if self.answered_at is not None else now
        return self.ended is None and service_of(exc) == self.service and now - answered <= REJOIN_SECONDS

    def failed_again(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = describe(exc)
        self.answered_at = None

    def elapsed(self, now: float | None = None) -> float:
        end = self.ended if self.ended is not None else (time.time() if now is None else now)
        return max(0.0, end - self.since)

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.budget_seconds - self.elapsed(now))

    def spent(self, now: float | None = None) -> bool:
        return self.elapsed(now) >= self.budget_seconds

    def waiting_line(self, now: float | None = None) -> str:
        """What the report and the view say while the step waits."""
        return (
            f"waiting for {self.service} since {utc_minute(self.since)}, {span(self.elapsed(now))}; "
            f"budget {span(self.budget_seconds)}"
        )

    def ridden_line(self) -> str:
        """What the report says once the step went through."""
        end = utc_minute(self.ended) if self.ended is not None else "now"
        return (
            f"{self.service} did not answer from {utc_minute(self.since)} to {end} ({span(self.elapsed())}, "
            f"{self.errors} failed attempt(s); budget {span(self.budget_seconds)}): `{self.task_id}` waited "
            "and went through"
        )

    def failure_message(self, last_error: str | None = None, now: float | None = None) -> str:
        return (
            f"{self.service} did not answer for {span(self.elapsed(now))} (since {utc_minute(self.since)}; "
            f"budget {span(self.budget_seconds)}; {self.errors} failed attempt(s) of this step, then every read "
            f"of the service failed); last error: {last_error or self.last_error}. This step waited for it and "
            "stopped where it was: every change it made is in the change log, none is half-made (an open intent "
            "is settled from the real state when the step runs again). Check the service (its status page, the "
            "network from the workers), then clear this task; or raise the plan's waits.transient_budget_minutes"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Outage | None:
        if not data:
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def probe_for(exc: BaseException, conn_ids: Mapping[str, str | None]) -> dict[str, Any]:
    """The :class:`ServiceAnswersWatch` arguments for the service ``exc`` came from. ``conn_ids`` are the step's
    own connections (``segment``, ``rudderstack``, ``data_plane``, ``warehouse``), used when the error does not
    name its connection; with none known the watch only waits one interval."""
    from segment_rudderstack.hooks.errors import ApiError

    service = service_of(exc)
    if isinstance(exc, ApiError):
        hook, conn_id = getattr(exc, "hook", None), getattr(exc, "conn_id", None)
        if not (hook and conn_id):
            hook, role = _HOOKS_BY_SERVICE.get(exc.service, (None, None))
            conn_id = conn_ids.get(role) if role else None
        if hook and conn_id:
            return {"service": service, "hook": hook, "conn_id": conn_id}
    elif service == WAREHOUSE and conn_ids.get("warehouse"):
        return {"service": service, "warehouse_conn_id": conn_ids["warehouse"]}
    return {"service": service}


_HOOKS_BY_SERVICE = {
    "Segment API": ("segment_rudderstack.hooks.segment.SegmentHook", "segment"),
    "RudderStack API": ("segment_rudderstack.hooks.rudderstack.RudderStackHook", "rudderstack"),
    "RudderStack data plane": (
        "segment_rudderstack.hooks.rudderstack.RudderStackDataPlaneHook",
        "data_plane",
    ),
}


@dataclass(frozen=True)
class ServiceAnswersWatch(Watch):
    """Done once ``service`` answers a cheap read again: the hook's connection test (one request, no retry
    loop: the trigger's own interval spaces the reads) or ``SELECT 1`` in the warehouse. With neither, done at
    the first check (the step then only waited one interval). A 401/403 from the read is a configuration
    error (the trigger ends the wait at once)."""

    service: str
    hook: str | None = None
    conn_id: str | None = None
    warehouse_conn_id: str | None = None

    def observe(self) -> bool:
        if self.hook and self.conn_id:
            module_name, _, class_name = self.hook.rpartition(".")
            if not module_name.startswith("segment_rudderstack.hooks."):
                raise ValueError(
                    f"refusing to load hook class {self.hook!r} from outside segment_rudderstack"
                )
            hook_class = getattr(importlib.import_module(module_name), class_name)
            hook_class(self.conn_id, max_attempts=1).ping()
        elif self.warehouse_conn_id:
            from segment_rudderstack.dialects import dialect_for_conn_id

            dialect_for_conn_id(self.warehouse_conn_id).ping()
        return True

    def decide(self, observation: Any, memory: list[Any]):
        return conditions.service_answers_decision(self.service, bool(observation)), memory
