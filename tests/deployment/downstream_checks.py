"""What the shared deployment's migration run leaves for downstream tools (docs/downstream.md), checked after the
run: the downstream DAG's asset-triggered run, and the report's "What stays on Segment"."""

from __future__ import annotations

import json
import time
from datetime import datetime

from tests.deployment.targets import DeploymentTarget, SandboxWorld

WEBHOOKS = "route_segment_to_rudderstack.ensure_webhooks"
RELEASE = "release_rudderstack.release_sync"
SCHEMA = "app_events"


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _warehouse() -> dict:
    """The sandbox warehouse's connection, its host as a table asset names it (a Unix socket is localhost)."""
    fields = json.loads(SandboxWorld.sandbox.info.airflow_connections["AIRFLOW_CONN_WAREHOUSE_SANDBOX"])
    host = str(fields.get("host") or "")
    return {**fields, "host": "localhost" if host.startswith("/") else host.lower()}


def _asset_triggered_run(api, dag_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = [r for r in api.dag_runs(dag_id) if r["run_type"] == "asset_triggered"]
        if runs:
            return runs[-1]
        time.sleep(1)
    raise AssertionError(
        f"no asset-triggered run of {dag_id} within {timeout:.0f} s (runs: {api.dag_runs(dag_id)})"
    )


def assert_the_downstream_run_read_the_cutover(
    api, target: DeploymentTarget, dag_id: str, migration: dict
) -> str:
    """The downstream DAG ran once, after the migration's duplicate-check events, and read per table the cutover
    point (the webhook step's), the overlap window (cutover → release) and the destination; returns the cutover."""
    run_id = migration["dag_run_id"]
    cutover = api.xcom(target.manual_dag_id, run_id, WEBHOOKS, key="cutover_at")
    released = api.xcom(target.manual_dag_id, run_id, RELEASE, key="released_at")
    destination = api.xcom(target.manual_dag_id, run_id, "setup_rudderstack.ensure_destination")
    run = _asset_triggered_run(api, dag_id)
    observed = api.wait_for_run(dag_id, run["dag_run_id"], timeout=120)
    assert observed.state == "success", api.failure_report(dag_id, run["dag_run_id"])

    seen = api.xcom(dag_id, run["dag_run_id"], "read_cutover")
    warehouse = _warehouse()
    prefix = f"postgres://{warehouse['host']}:{warehouse['port']}/{warehouse['schema']}/{SCHEMA}/"
    assert seen, "the downstream run saw no asset event"
    assert "tracks" in {s["table"] for s in seen} and len({s["table"] for s in seen}) >= 2, seen
    for event in seen:
        assert event["uri"] == prefix + event["table"], event
        assert event["stage"] == "duplicate_checked", event
        assert event["cutover_at"] == cutover, (event, cutover)
        assert event["overlap_window"] == {"start": cutover, "end": released}, (event, released)
        assert event["rudderstack_destination_id"] == destination, event
        assert (event["source_dag_id"], event["source_run_id"]) == (target.manual_dag_id, run_id), event
        started = api.dag_run(dag_id, run["dag_run_id"])["start_date"]
        assert _moment(event["event_at"]) <= _moment(started), (event, started)
    return cutover


def assert_the_report_lists_what_stays_on_segment(api, target: DeploymentTarget, migration: dict) -> None:
    """The run's report names the sandbox world's other destination, tracking plan and Function of the web app."""
    import pathlib

    path = pathlib.Path(api.xcom(target.manual_dag_id, migration["dag_run_id"], "report"))
    report = path.read_text()
    section = report[report.index("## What stays on Segment") :]
    for name in ("Amplitude (product analytics)", "Web App Tracking Plan", "Enrich web events"):
        assert name in section, section[:1500]
