"""Segment's Delivery Overview metrics (Public API, beta): how many events a source received and how many a
destination delivered, failed or filtered, by time bucket.

Primary source: ``segmentio/public-api-sdk-python`` ``docs/DeliveryOverviewApi.md`` and the models
``GetDeliveryOverviewMetricsBetaOutput`` (``total``, ``dataset[]``, ``pagination``),
``DeliveryOverviewMetricsDataset`` (``eventName``, ``eventType``, ``appVersion``, ``discardReason``, ``total``,
``series[]``, ``totalRetryCount``), ``DeliveryOverviewMetricsDatapoint`` (``time``, ``count``, ``retryCount``),
``DeliveryOverviewSourceFilterBy`` / ``DeliveryOverviewDestinationFilterBy`` /
``DeliveryOverviewSuccessfullyReceivedFilterBy`` (the filters), ``PaginationInput`` / ``PaginationOutput``;
and ``segmentio/segment-docs`` ``src/connections/delivery-overview.md`` (the pipeline steps).

Endpoints (``GET``, Accept ``application/vnd.segment.v1beta+json``):

- per source (ingress): ``/delivery-overview/successfully-received``, ``/failed-on-ingest``, ``/filtered-at-source``
- per source + destination config id (egress): ``/successful-delivery``, ``/failed-delivery``,
  ``/filtered-at-destination``

Query: ``sourceId``, ``destinationConfigId`` (egress), ``startTime`` (inclusive), ``endTime`` (exclusive),
``granularity`` (``MINUTE``: at most 4 h per request, start at most 48 h back; ``HOUR``: 14 days, 30 days
back; ``DAY``: 30 days, 30 days back), ``groupBy`` (one dimension here), ``filter`` (a JSON object, the way
the SDK's ``ApiClient.parameters_to_url_query`` sends a model), ``pagination.count`` / ``pagination.cursor``
(the library's convention for every Segment list; docs/design.md section 3).

:meth:`DeliveryOverviewMixin.delivery_metrics` splits a long window into requests the granularity allows,
follows ``pagination.next`` to the end and merges the pages; rate limits (429 + ``Retry-After``) are honoured
by the hook's retry policy like every other call. Where the API answers 403/404 (plan tier, beta not enabled)
:meth:`DeliveryOverviewMixin.delivery_overview_available` says "not available" instead of raising, so the
migration runs on warehouse signals alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.hooks.errors import ApiError, ResponseFormatError
from segment_rudderstack.hooks.protocol import RequestSpec, unwrap
from segment_rudderstack.hooks.segment import SegmentHook
from segment_rudderstack.instants import as_utc

BETA_ACCEPT = "application/vnd.segment.v1beta+json"

INGRESS_STEPS = ("successfully-received", "failed-on-ingest", "filtered-at-source")
EGRESS_STEPS = ("successful-delivery", "failed-delivery", "filtered-at-destination")

# Granularity -> (longest range of one request, oldest start time from now): DeliveryOverviewApi.md,
# parameter ``granularity``.
GRANULARITY_LIMITS: dict[str, tuple[timedelta, timedelta]] = {
    "MINUTE": (timedelta(hours=4), timedelta(hours=48)),
    "HOUR": (timedelta(days=14), timedelta(days=30)),
    "DAY": (timedelta(days=30), timedelta(days=30)),
}
BUCKET: dict[str, timedelta] = {
    "MINUTE": timedelta(minutes=1),
    "HOUR": timedelta(hours=1),
    "DAY": timedelta(days=1),
}

# groupBy dimensions per step (DeliveryOverviewApi.md, parameter ``group_by`` of each operation).
GROUP_BY: dict[str, tuple[str, ...]] = {
    "successfully-received": ("eventName", "eventType", "appVersion"),
    "failed-on-ingest": ("eventName", "eventType", "discardReason", "appVersion"),
    "filtered-at-source": ("eventName", "eventType", "discardReason", "appVersion"),
    **{
        step: (
            "eventName",
            "eventType",
            "discardReason",
            "appVersion",
            "subscriptionId",
            "activationId",
            "audienceId",
            "spaceId",
        )
        for step in EGRESS_STEPS
    },
}
# filter keys per step (DeliveryOverviewSuccessfullyReceivedFilterBy / SourceFilterBy / DestinationFilterBy).
FILTER_KEYS: dict[str, tuple[str, ...]] = {
    "successfully-received": ("eventName", "eventType", "appVersion"),
    "failed-on-ingest": ("discardReason", "eventName", "eventType", "appVersion"),
    "filtered-at-source": ("discardReason", "eventName", "eventType", "appVersion"),
    **{
        step: (
            "discardReason",
            "eventName",
            "eventType",
            "appVersion",
            "subscriptionId",
            "activationId",
            "audienceId",
            "spaceId",
        )
        for step in EGRESS_STEPS
    },
}
_DATASET_KEYS = ("eventName", "eventType", "appVersion", "discardReason")
_MAX_PAGES = 10_000


class DeliveryOverviewUnavailable(Exception):
    """The Delivery Overview API answered 403/404: not on this plan tier, or the beta is not enabled."""

    def __init__(self, error: ApiError):
        self.status = error.status
        super().__init__(
            f"Segment's Delivery Overview API is not available to this token (HTTP {error.status} on "
            f"{error.endpoint}): the workspace's plan or the beta does not include it. The migration runs on "
            "warehouse signals alone; ask Segment to enable the Delivery Overview Public API to get the proof "
            "from Segment's metrics"
        )


def _aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got {value!r}")
    return value.astimezone(UTC)


def floor_time(moment: datetime, granularity: str) -> datetime:
    """The start of the ``granularity`` bucket holding ``moment`` (UTC)."""
    moment = moment.astimezone(UTC)
    if granularity == "MINUTE":
        return moment.replace(second=0, microsecond=0)
    if granularity == "HOUR":
        return moment.replace(minute=0, second=0, microsecond=0)
    if granularity == "DAY":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"granularity must be one of {sorted(GRANULARITY_LIMITS)}, got {granularity!r}")


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (the form of DeliveryOverviewApi.md's examples)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def split_window(
    start: datetime, end: datetime, granularity: str, *, now: datetime | None = None
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` as consecutive requests each within the granularity's longest range.

    Refuses a start older than Segment keeps at that granularity (the error says which granularity would
    reach back that far). Pieces after the first start on a bucket boundary, so no bucket is split."""
    start, end = _aware("start", start), _aware("end", end)
    if granularity not in GRANULARITY_LIMITS:
        raise ValueError(f"granularity must be one of {sorted(GRANULARITY_LIMITS)}, got {granularity!r}")
    if start >= end:
        raise ValueError(f"start must be before end, got start={iso_z(start)} end={iso_z(end)}")
    longest, oldest = GRANULARITY_LIMITS[granularity]
    now = _aware("now", now) if now is not None else datetime.now(UTC)
    if start < now - oldest:
        wider = [g for g, (_, back) in GRANULARITY_LIMITS.items() if start >= now - back]
        raise ValueError(
            f"start {iso_z(start)} is more than {oldest} in the past: Segment keeps {granularity} buckets "
            f"for {oldest} only; use a later start"
            + (f" or granularity {wider[0]}" if wider else " (no granularity reaches back that far)")
        )
    pieces: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        stop = min(end, cursor + longest)
        if stop < end:  # keep buckets whole: cut at a bucket boundary
            aligned = floor_time(stop, granularity)
            stop = aligned if aligned > cursor else stop
        pieces.append((cursor, stop))
        cursor = stop
    return pieces


