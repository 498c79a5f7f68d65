"""The workspace resource: GET / ("Get Workspace", what a connection test reads)."""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.segment.api import PublicApi

__all__ = ["router"]


def router(api: PublicApi) -> APIRouter:
    routes = APIRouter(dependencies=[api.auth])

    @routes.get("/", dependencies=[api.limited])
    def get_workspace():
        return {"data": {"workspace": {"id": "ws_sandbox", "slug": "sandbox", "name": "Sandbox workspace"}}}

    return routes
