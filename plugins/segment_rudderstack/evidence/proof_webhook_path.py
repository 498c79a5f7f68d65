"""The webhook path proven from Segment's metrics: per bucket, events Segment delivered to each client source's
Webhooks destination against rows RudderStack loaded from its Segment-type source; failed deliveries by reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.proof_queries import warehouse_last_received, warehouse_rows_by_bucket
from segment_rudderstack.evidence.proof_buckets import BucketRow, add_counts, clamp_start, compare_buckets
from segment_rudderstack.hooks.segment_delivery import (
    DeliveryMetrics,
    iso_z,
)


@dataclass
class WebhookPathProof:
    start: str
    end: str
    granularity: str
    rows: list[BucketRow]
    delivered_by_source: dict[str, int]
    failed: list[dict[str, Any]]
    retried: int
    tolerance_events: int
    tolerance_share: float
    notes: list[str] = field(default_factory=list)

    @property
    def differing(self) -> list[BucketRow]:
        return [r for r in self.rows if r.differs]

    @property
    def ok(self) -> bool:
        return not self.differing

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "start": self.start,
            "end": self.end,
            "granularity": self.granularity,
            "delivered": sum(r.expected for r in self.rows),
            "loaded": sum(r.observed for r in self.rows),
            "failed_deliveries": sum(f["count"] for f in self.failed),
            "retried": self.retried,
            "delivered_by_source": self.delivered_by_source,
            "failed": self.failed,
            "tolerance_events": self.tolerance_events,
            "tolerance_share": self.tolerance_share,
            "buckets": [asdict(r) for r in self.rows],
            "differing_buckets": [r.bucket for r in self.differing],
            "notes": self.notes,
        }

    def summary(self) -> str:
        delivered, loaded = sum(r.expected for r in self.rows), sum(r.observed for r in self.rows)
        if self.ok:
            return (
                f"webhook path matches: Segment delivered {delivered}, RudderStack loaded {loaded} "
                f"over {len(self.rows)} {self.granularity} bucket(s) {self.start} to {self.end}"
            )
        listed = "; ".join(
            f"{r.bucket}: delivered {r.expected}, loaded {r.observed}, failed {r.failed} ({r.why})"
            for r in self.differing[:20]
        )
        return (
            f"webhook path differs in {len(self.differing)} bucket(s) beyond the tolerance "
            f"({self.tolerance_events} events + {self.tolerance_share:.2%}): {listed}"
        )


def _comparison_window(
    dialect: WarehouseDialect,
    namespace: str,
    rudderstack_source_id: str,
    *,
    start: datetime,
    end: datetime | None,
    granularity: str,
    settle_seconds: float,
    now: datetime,
) -> tuple[datetime, datetime, list[str]]:
    """``(start, end, notes)`` of the webhook-path comparison (see :func:`reconcile_webhook_path`)."""
    notes: list[str] = []
    start, note = clamp_start(start, granularity, now)
    if note:
        notes.append(note)
    end = end or now - timedelta(seconds=settle_seconds)
    last_loaded = warehouse_last_received(dialect, namespace, source_id=rudderstack_source_id, since=start)
    # Segment counts a delivery when RudderStack has answered, a little after RudderStack's received_at: a
    # second past the latest loaded event keeps the last delivery inside the comparison.
    if last_loaded is not None and last_loaded + timedelta(seconds=1) < end:
        end = last_loaded + timedelta(seconds=1)
        notes.append(
            f"compared up to {iso_z(end)}: the latest event RudderStack has loaded from the webhook "
            "source (later events are not uploaded yet)"
        )
    return start, end, notes


def _nothing_to_compare(
    start: datetime,
    end: datetime,
    granularity: str,
    tolerance_events: int,
    tolerance_share: float,
    notes: list[str],
) -> WebhookPathProof:
    """The proof of an empty comparison window (``end`` not after ``start``)."""
    return WebhookPathProof(
        iso_z(start),
        iso_z(max(start, end)),
        granularity,
        [],
        {},
        [],
        0,
        tolerance_events,
        tolerance_share,
        [*notes, "nothing to compare yet"],
    )


def _webhook_deliveries(
    segment: Any,
    webhooks: Mapping[str, str],
    *,
    start: datetime,
    end: datetime,
    granularity: str,
    now: datetime,
) -> tuple[
    dict[datetime, int], dict[datetime, int], dict[datetime, int], dict[str, int], list[dict[str, Any]]
]:
    """Segment's successful and failed deliveries to each webhook over ``[start, end)``: delivered, failed and
    retried per bucket, delivered per source, and the failures by discard reason."""
    delivered: dict[datetime, int] = {}
    failed_by_bucket: dict[datetime, int] = {}
    retried: dict[datetime, int] = {}
    delivered_by_source: dict[str, int] = {}
    failed: list[dict[str, Any]] = []
    for source_id, destination_id in sorted(webhooks.items()):
        ok: DeliveryMetrics = segment.delivery_metrics(
            "successful-delivery",
            source_id=source_id,
            destination_config_id=destination_id,
            start=start,
            end=end,
            granularity=granularity,
            now=now,
        )
        add_counts(delivered, ok.by_bucket())
        add_counts(retried, ok.retries_by_bucket())
        delivered_by_source[source_id] = ok.total
        bad: DeliveryMetrics = segment.delivery_metrics(
            "failed-delivery",
            source_id=source_id,
            destination_config_id=destination_id,
            start=start,
            end=end,
            granularity=granularity,
            group_by="discardReason",
            now=now,
        )
        add_counts(failed_by_bucket, bad.by_bucket())
        for reason, count in bad.by_group().items():
            if count:
                failed.append(
                    {
                        "sourceId": source_id,
                        "destinationId": destination_id,
                        "discardReason": reason,
                        "count": count,
                    }
                )
    return delivered, failed_by_bucket, retried, delivered_by_source, failed


def reconcile_webhook_path(
    segment: Any,
    dialect: WarehouseDialect,
    *,
    namespace: str,
    webhooks: Mapping[str, str],
    rudderstack_source_id: str,
    start: datetime,
    end: datetime | None = None,
    granularity: str = "HOUR",
    settle_seconds: float = 300,
    tolerance_events: int = 10,
    tolerance_share: float = 0.001,
    tolerance_failed: int = 0,
    now: datetime | None = None,
) -> WebhookPathProof:
    """Segment's deliveries to the webhooks ``{segment source id: destination id}`` against RudderStack's rows
    from ``rudderstack_source_id`` in ``namespace``, over ``[start, end)``.

    ``end`` defaults to now minus ``settle_seconds`` (Segment's metrics lag ~30 s) and is held at the latest
    ``received_at`` RudderStack has loaded from the source (rows not uploaded yet are not a loss); nothing
    loaded at all keeps the full window, so a webhook whose events never arrived shows every bucket."""
    now = now or datetime.now(UTC)
    start, end, notes = _comparison_window(
        dialect,
        namespace,
        rudderstack_source_id,
        start=start,
        end=end,
        granularity=granularity,
        settle_seconds=settle_seconds,
        now=now,
    )
    if end <= start:
        return _nothing_to_compare(start, end, granularity, tolerance_events, tolerance_share, notes)
    delivered, failed_by_bucket, retried, delivered_by_source, failed = _webhook_deliveries(
        segment, webhooks, start=start, end=end, granularity=granularity, now=now
    )
    loaded = warehouse_rows_by_bucket(
        dialect, namespace, start=start, end=end, granularity=granularity, source_id=rudderstack_source_id
    )
    rows = compare_buckets(
        delivered,
        loaded,
        failed=failed_by_bucket,
        retried=retried,
        tolerance_events=tolerance_events,
        tolerance_share=tolerance_share,
        tolerance_failed=tolerance_failed,
    )
    return WebhookPathProof(
        iso_z(start),
        iso_z(end),
        granularity,
        rows,
        delivered_by_source,
        failed,
        sum(retried.values()),
        tolerance_events,
        tolerance_share,
        notes,
    )