@dataclass(frozen=True)
class Datapoint:
    """``DeliveryOverviewMetricsDatapoint``: ``time`` starts the bucket; ``retry_count`` (successes only)."""

    time: datetime
    count: int
    retry_count: int | None = None


@dataclass(frozen=True)
class Dataset:
    """``DeliveryOverviewMetricsDataset``: one group (by the requested dimension) and its series."""

    total: int
    series: tuple[Datapoint, ...]
    event_name: str | None = None
    event_type: str | None = None
    app_version: str | None = None
    discard_reason: str | None = None
    total_retry_count: int | None = None

    def group(self, dimension: str) -> str | None:
        return {
            "eventName": self.event_name,
            "eventType": self.event_type,
            "appVersion": self.app_version,
            "discardReason": self.discard_reason,
        }.get(dimension)


@dataclass(frozen=True)
class DeliveryMetrics:
    """One pipeline step over a window, merged from every request and page it took."""

    step: str
    source_id: str
    destination_config_id: str | None
    start: datetime
    end: datetime
    granularity: str
    group_by: str | None
    datasets: tuple[Dataset, ...]
    requests: int = 0

    @property
    def total(self) -> int:
        return sum(d.total for d in self.datasets)

    def by_bucket(self) -> dict[datetime, int]:
        """Events per bucket start (every group added up); buckets Segment left out count zero."""
        counts: dict[datetime, int] = {}
        for dataset in self.datasets:
            for point in dataset.series:
                counts[point.time] = counts.get(point.time, 0) + point.count
        return dict(sorted(counts.items()))

    def retries_by_bucket(self) -> dict[datetime, int]:
        counts: dict[datetime, int] = {}
        for dataset in self.datasets:
            for point in dataset.series:
                if point.retry_count:
                    counts[point.time] = counts.get(point.time, 0) + point.retry_count
        return dict(sorted(counts.items()))

    def by_group(self) -> dict[str, int]:
        """Totals per value of the ``group_by`` dimension (``"(none)"`` for events without one)."""
        totals: dict[str, int] = {}
        for dataset in self.datasets:
            key = dataset.group(self.group_by) if self.group_by else None
            key = key if key not in (None, "") else "(none)"
            totals[key] = totals.get(key, 0) + dataset.total
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "sourceId": self.source_id,
            "destinationConfigId": self.destination_config_id,
            "start": iso_z(self.start),
            "end": iso_z(self.end),
            "granularity": self.granularity,
            "groupBy": self.group_by,
            "total": self.total,
            "requests": self.requests,
            "byBucket": {iso_z(k): v for k, v in self.by_bucket().items()},
            "byGroup": self.by_group() if self.group_by else {},
        }


