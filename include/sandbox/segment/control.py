"""The sandbox's control routes (no auth, 127.0.0.1 only; never faulted): POST/DELETE /sandbox/faults,
GET /sandbox/log, GET /sandbox/state, POST /sandbox/loads/run, GET /sandbox/events/{messageId}."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from sandbox.common import ApiError, FaultInjector, RequestLog, json_body_or_none
from sandbox.segment.loads import Loads
from sandbox.segment.store import SegmentStore

__all__ = ["router"]


def router(
    store: SegmentStore,
    faults: FaultInjector,
    log: RequestLog,
    loads: Loads,
    state: Callable[[], dict[str, Any]],
) -> APIRouter:
    routes = APIRouter(prefix="/sandbox")

    @routes.post("/faults")
    async def arm_faults(request: Request):
        body = json_body_or_none(await request.body())
        if isinstance(body, dict) and body.get("clear"):
            faults.clear()
        try:
            armed = faults.arm(body if isinstance(body, dict) else {})
        except ValueError as exc:
            raise ApiError(422, "validation", str(exc)) from exc
        log.append("control", action="faults", body=body)
        return {"data": armed}

    @routes.delete("/faults")
    def clear_faults():
        faults.clear()
        return {"data": faults.state()}

    @routes.get("/log")
    def get_log(kind: str | None = None, since: int = 0):
        return {"data": {"entries": log.entries(kind, since_seq=since)}}

    @routes.get("/state")
    def get_state():
        return {"data": state()}

    @routes.post("/loads/run")
    def force_load(warehouse_id: str | None = None, wait: bool = True):
        if warehouse_id is not None and warehouse_id not in store.warehouses:
            raise ApiError(404, "not-found", f"Warehouse {warehouse_id!r} not found")
        if not wait:
            threading.Thread(target=loads.run, args=(warehouse_id,), daemon=True).start()
            return {"data": {"started": True}}
        return {"data": {"reports": loads.run(warehouse_id)}}

    @routes.get("/events/{message_id}")
    def event_paths(message_id: str):
        return {"data": {"messageId": message_id, "paths": store.paths_of(message_id)}}

    return routes
