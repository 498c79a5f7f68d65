"""The facts a migration report is built from: the run's tasks, their phases and states, step results and
changes (from the report task, or from the metadata database for the migration view)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class TaskFact:
    state: str | None
    start: datetime | None = None
    end: datetime | None = None
    duration: float | None = None  # seconds (known for finished tasks)


@dataclass(frozen=True)
class Phase:
    key: str
    label: str
    prefixes: tuple[str, ...]  # task ids (or task group prefixes ending in ".") of the phase
    waiting_for: str  # what a run waits for while this phase is running
    on_failure: str  # what to do when it failed


PHASES: tuple[Phase, ...] = (
    Phase(
        "preflight",
        "Preflight",
        ("migration_status", "preflight", "shape."),
        "the preflight checks",
        "read the preflight task's log: it lists every missing connection, privilege, table or id. Nothing was "
        "changed yet; fix them and trigger again",
    ),
    Phase(
        "setup",
        "Set up RudderStack (destination, sync held, Segment source)",
        ("setup_rudderstack.",),
        "RudderStack's destination and Segment-type source",
        "read the failed task's log (connection, token permissions, destination config); fix and clear the task "
        "(every step is idempotent)",
    ),
    Phase(
        "cutover",
        "Cutover: Segment's webhook to RudderStack",
        ("route_segment_to_rudderstack.",),
        "the Webhooks destinations on Segment's client sources",
        "read the task's log; Segment may refuse the webhook settings or the token may lack Source Admin. "
        "Fix and clear the task",
    ),
    Phase(
        "shape",
        "Shape continuity: shadow load and checks before each irreversible step",
        ("shape_checks.",),
        "RudderStack's shadow load, the shape comparisons, or a person to accept their differences",
        "read the failed shape check's log (and the report's section Shape continuity): it names every column that "
        "would not keep its shape, why, and what to do. Nothing irreversible was done by it; fix the cause (or "
        "grade that kind of finding differently in the plan's shape.grades, knowingly) and clear the task",
    ),
    Phase(
        "server_side",
        "Server-side services switched, Segment drained",
        ("server_side.",),
        "the server-side services to send to RudderStack (deploy) and Segment's loads to drain",
        "deploy the server-side services onto RudderStack, then clear the drain sensor",
    ),
    Phase(
        "final_load",
        "Segment's final load, warehouse off",
        ("segment_final_load.",),
        "a Segment load that started after the cutover to finish (then Segment's warehouse goes off)",
        "Segment's final load failed or did not come: check the warehouse's syncs in Segment, then clear the "
        "task. Nothing is switched off while a load is running",
    ),
    Phase(
        "release",
        "RudderStack's sync released, first upload",
        ("release_rudderstack.",),
        "RudderStack's first upload after the release",
        "check the destination's uploads in RudderStack (aborted events, credentials), then clear the task",
    ),
    Phase(
        "duplicates",
        "Duplicate check in the overlap window",
        ("duplicate_check",),
        "the duplicate check",
        "read the duplicate check's log (warehouse connection or privileges); fix and clear it",
    ),
    Phase(
        "adoption",
        "Client adoption, Segment's webhook off",
        ("client_adoption.",),
        "clients to move to the new app version (share through Segment at or below the threshold)",
        "the adoption did not reach the threshold in time: keep waiting (clear the sensor) or lower the "
        "threshold deliberately in the trigger form",
    ),
    Phase("report", "Report", ("report",), "the report", "read the report task's log"),
)

ACTIVE_STATES = {
    "running",
    "deferred",
    "up_for_reschedule",
    "up_for_retry",
    "queued",
    "scheduled",
    "awaiting_input",
    "restarting",
}
FAILED_STATES = {"failed"}
DONE_STATES = {"success", "skipped"}


def phase_of(task_id: str) -> Phase | None:
    for phase in PHASES:
        # "preflight" is a task, or with several schemas (lanes) a group of them: preflight.<lane>
        if any(task_id == p or task_id.startswith(p if p.endswith(".") else p + ".") for p in phase.prefixes):
            return phase
    return None


@dataclass
class ReportFacts:
    plan_name: str
    run_id: str
    results: dict[str, Any] = field(default_factory=dict)  # step name (webhooks, adoption, ...) -> result
    changes: list[dict[str, Any]] = field(default_factory=list)  # this run's change log entries
    tasks: dict[str, TaskFact] = field(default_factory=dict)  # task id -> state (and times when known)
    dry_run: bool = False
    threshold: float | None = None
    window_seconds: float | None = None
    consecutive_checks: int | None = None
    left_out_sources: list[str] = field(default_factory=list)
    run_started_at: datetime | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    chart_file: str | None = None  # file name of the adoption chart, next to the report
    extra: dict[str, Any] = field(default_factory=dict)  # for added sections (lanes, Segment metrics, ...)

    def result(self, name: str) -> dict[str, Any]:
        value = self.results.get(name)
        return value if isinstance(value, dict) else {}
