"""The warehouses resource: GET/PATCH /warehouses/{id}, its syncs (GET /warehouses/{id}/syncs and
/warehouses/{id}/connected-sources/{sid}/syncs, limited to `sync_list_per_minute`, 429 + Retry-After), its
advanced sync schedule, and POST/DELETE /warehouses/{id}/connected-sources/{sid}.

Disabling the warehouse (or disconnecting a source) stops loads; events still queued for it are not loaded by
Segment. A load already running finishes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import ApiError, json_body_or_none, redact
from sandbox.segment.api import PublicApi
from sandbox.segment.loads import Loads, render_report
from sandbox.segment.settings import SegmentSettings
from sandbox.segment.store import SegmentStore

__all__ = ["router"]


def router(store: SegmentStore, api: PublicApi, settings: SegmentSettings, loads: Loads) -> APIRouter:
    routes = APIRouter(dependencies=[api.auth])
    s = settings

    @routes.get("/warehouses/{warehouse_id}", dependencies=[api.limited])
    def get_warehouse(warehouse_id: str):
        with store.lock:
            return {"data": {"warehouse": redact(store.get_warehouse(warehouse_id))}}

    @routes.patch("/warehouses/{warehouse_id}", dependencies=[api.limited])
    async def patch_warehouse(warehouse_id: str, request: Request):
        body = json_body_or_none(await request.body())
        if not isinstance(body, dict) or not isinstance(body.get("settings"), dict):
            raise ApiError(422, "validation", "settings is required (an object; {} keeps the current ones)")
        if "enabled" in body and not isinstance(body["enabled"], bool):
            raise ApiError(422, "validation", "enabled must be true or false")
        with store.lock:
            warehouse = store.get_warehouse(warehouse_id)
            before = warehouse["enabled"]
            if "enabled" in body:
                warehouse["enabled"] = body["enabled"]
            warehouse["settings"].update(body["settings"])
            if body.get("name"):
                warehouse["settings"]["name"] = body["name"]
            api.record_change(
                request,
                body,
                200,
                warehouseId=warehouse_id,
                before={"enabled": before},
                after={"enabled": warehouse["enabled"]},
                loadRunning=warehouse_id in store.running,
            )
            if before and not warehouse["enabled"]:
                loads.discard_unreachable_pending(f"warehouse {warehouse_id} disabled")
            return {"data": {"warehouse": redact(warehouse)}}

    _syncs(routes, store, api, settings)

    @routes.get("/warehouses/{warehouse_id}/advanced-sync-schedule", dependencies=[api.limited])
    def advanced_sync_schedule(warehouse_id: str):
        with store.lock:
            store.get_warehouse(warehouse_id)
        schedule = s.advanced_sync_schedule or {"enabled": False}
        return {"data": schedule}

    _connections(routes, store, api, loads)
    return routes


def _syncs(routes: APIRouter, store: SegmentStore, api: PublicApi, settings: SegmentSettings) -> None:
    """The sync reports: GET /warehouses/{id}/syncs and /warehouses/{id}/connected-sources/{sid}/syncs."""
    s = settings

    def list_syncs(request: Request, response: Response, warehouse_id: str, source_id: str | None, key: str):
        # Every sync-list request is logged with whether the rate limit admitted it, so a run can be checked
        # afterwards for 429s and calls per minute (log kind "sync_list").
        try:
            api.rate_limit(response, key, s.sync_list_per_minute)
        except ApiError:
            api.log.append("sync_list", path=request.url.path, limit=key, status=429)
            raise
        api.log.append("sync_list", path=request.url.path, limit=key, status=200)
        with store.lock:
            store.get_warehouse(warehouse_id)
            if source_id is not None:
                store.get_source(source_id)
            reports = [
                render_report(r)
                for r in reversed(store.reports[warehouse_id])
                if source_id is None or r["sourceId"] == source_id
            ]
        page, pagination = api.page(request, reports)
        return {"data": {"reports": page, "pagination": pagination}}

    @routes.get("/warehouses/{warehouse_id}/syncs")
    def warehouse_syncs(warehouse_id: str, request: Request, response: Response):
        return list_syncs(request, response, warehouse_id, None, "syncs:warehouse")

    @routes.get("/warehouses/{warehouse_id}/connected-sources/{source_id}/syncs")
    def source_syncs(warehouse_id: str, source_id: str, request: Request, response: Response):
        return list_syncs(request, response, warehouse_id, source_id, "syncs:source")


def _connections(routes: APIRouter, store: SegmentStore, api: PublicApi, loads: Loads) -> None:
    """POST/DELETE /warehouses/{id}/connected-sources/{sid}."""

    @routes.post("/warehouses/{warehouse_id}/connected-sources/{source_id}", dependencies=[api.limited])
    def connect_source(warehouse_id: str, source_id: str, request: Request):
        with store.lock:
            store.get_warehouse(warehouse_id)
            store.get_source(source_id)
            before = source_id in store.connections[warehouse_id]
            store.connections[warehouse_id].add(source_id)
            api.record_change(
                request,
                None,
                201,
                warehouseId=warehouse_id,
                sourceId=source_id,
                before={"connected": before},
                after={"connected": True},
            )
        # AddConnectionFromSourceToWarehouseV1Output (SDK): status CONNECTED | NOT_CONNECTED; the SDK's
        # WarehousesApi.add_connection_from_source_to_warehouse maps a 201 answer.
        return JSONResponse({"data": {"status": "CONNECTED"}}, status_code=201)

    @routes.delete("/warehouses/{warehouse_id}/connected-sources/{source_id}", dependencies=[api.limited])
    def disconnect_source(warehouse_id: str, source_id: str, request: Request):
        with store.lock:
            store.get_warehouse(warehouse_id)
            store.get_source(source_id)
            before = source_id in store.connections[warehouse_id]
            store.connections[warehouse_id].discard(source_id)
            api.record_change(
                request,
                None,
                200,
                warehouseId=warehouse_id,
                sourceId=source_id,
                before={"connected": before},
                after={"connected": False},
                loadRunning=warehouse_id in store.running,
            )
            loads.discard_unreachable_pending(f"source {source_id} disconnected from {warehouse_id}")
        return {"data": {"status": "SUCCESS"}}
