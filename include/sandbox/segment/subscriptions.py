"""The destination subscriptions resource (Webhooks (Actions) mappings): POST/GET
/destinations/{id}/subscriptions, GET/PATCH/DELETE /destinations/{id}/subscriptions/{sid}.

DestinationsApi (SDK docs/DestinationsApi.md): create/list/get/update/remove subscription; alpha; create, update
and remove limited to 5 requests a minute (`subscription_writes_per_minute`). Disabling a mapping stops delivery
of events received afterwards; queued ones are still delivered."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from sandbox.common import ApiError, json_body_or_none
from sandbox.segment.api import PublicApi
from sandbox.segment.catalog import MAX_MAPPINGS
from sandbox.segment.settings import SegmentSettings
from sandbox.segment.store import SegmentStore
from sandbox.segment.webhooks import find_action, trigger_event_types, validate_send_settings

__all__ = ["ALPHA_ACCEPT", "router"]

# Segment's alpha version (public-api-sdk-python DestinationsApi: the subscription endpoints' only version), and
# the explicit versions they do not have (docs.segmentapis.com/tag/Versioning: alpha, beta, stable; v1 names)
ALPHA_ACCEPT = "application/vnd.segment.v1alpha+json"
OTHER_VERSION = re.compile(r"application/vnd\.segment\.(v1beta|beta|v1|stable)\+json")


def _alpha_version(api: PublicApi):
    def observe(request: Request) -> None:
        # The subscription endpoints exist in alpha only (SDK: Accept application/vnd.segment.v1alpha+json, also
        # the Content-Type of create/update). Segment does not require the header: "Standard API call requests
        # are forwarded to the endpoint's most stable available version ... falls back to an alpha version"
        # (docs.segmentapis.com/tag/Versioning), so an unpinned call is served, and recorded (log kind
        # "api_version") so tests see which calls pinned it. A call pinning a version the endpoint does not have
        # is refused with 406 (undocumented; stricter).
        accept = request.headers.get("accept", "")
        if OTHER_VERSION.search(accept):
            raise ApiError(
                406, "not-acceptable", f"This endpoint exists in alpha only: send 'Accept: {ALPHA_ACCEPT}'"
            )
        api.log.append(
            "api_version",
            method=request.method,
            path=request.url.path,
            accept=accept,
            content_type=request.headers.get("content-type", ""),
            pinned=ALPHA_ACCEPT in accept,
        )

    return Depends(observe)


def router(store: SegmentStore, api: PublicApi, settings: SegmentSettings) -> APIRouter:
    routes = APIRouter(dependencies=[api.auth, _alpha_version(api)])

    def subscription_writes(key: str):
        def limit(response: Response) -> None:
            api.rate_limit(response, f"subscriptions:{key}", settings.subscription_writes_per_minute)

        return Depends(limit)

    @routes.post("/destinations/{destination_id}/subscriptions", dependencies=[subscription_writes("create")])
    async def create_subscription(destination_id: str, request: Request):
        # CreateDestinationSubscriptionAlphaInput {name, actionId, trigger, enabled, settings?, modelId?};
        # answer CreateDestinationSubscription200Response {"data": {"destinationSubscription"}}.
        body = json_body_or_none(await request.body())
        if not isinstance(body, dict):
            raise ApiError(
                422, "validation", "Expected a JSON object {name, actionId, trigger, enabled, settings}"
            )
        unknown = sorted(set(body) - {"name", "actionId", "trigger", "enabled", "settings", "modelId"})
        if unknown:
            raise ApiError(422, "validation", f"unknown fields {unknown}", field=unknown[0])
        for name, kind in (("name", str), ("actionId", str), ("trigger", str), ("enabled", bool)):
            if not isinstance(body.get(name), kind):
                raise ApiError(422, "validation", f"{name} is required ({kind.__name__})", field=name)
        trigger_event_types(body["trigger"])
        with store.lock:
            mapping = _new_mapping(store, destination_id, body)
            api.record_change(
                request,
                body,
                200,
                destinationId=destination_id,
                subscriptionId=mapping["id"],
                before=None,
                after={"enabled": mapping["enabled"]},
            )
            return {"data": {"destinationSubscription": dict(mapping)}}

    @routes.get("/destinations/{destination_id}/subscriptions", dependencies=[api.limited])
    def list_subscriptions(destination_id: str, request: Request):
        # ListSubscriptionsFromDestinationAlphaOutput {subscriptions, pagination}.
        with store.lock:
            store.get_destination(destination_id)
            items = [dict(m) for m in store.subscriptions.get(destination_id, {}).values()]
        page, pagination = api.page(request, items)
        return {"data": {"subscriptions": page, "pagination": pagination}}

    @routes.get("/destinations/{destination_id}/subscriptions/{subscription_id}", dependencies=[api.limited])
    def get_subscription(destination_id: str, subscription_id: str):
        # GetSubscriptionFromDestinationAlphaOutput {subscription}.
        with store.lock:
            return {"data": {"subscription": dict(store.get_subscription(destination_id, subscription_id))}}

    _changes(routes, store, api, subscription_writes)
    return routes


def _new_mapping(store: SegmentStore, destination_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A new mapping on a destination (call with the store's lock held)."""
    destination = store.get_destination(destination_id)
    action = find_action(destination, body["actionId"])
    settings = validate_send_settings(body.get("settings") or {})
    mappings = store.subscriptions[destination_id]
    if len(mappings) >= MAX_MAPPINGS:
        raise ApiError(
            422,
            "validation",
            f"a Webhooks (Actions) destination holds at most "
            f"{MAX_MAPPINGS} mappings; {destination_id} has {len(mappings)}",
        )
    mapping = {
        "id": store.next_id("sub"),
        "name": body["name"],
        "actionId": action["id"],
        "actionSlug": action["slug"],
        "destinationId": destination_id,
        "enabled": body["enabled"],
        "settings": settings,
        "trigger": body["trigger"],
    }
    mappings[mapping["id"]] = mapping
    return mapping


