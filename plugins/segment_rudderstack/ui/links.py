"""Extra links from a task to the vendor's page of the object it changes or waits on (the "Segment warehouse"
and "RudderStack destination" buttons on a task instance).

Airflow 3 computes a link on the worker when the task finishes (with its rendered fields) and keeps the URL
in XCom; the UI reads it from there. The URL shapes are best-effort: they follow the web apps' current
routes, which neither vendor documents as stable. Set ``app_url`` (and for Segment ``workspace_slug``) in
the connection's extra to point them at another region or workspace; without a slug, Segment's
``goto-my-workspace`` redirect picks the user's workspace.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

SEGMENT_APP = "https://app.segment.com"
RUDDERSTACK_APP = "https://app.rudderstack.com"
SEGMENT_ANY_WORKSPACE = "goto-my-workspace"


def _extras(conn_id: str | None) -> dict[str, Any]:
    if not conn_id:
        return {}
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id).extra_dejson or {}
    except Exception:  # a missing connection must not break the task's finish: default URLs then
        return {}


def _plain_id(value: Any) -> str | None:
    """A rendered id, or None while it is still a template or missing."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value or "{{" in value:
        return None
    return value


def segment_app(operator: Any) -> tuple[str, str]:
    extras = _extras(getattr(operator, "segment_conn_id", None))
    return (
        str(extras.get("app_url") or SEGMENT_APP).rstrip("/"),
        str(extras.get("workspace_slug") or SEGMENT_ANY_WORKSPACE),
    )


def segment_warehouse_url(operator: Any) -> str:
    app, slug = segment_app(operator)
    warehouse_id = _plain_id(getattr(operator, "warehouse_id", None))
    return f"{app}/{quote(slug)}/warehouses/{quote(warehouse_id)}/overview" if warehouse_id else ""


def segment_destinations_url(operator: Any) -> str:
    app, slug = segment_app(operator)
    return f"{app}/{quote(slug)}/destinations"


def rudderstack_destination_url(operator: Any, ti_key: Any = None) -> str:
    destination_id = _plain_id(getattr(operator, "destination_id", None))
    if destination_id is None and ti_key is not None and hasattr(ti_key, "xcom_pull"):
        try:  # the ensure step returns the id of the destination it found or created
            destination_id = _plain_id(ti_key.xcom_pull(task_ids=ti_key.task_id))
        except Exception:
            destination_id = None
    if not destination_id:
        return ""
    extras = _extras(getattr(operator, "rudderstack_conn_id", None))
    app = str(extras.get("app_url") or RUDDERSTACK_APP).rstrip("/")
    return f"{app}/destinations/{quote(destination_id)}"


class SegmentWarehouseLink(BaseOperatorLink):
    """Segment's page of the warehouse being replaced (its syncs and settings)."""

    name = "Segment warehouse"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return segment_warehouse_url(operator)


class SegmentDestinationsLink(BaseOperatorLink):
    """Segment's destinations page, where the Webhooks destinations to RudderStack are listed."""

    name = "Segment destinations"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return segment_destinations_url(operator)


class RudderStackDestinationLink(BaseOperatorLink):
    """RudderStack's page of the warehouse destination (sync settings, upload history)."""

    name = "RudderStack destination"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return rudderstack_destination_url(operator, ti_key)