def _number(value: Any, what: str, spec: RequestSpec) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=SegmentHook.service_name,
            message=f"expected a number in {what}, got {value!r}",
        )
    return int(value)


def parse_metrics_page(payload: Any, spec: RequestSpec) -> tuple[list[Dataset], str | None]:
    """Datasets of one ``GetEgressFailedMetricsFromDeliveryOverview200Response`` page and its next cursor."""
    data = unwrap(payload, ("data",), spec=spec, service=SegmentHook.service_name)
    raw = unwrap(data, ("dataset",), spec=spec, service=SegmentHook.service_name, expect=list)
    datasets = []
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ResponseFormatError(
                endpoint=spec.endpoint,
                service=SegmentHook.service_name,
                message=f"expected data.dataset[{n}] to be an object",
            )
        series_raw = item.get("series")
        if not isinstance(series_raw, list):
            raise ResponseFormatError(
                endpoint=spec.endpoint,
                service=SegmentHook.service_name,
                message=f"expected data.dataset[{n}].series to be a list",
            )
        series = []
        for m, point in enumerate(series_raw):
            if not isinstance(point, dict) or not isinstance(point.get("time"), str):
                raise ResponseFormatError(
                    endpoint=spec.endpoint,
                    service=SegmentHook.service_name,
                    message=f"expected data.dataset[{n}].series[{m}].time to be a string",
                )
            try:
                moment = as_utc(point["time"])
            except ValueError:
                raise ResponseFormatError(
                    endpoint=spec.endpoint,
                    service=SegmentHook.service_name,
                    message=f"expected an ISO 8601 time in series[{m}], got {point['time']!r}",
                ) from None
            retry = point.get("retryCount")
            series.append(
                Datapoint(
                    moment.astimezone(UTC),
                    _number(point.get("count"), "series[].count", spec),
                    _number(retry, "series[].retryCount", spec) if retry is not None else None,
                )
            )
        total_retry = item.get("totalRetryCount")
        datasets.append(
            Dataset(
                total=_number(item.get("total"), f"data.dataset[{n}].total", spec),
                series=tuple(series),
                event_name=item.get("eventName"),
                event_type=item.get("eventType"),
                app_version=item.get("appVersion"),
                discard_reason=item.get("discardReason"),
                total_retry_count=_number(total_retry, "totalRetryCount", spec)
                if total_retry is not None
                else None,
            )
        )
    pagination = data.get("pagination")
    cursor = pagination.get("next") if isinstance(pagination, dict) else None
    return datasets, (cursor or None)


def _merge(datasets: Sequence[Dataset]) -> tuple[Dataset, ...]:
    """Join the pieces of one group split over several requests (time windows)."""
    merged: dict[tuple, list[Dataset]] = {}
    for dataset in datasets:
        key = (dataset.event_name, dataset.event_type, dataset.app_version, dataset.discard_reason)
        merged.setdefault(key, []).append(dataset)
    out = []
    for (event_name, event_type, app_version, discard_reason), parts in merged.items():
        retries = [p.total_retry_count for p in parts if p.total_retry_count is not None]
        out.append(
            Dataset(
                total=sum(p.total for p in parts),
                series=tuple(sorted((pt for p in parts for pt in p.series), key=lambda pt: pt.time)),
                event_name=event_name,
                event_type=event_type,
                app_version=app_version,
                discard_reason=discard_reason,
                total_retry_count=sum(retries) if retries else None,
            )
        )
    return tuple(out)