def _update(body: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The checked `input` of an update and its checked settings (None when it changes none)."""
    update = body.get("input") if isinstance(body, dict) else None
    if not isinstance(update, dict) or set(body) != {"input"}:
        raise ApiError(
            422,
            "validation",
            "Expected {'input': {...}} (UpdateSubscriptionForDestinationAlphaInput)",
            field="input",
        )
    unknown = sorted(set(update) - {"name", "trigger", "enabled", "settings"})
    if unknown:
        raise ApiError(422, "validation", f"unknown fields input.{unknown[0]}", field=f"input.{unknown[0]}")
    if "enabled" in update and not isinstance(update["enabled"], bool):
        raise ApiError(422, "validation", "input.enabled must be true or false", field="input.enabled")
    if "trigger" in update:
        trigger_event_types(update["trigger"])
    settings = validate_send_settings(update["settings"]) if "settings" in update else None
    return update, settings


def _changes(routes: APIRouter, store: SegmentStore, api: PublicApi, subscription_writes) -> None:
    """PATCH and DELETE /destinations/{id}/subscriptions/{sid}."""

    @routes.patch(
        "/destinations/{destination_id}/subscriptions/{subscription_id}",
        dependencies=[subscription_writes("update")],
    )
    async def update_subscription(destination_id: str, subscription_id: str, request: Request):
        # UpdateSubscriptionForDestinationAlphaInput {"input": DestinationSubscriptionUpdateInput {name?,
        # trigger?, enabled?, settings?, ...}}; answer UpdateSubscriptionForDestinationAlphaOutput {subscription}.
        body = json_body_or_none(await request.body())
        update, settings = _update(body)
        with store.lock:
            mapping = store.get_subscription(destination_id, subscription_id)
            before = mapping["enabled"]
            for key in ("name", "trigger", "enabled"):
                if key in update:
                    mapping[key] = update[key]
            if settings is not None:
                mapping["settings"] = settings
            api.record_change(
                request,
                body,
                200,
                destinationId=destination_id,
                subscriptionId=subscription_id,
                before={"enabled": before},
                after={"enabled": mapping["enabled"]},
            )
            return {"data": {"subscription": dict(mapping)}}

    @routes.delete(
        "/destinations/{destination_id}/subscriptions/{subscription_id}",
        dependencies=[subscription_writes("remove")],
    )
    def remove_subscription(destination_id: str, subscription_id: str, request: Request):
        # RemoveSubscriptionFromDestinationAlphaOutput {status: SUCCESS}.
        with store.lock:
            mapping = store.get_subscription(destination_id, subscription_id)
            del store.subscriptions[destination_id][subscription_id]
            api.record_change(
                request,
                None,
                200,
                destinationId=destination_id,
                subscriptionId=subscription_id,
                before={"enabled": mapping["enabled"]},
                after=None,
            )
        return {"data": {"status": "SUCCESS"}}
