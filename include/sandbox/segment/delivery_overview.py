"""Segment's Delivery Overview metrics (Public API, beta) served by the Segment emulator from what it really did.

Primary sources: ``segmentio/public-api-sdk-python`` ``docs/DeliveryOverviewApi.md`` (six GET endpoints, their
parameters, Accept ``application/vnd.segment.v1beta+json``, responses 200 / 404 / 422 / 429) and the models
``GetDeliveryOverviewMetricsBetaOutput`` (``total``, ``dataset``, ``pagination``),
``DeliveryOverviewMetricsDataset`` (``eventName?``, ``appVersion?``, ``eventType?``, ``discardReason?``, ``total``,
``series``, ``totalRetryCount?``), ``DeliveryOverviewMetricsDatapoint`` (``time`` = start of the bucket,
``count``, ``retryCount?`` = retried events that were delivered), the filter models
(``DeliveryOverviewSuccessfullyReceivedFilterBy``, ``...SourceFilterBy``, ``...DestinationFilterBy``) and
``PaginationInput`` (count 1-1000) / ``PaginationOutput`` (current, next?, previous?, totalEntries?);
``segmentio/segment-docs`` ``src/connections/delivery-overview.md`` (pipeline steps) and
``src/_includes/content/delivery-overview-discards.html`` (failed-delivery discard reasons are HTTP codes such as
``503`` / ``400`` or connection errors such as ``ECONNRESET``).

What is counted (the recorder is fed by the emulator itself):
- successfully-received: every event the Tracking API accepted on a source, at its ``receivedAt``;
- successful-delivery: every webhook delivery that got a 2xx, at the time it succeeded; ``retryCount`` counts
  those that needed more than one attempt;
- failed-delivery: every delivery the emulator gave up on, at the time it gave up, with the discard reason;
- failed-on-ingest, filtered-at-source, filtered-at-destination: the sandbox rejects invalid batches whole (the
  SDK sees the 400) and has no Protocols or destination filters, so these steps are validated and always empty.
  (Not emulated: an event no enabled Webhooks (Actions) mapping selects, which Segment counts as filtered at
  destination; the migration's mapping selects every event type.)

Validation (stricter where the sources are silent, noted): missing required parameters -> 400; values the
API documents limits for (granularity and its range/age limits, groupBy / filter keys offered by the step,
pagination.count 1-1000, startTime before endTime) -> 422 "Validation failure" (the SDK's documented status);
unknown source, or a destination config id not on that source -> 404; a request without the beta Accept
header -> 406 (not documented; stricter). ``groupBy`` is accepted comma-delimited (the parameter's description)
and repeated (the SDK's ``multi`` collection format); ``filter`` as a JSON object (how the SDK's
``parameters_to_url_query`` sends a model) or as ``filter.<key>=a,b``; pagination as ``pagination.count`` /
``pagination.cursor`` or as the SDK's JSON ``pagination={"count": n}``. Pagination pages over datasets.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.common import ApiError, isoformat_z, utcnow

__all__ = ["BETA_ACCEPT", "DeliveryOverviewRecorder", "discard_reason", "router"]

BETA_ACCEPT = "application/vnd.segment.v1beta+json"
INGRESS_STEPS = ("successfully-received", "failed-on-ingest", "filtered-at-source")
EGRESS_STEPS = ("successful-delivery", "failed-delivery", "filtered-at-destination")
LIMITS = {
    "MINUTE": (timedelta(hours=4), timedelta(hours=48), timedelta(minutes=1)),
    "HOUR": (timedelta(days=14), timedelta(days=30), timedelta(hours=1)),
    "DAY": (timedelta(days=30), timedelta(days=30), timedelta(days=1)),
}
_EGRESS_DIMENSIONS = (
    "eventName",
    "eventType",
    "discardReason",
    "appVersion",
    "subscriptionId",
    "activationId",
    "audienceId",
    "spaceId",
)
GROUP_BY = {
    "successfully-received": ("eventName", "eventType", "appVersion"),
    "failed-on-ingest": ("eventName", "eventType", "discardReason", "appVersion"),
    "filtered-at-source": ("eventName", "eventType", "discardReason", "appVersion"),
    **dict.fromkeys(EGRESS_STEPS, _EGRESS_DIMENSIONS),
}
FILTER_KEYS = {
    "successfully-received": ("eventName", "eventType", "appVersion"),
    "failed-on-ingest": ("discardReason", "eventName", "eventType", "appVersion"),
    "filtered-at-source": ("discardReason", "eventName", "eventType", "appVersion"),
    **dict.fromkeys(EGRESS_STEPS, _EGRESS_DIMENSIONS),
}
# Dimensions a dataset carries in DeliveryOverviewMetricsDataset; others group but are not echoed.
DATASET_FIELDS = ("eventName", "appVersion", "eventType", "discardReason")


def _dimensions(event: dict[str, Any]) -> dict[str, str | None]:
    context = event.get("context") if isinstance(event.get("context"), dict) else {}
    app = context.get("app") if isinstance(context.get("app"), dict) else {}
    event_type = str(event.get("type") or "") or None
    name = event.get("event") if event_type == "track" else event.get("name")
    version = app.get("version")
    return {
        "eventName": str(name) if name else None,
        "eventType": event_type,
        "appVersion": str(version) if version not in (None, "") else None,
    }


def _floor(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(UTC)
    if granularity == "MINUTE":
        return moment.replace(second=0, microsecond=0)
    if granularity == "HOUR":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


class DeliveryOverviewRecorder:
    """What the emulator received, delivered and failed, with times (thread-safe, in memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (step, at, source_id, destination_id | None, dims, retried: bool)
        self._records: list[tuple[str, datetime, str, str | None, dict[str, str | None], bool]] = []

    def received(self, source_id: str, event: dict[str, Any], at: datetime) -> None:
        with self._lock:
            self._records.append(("successfully-received", at, source_id, None, _dimensions(event), False))

    def delivered(
        self, source_id: str, destination_id: str, body: bytes, at: datetime, attempts: int
    ) -> None:
        dims = self._body_dimensions(body)
        with self._lock:
            self._records.append(("successful-delivery", at, source_id, destination_id, dims, attempts > 1))

    def failed(
        self, source_id: str, destination_id: str, body: bytes, at: datetime, discard_reason: str
    ) -> None:
        dims = {**self._body_dimensions(body), "discardReason": discard_reason}
        with self._lock:
            self._records.append(("failed-delivery", at, source_id, destination_id, dims, False))

    @staticmethod
    def _body_dimensions(body: bytes) -> dict[str, str | None]:
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        return _dimensions(event if isinstance(event, dict) else {})

    def count(self, step: str, *, source_id: str | None = None, destination_id: str | None = None) -> int:
        """How many records of a step (for tests and the sandbox state)."""
        with self._lock:
            return sum(
                1
                for r in self._records
                if r[0] == step
                and (source_id is None or r[2] == source_id)
                and (destination_id is None or r[3] == destination_id)
            )

    def query(
        self,
        step: str,
        source_id: str,
        destination_id: str | None,
        start: datetime,
        end: datetime,
        granularity: str,
        group_by: list[str],
        filters: dict[str, list[str]],
    ) -> list[dict[str, Any]]:
        """Datasets (``DeliveryOverviewMetricsDataset`` shape) of events in ``[start, end)``."""
        with self._lock:
            records = [
                r
                for r in self._records
                if r[0] == step
                and r[2] == source_id
                and (destination_id is None or r[3] == destination_id)
                and start <= r[1] < end
            ]
        buckets: list[datetime] = []
        cursor = _floor(start, granularity)
        step_size = LIMITS[granularity][2]
        while cursor < end:
            buckets.append(cursor)
            cursor += step_size
        groups: dict[tuple, dict[str, Any]] = {}
        for _, at, _, _, dims, retried in records:
            if any(dims.get(k) not in values for k, values in filters.items()):
                continue
            key = tuple(dims.get(k) for k in group_by)
            group = groups.setdefault(
                key, {"counts": dict.fromkeys(buckets, 0), "retries": dict.fromkeys(buckets, 0)}
            )
            bucket = _floor(at, granularity)
            group["counts"][bucket] = group["counts"].get(bucket, 0) + 1
            if retried:
                group["retries"][bucket] = group["retries"].get(bucket, 0) + 1
        if not group_by and not groups:
            groups[()] = {"counts": dict.fromkeys(buckets, 0), "retries": dict.fromkeys(buckets, 0)}
        datasets = []
        for key, group in groups.items():
            dataset: dict[str, Any] = {}
            for dimension, value in zip(group_by, key, strict=True):
                if dimension in DATASET_FIELDS and value is not None:
                    dataset[dimension] = value
            dataset["total"] = sum(group["counts"].values())
            series = []
            for bucket in sorted(group["counts"]):
                point: dict[str, Any] = {"time": isoformat_z(bucket), "count": group["counts"][bucket]}
                if step == "successful-delivery":
                    point["retryCount"] = group["retries"][bucket]
                series.append(point)
            dataset["series"] = series
            if step == "successful-delivery":
                dataset["totalRetryCount"] = sum(group["retries"].values())
            datasets.append(dataset)
        datasets.sort(
            key=lambda d: (-d["total"], json.dumps(d.get("appVersion") or d.get("eventName") or ""))
        )
        return datasets


def _parse_time(name: str, raw: str | None) -> datetime:
    if raw is None or raw == "":
        raise ApiError(400, "validation", f"{name} is required (an ISO 8601 timestamp)")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "validation", f"{name} {raw!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:  # stricter: the documented examples always carry a zone ("Z")
        raise ApiError(422, "validation", f"{name} {raw!r} has no time zone; send UTC with a trailing Z")
    return moment.astimezone(UTC)


def _list_param(request: Request, name: str) -> list[str]:
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values += [v.strip() for v in raw.split(",") if v.strip()]
    return values


def _filters(request: Request, step: str) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    raw = request.query_params.get("filter")
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ApiError(
                422, "validation", 'filter must be a JSON object like {"appVersion": ["1.2.0"]}'
            ) from None
        if not isinstance(parsed, dict):
            raise ApiError(422, "validation", "filter must be a JSON object of lists of strings")
        for key, values in parsed.items():
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ApiError(422, "validation", f"filter.{key} must be a list of strings")
            filters[key] = values
    for name in request.query_params:
        if name.startswith("filter."):
            filters[name.removeprefix("filter.")] = _list_param(request, name)
    unknown = sorted(set(filters) - set(FILTER_KEYS[step]))
    if unknown:
        raise ApiError(
            422,
            "validation",
            f"filter keys {unknown} are not valid for {step}; valid: {list(FILTER_KEYS[step])}",
        )
    return filters


def _pagination(request: Request) -> tuple[int, int]:
    count_raw = request.query_params.get("pagination.count")
    cursor = request.query_params.get("pagination.cursor")
    raw = request.query_params.get("pagination")
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ApiError(422, "validation", 'pagination must be a JSON object like {"count": 10}') from None
        if not isinstance(parsed, dict):
            raise ApiError(422, "validation", "pagination must be a JSON object")
        count_raw = parsed.get("count", count_raw)
        cursor = parsed.get("cursor", cursor)
    count = 200
    if count_raw is not None:
        try:
            count = int(count_raw)
        except (TypeError, ValueError):
            raise ApiError(422, "validation", f"pagination.count {count_raw!r} is not an integer") from None
        if not 1 <= count <= 1000:
            raise ApiError(422, "validation", f"pagination.count must be between 1 and 1000, got {count}")
    offset = 0
    if cursor:
        try:
            offset = int(base64.urlsafe_b64decode(str(cursor).encode()).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            offset = -1
        if offset < 0:
            raise ApiError(
                422, "validation", f"pagination.cursor {cursor!r} is not a cursor this API returned"
            )
    return count, offset


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _ids(request: Request, step: str) -> tuple[str, str | None]:
    """sourceId (required) and destinationConfigId (required for the egress steps)."""
    q = request.query_params
    source_id = q.get("sourceId")
    if not source_id:
        raise ApiError(400, "validation", "sourceId is required")
    destination_id = q.get("destinationConfigId")
    if step in EGRESS_STEPS and not destination_id:
        raise ApiError(400, "validation", "destinationConfigId is required")
    return source_id, destination_id


def _window(request: Request, now: Callable[[], datetime]) -> tuple[datetime, datetime, str]:
    """startTime, endTime and granularity, checked against the limits the API documents for the granularity."""
    q = request.query_params
    start = _parse_time("startTime", q.get("startTime"))
    end = _parse_time("endTime", q.get("endTime"))
    granularity = q.get("granularity")
    if not granularity:
        raise ApiError(400, "validation", "granularity is required (MINUTE, HOUR or DAY)")
    if granularity not in LIMITS:
        raise ApiError(422, "validation", f"granularity must be MINUTE, HOUR or DAY, got {granularity!r}")
    if start >= end:
        raise ApiError(422, "validation", "startTime must be before endTime")
    longest, oldest, _ = LIMITS[granularity]
    if end - start > longest:
        raise ApiError(
            422,
            "validation",
            f"time range {end - start} is longer than {longest}, the maximum for granularity {granularity}",
        )
    if start < now() - oldest:
        raise ApiError(
            422,
            "validation",
            f"startTime is older than {oldest} in the past, the oldest for granularity {granularity}",
        )
    return start, end, granularity


def _group_by(request: Request, step: str) -> list[str]:
    group_by = _list_param(request, "groupBy")
    bad = [g for g in group_by if g not in GROUP_BY[step]]
    if bad:
        raise ApiError(
            422, "validation", f"groupBy {bad} not valid for {step}; valid: {list(GROUP_BY[step])}"
        )
    return group_by


def _answer(datasets: list[dict[str, Any]], count: int, offset: int) -> dict[str, Any]:
    """One page of datasets with its PaginationOutput."""
    page = datasets[offset : offset + count]
    pagination: dict[str, Any] = {"current": _cursor(offset), "totalEntries": len(datasets)}
    if offset + count < len(datasets):
        pagination["next"] = _cursor(offset + count)
    if offset > 0:
        pagination["previous"] = _cursor(max(0, offset - count))
    return {"data": {"total": sum(d["total"] for d in datasets), "dataset": page, "pagination": pagination}}


def router(
    recorder: DeliveryOverviewRecorder,
    *,
    dependencies: list[Any],
    source_exists: Callable[[str], bool],
    destination_source: Callable[[str], str | None],
    now: Callable[[], datetime] = utcnow,
    faults: Any = None,
) -> APIRouter:
    """The six ``GET /delivery-overview/...`` routes of the Segment emulator.

    Fault ``delivery_overview_unavailable`` (armed on the emulator's injector) answers 403, as for a workspace
    whose plan or beta access does not include the Delivery Overview API; see :func:`_overcount` for the other."""

    def serve(step: str, request: Request) -> dict[str, Any]:
        if faults is not None and faults.take("delivery_overview_unavailable", request.url.path):
            raise ApiError(403, "forbidden", "The Delivery Overview API is not available for this workspace")
        accept = request.headers.get("accept", "")
        if BETA_ACCEPT not in accept:
            raise ApiError(406, "not-acceptable", f"This endpoint is in beta: send 'Accept: {BETA_ACCEPT}'")
        source_id, destination_id = _ids(request, step)
        start, end, granularity = _window(request, now)
        group_by = _group_by(request, step)
        filters = _filters(request, step)
        count, offset = _pagination(request)
        if not source_exists(source_id):
            raise ApiError(404, "not-found", f"Source {source_id!r} not found")
        if (
            destination_id is not None
            and step in EGRESS_STEPS
            and destination_source(destination_id) != source_id
        ):
            raise ApiError(
                404, "not-found", f"Destination {destination_id!r} not found on source {source_id!r}"
            )
        datasets = recorder.query(
            step,
            source_id,
            destination_id if step in EGRESS_STEPS else None,
            start,
            end,
            granularity,
            group_by,
            filters,
        )
        if step == "successful-delivery":
            _overcount(faults, request.url.path, datasets)
        return _answer(datasets, count, offset)

    def route(step: str):
        def handler(request: Request, response: Response) -> dict[str, Any]:
            return serve(step, request)

        return handler

    routes = APIRouter()
    for step in (*INGRESS_STEPS, *EGRESS_STEPS):
        routes.add_api_route(
            f"/delivery-overview/{step}",
            route(step),
            methods=["GET"],
            dependencies=dependencies,
            name=f"delivery_overview_{step}",
        )
    return routes


def _overcount(faults: Any, path: str, datasets: list[dict[str, Any]]) -> None:
    """Fault ``delivery_overview_overcount`` (``{"extra": n}``): ``n`` more successful deliveries in the first
    dataset's latest non-empty bucket (nothing when no bucket has any). It stands for events RudderStack answered
    200 for but never loaded (a gap in the proof from Segment's metrics), while the sandbox keeps every event, so
    a run that proceeds past the gap still reconciles."""
    fault = faults.take("delivery_overview_overcount", path) if faults is not None else None
    if fault is None:
        return
    extra = int(fault.get("extra", 10))
    for dataset in datasets[:1]:
        filled = [point for point in dataset["series"] if point["count"]]
        if filled:
            filled[-1]["count"] += extra
            dataset["total"] += extra


def discard_reason(why: str) -> str:
    """A failed-delivery discard reason in Segment's vocabulary (delivery-overview-discards.html: HTTP codes such
    as ``503``, connection errors such as ``ECONNRESET`` / ``ETIMEDOUT`` / ``EREFUSED``) from the emulator's
    give-up text."""
    match = re.search(r"HTTP (\d{3})", why)
    if match:
        return match.group(1)
    lowered = why.lower()
    if "timeout" in lowered:
        return "ETIMEDOUT"
    if "connecterror" in lowered or "refused" in lowered:
        return "EREFUSED"
    if "injected" in lowered:
        return "ECONNRESET"  # the injected fault stands for a delivery that got no answer
    return "INTERNAL"
