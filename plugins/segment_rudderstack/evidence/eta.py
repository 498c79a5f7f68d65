"""When each waiting phase is expected to end, with the basis of the estimate and its uncertainty (pure).

- **Segment's next load** (final load, server-side drain): Segment's advanced sync schedule when it is on (the
  next enabled hour in its time zone; ``GET /warehouses/{id}/advanced-sync-schedule``), else the observed
  cadence: the median of the intervals between the starts of the warehouse's latest loads, the range from the
  shortest to the longest interval. A load running now ends after about the median load duration.
- **RudderStack's next upload slot**: ``syncStartAt + k * syncFrequency`` outside the exclude window
  (:mod:`segment_rudderstack.waits.rudderstack_schedule`, after rudder-server's scheduler).
- **Adoption**: a least-squares line through the adoption checks' shares (share against time), extrapolated to
  the threshold, plus the remaining consecutive checks; the range comes from the slope plus and minus one
  standard error (no upper bound when the slope's error allows a share that does not fall).
- **Drain**: the next ``n`` Segment loads (the drain needs that many loads in a row without the source).

Where there is no basis (no load seen yet, fewer than three adoption checks, a share that does not fall) the
estimate says ``unknown`` and why.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MIN_ADOPTION_POINTS = 3
MAX_INTERVALS = 10


@dataclass(frozen=True)
class Eta:
    """An estimate: ``at`` (``None``: unknown), its range and what it rests on."""

    what: str
    at: datetime | None
    basis: str
    low: datetime | None = None
    high: datetime | None = None

    @property
    def known(self) -> bool:
        return self.at is not None

    def text(self) -> str:
        if self.at is None:
            return f"{self.what}: unknown ({self.basis})"
        span = ""
        if self.low or self.high:
            span = f", between {utc_text(self.low) if self.low else 'now'} and {utc_text(self.high) if self.high else 'open end'}"
        return f"{self.what}: about {utc_text(self.at)}{span} ({self.basis})"

    def to_dict(self) -> dict[str, Any]:
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {
            "what": self.what,
            "at": iso(self.at),
            "low": iso(self.low),
            "high": iso(self.high),
            "basis": self.basis,
            "text": self.text(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Eta:
        return cls(
            str(data.get("what", "")),
            parse_time(data.get("at")),
            str(data.get("basis", "")),
            parse_time(data.get("low")),
            parse_time(data.get("high")),
        )


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def unknown(what: str, why: str) -> Eta:
    return Eta(what, None, why)


# ------------------------------------------------------------------------------------------ Segment


def next_scheduled_load(schedule: Mapping[str, Any] | None, now: datetime) -> datetime | None:
    """The next enabled hour of Segment's advanced sync schedule after ``now``, or ``None`` when it is off."""
    if not schedule or not schedule.get("enabled"):
        return None
    body = schedule.get("schedule") or {}
    hours = sorted({int(t["hourOfDay"]) for t in body.get("times") or [] if t.get("enabled", True)})
    if not hours:
        return None
    from zoneinfo import ZoneInfo

    try:
        zone = ZoneInfo(str(body.get("timezone") or "UTC"))
    except Exception:
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    for day in range(2):
        base = (local + timedelta(days=day)).replace(minute=0, second=0, microsecond=0)
        for hour in hours:
            candidate = base.replace(hour=hour)
            if candidate > local:
                return candidate.astimezone(UTC)
    return None


def load_cadence(reports: Sequence[Any]) -> tuple[datetime, list[float], list[float]] | None:
    """(the latest load start, the intervals between the latest starts, the durations of finished loads), in
    seconds; ``None`` before two loads were seen."""
    starts = sorted(
        {
            parse_time(getattr(r, "start", None) or (r.get("start") if isinstance(r, Mapping) else None))
            for r in reports
        }
        - {None}
    )
    if len(starts) < 2:
        return None
    recent = starts[-(MAX_INTERVALS + 1) :]
    intervals = [(b - a).total_seconds() for a, b in zip(recent, recent[1:], strict=False)]
    durations = []
    for r in reports:
        start, end = (
            (parse_time(getattr(r, "start", None)), parse_time(getattr(r, "end", None)))
            if not isinstance(r, Mapping)
            else (parse_time(r.get("start")), parse_time(r.get("end")))
        )
        if start and end:
            durations.append((end - start).total_seconds())
    return recent[-1], intervals, durations


