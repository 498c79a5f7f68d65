"""Probe DAGs for the deployment harness: params with descriptions, a deferrable sensor, a schedule.

`deployment_probe_manual` is triggered through the REST API like the UI's trigger form does; its sensor
defers to the triggerer (DateTimeSensorAsync -> DateTimeTrigger, standard provider) for `wait_seconds` seconds.
`deployment_probe_scheduled` runs on its own every 15 seconds (catchup off).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import Param, dag, task

NAMESPACE_DESCRIPTION = "Warehouse schema that Segment loads into; RudderStack must write the same one."
DRY_RUN_DESCRIPTION = "Read everything and change nothing; report what would change."
WAIT_DESCRIPTION = "Seconds the deferrable sensor waits in the triggerer before the run goes on."


@dag(
    dag_id="deployment_probe_manual",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["deployment-probe"],
    params={
        "target_namespace": Param(
            "analytics",
            type="string",
            minLength=1,
            pattern="^[a-z_][a-z0-9_]*$",
            title="Target namespace",
            description=NAMESPACE_DESCRIPTION,
        ),
        "dry_run": Param(True, type="boolean", title="Dry run", description=DRY_RUN_DESCRIPTION),
        "wait_seconds": Param(
            4, type="integer", minimum=1, maximum=60, title="Sensor wait (s)", description=WAIT_DESCRIPTION
        ),
    },
)
def deployment_probe_manual():
    wait = DateTimeSensorAsync(  # always defers from the worker to the triggerer
        task_id="wait_in_triggerer",
        target_time="{{ (macros.datetime.utcnow() + macros.timedelta(seconds=params.wait_seconds)).isoformat() }}",
        timeout=120,
    )

    @task
    def echo_params(params=None) -> dict:
        return {key: params[key] for key in ("target_namespace", "dry_run", "wait_seconds")}

    wait >> echo_params()


@dag(
    dag_id="deployment_probe_scheduled",
    schedule=timedelta(seconds=15),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["deployment-probe"],
)
def deployment_probe_scheduled():
    @task
    def tick(run_id=None) -> str:
        return run_id

    tick()


deployment_probe_manual()
deployment_probe_scheduled()
