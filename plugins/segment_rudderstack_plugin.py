"""The project's only Airflow plugin module (everything else under plugins/ is ignored by the plugin manager,
see plugins/.airflowignore): registers what the library adds to Airflow's UI and API server."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class SegmentRudderStackPlugin(AirflowPlugin):
    name = "segment_rudderstack"
