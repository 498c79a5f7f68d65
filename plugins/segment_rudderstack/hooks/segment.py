"""``SegmentHook``: Segment's Public API (warehouses, their syncs, sources, destinations).

Connection: host = API base URL (default ``https://api.segmentapis.com``; EU ``https://eu1.api.segmentapis.com``),
password = Public API token (sent as ``Authorization: Bearer``). Any conn_type works ("http" is fine).

Each method returns the resource inside Segment's ``data`` envelope: ``get_warehouse`` returns
``data.warehouse``, ``list_connected_destinations`` returns the list ``data.destinations`` of every page, ...
"""

from __future__ import annotations

import dataclasses
import functools
import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from segment_rudderstack.hooks.api_hook import ApiHook
from segment_rudderstack.hooks.errors import ResponseFormatError
from segment_rudderstack.hooks.protocol import RequestSpec, quoted_id, unwrap
from segment_rudderstack.hooks.rate_budget import DEFAULT_REQUESTS_PER_MINUTE, SyncListBudget, budget_key
from segment_rudderstack.instants import as_utc
from segment_rudderstack.sync_status import SyncState, classify
from segment_rudderstack.vocabulary import (  # noqa: F401 - re-exported: the hooks' public names
    ALL_EVENT_TYPES_TRIGGER,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_ACTIONS_SEND_ACTION_ID,
    WEBHOOKS_METADATA_ID,
)

_MAX_PAGES = 10_000


class SyncReport(msgspec.Struct, frozen=True, rename="camel"):
    """One Segment warehouse sync (a "load"), read from Segment's SDK model ``SyncV1``. ``end`` is ``None`` while
    it runs; ``duration`` is in seconds (partial while running); ``notices`` are ``SyncNoticeV1`` objects
    ``{level, message, createdAt}``.

    A msgspec struct: a page of up to 1000 reports is decoded from the body straight into these (Segment's
    camelCase names), with no dict per report (see :func:`decode_sync_page`)."""

    source_id: str | None
    start: datetime
    end: datetime | None
    status: str
    count: int | None = None
    duration: float | None = None
    notices: tuple[dict[str, Any], ...] = ()
    human_duration: str | None = None

    @property
    def notice_messages(self) -> list[str]:
        """``"<level>: <message>"`` of each notice (what to show a user when a load failed)."""
        return [f"{n.get('level') or 'notice'}: {n.get('message')}" for n in self.notices]

    @property
    def state(self) -> SyncState:
        return classify(self.end, self.status)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (for XCom and trigger events)."""
        return {
            "sourceId": self.source_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "status": self.status,
            "count": self.count,
            "duration": self.duration,
            "humanDuration": self.human_duration,
            "notices": list(self.notices),
        }


#: Segment's alpha version, as public-api-sdk-python sends it for the destination-subscription endpoints
ALPHA = "application/vnd.segment.v1alpha+json"
ALPHA_ACCEPT = {"Accept": ALPHA}
ALPHA_BODY = {"Accept": ALPHA, "Content-Type": ALPHA}


def _timestamp(value: Any, field: str, spec: RequestSpec) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return as_utc(str(value))
    except ValueError:
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=SegmentHook.service_name,
            message=f"expected an ISO 8601 timestamp in sync report field {field!r}, got {value!r}",
        ) from None


_NO_SPEC = RequestSpec("GET", "(sync report)")


def _seconds(value: Any, spec: RequestSpec) -> float | None:
    """``SyncV1.duration``: a number of seconds (``None`` tolerated: the library never decides on it)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=SegmentHook.service_name,
            message=f"expected sync report 'duration' to be a number of seconds, got {value!r}",
        )
    return float(value)


