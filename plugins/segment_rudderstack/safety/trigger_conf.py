"""Strict trigger conf: a key that is not one of the DAG's params is refused before anything changes.

Airflow merges a trigger's ``conf`` into the params and keeps unknown keys, so ``adoption_treshold: 0.5``
would be accepted and silently ignored (the run would use the plan's threshold). The first task of the
migration DAG and the rollback call :func:`check_trigger_conf`, which fails the run at once naming the key
and the nearest valid one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowFailException


def unknown_conf_keys(conf: Mapping[str, Any] | None, allowed: Iterable[str]) -> list[str]:
    """One message per unknown key, with the nearest valid key when one is close enough."""
    allowed = sorted(allowed)
    problems = []
    for key in sorted(conf or {}):
        if key in allowed:
            continue
        near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        problems.append(f"{key!r} (did you mean {near[0]!r}?)" if near else repr(key))
    return problems


def check_trigger_conf(context: Any, allowed: Iterable[str] | None) -> None:
    """Raise :class:`AirflowFailException` (no retry) when the run's conf has keys outside ``allowed``
    (``None``: nothing to check against)."""
    if allowed is None:
        return
    dag_run = context.get("dag_run") if context else None
    conf = getattr(dag_run, "conf", None) or {}
    allowed = sorted(allowed)
    problems = unknown_conf_keys(conf, allowed)
    if problems:
        raise AirflowFailException(
            f"the trigger conf has unknown key(s): {', '.join(problems)}. Valid keys: {', '.join(allowed)}. "
            "Nothing was changed; trigger again with the right names."
        )


def dag_param_names(task: Any) -> list[str] | None:
    """The params the task's DAG declares (what a trigger may set); None for a task outside any DAG."""
    if not task.has_dag():
        return None
    return list(task.dag.params.keys()) if task.dag.params is not None else []
