"""The destinations resource: POST /destinations, GET/PATCH/DELETE /destinations/{id}. The sandbox creates
Webhooks (Actions) destinations (settings: only sharedSecret), and classic Webhooks ones when the workspace has it
(`classic_webhooks_available`). Disabling a destination stops delivery of events received afterwards; queued ones
are still delivered."""

from __future__ import annotations

from fastapi import APIRouter, Request

from sandbox.common import ApiError, json_body_or_none, redact
from sandbox.segment.api import PublicApi
from sandbox.segment.settings import SegmentSettings
from sandbox.segment.store import SegmentStore
from sandbox.segment.webhooks import validate_destination_settings, webhooks_metadata

__all__ = ["router"]


def router(store: SegmentStore, api: PublicApi, settings: SegmentSettings) -> APIRouter:
    routes = APIRouter(dependencies=[api.auth])

    @routes.post("/destinations", dependencies=[api.limited])
    async def create_destination(request: Request):
        # DestinationsApi.create_destination (SDK): body CreateDestinationV1Input {sourceId, metadataId,
        # enabled?, name?, settings}; answer 200 CreateDestination200Response {"data": {"destination"}}.
        body = json_body_or_none(await request.body())
        if not isinstance(body, dict):
            raise ApiError(
                422,
                "validation",
                "Expected a JSON object {sourceId, metadataId, name, enabled, settings}",
            )
        for name in ("sourceId", "metadataId"):
            if not isinstance(body.get(name), str):
                raise ApiError(422, "validation", f"{name} is required", field=name)
        if not isinstance(body.get("settings"), dict):
            raise ApiError(422, "validation", "settings is required (an object)", field="settings")
        metadata = webhooks_metadata(body["metadataId"], settings.classic_webhooks_available)
        destination_settings = validate_destination_settings(metadata["id"], body["settings"])
        with store.lock:
            store.get_source(body["sourceId"])
            destination = {
                "id": store.next_id("dst"),
                "name": body.get("name") or metadata["name"],
                "enabled": bool(body.get("enabled", False)),
                "metadata": metadata,
                "sourceId": body["sourceId"],
                "settings": destination_settings,
            }
            store.destinations[destination["id"]] = destination
            store.subscriptions[destination["id"]] = {}
            api.record_change(
                request,
                body,
                200,
                destinationId=destination["id"],
                before=None,
                after={"enabled": destination["enabled"]},
            )
            return {"data": {"destination": redact(destination)}}

    @routes.get("/destinations/{destination_id}", dependencies=[api.limited])
    def get_destination(destination_id: str):
        with store.lock:
            return {"data": {"destination": redact(store.get_destination(destination_id))}}

    _changes(routes, store, api)
    return routes


def _changes(routes: APIRouter, store: SegmentStore, api: PublicApi) -> None:
    """PATCH and DELETE /destinations/{id}."""

    @routes.patch("/destinations/{destination_id}", dependencies=[api.limited])
    async def patch_destination(destination_id: str, request: Request):
        # DestinationsApi.update_destination: UpdateDestinationV1Input {name?, enabled?, settings?}.
        body = json_body_or_none(await request.body())
        if not isinstance(body, dict):
            raise ApiError(422, "validation", "Expected a JSON object like {'enabled': false}")
        if "enabled" in body and not isinstance(body["enabled"], bool):
            raise ApiError(422, "validation", "enabled must be true or false", field="enabled")
        with store.lock:
            destination = store.get_destination(destination_id)
            settings = (
                validate_destination_settings(destination["metadata"]["id"], body["settings"])
                if "settings" in body
                else None
            )
            before = destination["enabled"]
            if "enabled" in body:
                destination["enabled"] = body["enabled"]
            if body.get("name"):
                destination["name"] = body["name"]
            if settings is not None:
                destination["settings"] = settings
            api.record_change(
                request,
                body,
                200,
                destinationId=destination_id,
                before={"enabled": before},
                after={"enabled": destination["enabled"]},
            )
            return {"data": {"destination": redact(destination)}}

    @routes.delete("/destinations/{destination_id}", dependencies=[api.limited])
    def delete_destination(destination_id: str, request: Request):
        with store.lock:
            destination = store.get_destination(destination_id)
            del store.destinations[destination_id]
            store.subscriptions.pop(destination_id, None)
            api.record_change(
                request,
                None,
                200,
                destinationId=destination_id,
                before={"enabled": destination["enabled"]},
                after=None,
            )
        return {"data": {"status": "SUCCESS"}}
