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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.dialects.base import SqlText, WarehouseDialect, compose, join_sql
from segment_rudderstack.hooks.segment_delivery import (
    BUCKET,
    GRANULARITY_LIMITS,
    DeliveryMetrics,
    floor_time,
    iso_z,
)
from segment_rudderstack.instants import as_utc
from segment_rudderstack.vocabulary import EVENT_TABLES

# EVENT_TABLES: the tables one event lands in exactly once (a track also lands in its own per-event table:
# not counted twice).
SECTION_TITLE = "Proof from Segment's metrics"


# ------------------------------------------------------------------------------------------ comparisons
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


# ------------------------------------------------------------------------------------------ warehouse
_BUCKET_SECONDS = {"MINUTE": 60, "HOUR": 3600, "DAY": 86400}


_TRUNC_UNIT = {"MINUTE": SqlText("MINUTE"), "HOUR": SqlText("HOUR"), "DAY": SqlText("DAY")}


def _epoch(dialect: WarehouseDialect, column: SqlText, granularity: str) -> SqlText:
    """Seconds since the epoch (UTC) of a timestamp column, per warehouse. Snowflake truncates to the bucket
    first (``EPOCH_SECOND`` of a fractional second must not round into the next bucket)."""
    if dialect.name == "snowflake":
        return compose(
            "DATE_PART(EPOCH_SECOND, DATE_TRUNC('{u}', {c}))", u=_TRUNC_UNIT[granularity], c=column
        )
    return compose("EXTRACT(EPOCH FROM {c})", c=column)


def warehouse_rows_by_bucket(
    dialect: WarehouseDialect,
    schema: str,
    *,
    start: datetime,
    end: datetime,
    granularity: str,
    source_id: str | None = None,
    tables: Sequence[str] = EVENT_TABLES,
) -> dict[datetime, int]:
    """Rows with ``received_at`` in ``[start, end)`` per bucket (of ``context_source_id = source_id`` when
    given). Only the window is read; tables that are missing, or lack the columns, count zero."""
    seconds = _BUCKET_SECONDS[granularity]
    counts: dict[datetime, int] = {}
    with dialect.session() as s:
        actual = dialect.resolve_schema(s, schema)
        loaded = dialect.load_tables(s, actual, tables) if actual else {}
        selects: list[SqlText] = []
        params: list[Any] = []
        for table in loaded.values():
            received = table.column("received_at")
            source_col = table.column("context_source_id")
            if not received or (source_id is not None and not source_col):
                continue
            r = dialect.quote_identifier(received)
            where = compose("{r} >= %s AND {r} < %s", r=r)
            part = [start, end]
            if source_id is not None:
                where = compose("{w} AND {c} = %s", w=where, c=dialect.quote_identifier(source_col))
                part.append(source_id)
            selects.append(
                compose(
                    "SELECT FLOOR({e} / %s) AS b, COUNT(*) AS n FROM {t} WHERE {w} GROUP BY 1",
                    e=_epoch(dialect, r, granularity),
                    t=dialect.qualified(actual, table.actual),
                    w=where,
                )
            )
            params += [seconds, *part]
        if selects:
            for bucket, n in s.fetchall(join_sql(" UNION ALL ", selects), params):
                moment = datetime.fromtimestamp(int(bucket) * seconds, UTC)
                counts[moment] = counts.get(moment, 0) + int(n)
    return dict(sorted(counts.items()))


def warehouse_last_received(
    dialect: WarehouseDialect,
    schema: str,
    *,
    source_id: str,
    since: datetime,
    tables: Sequence[str] = EVENT_TABLES,
) -> datetime | None:
    """The latest ``received_at`` loaded from ``source_id`` since ``since`` (None when nothing is loaded)."""
    latest: datetime | None = None
    with dialect.session() as s:
        actual = dialect.resolve_schema(s, schema)
        loaded = dialect.load_tables(s, actual, tables) if actual else {}
        for table in loaded.values():
            received, source_col = table.column("received_at"), table.column("context_source_id")
            if not received or not source_col:
                continue
            sql = compose(
                "SELECT MAX({r}) FROM {t} WHERE {r} >= %s AND {c} = %s",
                r=dialect.quote_identifier(received),
                t=dialect.qualified(actual, table.actual),
                c=dialect.quote_identifier(source_col),
            )
            value = s.fetchall(sql, [since, source_id])[0][0]
            if isinstance(value, datetime):
                value = as_utc(value)
                latest = value if latest is None or value > latest else latest
    return latest


# ------------------------------------------------------------------------------------------ windows
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


def parse_time(text: str) -> datetime:
    """A time this module rendered (ISO 8601 with ``Z``) back as an aware datetime."""
    return as_utc(text)


def _add(into: dict[datetime, int], more: Mapping[datetime, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


# ------------------------------------------------------------------------------------------ webhook path
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
        _add(delivered, ok.by_bucket())
        _add(retried, ok.retries_by_bucket())
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
        _add(failed_by_bucket, bad.by_bucket())
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


# ------------------------------------------------------------------------------------------ adoption
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


# ------------------------------------------------------------------------------------------ continuity
def _segment_ingress(
    segment: Any, source_ids: Iterable[str], start: datetime, end: datetime, granularity: str, now: datetime
) -> dict[datetime, int]:
    """Segment's ingress per bucket over ``[start, end)``, summed over ``source_ids``."""
    ingress: dict[datetime, int] = {}
    for source_id in sorted(set(source_ids)):
        _add(
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
        moment = parse_time(r.bucket)
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
    before = [r.observed for r in compared if parse_time(r.bucket) < cut]
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


# ------------------------------------------------------------------------------------------ report
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
