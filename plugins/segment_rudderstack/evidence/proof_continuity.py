"""Continuity around the cutover: rows per bucket in the warehouse schema against Segment's ingress for the
plan's sources of that schema; a dip at the cutover is flagged."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.proof_queries import warehouse_rows_by_bucket
from segment_rudderstack.evidence.proof_buckets import add_counts, clamp_start, compare_buckets
from segment_rudderstack.hooks.segment_delivery import (
    floor_time,
    iso_z,
)
from segment_rudderstack.instants import as_utc


def _segment_ingress(
    segment: Any, source_ids: Iterable[str], start: datetime, end: datetime, granularity: str, now: datetime
) -> dict[datetime, int]:
    """Segment's ingress per bucket over ``[start, end)``, summed over ``source_ids``."""
    ingress: dict[datetime, int] = {}
    for source_id in sorted(set(source_ids)):
        add_counts(
            ingress,
            segment.delivery_metrics(
                "successfully-received",
                source_id=source_id,
                start=start,
                end=end,
                granularity=granularity,
                now=now,
            ).by_bucket(),
        )
    return ingress


def _flag_dips(
    compared: Iterable[Any],
    cut: datetime,
    average: float | None,
    *,
    dip_share: float,
    tolerance_events: int,
    tolerance_share: float,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The continuity rows of the compared buckets, and the buckets flagged as a dip."""
    rows, dips = [], []
    for r in compared:
        moment = as_utc(r.bucket)
        after = moment >= cut
        low = after and average is not None and r.observed < (1 - dip_share) * average
        short = after and r.running_gap < -(tolerance_events + tolerance_share * r.expected)
        flag = "dip" if (low or short) else ""
        rows.append(
            {
                "bucket": r.bucket,
                "segment_ingress": r.expected,
                "warehouse_rows": r.observed,
                "after_cutover": after,
                "flag": flag,
            }
        )
        if flag:
            dips.append(r.bucket)
    return rows, dips


def continuity(
    segment: Any,
    dialect: WarehouseDialect,
    *,
    namespace: str,
    source_ids: Iterable[str],
    cutover: datetime,
    start: datetime,
    end: datetime,
    granularity: str = "HOUR",
    tolerance_events: int = 10,
    tolerance_share: float = 0.001,
    dip_share: float = 0.5,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Rows per bucket in ``namespace`` (every source) against Segment's ingress for ``source_ids`` (the plan's
    sources writing that schema). Everything Segment received must reach the warehouse (loaded by Segment, or
    through the webhook); a bucket at or after the cutover with fewer rows than that, or with fewer than
    ``(1 - dip_share)`` of the average bucket before the cutover, is flagged as a dip."""
    now = now or datetime.now(UTC)
    start, note = clamp_start(start, granularity, now)
    if end <= start:
        return {
            "rows": [],
            "dips": [],
            "notes": [note, "nothing to compare"] if note else ["nothing to compare"],
        }
    ingress = _segment_ingress(segment, source_ids, start, end, granularity, now)
    rows_in_warehouse = warehouse_rows_by_bucket(
        dialect, namespace, start=start, end=end, granularity=granularity
    )
    compared = compare_buckets(
        ingress, rows_in_warehouse, tolerance_events=tolerance_events, tolerance_share=tolerance_share
    )
    cut = floor_time(cutover, granularity)
    before = [r.observed for r in compared if as_utc(r.bucket) < cut]
    average = sum(before) / len(before) if before else None
    rows, dips = _flag_dips(
        compared,
        cut,
        average,
        dip_share=dip_share,
        tolerance_events=tolerance_events,
        tolerance_share=tolerance_share,
    )
    return {
        "start": iso_z(start),
        "end": iso_z(end),
        "cutover": iso_z(cutover),
        "granularity": granularity,
        "average_before_cutover": average,
        "rows": rows,
        "dips": dips,
        "notes": [note] if note else [],
    }