class DeliveryOverviewMixin:
    """Delivery Overview methods for a :class:`SegmentHook` (see :class:`SegmentMetricsHook`)."""

    delivery_page_size: int = 200

    def _metrics_spec(
        self,
        step: str,
        source_id: str,
        destination_config_id: str | None,
        start: datetime,
        end: datetime,
        granularity: str,
        group_by: str | None,
        filters: Mapping[str, Sequence[str]] | None,
        cursor: str | None,
        page_size: int,
    ) -> RequestSpec:
        if step not in GROUP_BY:
            raise ValueError(f"step must be one of {list(GROUP_BY)}, got {step!r}")
        if not source_id:
            raise ValueError("source_id is required (the Segment source the metrics are about)")
        if step in EGRESS_STEPS and not destination_config_id:
            raise ValueError(f"{step} is per destination: destination_config_id is required")
        if group_by is not None and group_by not in GROUP_BY[step]:
            raise ValueError(
                f"groupBy {group_by!r} is not offered by {step}; use one of {list(GROUP_BY[step])}"
            )
        if not 1 <= int(page_size) <= 1000:
            raise ValueError(
                f"page size must be between 1 and 1000 (Segment's pagination.count), got {page_size}"
            )
        params: dict[str, Any] = {
            "sourceId": source_id,
            "startTime": iso_z(start),
            "endTime": iso_z(end),
            "granularity": granularity,
            "pagination.count": int(page_size),
        }
        if destination_config_id:
            params["destinationConfigId"] = destination_config_id
        if group_by:
            params["groupBy"] = group_by
        if filters:
            unknown = sorted(set(filters) - set(FILTER_KEYS[step]))
            if unknown:
                raise ValueError(
                    f"filter keys {unknown} are not offered by {step}; use {list(FILTER_KEYS[step])}"
                )
            params["filter"] = json.dumps({k: list(v) for k, v in filters.items()}, separators=(",", ":"))
        if cursor:
            params["pagination.cursor"] = cursor
        return RequestSpec(
            "GET", f"/delivery-overview/{step}", params=params, headers={"Accept": BETA_ACCEPT}
        )

    def delivery_metrics(
        self,
        step: str,
        *,
        source_id: str,
        start: datetime,
        end: datetime,
        granularity: str = "HOUR",
        destination_config_id: str | None = None,
        group_by: str | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        page_size: int | None = None,
        now: datetime | None = None,
    ) -> DeliveryMetrics:
        """One pipeline step over ``[start, end)``: as many requests as the granularity's limits need, every
        page of each; raises :class:`DeliveryOverviewUnavailable` on 403/404."""
        page_size = page_size or self.delivery_page_size
        start, end = _aware("start", start), _aware("end", end)
        collected: list[Dataset] = []
        requests = 0
        for piece_start, piece_end in split_window(start, end, granularity, now=now):
            cursor: str | None = None
            seen: set[str] = set()
            for _ in range(_MAX_PAGES):
                spec = self._metrics_spec(
                    step,
                    source_id,
                    destination_config_id,
                    piece_start,
                    piece_end,
                    granularity,
                    group_by,
                    filters,
                    cursor,
                    page_size,
                )
                try:
                    payload = self.call(spec)  # type: ignore[attr-defined]
                except ApiError as error:
                    if error.status in (403, 404):
                        raise DeliveryOverviewUnavailable(error) from None
                    raise
                requests += 1
                page, cursor = parse_metrics_page(payload, spec)
                collected.extend(page)
                if not cursor:
                    break
                if cursor in seen:
                    raise ResponseFormatError(
                        endpoint=spec.endpoint,
                        service=SegmentHook.service_name,
                        message="pagination.next repeats an earlier cursor",
                    )
                seen.add(cursor)
        return DeliveryMetrics(
            step,
            source_id,
            destination_config_id,
            start,
            end,
            granularity,
            group_by,
            _merge(collected),
            requests,
        )

    def delivery_overview_available(self, source_id: str, *, granularity: str = "HOUR") -> tuple[bool, str]:
        """``(True, "")`` when the beta API answers for this source; ``(False, why)`` on 403/404."""
        end = floor_time(datetime.now(UTC), granularity)
        try:
            self.delivery_metrics(
                "successfully-received",
                source_id=source_id,
                start=end - BUCKET[granularity],
                end=end,
                granularity=granularity,
                page_size=1,
            )
        except DeliveryOverviewUnavailable as unavailable:
            return False, str(unavailable)
        return True, ""


class SegmentMetricsHook(DeliveryOverviewMixin, SegmentHook):
    """:class:`SegmentHook` plus Segment's Delivery Overview metrics (same connection, same retry policy).

    :param segment_conn_id: the Segment Public API connection (as :class:`SegmentHook`); ``delivery_page_size``
        (class attribute) sets how many dataset rows each Delivery Overview page asks for.
    """

    def __init__(
        self,
        segment_conn_id: str = SegmentHook.default_conn_name,
        *,
        delivery_page_size: int = 200,
        **kwargs: Any,
    ) -> None:
        SegmentHook.__init__(self, segment_conn_id, **kwargs)
        self.delivery_page_size = delivery_page_size
