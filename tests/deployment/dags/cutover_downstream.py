"""A downstream DAG of the sandbox plan (docs/downstream.md): it runs when the migration announces that its lane's
tables passed the duplicate check, and reads the cutover point and the overlap window from the events' extra.

Scheduled on the lane's asset alias, whose name comes from the plan alone (no I/O at parse time); unpaused on
creation so the deployment test need not unpause it before the migration runs.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, AssetAlias, task

ALIAS = "segment_to_rudderstack__sandbox__app_events__duplicate_checked"
DAG_ID = "sandbox_downstream_models"

with DAG(
    dag_id=DAG_ID,
    schedule=[AssetAlias(ALIAS)],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["downstream", "deployment-test"],
):

    @task
    def read_cutover(*, triggering_asset_events=None) -> list[dict]:
        """What an incremental model needs: per table, the cutover point and the overlap window to re-read."""
        seen = []
        alias = AssetAlias(ALIAS)
        events = (
            triggering_asset_events[alias]
            if alias in triggering_asset_events
            else [e for group in triggering_asset_events.values() for e in group]
        )
        for event in events:
            extra = dict(event.extra or {})
            seen.append(
                {
                    "uri": event.asset.uri,
                    "table": extra.get("table"),
                    "cutover_at": extra.get("cutover_at"),
                    "overlap_window": extra.get("overlap_window"),
                    "rudderstack_destination_id": extra.get("rudderstack_destination_id"),
                    "stage": extra.get("stage"),
                    "source_dag_id": event.source_dag_id,
                    "source_run_id": event.source_run_id,
                    "event_at": event.timestamp.isoformat(),
                }
            )
        return seen

    read_cutover()