def segment_next_load(
    reports: Sequence[Any], now: datetime, schedule: Mapping[str, Any] | None = None, loads: int = 1
) -> Eta:
    """When Segment's ``loads``-th next load ends (1: the next one)."""
    what = "Segment's next load" if loads == 1 else f"Segment's next {loads} loads"
    cadence = load_cadence(reports)
    duration = statistics.median(cadence[2]) if cadence and cadence[2] else 0.0
    scheduled = next_scheduled_load(schedule, now)
    if scheduled is not None:
        ends = scheduled + timedelta(seconds=duration)
        basis = (
            f"Segment's advanced sync schedule ({(schedule.get('schedule') or {}).get('timezone') or 'UTC'})"
        )
        return Eta(what, ends, basis + (f", loads take about {duration:.0f} s" if duration else ""))
    if cadence is None:
        return unknown(what, "fewer than two Segment loads seen: no cadence to go by")
    latest, intervals, _ = cadence
    median, shortest, longest = statistics.median(intervals), min(intervals), max(intervals)
    step = max(median, 1.0)
    start = latest + timedelta(seconds=median)
    while start + timedelta(seconds=duration) < now:  # the expected load is late: the one after it
        start += timedelta(seconds=step)
    extra = timedelta(seconds=median * (loads - 1) + duration)
    basis = (
        f"observed cadence: median of {len(intervals)} interval(s) between Segment's latest load starts "
        f"{median:.0f} s, range {shortest:.0f}-{longest:.0f} s"
    )
    low = latest + timedelta(seconds=shortest) + timedelta(seconds=shortest * (loads - 1))
    high = latest + timedelta(seconds=longest * loads + duration)
    return Eta(what, start + extra, basis, max(low, now), max(high, start + extra))


# ------------------------------------------------------------------------------------------ RudderStack


def rudderstack_next_upload(config: Mapping[str, Any] | None, now: datetime) -> Eta:
    what = "RudderStack's next upload slot"
    if not config:
        return unknown(what, "the destination's schedule is not known yet")
    from segment_rudderstack.waits.rudderstack_schedule import upload_schedule

    schedule = upload_schedule(config, now)
    if not schedule.automatic:
        return unknown(what, "manualSync is on: no upload before the release triggers one")
    if schedule.next_slot is None:
        return unknown(what, schedule.explanation)
    return Eta(what, schedule.next_slot, f"syncStartAt/syncFrequency/excludeWindow: {schedule.explanation}")


def upload_slot(next_slot: Any, what: str = "RudderStack's next upload slot") -> Eta:
    """An upload slot a task recorded (``next_upload_slot``)."""
    moment = parse_time(next_slot)
    if moment is None:
        return unknown(what, "no upload slot recorded (a triggered upload starts at once)")
    return Eta(
        what, moment, "the destination's syncStartAt and syncFrequency, after rudder-server's scheduler"
    )


# ------------------------------------------------------------------------------------------ adoption


def _points(history: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    points = []
    for sample in history or []:
        if not isinstance(sample, Mapping) or not sample.get("total"):
            continue
        moment = parse_time(sample.get("at"))
        if moment is not None:
            points.append((moment.timestamp(), float(sample["via_segment"]) / float(sample["total"])))
    return points


def adoption_eta(
    history: Sequence[Mapping[str, Any]],
    threshold: float | None,
    *,
    consecutive_checks: int = 1,
    check_interval_seconds: float = 0.0,
    now: datetime,
) -> Eta:
    """When the adoption share is expected at or below ``threshold`` for the consecutive checks."""
    what = "adoption at the threshold"
    points = _points(history)
    streak = timedelta(seconds=max(0, consecutive_checks - 1) * check_interval_seconds)
    if threshold is None:
        return unknown(what, "no threshold")
    if points and points[-1][1] <= threshold:
        return Eta(
            what, now + streak, "the share is at or below the threshold now; the remaining checks in a row"
        )
    if len(points) < MIN_ADOPTION_POINTS:
        return unknown(
            what,
            f"{len(points)} adoption check(s) with events: at least {MIN_ADOPTION_POINTS} "
            "are needed for a trend",
        )
    fit = _least_squares(points)
    if fit is None:
        return unknown(what, "the checks were all at one time: no trend")
    slope, intercept, slope_error = fit
    method = (
        f"least-squares line through {len(points)} checks, slope {slope * 3600:+.2%} per hour "
        f"± {slope_error * 3600:.2%} (one standard error)"
    )
    if slope >= 0:
        return unknown(what, f"the share is not falling ({method})")

    def crossing(rate: float) -> datetime | None:
        if rate >= 0:
            return None
        return datetime.fromtimestamp((threshold - intercept) / rate, UTC) + streak

    at = crossing(slope)
    if at is None or at.year > 9000:
        return unknown(what, method)
    low, high = crossing(slope - slope_error), crossing(slope + slope_error)
    return Eta(
        what,
        max(at, now),
        f"extrapolated: {method}",
        max(low, now) if low else None,
        max(high, at) if high else None,
    )


def _least_squares(points: Sequence[tuple[float, float]]) -> tuple[float, float, float] | None:
    """(slope, intercept, standard error of the slope) of share against epoch seconds."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_s = sum(s for _, s in points) / n
    sxx = sum((t - mean_t) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    slope = sum((t - mean_t) * (s - mean_s) for t, s in points) / sxx
    intercept = mean_s - slope * mean_t
    residual = sum((s - (intercept + slope * t)) ** 2 for t, s in points)
    error = math.sqrt(residual / (n - 2) / sxx) if n > 2 else 0.0
    return slope, intercept, error
