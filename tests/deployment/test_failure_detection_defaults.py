"""Finding 7 of issue 10: a task killed with its worker stayed `running` for 5+ minutes (Airflow's default
heartbeat timeout and orphan check). Both deployments this project ships set the shorter detection, the same way."""

from __future__ import annotations

import pathlib

import yaml

from scripts.airflow_local import TASK_FAILURE_DETECTION

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_local_and_compose_deployments_detect_a_killed_task_within_about_two_minutes():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    env = compose["x-airflow-common"]["environment"]
    for key, value in TASK_FAILURE_DETECTION.items():
        assert str(env[key]) == value, key
    timeout = int(TASK_FAILURE_DETECTION["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"])
    interval = int(
        TASK_FAILURE_DETECTION["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL"]
    )
    retry_delay = 30  # the migration DAG's default_args
    assert timeout + interval + retry_delay <= 120
