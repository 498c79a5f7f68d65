"""Proof from Segment's metrics, as tasks: verify the webhook path before Segment's webhook is switched off,
and (plan setting ``proof.adoption_signal``) wait for adoption measured from Segment's side.

See :mod:`segment_rudderstack.evidence.proof` for what is compared and :mod:`segment_rudderstack.hooks.segment_delivery`
for the Delivery Overview endpoints (Segment Public API, beta).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.instants import as_utc
from segment_rudderstack.operators.base import MigrationOperator
from segment_rudderstack.rendered import as_list

GAP_ACTIONS = ("fail", "approve")


def _webhooks_of(value: Any) -> dict[str, str]:
    """``{source id: destination id}`` from the ensure_webhooks result (or that mapping itself)."""
    if isinstance(value, Mapping) and isinstance(value.get("destinations"), Mapping):
        value = value["destinations"]
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if v}


class VerifyWebhookPathOperator(MigrationOperator):
    """Before Segment's webhook is switched off: Segment's successful deliveries per bucket against the rows
    RudderStack loaded from its Segment-type source, failed deliveries and retries, adoption by app version
    and continuity around the cutover, all from Segment's Delivery Overview metrics. Reads only.

    A gap beyond the tolerance stops the run naming the buckets (``on_gap="fail"``), or lets an approval gate
    downstream ask a person (``on_gap="approve"``: the result carries ``gap: true``). Where the beta API is not
    available (403/404) it says so once and lets the run go on on warehouse signals alone.

    :param webhooks: the ensure_webhooks result (``{"destinations": {source: destination}, "cutover_at"}``).
    :param granularity: Segment's bucket, ``MINUTE`` / ``HOUR`` / ``DAY`` (sandbox: MINUTE, time is compressed).
    :param settle_seconds: buckets younger than this are not compared (Segment's metrics lag ~30 s).
    :param tolerance_events: how far the running count may differ (bucket boundaries), in events.
    :param tolerance_share: ... plus this share of the running count.
    :param tolerance_failed: failed deliveries accepted per bucket (default 0: each one is a lost event).
    :param continuity_source_ids: the plan's Segment sources writing this schema (continuity check).
    :param segment_conn_id: the Segment Public API connection.
    :param warehouse_conn_id: the warehouse connection.
    :param namespace: the schema RudderStack writes to.
    :param rudderstack_source_id: RudderStack's Segment-type source (its rows are the webhook path's).
    :param source_ids: the client sources whose webhook is verified.
    :param adoption_window_seconds: the trailing window of the adoption-by-app-version breakdown.
    :param continuity_buckets_before: buckets before the cutover compared for continuity.
    :param on_gap: ``fail`` (stop the run) or ``approve`` (mark the gap and let an approval gate ask a person).
    """

    template_fields = (
        *MigrationOperator.template_fields,
        "webhooks",
        "rudderstack_source_id",
        "source_ids",
        "adoption_window_seconds",
    )
    ui_color = "#e3f1d4"

    def __init__(
        self,
        *,
        segment_conn_id: str,
        warehouse_conn_id: str,
        namespace: str,
        webhooks: Any,
        rudderstack_source_id: Any,
        source_ids: Sequence[str] | str,
        continuity_source_ids: Sequence[str] = (),
        granularity: str = "HOUR",
        settle_seconds: float = 300,
        tolerance_events: int = 10,
        tolerance_share: float = 0.001,
        tolerance_failed: int = 0,
        adoption_window_seconds: float | str = 86400,
        continuity_buckets_before: int = 6,
        on_gap: str = "fail",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if on_gap not in GAP_ACTIONS:
            raise ValueError(f"on_gap must be one of {GAP_ACTIONS}, got {on_gap!r}")
        self.segment_conn_id = segment_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.namespace = namespace
        self.webhooks = webhooks
        self.rudderstack_source_id = rudderstack_source_id
        self.source_ids = source_ids
        self.continuity_source_ids = list(continuity_source_ids)
        self.granularity = granularity
        self.settle_seconds = settle_seconds
        self.tolerance_events = tolerance_events
        self.tolerance_share = tolerance_share
        self.tolerance_failed = tolerance_failed
        self.adoption_window_seconds = adoption_window_seconds
        self.continuity_buckets_before = continuity_buckets_before
        self.on_gap = on_gap

    def execute(self, context: Any) -> dict[str, Any]:
        from segment_rudderstack.dialects import dialect_for_conn_id
        from segment_rudderstack.evidence.proof_adoption import segment_adoption
        from segment_rudderstack.evidence.proof_webhook_path import reconcile_webhook_path
        from segment_rudderstack.hooks.segment_delivery import SegmentMetricsHook, floor_time

        webhooks = _webhooks_of(self.webhooks)
        selected = [s for s in (as_list(self.source_ids) or []) if s in webhooks]
        webhooks = {s: webhooks[s] for s in selected}
        cutover_raw = self.webhooks.get("cutover_at") if isinstance(self.webhooks, Mapping) else None
        if not webhooks or not self.rudderstack_source_id or not cutover_raw:
            why = "no webhook destination or RudderStack Segment-type source to check (nothing routed yet)"
            self.log.info("proof from Segment's metrics: %s%s", why, " (dry run)" if self.is_dry_run else "")
            return {"available": True, "checked": False, "reason": why, "gap": False}
        cutover = as_utc(str(cutover_raw))
        hook = SegmentMetricsHook(self.segment_conn_id)
        available, why = hook.delivery_overview_available(selected[0], granularity=self.granularity)
        if not available:
            self.log.warning("%s", why)
            return {"available": False, "reason": why, "gap": False}
        dialect = dialect_for_conn_id(self.warehouse_conn_id)
        now = datetime.now(UTC)
        settled = now - timedelta(seconds=float(self.settle_seconds))
        start = floor_time(cutover, self.granularity)
        webhook_proof = reconcile_webhook_path(
            hook,
            dialect,
            namespace=self.namespace,
            webhooks=webhooks,
            rudderstack_source_id=str(self.rudderstack_source_id),
            start=start,
            end=settled,
            granularity=self.granularity,
            tolerance_events=int(self.tolerance_events),
            tolerance_share=float(self.tolerance_share),
            tolerance_failed=int(self.tolerance_failed),
            now=now,
        )
        adoption = segment_adoption(
            hook,
            source_ids=selected,
            cutover=cutover,
            until=settled,
            window_seconds=float(self.adoption_window_seconds),
            granularity=self.granularity,
            now=now,
        )
        flow = self._continuity(hook, dialect, selected, cutover, start, as_utc(webhook_proof.end), now)
        result = {
            "available": True,
            "checked": True,
            "gap": not webhook_proof.ok,
            "webhook_path": webhook_proof.to_dict(),
            "adoption": adoption,
            "continuity": flow,
        }
        self._log_signals(adoption, flow)
        return self._conclude(webhook_proof, result)

    def _continuity(
        self,
        hook: Any,
        dialect: Any,
        selected: list[str],
        cutover: datetime,
        start: datetime,
        end: datetime,
        now: datetime,
    ) -> dict[str, Any]:
        """Rows per bucket against Segment's ingress, from ``continuity_buckets_before`` buckets before
        ``start`` up to ``end``."""
        from segment_rudderstack.evidence.proof_continuity import continuity
        from segment_rudderstack.hooks.segment_delivery import BUCKET

        before = BUCKET[self.granularity] * int(self.continuity_buckets_before)
        return continuity(
            hook,
            dialect,
            namespace=self.namespace,
            source_ids=self.continuity_source_ids or selected,
            cutover=cutover,
            start=start - before,
            end=end,
            granularity=self.granularity,
            tolerance_events=int(self.tolerance_events),
            tolerance_share=float(self.tolerance_share),
            now=now,
        )

    def _log_signals(self, adoption: Mapping[str, Any], flow: Mapping[str, Any]) -> None:
        """Log the adoption share, the app versions still sending to Segment and any continuity dip."""
        versions = {v: n for s in adoption["sources"].values() for v, n in s["app_versions"].items()}
        self.log.info(
            "adoption from Segment's side: share %s; app versions still sending to Segment: %s",
            adoption["share"],
            versions or "none",
        )
        if flow["dips"]:
            self.log.warning(
                "continuity: a dip in warehouse rows at %s (see the report)", ", ".join(flow["dips"])
            )

    def _conclude(self, webhook_proof: Any, result: dict[str, Any]) -> dict[str, Any]:
        """Return ``result`` when the webhook path matches; otherwise fail (``on_gap="fail"``) or warn."""
        if webhook_proof.ok:
            self.log.info("%s", webhook_proof.summary())
            return result
        message = (
            f"{webhook_proof.summary()}. Segment's webhook was NOT switched off. Find the missing events (failed "
            "deliveries are listed by discard reason in Segment's Delivery Overview) and resend or backfill them, "
            "then re-run; or set proof.on_gap: approve in the plan to let a person accept the gap"
        )
        if self.on_gap == "fail":
            raise AirflowFailException(message)
        self.log.warning("%s", message)
        return result
