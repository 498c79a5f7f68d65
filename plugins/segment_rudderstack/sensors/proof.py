"""The sensor that waits for adoption measured from Segment's side (plan setting proof.adoption_signal)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.instants import as_utc
from segment_rudderstack.rendered import as_list
from segment_rudderstack.sensors.base import ConditionSensor
from segment_rudderstack.sensors.migration import ClientAdoptionSensor
from segment_rudderstack.waits.segment_metrics_watch import SegmentAdoptionWatch


class SegmentAdoptionSensor(ClientAdoptionSensor):
    """Waits for adoption measured from Segment's side (see :class:`SegmentAdoptionWatch`); same decision as
    :class:`~segment_rudderstack.sensors.migration.ClientAdoptionSensor` (threshold, consecutive checks).

    :param segment_conn_id: the Segment Public API connection.
    :param source_ids: the client sources whose ingress is counted.
    :param cutover_at: when the webhook was enabled (the baseline window ends there).
    :param warehouse_conn_id: the warehouse connection (the warehouse share, for ``signal=both`` or when the
        beta API is unavailable).
    :param namespace: the schema RudderStack writes to.
    :param webhook_source_id: RudderStack's Segment-type source.
    :param threshold: the share still arriving through Segment at or below which a check counts.
    :param window_seconds: the trailing window of each check.
    :param consecutive_checks: checks in a row the share must hold.
    :param min_events: fewer events in a window prove nothing (the streak resets).
    :param library_names: client library names counted as still on Segment (warehouse share).
    :param granularity: Segment's metrics bucket (``MINUTE``/``HOUR``/``DAY``).
    :param signal: ``segment_metrics`` or ``both`` (the higher of Segment's and the warehouse's share).
    """

    template_fields = (
        *ConditionSensor.template_fields,
        "webhook_source_id",
        "threshold",
        "window_seconds",
        "consecutive_checks",
        "source_ids",
        "cutover_at",
    )

    def __init__(
        self,
        *,
        segment_conn_id: str,
        source_ids: Sequence[str] | str,
        cutover_at: Any,
        warehouse_conn_id: str,
        namespace: str,
        webhook_source_id: Any,
        threshold: float | str = 0.01,
        window_seconds: float | str = 86400,
        consecutive_checks: int | str = 3,
        min_events: int = 1,
        library_names: Sequence[str] = (),
        granularity: str = "HOUR",
        signal: str = "segment_metrics",
        **kwargs: Any,
    ):
        super().__init__(
            warehouse_conn_id=warehouse_conn_id,
            namespace=namespace,
            webhook_source_id=webhook_source_id,
            threshold=threshold,
            window_seconds=window_seconds,
            consecutive_checks=consecutive_checks,
            min_events=min_events,
            library_names=library_names,
            **kwargs,
        )
        self.segment_conn_id = segment_conn_id
        self.source_ids = source_ids
        self.cutover_at = cutover_at
        self.granularity = granularity
        self.signal = signal

    def build_watch(self, context: Any) -> SegmentAdoptionWatch:
        from segment_rudderstack.evidence.proof_buckets import clamp_start
        from segment_rudderstack.hooks.segment_delivery import DeliveryOverviewUnavailable, SegmentMetricsHook

        sources = list(as_list(self.source_ids) or [])
        baseline: dict[str, int] = {}
        if self.cutover_at:
            cutover = as_utc(str(self.cutover_at))
            start, _ = clamp_start(
                cutover - timedelta(seconds=float(self.window_seconds)), self.granularity, datetime.now(UTC)
            )
            try:
                hook = SegmentMetricsHook(self.segment_conn_id)
                for source_id in sources:
                    baseline[source_id] = (
                        hook.delivery_metrics(
                            "successfully-received",
                            source_id=source_id,
                            start=start,
                            end=cutover,
                            granularity=self.granularity,
                        ).total
                        if start < cutover
                        else 0
                    )
            except DeliveryOverviewUnavailable as unavailable:
                self.log.warning("%s", unavailable)
        return SegmentAdoptionWatch(
            **{**self.adoption_arguments(), "tables": None},
            segment_conn_id=self.segment_conn_id,
            source_ids=sources,
            granularity=self.granularity,
            baseline=baseline,
            signal=self.signal,
        )
