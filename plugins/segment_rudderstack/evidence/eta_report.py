"""The report's section of the estimates the waiting phases made (:mod:`segment_rudderstack.evidence.eta`): what each
waiting sensor expected when it started waiting, on what basis, and when it actually ended."""

from __future__ import annotations

from typing import Any

from segment_rudderstack.evidence.report import Section, Table, duration, register_section
from segment_rudderstack.evidence.report_facts import ReportFacts, phase_of

ETAS_KEY = "etas"  # ReportFacts.extra: {task id: Eta.to_dict()}


def section_etas(facts: ReportFacts) -> Section | None:
    etas: dict[str, Any] = facts.extra.get(ETAS_KEY) or {}
    if not etas:
        return None
    rows = []
    for task_id, eta in etas.items():
        phase = phase_of(task_id)
        task = facts.tasks.get(task_id)
        state = (task.state if task else None) or "—"
        took = duration(task.duration) if task and task.duration is not None else f"({state})"
        rows.append([phase.label if phase else task_id, f"`{task_id}`", eta.get("text", ""), took])
    intro = (
        'What each waiting phase expected when it started waiting, and on what basis ("unknown" where there was '
        "none); the migration view shows the running phases' estimates as they change."
    )
    return Section(
        "ETA per phase",
        [intro, Table(["phase", "task", "estimate when it started waiting", "the task took"], rows)],
        key=ETAS_KEY,
    )


register_section(ETAS_KEY, section_etas, after="timeline")
