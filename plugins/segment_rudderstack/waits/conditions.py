"""Wait conditions: pure functions of observed state.

Each function takes what was read from an API or a warehouse query and returns a :class:`Decision`
(not yet / done / failed, with a reason a person can act on). Sensors call them from ``poke`` and the
deferrable triggers call them from ``run``: the decision is written once, here, and nowhere else.
Nothing in this module does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from segment_rudderstack.dialects.results import AdoptionSample
from segment_rudderstack.sync_status import classify


class Outcome(enum.StrEnum):
    WAIT = "wait"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.outcome is Outcome.DONE

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

    @property
    def waiting(self) -> bool:
        return self.outcome is Outcome.WAIT

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "reason": self.reason, "details": self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        return cls(Outcome(data["outcome"]), data["reason"], dict(data.get("details") or {}))


def wait(reason: str, **details: Any) -> Decision:
    return Decision(Outcome.WAIT, reason, details)


def done(reason: str, **details: Any) -> Decision:
    return Decision(Outcome.DONE, reason, details)


def failed(reason: str, **details: Any) -> Decision:
    return Decision(Outcome.FAILED, reason, details)


class SyncLike(Protocol):
    """What a Segment sync report must offer (``hooks.segment.SyncReport`` does)."""

    source_id: str | None
    start: datetime
    end: datetime | None
    status: str
    count: int | None


def sync_state(report: SyncLike) -> str:
    """``running`` / ``success`` / ``partial`` / ``failure`` / ``unknown`` (unknown is never terminal)."""
    return classify(report.end, report.status).value


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def running_loads(reports: Iterable[SyncLike]) -> list[SyncLike]:
    # A report with no end is running whatever its status says (sync_status.classify); one attribute test per
    # report, as a check scans a page of up to 1000.
    return [r for r in reports if r.end is None]


def _newest_by_source(reports: Iterable[SyncLike]) -> dict[str | None, SyncLike]:
    """The newest report of each source."""
    newest: dict[str | None, SyncLike] = {}
    for report in sorted(reports, key=lambda r: r.start):
        newest[report.source_id] = report
    return newest


def segment_load_decision(
    reports: Sequence[SyncLike],
    *,
    started_after: datetime,
    source_ids: Sequence[str] | None = None,
    allow_partial: bool = False,
) -> Decision:
    """Done when, for every watched source, a Segment load that started after ``started_after`` finished
    successfully and no load is running now.

    - any load running (for a watched source): wait; the final load must be over before anything follows.
    - the newest finished load after the instant failed (or ended partial and partial is not allowed): failed.
    - a status Segment has not documented: wait (it is not treated as terminal).
    """
    watched = list(source_ids) if source_ids else None
    relevant = [r for r in reports if watched is None or r.source_id in watched]
    # Any running load counts, not only the watched sources': the warehouse (and maybe the schema) is shared.
    running = running_loads(reports)
    if running:
        newest = max(running, key=lambda r: r.start)
        return wait(
            f"a Segment load is running (source {newest.source_id}, started {_iso(newest.start)})",
            running=len(running),
        )
    by_source = _newest_by_source(r for r in relevant if r.start >= started_after)
    expected = watched if watched is not None else list(by_source) or [None]
    confirmed: dict[str, str] = {}
    for source in expected:
        newest = by_source.get(source)
        label = source or "any source"
        if newest is None:
            return wait(
                f"no Segment load has started after {_iso(started_after)} for {label} yet",
                confirmed=confirmed,
            )
        state = sync_state(newest)
        if state == "unknown":
            return wait(
                f"the newest Segment load for {label} reports status {newest.status!r}, which is not a known "
                "terminal status; waiting for a load that ends Success",
                confirmed=confirmed,
            )
        if state == "failure" or (state == "partial" and not allow_partial):
            return failed(
                f"Segment's load for {label} that started {_iso(newest.start)} ended {newest.status!r}; "
                "expected Success. Fix the load in Segment (see the sync's notices) and re-run this task, "
                "or allow partial loads in the plan if that is acceptable.",
                source_id=source,
                status=newest.status,
                start=_iso(newest.start),
            )
        confirmed[str(source)] = _iso(newest.end) or ""
    last_end = max(by_source[s].end for s in expected)  # type: ignore[type-var]
    return done(
        f"Segment loads started after {_iso(started_after)} finished successfully for {len(expected)} source(s)",
        confirmed=confirmed,
        last_load_end=_iso(last_end),
    )


def sync_gate_decision(
    reports: Sequence[SyncLike],
    *,
    warehouse_enabled: bool,
    started_after: datetime,
    source_ids: Sequence[str] | None = None,
    allow_partial: bool = False,
) -> Decision:
    """When RudderStack's held sync may be released: never while a Segment load is running; otherwise once
    Segment's final load is confirmed (or Segment's warehouse is already disabled, so no load can start)."""
    relevant = [r for r in reports if not source_ids or r.source_id in source_ids]
    running = running_loads(reports)  # any source's: both tools would write the warehouse at once
    if running:
        newest = max(running, key=lambda r: r.start)
        return wait(
            f"a Segment load is running (started {_iso(newest.start)}); RudderStack's sync stays held",
            running=len(running),
        )
    if not warehouse_enabled:
        ends = [r.end for r in relevant if r.end is not None]
        return done(
            "Segment's warehouse is disabled and no Segment load is running",
            last_load_end=_iso(max(ends)) if ends else None,
        )
    return segment_load_decision(
        reports, started_after=started_after, source_ids=source_ids, allow_partial=allow_partial
    )


def source_drained_decision(
    reports: Sequence[SyncLike],
    *,
    source_id: str,
    started_after: datetime,
    consecutive: int = 2,
) -> Decision:
    """A server-side source has stopped sending to Segment: its newest ``consecutive`` successful loads that
    started after ``started_after`` each loaded zero events, and no load is running."""
    mine = sorted((r for r in reports if r.source_id == source_id), key=lambda r: r.start)
    if any(sync_state(r) == "running" for r in mine):
        return wait(f"a Segment load for {source_id} is running")
    finished = [
        r for r in mine if r.start >= started_after and sync_state(r) in {"success", "partial", "failure"}
    ]
    if finished and sync_state(finished[-1]) == "failure":
        return failed(
            f"Segment's newest load for {source_id} ended {finished[-1].status!r}; events from it may not be "
            "in the warehouse. Fix the load in Segment and re-run this task."
        )
    tail = [r for r in finished if sync_state(r) == "success"][-consecutive:]
    counts = [r.count or 0 for r in tail]
    if len(tail) < consecutive:
        return wait(
            f"{len(tail)} of {consecutive} successful Segment loads for {source_id} seen after {_iso(started_after)}",
            counts=counts,
        )
    if any(counts):
        return wait(f"Segment still loads events for {source_id}: newest load counts {counts}", counts=counts)
    return done(f"the last {consecutive} Segment loads for {source_id} loaded no events", counts=counts)


def upload_decision(
    rows_by_source: dict[str, int],
    *,
    destination_id: str,
    loaded_after: str,
    pending: dict[str, Any] | None = None,
) -> Decision:
    """RudderStack's upload after the release is observed in the warehouse: every source the plan connects
    (``rows_by_source``'s keys) has rows that ``destination_id`` loaded at or after ``loaded_after``.

    ``pending`` is the optional extra signal of the data plane's ``pending-events`` for one source *task run*
    (summed over the sources; ``None`` when not asked or not served): aborted uploads of that task run fail
    the wait, and its pending uploads keep it waiting. It says nothing about event-stream sources, which carry
    no task run id."""
    pending = pending or {}
    if pending.get("aborted_events"):
        return failed(
            "RudderStack aborted an upload of the watched task run while loading into the warehouse; expected "
            "none. See the destination's sync log in RudderStack, fix the cause and trigger a new upload.",
            rows_by_source=rows_by_source,
            **pending,
        )
    missing = sorted(s for s, count in rows_by_source.items() if not count)
    total = sum(rows_by_source.values())
    if missing:
        return wait(
            f"no rows loaded by RudderStack destination {destination_id} since {loaded_after} yet for source(s) "
            f"{missing} (rows so far: {rows_by_source}); a source that sends nothing never shows rows, so "
            "leave it out of the plan's RudderStack sources or expect this wait to time out",
            rows_by_source=rows_by_source,
            missing_sources=missing,
        )
    if int(pending.get("pending_uploads") or 0):
        return wait(
            f"rows are loaded for every source, but RudderStack still has {pending['pending_uploads']} upload(s) "
            "of the watched task run",
            rows_by_source=rows_by_source,
            **pending,
        )
    return done(
        f"RudderStack destination {destination_id} loaded {total} row(s) since {loaded_after} for every source: "
        f"{rows_by_source}",
        rows_by_source=rows_by_source,
        loaded_rows=total,
    )


def adoption_decision(
    samples: Sequence[AdoptionSample],
    *,
    threshold: float,
    consecutive: int,
    min_events: int = 1,
) -> Decision:
    """Done when the share of events still arriving through Segment's webhook was at or below ``threshold``
    in each of the newest ``consecutive`` checks (a window with fewer than ``min_events`` events proves
    nothing and breaks the streak)."""
    if not samples:
        return wait("no adoption check yet")
    streak = 0
    for sample in reversed(samples):
        share = sample.share
        if sample.total < min_events or share is None or share > threshold:
            break
        streak += 1
    last = samples[-1]
    share_text = "n/a" if last.share is None else f"{last.share:.2%}"
    details = {"share": last.share, "total": last.total, "via_segment": last.via_segment, "streak": streak}
    if streak >= consecutive:
        return done(
            f"share through Segment {share_text} <= {threshold:.2%} for {streak} consecutive checks",
            **details,
        )
    if last.total < min_events:
        return wait(f"only {last.total} event(s) in the window (need {min_events}); streak reset", **details)
    return wait(
        f"share through Segment {share_text} (threshold {threshold:.2%}); {streak}/{consecutive} consecutive checks",
        **details,
    )


def service_answers_decision(service: str, answered: bool) -> Decision:
    """A step waiting out an outage may run again: the service that failed answers a cheap read again."""
    if answered:
        return done(f"{service} answers again")
    return wait(f"{service} does not answer yet")
