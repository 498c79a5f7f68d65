"""How each kind of recorded change is undone, registered beside the operator that makes it.

A forward operator's module registers, for every ``(ChangeTarget, field)`` it records, either an undo step
(:func:`undoes`) or why that change is not undone (:func:`not_undone`); the rollback dispatches on the change
log through :func:`undo_step_for`. ``tests/operators/test_undo_registry.py`` proves every change target has one or
the other, so a new kind of change cannot be forgotten by the rollback.

An undo step is ``step(undo, context, target_id, field, change)`` returning what it did (a line, a list of lines,
or ``None`` when it was already undone); it changes things only through ``undo.rollback.apply_change`` (recorded,
dry-runnable, idempotent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from segment_rudderstack.vocabulary import ChangeTarget

CONFIG_PREFIX = (
    "config."  # a step registered for field "config." undoes every config key without its own step
)


@dataclass(frozen=True)
class Undo:
    """What an undo step works with: the rollback operator (recorded changes) and the two services' hooks."""

    rollback: Any
    segment: Any
    rudderstack: Any


UndoStep = Callable[[Undo, Any, str, str, Any], Any]

_STEPS: dict[tuple[ChangeTarget, str], UndoStep] = {}
_NOT_UNDONE: dict[ChangeTarget, str] = {}


def undoes(target: ChangeTarget, field: str) -> Callable[[UndoStep], UndoStep]:
    """Register the decorated function as the undo step of ``(target, field)``."""

    def register(step: UndoStep) -> UndoStep:
        _STEPS[(target, field)] = step
        return step

    return register


def not_undone(target: ChangeTarget, reason: str) -> None:
    """Say why changes of ``target`` are not undone (the rollback leaves them; the reason is documentation)."""
    _NOT_UNDONE[target] = reason


def undo_step_for(target: str, field: str) -> UndoStep | None:
    """The step undoing a recorded ``(target, field)``; ``None`` when such changes are not undone."""
    key = CONFIG_PREFIX if field.startswith(CONFIG_PREFIX) else field
    return _STEPS.get((ChangeTarget(target), field)) or _STEPS.get((ChangeTarget(target), key))


def registered() -> tuple[dict[tuple[ChangeTarget, str], UndoStep], dict[ChangeTarget, str]]:
    """Every registered undo step and every "not undone" reason (for the registry's test)."""
    return dict(_STEPS), dict(_NOT_UNDONE)
