"""Configuration errors (missing connection, 401, 404) fail a task at once instead of waiting for Airflow's
retry, so `airflow dags test` ends with the message instead of ~30 "No tasks to run" warnings (Airflow's
dag.test() logs one per second while a task waits for its retry_delay). An outage is no configuration error: in
the same `airflow dags test` run a step waits one out deferred and goes through (issue 24)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from airflow.sdk.exceptions import AirflowFailException
from werkzeug import Response

from segment_rudderstack.hooks.errors import ApiError
from segment_rudderstack.operators.rudderstack import HoldRudderStackSyncOperator
from segment_rudderstack.safety.failfast import is_permanent

ROOT = pathlib.Path(__file__).resolve().parents[2]
AIRFLOW = pathlib.Path(sys.executable).with_name("airflow")

DAG_FILE = """
from datetime import datetime, timedelta
from airflow.sdk import DAG
from segment_rudderstack.operators.rudderstack import HoldRudderStackSyncOperator

with DAG("failfast_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         default_args={"retries": 1, "retry_delay": timedelta(seconds=30)}):
    HoldRudderStackSyncOperator(task_id="hold_sync", rudderstack_conn_id="failfast_not_defined",
                                destination_id="dst_1")
    # issue 24, in the same run: an outage is no configuration error; this step defers through it and goes on
    HoldRudderStackSyncOperator(task_id="hold_through_outage", rudderstack_conn_id="outage_api",
                                destination_id="dst_1", transient_budget_seconds=20)
"""
FAILED_READS = (
    2  # the outage: the step's first read, then the trigger's first "answers again" read, get 503 pages
)


def outage_api(httpserver) -> tuple[str, list[str]]:
    """RudderStack's control plane answering HTML 503 pages to its first reads, then answering."""
    failed: list[str] = []

    def answer(body):
        def handler(request):
            if len(failed) < FAILED_READS:
                failed.append(request.path)
                return Response("<html><h1>503 Service Temporarily Unavailable</h1></html>", 503)
            return Response(json.dumps(body), 200, content_type="application/json")

        return handler

    destination = {"id": "dst_1", "type": "POSTGRES", "config": {"namespace": "app", "manualSync": True}}
    httpserver.expect_request("/v2/destinations/dst_1").respond_with_handler(
        answer({"destination": destination})
    )
    httpserver.expect_request("/v2/sources").respond_with_handler(answer({"sources": [], "paging": {}}))
    conn = {"conn_type": "rudderstack", "host": httpserver.url_for("/").rstrip("/"), "password": "tok"}
    return json.dumps({**conn, "extra": {"max_attempts": 1}}), failed


def test_airflow_dags_test_with_a_missing_connection_fails_at_once_without_a_warning_flood(
    tmp_path, httpserver
):
    (tmp_path / "failfast_probe.py").write_text(DAG_FILE)
    conn, failed = outage_api(httpserver)
    env = dict(
        os.environ,
        AIRFLOW_CONN_OUTAGE_API=conn,
        AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")]),
    )
    done = subprocess.run(
        [str(AIRFLOW), "dags", "test", "failfast_probe"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert "Connection 'failfast_not_defined' for RudderStack API could not be read" in output, output[-3000:]
    assert "This is a configuration error" in output
    assert "up_for_retry" not in output.lower()  # before: one retry after 30 s
    assert "No tasks to run" not in output  # before: ~30 of these while waiting for the retry
    assert "state=failed" in output.rsplit("DagRun Finished", 1)[-1]
    # The outage: deferred (Airflow ran the trigger in line, no worker slot held), resumed, went through.
    assert "RudderStack's control plane does not answer" in output and "running trigger in line" in output
    assert "RudderStack's control plane answers again after" in output, output[-4000:]
    assert failed == ["/v2/destinations/dst_1", "/v2/sources"]  # the step's read, then the trigger's
    assert "hold_through_outage went through" in output


@pytest.mark.parametrize("status", [401, 404])
def test_an_auth_or_not_found_answer_fails_the_task_without_retry(status, httpserver, monkeypatch):
    httpserver.expect_request("/v2/destinations/dst_1").respond_with_json({"message": "no"}, status=status)
    monkeypatch.setenv(
        "AIRFLOW_CONN_FAILFAST_API",
        json.dumps(
            {
                "conn_type": "rudderstack",
                "host": httpserver.url_for("/").rstrip("/"),
                "password": "tok-SECRET-1",
                "extra": {"max_attempts": 3},
            }
        ),
    )
    task = HoldRudderStackSyncOperator(
        task_id="hold_sync", rudderstack_conn_id="failfast_api", destination_id="dst_1"
    )
    with pytest.raises(AirflowFailException) as err:  # AirflowFailException: Airflow does not retry it
        task.execute({})
    assert f"HTTP {status}" in str(err.value) and "configuration error" in str(err.value)
    assert "tok-SECRET-1" not in str(err.value)
    assert len(httpserver.log) == 1  # and the hook did not retry it either


def test_outages_keep_their_retries_and_configuration_errors_do_not():
    outage = ApiError(
        status=503,
        endpoint="GET /v2/destinations",
        message="unavailable",
        retryable=True,
        service="RudderStack API",
    )
    denied = ApiError(
        status=403,
        endpoint="GET /v2/destinations",
        message="forbidden",
        retryable=False,
        service="RudderStack API",
    )
    assert not is_permanent(outage) and is_permanent(denied)
    assert is_permanent(ValueError("Connection 'x' could not be read"))
    assert not is_permanent(ConnectionResetError("reset by peer"))
