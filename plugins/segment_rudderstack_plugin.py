"""The project's only Airflow plugin module (everything else under plugins/ is ignored by the plugin manager,
see plugins/.airflowignore): the migration view in the Airflow UI.

- ``fastapi_apps``: the view, served by the API server under /segment-rudderstack (login required);
- ``external_views``: "Migrations" in the Browse menu (every plan) and a "Migration" tab on each DAG.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from segment_rudderstack.ui.view import URL_PREFIX, create_app


class SegmentRudderStackPlugin(AirflowPlugin):
    name = "segment_rudderstack"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Segment to RudderStack migrations"}
    ]
    external_views = [
        {
            "name": "Migrations",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "segment-rudderstack-migrations",
        },
        {
            "name": "Migration",
            "href": f"{URL_PREFIX}/dags/{{DAG_ID}}",
            "destination": "dag",
            "url_route": "segment-rudderstack-migration",
        },
    ]