def _notices(value: Any, spec: RequestSpec) -> tuple[dict[str, Any], ...]:
    """``SyncV1.notices``: a list of ``SyncNoticeV1`` objects ``{level, message, createdAt}``."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(n, dict) for n in value):
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=SegmentHook.service_name,
            message=f"expected sync report 'notices' to be a list of {{level, message, createdAt}} objects, "
            f"got {str(value)[:120]!r}",
        )
    return tuple(value)


def parse_sync_report(item: Any, spec: RequestSpec = _NO_SPEC) -> SyncReport:
    """A :class:`SyncReport` from one element of ``data.reports``."""
    if not isinstance(item, dict):
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=SegmentHook.service_name,
            message=f"expected each sync report to be a JSON object, got {type(item).__name__}",
        )
    start = _timestamp(item.get("start"), "start", spec)
    if start is None:
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=SegmentHook.service_name,
            message=f"expected a 'start' timestamp in every sync report, found keys {sorted(item)}",
        )
    count = item.get("count")
    try:
        count = int(count) if count is not None and count != "" else None
    except (TypeError, ValueError):
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=SegmentHook.service_name,
            message=f"expected an integer 'count' in sync report, got {count!r}",
        ) from None
    return SyncReport(
        source_id=item.get("sourceId"),
        start=start,
        end=_timestamp(item.get("end"), "end", spec),
        status=str(item.get("status") or ""),
        count=count,
        duration=_seconds(item.get("duration"), spec),
        notices=_notices(item.get("notices"), spec),
        human_duration=str(item["humanDuration"]) if item.get("humanDuration") is not None else None,
    )


def parse_sync_reports(payload: Any, spec: RequestSpec) -> list[SyncReport]:
    """Sync reports of a ``/syncs`` response, newest start first."""
    reports = unwrap(payload, ("data", "reports"), spec=spec, service=SegmentHook.service_name, expect=list)
    return sorted((parse_sync_report(item, spec) for item in reports), key=lambda r: r.start, reverse=True)


class _WireReports(msgspec.Struct):
    reports: list[SyncReport]


class _WirePage(msgspec.Struct):
    data: _WireReports


_PAGE_DECODER = msgspec.json.Decoder(_WirePage)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def decode_sync_page(body: bytes, spec: RequestSpec = _NO_SPEC) -> list[SyncReport]:
    """Sync reports of a ``/syncs`` body, newest start first.

    A page holds up to 1000 reports and sensors read one every check: the body is decoded straight into typed
    structs (msgspec, Airflow's own dependency) instead of dicts. Anything the strict fast path does not accept
    (a string count, an empty end, a missing field) goes through :func:`parse_sync_reports`, which accepts what
    it can and otherwise says what is wrong."""
    try:
        page = _PAGE_DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return parse_sync_reports(json.loads(body), spec)
    reports = page.data.reports
    for n, report in enumerate(reports):
        if report.start.tzinfo is None or (report.end is not None and report.end.tzinfo is None):
            reports[n] = msgspec.structs.replace(report, start=_utc(report.start), end=_utc(report.end))
    reports.sort(key=lambda r: r.start, reverse=True)
    return reports


# Webhook header names whose values are never secret; every other header value is masked.
_PLAIN_HEADERS = frozenset({"content-type", "accept", "accept-encoding", "content-encoding", "user-agent"})


def _mask_hook_url(hook: ApiHook, url: str) -> None:
    """A hook URL carrying credentials (``?writeKey=...``, ``user:password@``): the URL and each of them."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unparseable: mask it whole
        hook.add_secret(url)
        return
    if not (parts.query or parts.password):
        return  # a plain URL is not a secret
    hook.add_secret(url)
    for _, value in parse_qsl(parts.query):
        hook.add_secret(value)
    if parts.password:
        hook.add_secret(parts.password)


def _mask_destination_settings(hook: ApiHook, settings: Any) -> None:
    """Register a destination's secrets with the masker: ``sharedSecret``, hook URLs and their keys,
    and the values of hook headers (except plain ones such as Content-Type)."""
    if not isinstance(settings, dict):
        return
    if isinstance(settings.get("sharedSecret"), str):
        hook.add_secret(settings["sharedSecret"])
    hooks = settings.get("hooks")
    for entry in hooks if isinstance(hooks, list) else ():
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("hook"), str):
            _mask_hook_url(hook, entry["hook"])
        headers = entry.get("headers")
        for header in headers if isinstance(headers, list) else ():
            if not isinstance(header, dict) or not isinstance(header.get("value"), str):
                continue
            if str(header.get("key", "")).strip().lower() not in _PLAIN_HEADERS:
                hook.add_secret(header["value"])


