"""A per-plan hold: a person postpones the irreversible steps without failing the run.

While the Airflow Variable ``segment_to_rudderstack__<plan>__hold`` is set, Segment's warehouse switch-off, the
release of RudderStack's sync and Segment's webhook switch-off wait before they change anything: deferred to
the library's one trigger (:class:`~segment_rudderstack.triggers.condition.ConditionTrigger`) with a
:class:`HoldWatch`, which reads the Variable in the triggerer, so no worker slot is held for the days a hold
may last. Once the Variable is deleted (or set to ``off``) the step runs, re-checking everything as usual.

Set and release it from the migration view, or from the command line::

    airflow variables set segment_to_rudderstack__<plan>__hold "waiting for the data team's sign-off"
    airflow variables delete segment_to_rudderstack__<plan>__hold

The value is a reason (text), or JSON ``{"reason": ..., "by": ..., "at": ...}`` as the view writes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from segment_rudderstack.waits import conditions
from segment_rudderstack.waits.watches import Watch

HOLD_SUFFIX = "__hold"
CHANGES_SUFFIX = "__changes"
#: values that mean "no hold" (besides no Variable at all)
RELEASED = frozenset({"", "off", "false", "0", "no", "released", "none", "null"})
HOLD_CHECK_SECONDS = 30.0


def hold_key_for_plan(plan_name: str) -> str:
    return f"segment_to_rudderstack__{plan_name}{HOLD_SUFFIX}"


def hold_key(change_log_key: str) -> str:
    """The hold Variable of the plan whose change log is ``change_log_key``."""
    return change_log_key.removesuffix(CHANGES_SUFFIX) + HOLD_SUFFIX


@dataclass(frozen=True)
class Hold:
    reason: str
    by: str | None = None
    at: str | None = None

    def describe(self) -> str:
        who = f" by {self.by}" if self.by else ""
        when = f" since {self.at}" if self.at else ""
        return f"held{who}{when}: {self.reason}"


def parse_hold(value: Any) -> Hold | None:
    """The hold a Variable's value means, or ``None`` when it means none (pure)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in RELEASED:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return Hold(reason=text)
    if isinstance(value, dict):
        if str(value.get("held", True)).lower() in RELEASED - {""}:
            return None
        return Hold(
            reason=str(value.get("reason") or "no reason given"),
            by=str(value["by"]) if value.get("by") else None,
            at=str(value["at"]) if value.get("at") else None,
        )
    if isinstance(value, bool | int | float):
        return Hold(reason="held") if value else None
    return Hold(reason=str(value))


def hold_value(reason: str, by: str | None = None, at: datetime | None = None) -> str:
    """The Variable's value for a hold set by ``by`` (what the view writes)."""
    return json.dumps(
        {"reason": reason or "no reason given", "by": by, "at": (at or datetime.now(UTC)).isoformat()}
    )


def read_hold(key: str, store: Any = None) -> Hold | None:
    """The plan's hold now (the Task SDK's Variables in a task or the triggerer, else the metadata database)."""
    from segment_rudderstack.safety.changelog import default_store

    return parse_hold((store or default_store()).get(key, default=None))


def hold_decision(hold: Hold | None, key: str) -> conditions.Decision:
    """Done when there is no hold; waiting while there is one (pure)."""
    if hold is None:
        return conditions.done(f"no hold on the plan (Variable {key} not set)")
    return conditions.wait(
        f"the plan is {hold.describe()}. Release it in the migration view or with: airflow variables delete {key}",
        held=True,
        hold_reason=hold.reason,
        by=hold.by,
        at=hold.at,
    )


@dataclass(frozen=True)
class HoldWatch(Watch):
    """Watch the plan's hold Variable (in a worker, or in the triggerer through the Task SDK)."""

    variable: str

    def observe(self) -> Hold | None:
        return read_hold(self.variable)

    def decide(self, observation: Hold | None, memory: list[Any]) -> tuple[conditions.Decision, list[Any]]:
        return hold_decision(observation, self.variable), memory
