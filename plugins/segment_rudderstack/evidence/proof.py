"""Proof in production: the migration checked against Segment's own Delivery Overview metrics.

In the sandbox a ledger knows every event sent; on a real migration nothing does, but Segment counts, per
source and per destination, what it received, delivered and failed, by time bucket
(:mod:`segment_rudderstack.hooks.segment_delivery`). Three proofs are built from those counts:

- **Webhook path** (:func:`reconcile_webhook_path`): per bucket, events Segment delivered successfully to each
  client source's Webhooks destination (``successful-delivery``) against rows RudderStack loaded from its
  Segment-type source (``context_source_id``) by ``received_at``, over the same buckets; failed deliveries
  (``failed-delivery`` grouped by ``discardReason``) and retries (``retryCount``) are listed.
- **Adoption from Segment's side** (:func:`segment_adoption`): ingress (``successfully-received``) per client
  source over a trailing window, grouped by ``appVersion``, against the same source's ingress rate before the
  cutover: the share still arriving at Segment and which app versions still send.
- **Continuity** (:func:`continuity`): rows per bucket in the warehouse schema around the cutover against
  Segment's ingress for the plan's sources of that schema; a dip at the cutover is flagged.

Bucket comparisons (:func:`compare_buckets`) run on cumulative sums: an event Segment counted at 11:59:59.9
and RudderStack received at 12:00:00.1 moves one event between neighbouring buckets without being a loss, so
a bucket differs only when the running gap exceeds the tolerance (``tolerance_events`` plus
``tolerance_share`` of the running count), or when Segment gave up on deliveries in it.

Segment's metrics only cover what Segment keeps: MINUTE buckets 48 hours back, HOUR 30 days, DAY 30 days
(DeliveryOverviewApi.md); an older start is moved forward and said so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SECTION_TITLE = "Proof from Segment's metrics"


def _webhook_path_lines(webhook: Mapping[str, Any], accepted_gap: Any) -> list[str]:
    """The report's subsection on the webhook path."""
    lines: list[str] = []
    verdict = "matches" if webhook.get("ok") else "DIFFERS"
    lines += [
        f"### Webhook path: {verdict}",
        "",
        f"Segment delivered **{webhook.get('delivered')}** events to the webhook(s), RudderStack loaded "
        f"**{webhook.get('loaded')}** from its Segment-type source ({webhook.get('granularity')} buckets, "
        f"{webhook.get('start')} to {webhook.get('end')}; tolerance {webhook.get('tolerance_events')} events + "
        f"{float(webhook.get('tolerance_share') or 0):.2%}). Failed deliveries: "
        f"{webhook.get('failed_deliveries')}; delivered after a retry: {webhook.get('retried')}.",
        "",
        "| bucket (UTC) | delivered | loaded | failed | retried | running gap | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {b['bucket']} | {b['expected']} | {b['observed']} | {b['failed']} | {b['retried']} | "
        f"{b['running_gap']} | {'**differs**: ' + b['why'] if b['differs'] else ''} |"
        for b in webhook.get("buckets") or []
    ] or ["| - | | | | | | nothing to compare |"]
    if webhook.get("failed"):
        lines += [
            "",
            "Failed deliveries by discard reason:",
            "",
            "| source | destination | discard reason | events |",
            "|---|---|---|---:|",
        ]
        lines += [
            f"| {f['sourceId']} | {f['destinationId']} | {f['discardReason']} | {f['count']} |"
            for f in webhook["failed"]
        ]
    lines += [f"- {n}" for n in webhook.get("notes") or []]
    if accepted_gap:
        lines += ["", f"The gap was accepted by a person: {accepted_gap}"]
    lines.append("")
    return lines


def _adoption_lines(adoption: Mapping[str, Any]) -> list[str]:
    """The report's subsection on adoption from Segment's side."""
    lines: list[str] = []
    share = adoption.get("share")
    lines += [
        "### Adoption from Segment's side",
        "",
        f"Events still arriving at Segment over {adoption.get('since')} to {adoption.get('until')}: "
        f"**{adoption.get('trailing')}**, against {adoption.get('before_cutover')} in the same length of time "
        f"before the cutover: share **{'n/a' if share is None else f'{share:.2%}'}**.",
        "",
        "| source | app version still sending to Segment | events since the cutover | in the last window |",
        "|---|---|---:|---:|",
    ]
    rows = []
    for sid, s in (adoption.get("sources") or {}).items():
        recent = s.get("app_versions") or {}
        since = s.get("app_versions_since_cutover") or {}
        for version in sorted(set(since) | set(recent), key=lambda v: (-since.get(v, 0), v)):
            rows.append(f"| {sid} | {version} | {since.get(version, 0)} | {recent.get(version, 0)} |")
    lines += rows or ["| - | none | 0 | 0 |"]
    lines.append("")
    return lines


def _continuity_lines(flow: Mapping[str, Any]) -> list[str]:
    """The report's subsection on continuity around the cutover."""
    lines: list[str] = []
    dips = flow.get("dips") or []
    lines += [
        f"### Continuity around the cutover: {'dip flagged at ' + ', '.join(dips) if dips else 'no dip'}",
        "",
        "| bucket (UTC) | Segment ingress | warehouse rows | | |",
        "|---|---:|---:|---|---|",
    ]
    lines += [
        f"| {r['bucket']} | {r['segment_ingress']} | {r['warehouse_rows']} | "
        f"{'after cutover' if r['after_cutover'] else 'before'} | {'**dip**' if r['flag'] else ''} |"
        for r in flow.get("rows") or []
    ] or ["| - | | | | |"]
    lines += [f"- {n}" for n in flow.get("notes") or []]
    lines.append("")
    return lines


def proof_section(proof: Mapping[str, Any] | None) -> list[str]:
    """The report's Markdown section "Proof from Segment's metrics" from the verification task's result."""
    lines = [f"## {SECTION_TITLE}", ""]
    if not proof:
        return [*lines, "Not checked in this run (no verification result).", ""]
    if not proof.get("available", True):
        return [
            *lines,
            f"Not available: {proof.get('reason')}",
            "",
            "The migration ran on warehouse signals alone.",
            "",
        ]
    webhook = proof.get("webhook_path") or {}
    if webhook:
        lines += _webhook_path_lines(webhook, proof.get("accepted_gap"))
    adoption = proof.get("adoption") or {}
    if adoption:
        lines += _adoption_lines(adoption)
    flow = proof.get("continuity") or {}
    if flow:
        lines += _continuity_lines(flow)
    return lines