def _mask_subscription(hook: ApiHook, subscription: Any) -> Any:
    """``subscription`` (a Webhooks (Actions) mapping) unchanged, after its secrets are registered with the
    masker: the ``url`` when it carries credentials (the RudderStack write key) and non-plain header values."""
    settings = subscription.get("settings") if isinstance(subscription, dict) else None
    if isinstance(settings, dict):
        if isinstance(settings.get("url"), str):
            _mask_hook_url(hook, settings["url"])
        headers = settings.get("headers")
        for key, value in headers.items() if isinstance(headers, dict) else ():
            if isinstance(value, str) and str(key).strip().lower() not in _PLAIN_HEADERS:
                hook.add_secret(value)
    return subscription


def _mask_destination(hook: ApiHook, destination: Any) -> Any:
    """``destination`` unchanged, after its settings' secrets are registered with the masker."""
    if isinstance(destination, dict):
        _mask_destination_settings(hook, destination.get("settings"))
    return destination


class SegmentHook(ApiHook):
    """Segment Public API. See the module docstring for the connection; retry settings as :class:`ApiHook`.

    :param segment_conn_id: the Airflow connection of Segment's Public API (host: base URL, default
        https://api.segmentapis.com, EU https://eu1.api.segmentapis.com; password: the token). Other keyword
        arguments: retry settings, see :class:`ApiHook`.
    """

    conn_name_attr = "segment_conn_id"
    default_conn_name = "segment_default"
    conn_type = "segment"
    hook_name = "Segment Public API"
    service_name = "Segment API"
    default_host = "https://api.segmentapis.com"

    # Connection extras of the deployment-wide sync-list budget (segment_rudderstack.hooks.rate_budget).
    hook_extras = (*ApiHook.hook_extras, "sync_list_budget_conn_id", "sync_list_requests_per_minute")

    def __init__(self, segment_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(segment_conn_id, **kwargs)
        self.segment_conn_id = segment_conn_id
        self._budget: SyncListBudget | None = None

    @property
    def sync_list_budget(self) -> SyncListBudget | None:
        """The workspace's sync-list budget, shared by every user of this token (after the connection is read);
        None when the connection configures none (extras ``sync_list_budget_conn_id``,
        ``sync_list_requests_per_minute``): then only each sensor's own poke interval paces it."""
        extras = self._extras
        if not (extras.get("sync_list_budget_conn_id") or extras.get("sync_list_requests_per_minute")):
            return None
        if self._budget is None:
            self._budget = SyncListBudget(
                budget_key(self.base_url, self._auth.get("Authorization", "")),
                float(extras.get("sync_list_requests_per_minute") or DEFAULT_REQUESTS_PER_MINUTE),
                extras.get("sync_list_budget_conn_id") or None,
            )
        return self._budget

    def _data(self, spec: RequestSpec, *keys: str, expect: type = dict) -> Any:
        return unwrap(self.call(spec), ("data", *keys), spec=spec, service=self.service_name, expect=expect)

    # ------------------------------------------------------------------ warehouses
    @staticmethod
    def _warehouse_spec(warehouse_id: str) -> RequestSpec:
        return RequestSpec("GET", f"/warehouses/{quoted_id(warehouse_id, 'warehouse_id')}")

    def get_warehouse(self, warehouse_id: str) -> dict[str, Any]:
        """``data.warehouse``: id, enabled, settings, metadata, ..."""
        return self._data(self._warehouse_spec(warehouse_id), "warehouse")

    async def aget_warehouse(self, warehouse_id: str) -> dict[str, Any]:
        spec = self._warehouse_spec(warehouse_id)
        return unwrap(await self.acall(spec), ("data", "warehouse"), spec=spec, service=self.service_name)

    def set_warehouse_enabled(self, warehouse_id: str, enabled: bool) -> dict[str, Any]:
        """PATCH ``{"enabled": x, "settings": {}}`` (Segment requires settings); returns ``data.warehouse``."""
        spec = RequestSpec(
            "PATCH",
            f"/warehouses/{quoted_id(warehouse_id, 'warehouse_id')}",
            json={"enabled": bool(enabled), "settings": {}},
        )
        return self._data(spec, "warehouse")

    @staticmethod
    def _syncs_spec(warehouse_id: str, source_id: str | None, count: int) -> RequestSpec:
        if not 1 <= int(count) <= 1000:
            raise ValueError(f"count must be between 1 and 1000 (Segment's page size), got {count}")
        path = f"/warehouses/{quoted_id(warehouse_id, 'warehouse_id')}"
        if source_id is not None:
            path += f"/connected-sources/{quoted_id(source_id, 'source_id')}"
        spec = RequestSpec("GET", f"{path}/syncs", params={"pagination.count": int(count)})
        return dataclasses.replace(spec, decode=functools.partial(decode_sync_page, spec=spec))

    def list_warehouse_syncs(
        self, warehouse_id: str, source_id: str | None = None, count: int = 20
    ) -> list[SyncReport]:
        """The latest ``count`` sync reports (one request: this endpoint allows 2 requests a minute), newest first.
        Waits for its turn in the workspace's sync-list budget first (see :attr:`sync_list_budget`)."""
        spec = self._syncs_spec(warehouse_id, source_id, count)
        self.load_connection()
        if self.sync_list_budget is not None:
            self.sync_list_budget.wait()
        return self.call(spec)

    async def alist_warehouse_syncs(
        self, warehouse_id: str, source_id: str | None = None, count: int = 20
    ) -> list[SyncReport]:
        spec = self._syncs_spec(warehouse_id, source_id, count)
        await self.aload_connection()
        if self.sync_list_budget is not None:
            await self.sync_list_budget.await_turn()
        return await self.acall(spec)

    async def ashared_warehouse_syncs(self, warehouse_id: str, count: int = 20) -> list[SyncReport]:
        """:meth:`alist_warehouse_syncs` of the whole warehouse, one read shared by every trigger of this event
        loop that asks for the same warehouse at about the same time (see :mod:`.shared_reads`): in flight,
        or for one turn of the workspace's sync-list budget after it arrived (not reused without a budget).

        :param warehouse_id: the Segment warehouse
        :param count: the page size (reports, newest first)
        """
        from segment_rudderstack.hooks.shared_reads import shared_read

        await self.aload_connection()
        budget = self.sync_list_budget
        workspace = budget_key(self.base_url, self._auth.get("Authorization", ""))  # a hash: no token kept
        key = ("segment-syncs", workspace, warehouse_id, count)
        return await shared_read(
            key,
            lambda: self.alist_warehouse_syncs(warehouse_id, count=count),
            budget.spacing if budget else 0.0,
        )

    def get_advanced_sync_schedule(self, warehouse_id: str) -> dict[str, Any]:
        """``data``: ``{enabled, schedule?: {times: [{hourOfDay, enabled}], timezone}}``."""
        path = f"/warehouses/{quoted_id(warehouse_id, 'warehouse_id')}/advanced-sync-schedule"
        return self._data(RequestSpec("GET", path))

    def connect_warehouse_source(self, warehouse_id: str, source_id: str) -> dict[str, Any]:
        """POST ``/warehouses/{id}/connected-sources/{sourceId}``: the warehouse loads this source again.

        Segment answers 201 ``{"data": {"status": "CONNECTED"}}`` (SDK model
        ``AddConnectionFromSourceToWarehouseV1Output``: ``CONNECTED`` or ``NOT_CONNECTED``); anything but
        ``CONNECTED`` is an error that says so."""
        path = f"/warehouses/{quoted_id(warehouse_id, 'warehouse_id')}/connected-sources/{quoted_id(source_id, 'source_id')}"
        spec = RequestSpec("POST", path, idempotent=True)
        data = self._data(spec)
        if data.get("status") != "CONNECTED":
            raise ResponseFormatError(
                endpoint=spec.endpoint,
                service=self.service_name,
                message=f"expected data.status CONNECTED after connecting source {source_id} to warehouse "
                f"{warehouse_id}, got {data.get('status')!r}; check the connection in Segment's app",
            )
        return data

    def disconnect_warehouse_source(self, warehouse_id: str, source_id: str) -> dict[str, Any]:
        """DELETE ``/warehouses/{id}/connected-sources/{sourceId}``: stop loading one source only
        (disabling the warehouse stops every source connected to it)."""
        path = f"/warehouses/{quoted_id(warehouse_id, 'warehouse_id')}/connected-sources/{quoted_id(source_id, 'source_id')}"
        return self._data(RequestSpec("DELETE", path))

    # ------------------------------------------------------------------ sources
    def get_source(self, source_id: str) -> dict[str, Any]:
        """``data.source``."""
        return self._data(RequestSpec("GET", f"/sources/{quoted_id(source_id, 'source_id')}"), "source")

    def _paginated(
        self,
        path: str,
        key: str,
        page_size: int,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every item of ``data.<key>`` over all pages (follows ``data.pagination.next``); ``query``: further
        query parameters of every page; ``headers``: per-call headers (e.g. a version's Accept)."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            params: dict[str, Any] = {**(query or {}), "pagination.count": page_size}
            if cursor:
                params["pagination.cursor"] = cursor
            spec = RequestSpec("GET", path, params=params, headers=headers)
            data = unwrap(self.call(spec), ("data",), spec=spec, service=self.service_name)
            page = unwrap(data, (key,), spec=spec, service=self.service_name, expect=list)
            items.extend(page)
            pagination = data.get("pagination") or {}
            cursor = pagination.get("next") if isinstance(pagination, dict) else None
            if not cursor:
                return items
            if cursor in seen:
                raise ResponseFormatError(
                    endpoint=spec.endpoint,
                    service=self.service_name,
                    message=f"pagination.next repeats an earlier cursor after {len(seen) + 1} pages",
                )
            seen.add(cursor)
        raise ResponseFormatError(
            endpoint=f"GET {path}",
            service=self.service_name,
            message=f"still more pages after {_MAX_PAGES} pages",
        )

    def list_connected_destinations(self, source_id: str, page_size: int = 200) -> list[dict[str, Any]]:
        """Every destination connected to the source (all pages); settings' secrets are masked in logs."""
        path = f"/sources/{quoted_id(source_id, 'source_id')}/connected-destinations"
        return [_mask_destination(self, d) for d in self._paginated(path, "destinations", page_size)]

    def list_connected_warehouses(self, source_id: str, page_size: int = 200) -> list[dict[str, Any]]:
        """Every warehouse connected to the source (all pages)."""
        path = f"/sources/{quoted_id(source_id, 'source_id')}/connected-warehouses"
        return self._paginated(path, "warehouses", page_size)

    # ------------------------------------------------------------------ what stays on Segment
    # FunctionsApi and TrackingPlansApi of segmentio/public-api-sdk-python (docs/FunctionsApi.md,
    # docs/TrackingPlansApi.md); read by the preflight for the report's "What stays on Segment".
    def list_functions(self, resource_type: str, page_size: int = 200) -> list[dict[str, Any]]:
        """GET ``/functions?resourceType=<type>`` (``list_functions``; ``resourceType`` is required: DESTINATION,
        INSERT_DESTINATION, INSERT_SOURCE, INSERT_TRANSFORMATION or SOURCE): every ``ListFunctionItemV1`` (id,
        resourceType, displayName, description, ...) of the workspace, all pages."""
        return self._paginated("/functions", "functions", page_size, {"resourceType": resource_type})

    def list_tracking_plans(self, page_size: int = 200) -> list[dict[str, Any]]:
        """GET ``/tracking-plans`` (``list_tracking_plans``): every ``TrackingPlanV1`` (id, name, slug, type,
        ...) of the workspace, all pages."""
        return self._paginated("/tracking-plans", "trackingPlans", page_size)

    def list_tracking_plan_sources(self, tracking_plan_id: str, page_size: int = 200) -> list[dict[str, Any]]:
        """GET ``/tracking-plans/{id}/sources`` (``list_sources_from_tracking_plan``): the ``SourceV1`` of every
        source connected to the tracking plan, all pages."""
        path = f"/tracking-plans/{quoted_id(tracking_plan_id, 'tracking_plan_id')}/sources"
        return self._paginated(path, "sources", page_size)

    # ------------------------------------------------------------------ destinations
    def create_destination(
        self,
        source_id: str,
        metadata_id: str,
        name: str,
        enabled: bool,
        settings: dict[str, Any],
    ) -> dict[str, Any]:
        """POST ``/destinations``; returns ``data.destination``. Not retried after it may have taken effect.

        The settings' ``sharedSecret`` and hook URLs (webhook URLs carry a write key) are masked in logs.
        """
        _mask_destination_settings(self, settings)
        spec = RequestSpec(
            "POST",
            "/destinations",
            json={
                "sourceId": source_id,
                "metadataId": metadata_id,
                "name": name,
                "enabled": bool(enabled),
                "settings": settings,
            },
            idempotent=False,
        )
        return _mask_destination(self, self._data(spec, "destination"))

    def get_destination(self, destination_id: str) -> dict[str, Any]:
        """``data.destination`` (its settings' secrets are registered with the masker)."""
        path = f"/destinations/{quoted_id(destination_id, 'destination_id')}"
        return _mask_destination(self, self._data(RequestSpec("GET", path), "destination"))

    def set_destination_enabled(self, destination_id: str, enabled: bool) -> dict[str, Any]:
        """PATCH ``{"enabled": x}``; returns ``data.destination``."""
        path = f"/destinations/{quoted_id(destination_id, 'destination_id')}"
        spec = RequestSpec("PATCH", path, json={"enabled": bool(enabled)})
        return _mask_destination(self, self._data(spec, "destination"))

    # ------------------------------------------------------------------ destination subscriptions (mappings)
    # DestinationsApi of segmentio/public-api-sdk-python (docs/DestinationsApi.md): alpha endpoints, "the
    # specified Workspace needs to have the Destination Subscriptions feature enabled"; create, update and
    # remove are limited to 5 requests a minute. Every call pins the alpha version the way the SDK does
    # (``Accept: application/vnd.segment.v1alpha+json``; create and update also send it as ``Content-Type``):
    # without it Segment serves an endpoint's most stable version (docs.segmentapis.com/tag/Versioning), and the
    # shapes used here (``{"input": ...}`` on update, ``data.destinationSubscription`` on create) are alpha's.
    @staticmethod
    def _subscriptions_path(destination_id: str, subscription_id: str | None = None) -> str:
        path = f"/destinations/{quoted_id(destination_id, 'destination_id')}/subscriptions"
        return (
            f"{path}/{quoted_id(subscription_id, 'subscription_id')}" if subscription_id is not None else path
        )

    def list_destination_subscriptions(
        self, destination_id: str, page_size: int = 200
    ) -> list[dict[str, Any]]:
        """GET ``/destinations/{id}/subscriptions`` (``list_subscriptions_from_destination``): every mapping
        (``DestinationSubscription``: id, name, actionId, actionSlug, destinationId, enabled, settings, trigger),
        all pages; URLs with keys and header values are masked in logs."""
        items = self._paginated(
            self._subscriptions_path(destination_id), "subscriptions", page_size, headers=ALPHA_ACCEPT
        )
        return [_mask_subscription(self, item) for item in items]

    def create_destination_subscription(
        self,
        destination_id: str,
        *,
        name: str,
        action_id: str,
        trigger: str,
        enabled: bool,
        settings: dict[str, Any],
    ) -> dict[str, Any]:
        """POST ``/destinations/{id}/subscriptions`` (``create_destination_subscription``, body
        ``CreateDestinationSubscriptionAlphaInput``); returns ``data.destinationSubscription``. Not retried
        after it may have taken effect."""
        _mask_subscription(self, {"settings": settings})
        spec = RequestSpec(
            "POST",
            self._subscriptions_path(destination_id),
            json={
                "name": name,
                "actionId": action_id,
                "trigger": trigger,
                "enabled": bool(enabled),
                "settings": settings,
            },
            idempotent=False,
            headers=ALPHA_BODY,
        )
        return _mask_subscription(self, self._data(spec, "destinationSubscription"))

    def set_destination_subscription_enabled(
        self, destination_id: str, subscription_id: str, enabled: bool
    ) -> dict[str, Any]:
        """PATCH ``/destinations/{id}/subscriptions/{subscriptionId}`` (``update_subscription_for_destination``,
        body ``UpdateSubscriptionForDestinationAlphaInput`` = ``{"input": {"enabled": x}}``); returns
        ``data.subscription``."""
        spec = RequestSpec(
            "PATCH",
            self._subscriptions_path(destination_id, subscription_id),
            json={"input": {"enabled": bool(enabled)}},
            headers=ALPHA_BODY,
        )
        return _mask_subscription(self, self._data(spec, "subscription"))

    def get_destination_subscription(self, destination_id: str, subscription_id: str) -> dict[str, Any]:
        """GET ``/destinations/{id}/subscriptions/{subscriptionId}`` (``get_subscription_from_destination``):
        ``data.subscription``."""
        spec = RequestSpec(
            "GET", self._subscriptions_path(destination_id, subscription_id), headers=ALPHA_ACCEPT
        )
        return _mask_subscription(self, self._data(spec, "subscription"))

    def _test_spec(self) -> RequestSpec:
        return RequestSpec("GET", "/")  # Segment's "Get Workspace"
