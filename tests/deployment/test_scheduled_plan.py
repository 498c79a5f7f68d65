"""A plan with a schedule runs on its own in the real deployment, and a scheduled run after completion is a no-op.

The real migration DAG code (`segment_rudderstack.factory.dags.build_all`, as dags/segment_to_rudderstack.py
calls it) builds `segment_to_rudderstack__sandbox_scheduled` from a copy of include/plans/sandbox.yaml with a
cron schedule. Its DAG file is written into the deployment's empty `plan_bundle` folder at test time, against
a sandbox of its own (compressed time), whose connections are created over REST as Admin -> Connections does.
The DAG is unpaused and never triggered: the scheduler creates both runs.

The plan lets a person answer a gap in the proof from Segment's metrics (``proof.on_gap: approve``), and its
Segment emulator over-counts the webhook's deliveries (fault ``delivery_overview_overcount``): the first run's
gate offers proceed / hold / roll back, a person at the console chooses Hold, Segment's webhook switch-off then
waits, deferred, until the person releases the hold in the migration view, and the run completes (issue 21).
"""

from __future__ import annotations

import pathlib
import time
from datetime import datetime

import pytest

from scripts.airflow_local import wait_until
from tests.deployment.metrics import record
from tests.deployment.operations import PersonAtTheConsole
from tests.deployment.targets import assert_reconciled, copy_of_sandbox_plan, plan_world

pytestmark = pytest.mark.slow

PLAN_NAME = "sandbox_scheduled"
DAG_ID = f"segment_to_rudderstack__{PLAN_NAME}"
SCHEDULE = "* * * * *"  # catchup off: the first run is the latest minute, due at once when unpaused
GAP_GATE = "client_adoption.approve_webhook_path_gap"
WEBHOOK_OFF = "client_adoption.disable_segment_webhook"
OVERCOUNT = 20  # deliveries Segment's metrics claim beyond the rows loaded (tolerance: 5 events)


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def scheduled_world(api, target, plan_bundle_folder: pathlib.Path | None, tmp_path):
    """Its own compressed sandbox, its connections in Airflow, and the plan's DAG file in the plan bundle."""
    if plan_bundle_folder is None:
        pytest.skip(f"deployment target {target.name!r} runs no sandbox, so it has no plan bundle")
    plan = copy_of_sandbox_plan(PLAN_NAME, schedule=SCHEDULE)
    plan["proof"]["on_gap"] = "approve"
    with plan_world(
        api, plan_bundle_folder, tmp_path, plan, test="tests/deployment/test_scheduled_plan.py"
    ) as sandbox:
        sandbox.segment.faults.arm({"delivery_overview_overcount": {"count": -1, "extra": OVERCOUNT}})
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


def _assert_the_gap_was_held(person: PersonAtTheConsole, observed) -> None:
    """The gap gate offered the three answers; Hold held the plan, the webhook switch-off waited on it (Segment's
    webhook still on) and ran once it was released; the other two answers' tasks were skipped."""
    assert not person.errors, person.errors
    assert person.offered.get(GAP_GATE) == ["Proceed", "Hold", "Roll back"], person.offered
    assert GAP_GATE in person.approved, (person.approved, observed.compact())
    assert person.released, f"{WEBHOOK_OFF} never waited on the hold: {observed.compact()}"
    assert person.held_view["hold"]["reason"].startswith("a person chose Hold"), person.held_view
    assert WEBHOOK_OFF in observed.tasks_seen_in("deferred"), observed.compact()
    assert person.webhook_offs_while_held == 0, "Segment's webhook was switched off while the plan was held"
    finals = observed.final_states()
    skipped = {t for t, state in finals.items() if state == "skipped"}
    assert skipped == {
        "client_adoption.proceed",
        "client_adoption.roll_back",
        "client_adoption.stop_after_roll_back",
    }, observed.compact()
    assert {state for t, state in finals.items() if t not in skipped} == {"success"}, observed.compact()


def test_plan_with_schedule_runs_on_its_own_and_again_as_a_no_op(api, scheduled_world):
    sandbox = scheduled_world
    began = time.monotonic()
    api.wait_for_dag(DAG_ID)
    assert not api.dag_runs(DAG_ID), "nothing may run before the DAG is unpaused"
    api.unpause(DAG_ID)  # and never triggered

    first = next_scheduled_run(api, [], timeout=90)
    person = PersonAtTheConsole(
        api.base_url,
        api.token,
        DAG_ID,
        first["dag_run_id"],
        sandbox.segment.log,
        answers={GAP_GATE: "Hold"},
        release_at=WEBHOOK_OFF,
    )
    person.start()
    try:
        observed = api.wait_for_run(DAG_ID, first["dag_run_id"], timeout=420)
    finally:
        person.stop()
    assert observed.state == "success", (
        f"first scheduled run ended {observed.state}; task states seen {observed.compact()}\n"
        + api.failure_report(DAG_ID, first["dag_run_id"])
    )
    _assert_the_gap_was_held(person, observed)
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
