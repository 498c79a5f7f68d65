"""The outages a run's steps rode out, or are riding out now, as the report and the migration view show them.

Each step that waits out an outage keeps a record in its task's XCom ``outage``
(:class:`~segment_rudderstack.waits.outage.Outage`); the report task and the view put them in
``facts.extra[OUTAGES_KEY]`` (task id → record). One line each: the verdict's while a step waits ("WAITING for
RudderStack's control plane since 12:04 UTC, 3 min; budget 15 min"), the timeline's once it went through.
"""

from __future__ import annotations

from typing import Any

from segment_rudderstack.evidence.report_facts import ACTIVE_STATES, ReportFacts
from segment_rudderstack.waits.outage import Outage

OUTAGES_KEY = "outages"


def outage_records(facts: ReportFacts) -> dict[str, Outage]:
    """Task id → its outage record, for the tasks that met one in this run."""
    raw: dict[str, Any] = facts.extra.get(OUTAGES_KEY) or {}
    records = {task_id: Outage.from_dict(value) for task_id, value in raw.items() if isinstance(value, dict)}
    return {task_id: record for task_id, record in records.items() if record is not None}


def waiting_outage(facts: ReportFacts, task_id: str | None) -> Outage | None:
    """The outage ``task_id`` is waiting out now (it is active and its record has not ended)."""
    record = outage_records(facts).get(task_id or "")
    task = facts.tasks.get(task_id or "")
    if record is None or record.ended is not None or (task is not None and task.state not in ACTIVE_STATES):
        return None
    return record


def waiting_text(outage: Outage, task_id: str) -> str:
    return (
        f"WAITING for {outage.waiting_line().removeprefix('waiting for ')} (task `{task_id}` rides out an outage "
        "of a service it calls; no worker slot is held)."
    )


def outage_lines(facts: ReportFacts) -> list[str]:
    """One line per outage a step met in this run: ridden out, or being ridden out now."""
    lines = []
    for task_id, record in sorted(outage_records(facts).items(), key=lambda item: item[1].since):
        if record.ended is not None:
            lines.append(record.ridden_line())
        elif waiting_outage(facts, task_id) is not None:
            lines.append(f"`{task_id}` is {record.waiting_line()}")
    return lines
