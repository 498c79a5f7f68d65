"""A plan with a schedule runs on its own in the real deployment, and a scheduled run after completion is a no-op.

The real migration DAG code (`segment_rudderstack.dag_factory.build_all`, as dags/segment_to_rudderstack.py
calls it) builds `segment_to_rudderstack__sandbox_scheduled` from a copy of include/plans/sandbox.yaml with a
cron schedule. Its DAG file is written into the deployment's empty `plan_bundle` folder at test time, against
a sandbox of its own (compressed time), whose connections are created over REST as Admin -> Connections does.
The DAG is unpaused and never triggered: the scheduler creates both runs.
"""

from __future__ import annotations

import json
import pathlib
import time
from datetime import datetime

import pytest
import yaml

from scripts.airflow_local import wait_until
from tests.deployment.metrics import record
from tests.deployment.targets import ROOT, assert_reconciled, running_sandbox

pytestmark = pytest.mark.slow

PLAN_NAME = "sandbox_scheduled"
DAG_ID = f"segment_to_rudderstack__{PLAN_NAME}"
SCHEDULE = "* * * * *"  # catchup off: the first run is the latest minute, due at once when unpaused
# connection id in the plan -> the sandbox's AIRFLOW_CONN_* setting it gets its fields from
CONNECTIONS = {
    "segment_scheduled": "AIRFLOW_CONN_SEGMENT_SANDBOX",
    "rudderstack_scheduled": "AIRFLOW_CONN_RUDDERSTACK_SANDBOX",
    "rudderstack_data_plane_scheduled": "AIRFLOW_CONN_RUDDERSTACK_DATA_PLANE_SANDBOX",
    "warehouse_scheduled": "AIRFLOW_CONN_WAREHOUSE_SANDBOX",
}
DAG_FILE = '''"""Airflow DAGs of the scheduled test plan (written by tests/deployment/test_scheduled_plan.py)."""

from segment_rudderstack.dag_factory import build_all

globals().update(build_all({plans!r}, reports_dir={reports!r}))
'''


def scheduled_plan() -> dict:
    """include/plans/sandbox.yaml with a schedule, its own connection ids and a shorter adoption window."""
    plan = yaml.safe_load((ROOT / "include" / "plans" / "sandbox.yaml").read_text())
    plan["name"] = PLAN_NAME
    plan["schedule"] = SCHEDULE
    plan["segment"]["conn_id"] = "segment_scheduled"
    plan["rudderstack"]["conn_id"] = "rudderstack_scheduled"
    plan["rudderstack"]["data_plane_conn_id"] = "rudderstack_data_plane_scheduled"
    plan["warehouse"]["conn_id"] = "warehouse_scheduled"
    # RudderStack's 30-"minute" upload slot is 15 s at 120x, so a 20 s window always holds a load.
    plan["adoption"].update(window_seconds=20, consecutive_checks=2)
    return plan


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def scheduled_world(api, target, plan_bundle_folder: pathlib.Path | None, tmp_path):
    """Its own compressed sandbox, its connections in Airflow, and the plan's DAG file in the plan bundle."""
    if plan_bundle_folder is None:
        pytest.skip(f"deployment target {target.name!r} runs no sandbox, so it has no plan bundle")
    with running_sandbox(
        segment={"load_interval_s": 2.0, "load_duration_s": 0.5},
        rudderstack={"time_compression": 120.0, "upload_duration_s": 0.5},
        clients={"adoption": {"kind": "linear", "ramp_s": 30.0}},
    ) as sandbox:
        for conn_id, setting in CONNECTIONS.items():
            fields = json.loads(sandbox.info.airflow_connections[setting])
            if isinstance(fields.get("extra"), dict):  # the REST API takes extra as a JSON string
                fields["extra"] = json.dumps(fields["extra"])
            response = api.http.post("/api/v2/connections", json={"connection_id": conn_id, **fields})
            assert response.status_code == 201, response.text
        plans = tmp_path / "plans"
        plans.mkdir()
        (plans / f"{PLAN_NAME}.yaml").write_text(yaml.safe_dump(scheduled_plan(), sort_keys=False))
        (plan_bundle_folder / "scheduled_plan.py").write_text(
            DAG_FILE.format(plans=str(plans), reports=str(tmp_path / "reports"))
        )
        try:
            yield sandbox
        finally:
            api.http.patch(
                f"/api/v2/dags/{DAG_ID}", json={"is_paused": True}
            )  # no more runs on a stopped world


def scheduled_runs(api) -> list[dict]:
    return [r for r in api.dag_runs(DAG_ID) if r["run_type"] == "scheduled"]


def next_scheduled_run(api, after: list[str], timeout: float) -> dict:
    """The first scheduled run whose id is not in `after`, once the scheduler created it."""
    return wait_until(
        f"the scheduler to create a scheduled run of {DAG_ID} besides {after}",
        lambda: next((r for r in scheduled_runs(api) if r["dag_run_id"] not in after), None),
        timeout,
        1.0,
    )


def test_plan_with_schedule_runs_on_its_own_and_again_as_a_no_op(api, scheduled_world):
    sandbox = scheduled_world
    began = time.monotonic()
    api.wait_for_dag(DAG_ID)
    assert not api.dag_runs(DAG_ID), "nothing may run before the DAG is unpaused"
    api.unpause(DAG_ID)  # and never triggered

    first = next_scheduled_run(api, [], timeout=90)
    observed = api.wait_for_run(DAG_ID, first["dag_run_id"], timeout=420)
    assert observed.state == "success", (
        f"first scheduled run ended {observed.state}; task states seen {observed.compact()}\n"
        + api.failure_report(DAG_ID, first["dag_run_id"])
    )
    assert set(observed.final_states().values()) == {"success"}, observed.compact()
    first = api.dag_run(DAG_ID, first["dag_run_id"])
    assert first["triggered_by"] == "timetable", first

    second = next_scheduled_run(api, [first["dag_run_id"]], timeout=90)
    repeat = api.wait_for_run(DAG_ID, second["dag_run_id"], timeout=120)
    second = api.dag_run(DAG_ID, second["dag_run_id"])
    record("scheduled_plan_s", round(time.monotonic() - began, 1))

    assert repeat.state == "success", repeat.compact()
    assert second["triggered_by"] == "timetable" and second["logical_date"] > first["logical_date"], (
        first,
        second,
    )
    finals = repeat.final_states()
    assert finals.pop("migration_status") == "skipped", repeat.compact()
    assert finals and set(finals.values()) == {"skipped"}, (
        f"every later task must be skipped: {repeat.compact()}"
    )
    status_log = api.task_log(DAG_ID, second["dag_run_id"], "migration_status")
    assert "already complete" in status_log, status_log[-2000:]

    # Nothing changed in either tool once the first run had ended (so nothing during the second run either).
    from sandbox.invariants import mutating_calls

    first_ended = _t(first["end_date"])
    assert _t(second["end_date"]) > first_ended
    for name, log in (("Segment", sandbox.segment.log), ("RudderStack", sandbox.rudderstack.log)):
        calls = mutating_calls(log.entries())
        assert calls, f"the first run must have changed {name} (the migration's own changes)"
        late = [f"{c['at']} {c.get('method')} {c.get('path')}" for c in calls if _t(c["at"]) > first_ended]
        assert not late, f"{name} received changes after the first run ended at {first['end_date']}: {late}"

    assert_reconciled(sandbox)  # every event exactly once; no safety invariant broken
