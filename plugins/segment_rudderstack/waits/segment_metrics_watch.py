"""Adoption measured from Segment's side (Delivery Overview ingress of the client sources), as a watch: the
sensor's poke and the trigger rebuild it from its spec (so it lives with the watches, not with an operator)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from segment_rudderstack.waits.conditions import AdoptionSample
from segment_rudderstack.waits.watches import AdoptionWatch


@dataclass(frozen=True)
class SegmentAdoptionWatch(AdoptionWatch):
    """Adoption from Segment's side: events still arriving at Segment over the trailing window (Delivery
    Overview ingress of the client sources) against the same sources' ingress over as long a window before the
    cutover (``baseline``, read once when the sensor starts). ``signal="both"`` also reads the warehouse share
    and keeps the higher one (both must be at or below the threshold); where the beta API is unavailable the
    warehouse share is used."""

    segment_conn_id: str = "segment_default"
    source_ids: list[str] | None = None
    granularity: str = "HOUR"
    baseline: dict[str, int] | None = None
    signal: str = "segment_metrics"

    def observe(self) -> AdoptionSample:
        from segment_rudderstack.hooks.segment_delivery import DeliveryOverviewUnavailable, SegmentMetricsHook

        until = datetime.now(UTC)
        since = until - timedelta(seconds=float(self.window_seconds))
        base = sum(int(v) for v in (self.baseline or {}).values())
        try:
            hook = self._cached("segment_metrics", lambda: SegmentMetricsHook(self.segment_conn_id))
            trailing = sum(
                hook.delivery_metrics(
                    "successfully-received", source_id=s, start=since, end=until, granularity=self.granularity
                ).total
                for s in self.source_ids or []
            )
        except DeliveryOverviewUnavailable:
            return super().observe()
        if base <= 0:
            # No traffic reached Segment before the cutover (or it is older than Segment keeps): Segment's ingress
            # has nothing to be a share of, so the warehouse share decides.
            return super().observe()
        segment_sample = AdoptionSample(
            at=until, total=max(base, trailing), via_segment=trailing, since=since
        )
        if self.signal != "both":
            return segment_sample
        warehouse_sample = super().observe()
        shares = [(s.share if s.share is not None else 1.0, s) for s in (segment_sample, warehouse_sample)]
        return max(shares, key=lambda pair: pair[0])[1]
