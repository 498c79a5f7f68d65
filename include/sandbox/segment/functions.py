"""The Functions resource: GET /functions?resourceType= (segmentio/public-api-sdk-python, commit
35b3d8b70161311a816eb4fe9ffd6435f4aec4d5, docs/FunctionsApi.md ``list_functions``): ``resourceType`` is required and
one of DESTINATION, INSERT_DESTINATION, INSERT_SOURCE, INSERT_TRANSFORMATION, SOURCE
(models/list_function_item_v1.py); ``data`` = ListFunctionsV1Output ``{functions: [ListFunctionItemV1],
pagination}``. "The specified Workspace needs to have the Functions feature enabled": fault
``functions_unavailable`` answers 404 as for one without it (404 is a documented response)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sandbox.common import ApiError
from sandbox.segment.api import PublicApi
from sandbox.segment.settings import WorkspaceSeed

__all__ = ["FUNCTION_TYPES", "router"]

FUNCTION_TYPES = ("DESTINATION", "INSERT_DESTINATION", "INSERT_SOURCE", "INSERT_TRANSFORMATION", "SOURCE")
CREATED_AT = "2025-06-01T09:00:00.000Z"


def router(seed: WorkspaceSeed, api: PublicApi, faults: Any) -> APIRouter:
    routes = APIRouter(dependencies=[api.auth])

    @routes.get("/functions", dependencies=[api.limited])
    def list_functions(request: Request):
        if faults is not None and faults.take("functions_unavailable", request.url.path):
            raise ApiError(404, "not-found", "Resource not found: the Functions feature is not enabled")
        resource_type = request.query_params.get("resourceType")
        if resource_type not in FUNCTION_TYPES:
            raise ApiError(
                422,
                "validation",
                f"resourceType is required and must be one of {', '.join(FUNCTION_TYPES)}, got {resource_type!r}",
                field="resourceType",
            )
        items = [
            {
                "id": f.id,
                "resourceType": f.resource_type,
                "createdAt": CREATED_AT,
                "createdBy": "usr_sandbox",
                "displayName": f.display_name,
                "description": f.description,
                "logoUrl": None,
                "catalogId": f"cat_{f.id}",
            }
            for f in seed.functions
            if f.resource_type == resource_type
        ]
        found, pagination = api.page(request, items)
        return {"data": {"functions": found, "pagination": pagination}}

    return routes
