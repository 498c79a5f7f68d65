"""Bucket comparisons for the proof from Segment's metrics: Segment's counts against the warehouse's rows per
time bucket, on cumulative sums (an event Segment counted at 11:59:59.9 and RudderStack received at
12:00:00.1 moves one event between neighbouring buckets without being a loss, so a bucket differs only when the
running gap exceeds the tolerance, or when Segment gave up on deliveries in it); and the windows Segment keeps
(MINUTE buckets 48 hours back, HOUR 30 days, DAY 30 days: DeliveryOverviewApi.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from segment_rudderstack.hooks.segment_delivery import (
    BUCKET,
    GRANULARITY_LIMITS,
    floor_time,
    iso_z,
)


@dataclass(frozen=True)
class BucketRow:
    """One bucket: what Segment counted (``expected``), what the warehouse holds (``observed``)."""

    bucket: str
    expected: int
    observed: int
    failed: int = 0
    retried: int = 0
    running_gap: int = 0
    differs: bool = False
    why: str = ""


def compare_buckets(
    expected: Mapping[datetime, int],
    observed: Mapping[datetime, int],
    *,
    failed: Mapping[datetime, int] | None = None,
    retried: Mapping[datetime, int] | None = None,
    tolerance_events: int = 0,
    tolerance_share: float = 0.0,
    tolerance_failed: int = 0,
) -> list[BucketRow]:
    """Buckets in time order; a bucket differs when the running gap (observed - expected, summed from the
    first bucket) is beyond ``tolerance_events + tolerance_share * running expected``, or when more than
    ``tolerance_failed`` deliveries failed in it."""
    failed = failed or {}
    retried = retried or {}
    rows: list[BucketRow] = []
    running_expected = running_gap = 0
    for bucket in sorted(set(expected) | set(observed) | set(failed)):
        e, o, f = int(expected.get(bucket, 0)), int(observed.get(bucket, 0)), int(failed.get(bucket, 0))
        running_expected += e
        running_gap += o - e
        allowed = tolerance_events + tolerance_share * running_expected
        reasons = []
        if running_gap < -allowed:
            reasons.append(f"{-running_gap} fewer in the warehouse than Segment counted up to here")
        elif running_gap > allowed:
            reasons.append(f"{running_gap} more in the warehouse than Segment counted up to here")
        if f > tolerance_failed:
            reasons.append(f"Segment gave up on {f} deliveries")
        rows.append(
            BucketRow(
                iso_z(bucket),
                e,
                o,
                f,
                int(retried.get(bucket, 0)),
                running_gap,
                bool(reasons),
                "; ".join(reasons),
            )
        )
    return rows


def clamp_start(start: datetime, granularity: str, now: datetime) -> tuple[datetime, str]:
    """``start`` moved forward to the oldest time Segment keeps at ``granularity`` (with a note when moved)."""
    oldest = now - GRANULARITY_LIMITS[granularity][1] + BUCKET[granularity]
    if start >= oldest:
        return start, ""
    moved = floor_time(oldest, granularity) + BUCKET[granularity]
    return moved, (
        f"compared from {iso_z(moved)} only: Segment keeps {granularity} buckets for "
        f"{GRANULARITY_LIMITS[granularity][1]}"
    )


def add_counts(into: dict[datetime, int], more: Mapping[datetime, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v
