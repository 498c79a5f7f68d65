"""The migration report, at a glance: the verdict first, then a timeline of the phases, key figures as
tables, the adoption chart (UTC, with the cutover, warehouse-off and webhook-off markers, the threshold and
the window), and the outside changes. Raw step results go to a sidecar JSON file, not into the report.

The report is a list of sections, each built by its own function from :class:`ReportFacts`; Markdown and
HTML are rendered from the same sections, so both say the same. Add a section with
:func:`register_section` (e.g. a per-lane table, or Segment's own delivery metrics): it receives the facts
and returns a :class:`Section` or ``None`` when it has nothing to say.

Facts come from the report task (its run's task states, step results and change log) or from the metadata
database (the migration view in the UI, with the tasks' real start and end times).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.evidence.report_facts import (
    ACTIVE_STATES,
    DONE_STATES,
    FAILED_STATES,
    PHASES,
    Phase,
    ReportFacts,
    phase_of,
)
from segment_rudderstack.evidence.report_outages import outage_lines, waiting_outage, waiting_text
from segment_rudderstack.instants import parse_instant as parse_time

# ---------------------------------------------------------------------------------------------- sections


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Section:
    title: str
    blocks: list[Any] = field(default_factory=list)  # str (paragraph), Table, Image, list[str] (bullets)
    key: str = ""


@dataclass
class Image:
    file: str
    alt: str


@dataclass
class Markdown:
    """Lines of Markdown written by another module (headings ###, pipe tables, bullets, **bold**, `code`):
    kept as they are in the Markdown report and converted for the HTML one."""

    lines: list[str]


SectionBuilder = Callable[[ReportFacts], Section | None]
_SECTIONS: list[tuple[str, SectionBuilder]] = []


def register_section(key: str, builder: SectionBuilder, *, after: str | None = None) -> None:
    """Add (or replace) a section; ``after`` puts it after the section with that key (default: before the
    appendix)."""
    global _SECTIONS
    _SECTIONS = [(k, b) for k, b in _SECTIONS if k != key]
    keys = [k for k, _ in _SECTIONS]
    if after in keys:
        index = keys.index(after) + 1
    elif "appendix" in keys:
        index = keys.index("appendix")
    else:
        index = len(_SECTIONS)
    _SECTIONS.insert(index, (key, builder))


def section_keys() -> list[str]:
    return [k for k, _ in _SECTIONS]


def utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def milestones(facts: ReportFacts) -> dict[str, datetime | None]:
    """When the migration crossed its three points of no easy return."""
    warehouse = facts.result("segment_warehouse")
    webhook = facts.result("webhook_disabled")
    return {
        "cutover": parse_time(facts.result("webhooks").get("cutover_at")),
        "warehouse_off": parse_time(warehouse.get("at")) if warehouse.get("disabled") else None,
        "webhook_off": parse_time(webhook.get("at")) if webhook.get("disabled") else None,
        "released": parse_time(facts.result("release").get("released_at")),
    }


@dataclass
class PhaseRow:
    phase: Phase
    state: str  # done / running / failed / skipped / not started
    started: datetime | None
    ended: datetime | None
    task_ids: list[str]
    failed_task: str | None = None
    active_task: str | None = None
    busy_seconds: float | None = None  # sum of the tasks' own durations, when the times are not known

    @property
    def seconds(self) -> float | None:
        if self.started and self.ended:
            return (self.ended - self.started).total_seconds()
        return self.busy_seconds


def _change_times(facts: ReportFacts, phase: Phase) -> list[datetime]:
    times = []
    for change in facts.changes:
        task_id = change.get("task_id") or ""
        if phase_of(task_id) is phase:
            moment = parse_time(change.get("at"))
            if moment:
                times.append(moment)
    return times


def phase_rows(facts: ReportFacts) -> list[PhaseRow]:
    """One row per phase that has tasks in this run, in runbook order. Times are the tasks' own when known
    (migration view); otherwise the phase ends at its last recorded change or milestone and starts where the
    previous one ended."""
    marks = milestones(facts)
    milestone_of = {
        "cutover": marks["cutover"],
        "final_load": marks["warehouse_off"],
        "release": marks["released"],
        "adoption": marks["webhook_off"],
    }
    rows: list[PhaseRow] = []
    previous_end = facts.run_started_at
    for phase in PHASES:
        ids = sorted(t for t in facts.tasks if phase_of(t) is phase)
        if not ids or (phase.key == "report" and not any(facts.tasks[t].state in FAILED_STATES for t in ids)):
            continue  # the report's own phase only matters when it failed
        states = {t: (facts.tasks[t].state or "none") for t in ids}
        failed = next((t for t in ids if states[t] in FAILED_STATES), None)
        active = next((t for t in ids if states[t] in ACTIVE_STATES), None)
        if failed:
            state = "failed"
        elif active:
            state = "running"
        elif ids and all(s == "skipped" for s in states.values()):
            state = "skipped"
        elif ids and all(s in DONE_STATES for s in states.values()):
            state = "done"
        elif any(s == "upstream_failed" for s in states.values()):
            state = "not reached"
        else:
            state = "not started"
        starts = [facts.tasks[t].start for t in ids if facts.tasks[t].start]
        ends = [facts.tasks[t].end for t in ids if facts.tasks[t].end]
        started = (
            min(starts) if starts else (previous_end if state in ("done", "running", "failed") else None)
        )
        if state == "done":
            candidates = ends or [
                *_change_times(facts, phase),
                *([milestone_of[phase.key]] if milestone_of.get(phase.key) else []),
            ]
            ended = max(candidates) if candidates else None
            if ended is None and phase.key == "report":
                ended = facts.generated_at
        else:
            ended = max(ends) if (ends and state == "failed") else None
        durations = [facts.tasks[t].duration for t in ids if facts.tasks[t].duration is not None]
        busy = sum(durations) if durations else None
        if not starts and ended and busy is not None and state == "done":
            started = (
                max(started, ended - timedelta(seconds=busy)) if started else ended - timedelta(seconds=busy)
            )
        rows.append(PhaseRow(phase, state, started, ended, ids, failed, active, busy))
        if ended:
            previous_end = ended
    return rows


@dataclass
class Verdict:
    kind: str  # complete / dry_run / partial / waiting / failed / running
    text: str
    todo: str = ""


def _complete_verdict(facts: ReportFacts) -> Verdict:
    """The verdict of a finished real run: when each switch happened, and the duplicates removed."""
    marks = milestones(facts)
    duplicates = facts.result("duplicates")
    parts = [
        f"Segment's warehouse off since {utc(marks['warehouse_off'])}"
        if marks["warehouse_off"]
        else "Segment's warehouse was already off",
        f"RudderStack loading since {utc(marks['released'])}"
        if marks["released"]
        else "RudderStack's sync was already released",
        f"Segment's webhook off since {utc(marks['webhook_off'])}"
        if marks["webhook_off"]
        else "Segment's webhook was already off",
    ]
    if duplicates:
        parts.append(
            f"duplicate rows found {count_text(duplicates.get('duplicates'))}, "
            f"removed {count_text(duplicates.get('removed'))}"
        )
    return Verdict(
        "complete",
        "COMPLETE: " + "; ".join(parts) + ".",
        "Nothing to do. Later runs of this DAG are no-ops; the rollback DAG undoes the changes.",
    )


def verdict(facts: ReportFacts) -> Verdict:
    rows = phase_rows(facts)
    failed = next((r for r in rows if r.state == "failed"), None)
    if failed:
        return Verdict(
            "failed",
            f"FAILED at {failed.phase.label} (task `{failed.failed_task}`)"
            f"{' at ' + utc(failed.ended) if failed.ended else ''}.",
            f"What to do: {failed.phase.on_failure}. To undo the changes made so far, trigger the "
            "rollback DAG.",
        )
    waiting = next((r for r in rows if r.state == "running" and r.phase.key != "report"), None)
    if waiting:
        outage = waiting_outage(facts, waiting.active_task)
        if outage is not None:
            return Verdict(
                "waiting",
                waiting_text(outage, waiting.active_task or ""),
                "Nothing needs doing unless the outage outlasts the budget: the step then fails, saying what was down.",
            )
        detail = ""
        if waiting.phase.key == "adoption":
            share = facts.result("adoption").get("share")
            samples = adoption_points(facts)
            if samples:
                share = samples[-1][1]
            if share is not None and facts.threshold is not None:
                detail = f" (now {share:.2%} through Segment; threshold {facts.threshold:.2%})"
        return Verdict(
            "waiting",
            f"WAITING for {waiting.phase.waiting_for}{detail} since {utc(waiting.started)}.",
            f"Task `{waiting.active_task}` is waiting; nothing needs doing unless it stays there longer "
            "than expected.",
        )
    pending = [r for r in rows if r.state in ("not started", "not reached") and r.phase.key != "report"]
    if pending:
        return Verdict("running", f"IN PROGRESS: next phase {pending[0].phase.label}.")
    if facts.dry_run:
        return Verdict(
            "dry_run",
            "DRY RUN: nothing was changed. Every step read the current state and logged "
            "what it would change.",
            "The dry-run plan below lists every change a real run would make, in its order; then trigger "
            "without dry run.",
        )
    if facts.left_out_sources:
        return Verdict(
            "partial",
            f"PARTIAL: this run migrated its sources; not migrated yet: {', '.join(facts.left_out_sources)}.",
            "Trigger again selecting the remaining sources.",
        )
    return _complete_verdict(facts)


def section_verdict(facts: ReportFacts) -> Section:
    result = verdict(facts)
    blocks: list[Any] = [f"**{result.text}**"]
    if result.todo:
        blocks.append(result.todo)
    blocks.append(f"Plan `{facts.plan_name}`, run `{facts.run_id}`, written {utc(facts.generated_at)}.")
    return Section("Verdict", blocks, key="verdict")


def section_timeline(facts: ReportFacts) -> Section:
    rows = phase_rows(facts)
    table = Table(
        ["phase", "state", "started (UTC)", "ended (UTC)", "took"],
        [[r.phase.label, r.state, utc(r.started), utc(r.ended), duration(r.seconds)] for r in rows],
    )
    marks = milestones(facts)
    points = Table(
        ["moment", "when (UTC)"],
        [
            ["cutover (Segment's webhook to RudderStack on)", utc(marks["cutover"])],
            ["Segment's warehouse off", utc(marks["warehouse_off"])],
            ["RudderStack's sync released", utc(marks["released"])],
            ["Segment's webhook off", utc(marks["webhook_off"])],
        ],
    )
    outages = outage_lines(facts)  # each step that waited out an outage of a service it calls
    return Section("Timeline", [table, points, *([outages] if outages else [])], key="timeline")


def adoption_points(facts: ReportFacts) -> list[tuple[datetime, float, int, int]]:
    history = facts.result("adoption").get("history") or []
    points = []
    for sample in history:
        if not isinstance(sample, dict) or not sample.get("total"):
            continue
        moment = parse_time(sample.get("at"))
        if moment:
            points.append(
                (moment, sample["via_segment"] / sample["total"], sample["total"], sample["via_segment"])
            )
    return points


def section_key_figures(facts: ReportFacts) -> Section:
    duplicates = facts.result("duplicates")
    points = adoption_points(facts)
    marks = milestones(facts)
    rows: list[list[Any]] = []
    if points:
        first, last = points[0], points[-1]
        rows += [
            [
                "adoption share through Segment, first check",
                f"{first[1]:.2%} ({first[3]} of {first[2]} events)",
            ],
            ["adoption share through Segment, last check", f"{last[1]:.2%} ({last[3]} of {last[2]} events)"],
            ["adoption checks", str(len(points))],
        ]
        overlap = sum(p[3] for p in points)
        rows.append(
            [
                "overlap events seen by the adoption checks (through Segment's webhook, summed over the "
                "checks' windows, which may overlap)",
                str(overlap),
            ]
        )
    elif facts.result("adoption"):
        share = facts.result("adoption").get("share")
        rows.append(["adoption share through Segment", "—" if share is None else f"{share:.2%}"])
    if facts.threshold is not None:
        window = f", window {duration(facts.window_seconds)}" if facts.window_seconds else ""
        checks = f", {facts.consecutive_checks} consecutive checks" if facts.consecutive_checks else ""
        rows.append(["adoption threshold", f"{facts.threshold:.2%}{window}{checks}"])
    if duplicates:
        rows += [
            ["duplicate rows found (overlap window)", count_text(duplicates.get("duplicates"))],
            ["duplicate rows removed", count_text(duplicates.get("removed"))],
            ["duplicate check looked back to", utc(parse_time(duplicates.get("since")))],
        ]
    if marks["cutover"] and marks["webhook_off"]:
        rows.append(
            [
                "overlap (cutover → webhook off)",
                duration((marks["webhook_off"] - marks["cutover"]).total_seconds()),
            ]
        )
    rows.append(
        [
            "outside changes in this run",
            str(sum(1 for c in facts.changes if c.get("status", "done") == "done")),
        ]
    )
    phases = [[r.phase.label, duration(r.seconds)] for r in phase_rows(facts) if r.seconds is not None]
    blocks: list[Any] = [Table(["figure", "value"], rows)]
    if phases:
        blocks.append(Table(["phase", "time"], phases))
    return Section("Key figures", blocks, key="key_figures")


def section_chart(facts: ReportFacts) -> Section | None:
    if not facts.chart_file:
        return None
    text = (
        "Share of events still arriving through Segment's webhook at each adoption check (each point counts "
        "the trailing window). Times in UTC; dashed vertical lines mark the cutover, Segment's warehouse off "
        "and Segment's webhook off; the red line is the threshold."
    )
    return Section(
        "Client adoption", [text, Image(facts.chart_file, "adoption share over time (UTC)")], key="chart"
    )


def section_changes(facts: ReportFacts) -> Section:
    done = [c for c in facts.changes if c.get("status", "done") == "done"]
    open_intents = [c for c in facts.changes if c.get("status") == "intent"]
    rows = [
        [
            utc(parse_time(c.get("at"))),
            f"{c.get('target')} `{c.get('target_id')}` {c.get('field')}",
            short(c.get("before")),
            short(c.get("after")),
            c.get("task_id") or "",
        ]
        for c in done
    ]
    notes = (
        [
            f"{len(open_intents)} change(s) were started but their outcome is not recorded (a task died "
            "mid-call); a retry or the rollback settles them."
        ]
        if open_intents
        else []
    )
    if not rows:
        return Section("Outside changes, in order", ["No outside change in this run.", *notes], key="changes")
    return Section(
        "Outside changes, in order",
        [Table(["when (UTC)", "what", "before", "after", "task"], rows), *notes],
        key="changes",
    )


def section_proof(facts: ReportFacts) -> Section | None:
    """Proof from Segment's metrics (segment_rudderstack.evidence.proof), when the plan's DAG verifies it."""
    if "proof" not in facts.results:
        return None
    from segment_rudderstack.evidence.proof import SECTION_TITLE, proof_section

    lines = proof_section(facts.results.get("proof"))
    if lines and lines[0].startswith("## "):
        lines = lines[1:]
    return Section(SECTION_TITLE, [Markdown(lines)], key="proof")


def section_appendix(facts: ReportFacts) -> Section:
    sidecar = facts.extra.get("sidecar_file")
    blocks: list[Any] = [
        "Each step's raw result (what the tasks returned) is in the sidecar JSON file"
        + (f" `{sidecar}`." if sidecar else ".")
    ]
    states = [[t, f.state or "—"] for t, f in sorted(facts.tasks.items())]
    if states:
        blocks.append(Table(["task", "state"], states))
    return Section("Appendix: task states", blocks, key="appendix")


def count_text(value: Any) -> str:
    """A count, or a per-table dict of counts as ``4 (tracks 3, pages 1)``."""
    if isinstance(value, dict):
        total = sum(int(v) for v in value.values() if isinstance(v, int | float))
        detail = ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
        return f"{total} ({detail})" if detail else "0"
    return str(value or 0)


def short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


for _key, _builder in (
    ("verdict", section_verdict),
    ("timeline", section_timeline),
    ("key_figures", section_key_figures),
    ("chart", section_chart),
    ("changes", section_changes),
    ("proof", section_proof),
    ("appendix", section_appendix),
):
    register_section(_key, _builder)


def sections(facts: ReportFacts) -> list[Section]:
    built = []
    for key, builder in _SECTIONS:
        section = builder(facts)
        if section is not None:
            section.key = section.key or key
            built.append(section)
    return built
