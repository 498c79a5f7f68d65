"""The Tracking Plans resource (segmentio/public-api-sdk-python, commit 35b3d8b70161311a816eb4fe9ffd6435f4aec4d5,
docs/TrackingPlansApi.md):

- ``GET /tracking-plans`` (``list_tracking_plans``, optional ``type``): ``data`` = ListTrackingPlansV1Output
  ``{trackingPlans: [TrackingPlanV1], pagination}``; TrackingPlanV1 = id, name, slug, description, type (ENGAGE, LIVE,
  PROPERTY_LIBRARY, RULE_LIBRARY, TEMPLATE), updatedAt, createdAt (models/tracking_plan_v1.py).
- ``GET /tracking-plans/{id}/sources`` (``list_sources_from_tracking_plan``): ``data`` =
  ListSourcesFromTrackingPlanV1Output ``{sources: [SourceV1], pagination}``; an unknown plan is 404.
- Fault ``tracking_plans_forbidden`` answers 403 on both, as for a token without access to them."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request

from sandbox.common import ApiError
from sandbox.segment.api import PublicApi
from sandbox.segment.settings import WorkspaceSeed
from sandbox.segment.sources import public_source
from sandbox.segment.store import SegmentStore

__all__ = ["router"]

TRACKING_PLAN_TYPES = ("ENGAGE", "LIVE", "PROPERTY_LIBRARY", "RULE_LIBRARY", "TEMPLATE")
CREATED_AT = "2025-06-01T09:00:00.000Z"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def router(seed: WorkspaceSeed, store: SegmentStore, api: PublicApi, faults: Any) -> APIRouter:
    routes = APIRouter(dependencies=[api.auth])

    def forbidden(request: Request) -> None:
        if faults is not None and faults.take("tracking_plans_forbidden", request.url.path):
            raise ApiError(
                403, "forbidden", "The token does not have access to the Tracking Plans of this workspace"
            )

    @routes.get("/tracking-plans", dependencies=[api.limited])
    def list_tracking_plans(request: Request):
        forbidden(request)
        kind = request.query_params.get("type")
        if kind is not None and kind not in TRACKING_PLAN_TYPES:
            raise ApiError(
                422, "validation", f"type must be one of {', '.join(TRACKING_PLAN_TYPES)}", field="type"
            )
        items = [
            {
                "id": p.id,
                "name": p.name,
                "slug": _slug(p.name),
                "description": p.description,
                "type": p.type,
                "updatedAt": CREATED_AT,
                "createdAt": CREATED_AT,
            }
            for p in seed.tracking_plans
            if kind is None or p.type == kind
        ]
        found, pagination = api.page(request, items)
        return {"data": {"trackingPlans": found, "pagination": pagination}}

    @routes.get("/tracking-plans/{tracking_plan_id}/sources", dependencies=[api.limited])
    def list_tracking_plan_sources(tracking_plan_id: str, request: Request):
        forbidden(request)
        plan = next((p for p in seed.tracking_plans if p.id == tracking_plan_id), None)
        if plan is None:
            raise ApiError(404, "not-found", f"Tracking Plan {tracking_plan_id} not found")
        with store.lock:
            sources = [public_source(store.sources[sid]) for sid in plan.source_ids if sid in store.sources]
        found, pagination = api.page(request, sources)
        return {"data": {"sources": found, "pagination": pagination}}

    return routes
