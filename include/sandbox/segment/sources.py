"""The sources resource: GET /sources/{id}, /sources/{id}/connected-destinations, /sources/{id}/connected-warehouses."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sandbox.common import redact
from sandbox.segment.api import PublicApi
from sandbox.segment.store import SegmentStore

__all__ = ["public_source", "router"]


def public_source(source: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in source.items() if k != "schema"}


def router(store: SegmentStore, api: PublicApi) -> APIRouter:
    routes = APIRouter(dependencies=[api.auth])

    @routes.get("/sources/{source_id}", dependencies=[api.limited])
    def get_source(source_id: str):
        with store.lock:
            # GetSourceV1Output (SDK): `source` and `trackingPlanId` (required, null without a tracking plan).
            return {
                "data": {
                    "source": public_source(store.get_source(source_id)),
                    "trackingPlanId": None,
                }
            }

    @routes.get("/sources/{source_id}/connected-destinations", dependencies=[api.limited])
    def connected_destinations(source_id: str, request: Request):
        with store.lock:
            store.get_source(source_id)
            items = [redact(d) for d in store.destinations.values() if d["sourceId"] == source_id]
        page, pagination = api.page(request, items)
        return {"data": {"destinations": page, "pagination": pagination}}

    @routes.get("/sources/{source_id}/connected-warehouses", dependencies=[api.limited])
    def connected_warehouses(source_id: str, request: Request):
        with store.lock:
            store.get_source(source_id)
            items = [
                redact(store.warehouses[wid]) for wid, srcs in store.connections.items() if source_id in srcs
            ]
        page, pagination = api.page(request, items)
        return {"data": {"warehouses": page, "pagination": pagination}}

    return routes
