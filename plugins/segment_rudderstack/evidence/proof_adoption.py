"""Adoption from Segment's side: ingress per client source over a trailing window, by app version, against the
same source's ingress before the cutover."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.evidence.proof_buckets import clamp_start
from segment_rudderstack.hooks.segment_delivery import (
    iso_z,
)


def _received_before_cutover(
    segment: Any, source_id: str, cutover: datetime, window: timedelta, granularity: str, now: datetime
) -> int:
    """Segment's ingress for ``source_id`` over ``[cutover - window, cutover)`` (0 when nothing is left of it)."""
    start, _ = clamp_start(cutover - window, granularity, now)
    return (
        segment.delivery_metrics(
            "successfully-received",
            source_id=source_id,
            start=start,
            end=cutover,
            granularity=granularity,
            now=now,
        ).total
        if start < cutover
        else 0
    )


def _received_since_cutover_by_version(
    segment: Any, source_id: str, cutover: datetime, until: datetime, granularity: str, now: datetime
) -> dict[str, int]:
    """Who still sent to Segment at all after the cutover (the webhook's whole life), by app version."""
    after_start, _ = clamp_start(cutover, granularity, now)
    return (
        segment.delivery_metrics(
            "successfully-received",
            source_id=source_id,
            start=after_start,
            end=until,
            granularity=granularity,
            group_by="appVersion",
            now=now,
        ).by_group()
        if after_start < until
        else {}
    )


def segment_adoption(
    segment: Any,
    *,
    source_ids: Iterable[str],
    cutover: datetime,
    until: datetime,
    window_seconds: float,
    granularity: str = "HOUR",
    baseline: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Per client source: Segment's ingress over ``[until - window, until)`` by ``appVersion``, and the share of
    the pre-cutover rate (ingress over ``[cutover - window, cutover)``) that still arrives at Segment.

    ``baseline`` (``{source id: events in the pre-cutover window}``) skips re-reading it."""
    now = now or datetime.now(UTC)
    window = timedelta(seconds=float(window_seconds))
    since = until - window
    sources: dict[str, Any] = {}
    base_total = now_total = 0
    for source_id in sorted(set(source_ids)):
        if baseline is not None and source_id in baseline:
            before = int(baseline[source_id])
        else:
            before = _received_before_cutover(segment, source_id, cutover, window, granularity, now)
        trailing = segment.delivery_metrics(
            "successfully-received",
            source_id=source_id,
            start=clamp_start(since, granularity, now)[0],
            end=until,
            granularity=granularity,
            group_by="appVersion",
            now=now,
        )
        versions = {v: n for v, n in trailing.by_group().items() if n}
        after = _received_since_cutover_by_version(segment, source_id, cutover, until, granularity, now)
        sources[source_id] = {
            "before_cutover": before,
            "trailing": trailing.total,
            "share": (trailing.total / before) if before else None,
            "app_versions": versions,
            "app_versions_since_cutover": {v: n for v, n in after.items() if n},
        }
        base_total += before
        now_total += trailing.total
    return {
        "since": iso_z(since),
        "until": iso_z(until),
        "window_seconds": float(window_seconds),
        "before_cutover": base_total,
        "trailing": now_total,
        "share": (min(1.0, now_total / base_total)) if base_total else None,
        "sources": sources,
    }
