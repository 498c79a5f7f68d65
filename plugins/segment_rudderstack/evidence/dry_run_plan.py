"""The one dry-run plan: every change a dry run found, of every task, in the order a real run would make them.

In a dry run each migration task keeps what it would change (``MigrationOperator.would_change``) and what it
would wait for, and pushes that list as the XCom ``would_change``; the report task gathers the lists in the
DAG's run order (:func:`run_order`, written into the report task by the factory) and shows them as one
numbered plan in the report (Markdown, HTML, and the JSON sidecar) and in the migration view. The latest dry
run's plan is also kept in a Variable (``segment_to_rudderstack__<plan>__dry_run_plan``) so that the approval
gates of a later real run show the part of the plan they let through.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from segment_rudderstack.evidence.report import Markdown, Section, register_section
from segment_rudderstack.evidence.report_facts import ReportFacts

WOULD_CHANGE_KEY = "would_change"  # XCom key of a task's own entries in a dry run
PLAN_XCOM_KEY = "dry_run_plan"  # XCom key of the report task's consolidated plan
PLAN_KEY = "dry_run_plan"  # ReportFacts.extra key
CHANGE, WAIT, NOTE = "change", "wait", "note"


def plan_variable(plan_name: str) -> str:
    """The Variable holding the plan's latest dry-run plan."""
    return f"segment_to_rudderstack__{plan_name}__dry_run_plan"


def change_entry(change: Any) -> dict[str, Any]:
    """A change-log :class:`~segment_rudderstack.safety.changelog.Change` (or its dict) as a plan entry."""
    data = asdict(change) if is_dataclass(change) else dict(change)
    return {
        "kind": CHANGE,
        "target": data.get("target"),
        "target_id": data.get("target_id"),
        "field": data.get("field"),
        "before": data.get("before"),
        "after": data.get("after"),
    }


def note_entry(text: str, kind: str = NOTE) -> dict[str, Any]:
    """Something a real run would do that is not one recorded change (a wait, an upload trigger, a gate)."""
    return {"kind": kind, "text": str(text)}


def push_entries(context: Any, entries: Sequence[Mapping[str, Any]]) -> None:
    """Keep ``entries`` as this task's XCom ``would_change`` (all of them: each push replaces the last)."""
    ti = (context or {}).get("ti") if isinstance(context, Mapping) else None
    push = getattr(ti, "xcom_push", None)
    if push is None:  # outside a task run (a library test's bare context): nothing to keep
        return
    push(key=WOULD_CHANGE_KEY, value=json.loads(json.dumps(list(entries), default=str)))


def run_order(tasks: Iterable[Any]) -> list[str]:
    """Task ids in the order a real run reaches them: upstream first (Kahn's algorithm), ties in the order the
    factory wired them (the runbook's order)."""
    tasks = list(tasks)
    position = {t.task_id: i for i, t in enumerate(tasks)}
    waiting = {t.task_id: {u for u in t.upstream_task_ids if u in position} for t in tasks}
    order: list[str] = []
    while waiting:
        ready = sorted((t for t, up in waiting.items() if not up), key=position.__getitem__)
        if not ready:  # a cycle cannot be built by Airflow; keep the rest in wiring order
            ready = sorted(waiting, key=position.__getitem__)
        first = ready[0]
        order.append(first)
        del waiting[first]
        for upstream in waiting.values():
            upstream.discard(first)
    return order


def consolidate(
    by_task: Mapping[str, Sequence[Mapping[str, Any]] | None], order: Sequence[str]
) -> list[dict]:
    """One list: the tasks in ``order`` (tasks missing from it last), each task's entries in its own order,
    numbered from 1."""
    known = [t for t in order if t in by_task] + sorted(t for t in by_task if t not in order)
    plan: list[dict[str, Any]] = []
    for task_id in known:
        for entry in by_task.get(task_id) or []:
            if isinstance(entry, Mapping):
                plan.append({"step": len(plan) + 1, "task_id": task_id, **entry})
    return plan


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


def describe(entry: Mapping[str, Any]) -> str:
    """One entry as a sentence."""
    if entry.get("kind") == CHANGE:
        return (
            f"{entry.get('target')} `{entry.get('target_id')}`: {entry.get('field')} "
            f"{_value(entry.get('before'))} → {_value(entry.get('after'))}"
        )
    prefix = "wait: " if entry.get("kind") == WAIT else ""
    return prefix + str(entry.get("text", ""))


def plan_lines(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    """The plan as Markdown: a table of steps."""
    lines = ["| step | task | what a real run would do |", "|---|---|---|"]
    for entry in plan:
        cell = describe(entry).replace("|", "¦")  # the HTML table reader splits on every |
        lines.append(f"| {entry.get('step')} | `{entry.get('task_id')}` | {cell} |")
    return lines


def plan_for_tasks(plan: Sequence[Mapping[str, Any]], task_ids: Iterable[str]) -> list[Mapping[str, Any]]:
    """The entries of the given tasks (what one approval gate lets through)."""
    wanted = set(task_ids)
    return [e for e in plan if e.get("task_id") in wanted]


def section_dry_run_plan(facts: ReportFacts) -> Section | None:
    plan = facts.extra.get(PLAN_KEY)
    if not facts.dry_run or plan is None:
        return None
    changes = sum(1 for e in plan if e.get("kind") == CHANGE)
    if not plan:
        return Section(
            "Dry-run plan",
            ["A real run would change nothing: every step found the state it wants already in place."],
            key=PLAN_KEY,
        )
    intro = (
        f"Every change a real run would make ({changes}), and what it would wait for, in the order a real run "
        "makes them. Values are what each task read now; a real run reads again before each change."
    )
    return Section("Dry-run plan", [intro, Markdown(plan_lines(plan))], key=PLAN_KEY)


register_section(PLAN_KEY, section_dry_run_plan, after="verdict")
