"""The DAG runs in a real multi-process Airflow: triggered over REST like the UI, deferred in the
triggerer, validated at trigger time, and run by the scheduler on its own schedule."""

from __future__ import annotations

import time

import pytest

from scripts.airflow_local import wait_until
from tests.deployment.metrics import record
from tests.deployment.operations import SWITCH_OFF, PersonAtTheConsole, secrets_of, view_hold
from tests.deployment.targets import SandboxWorld

pytestmark = pytest.mark.slow


def test_all_components_run_as_separate_healthy_processes(deployment, api):
    assert set(deployment.running()) == {"scheduler", "dag-processor", "triggerer", "api-server"}
    assert all(deployment.running().values()), deployment.running()
    pids = {proc.pid for proc in deployment.processes.values()}
    assert len(pids) == 4
    health = api.health()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health


def test_ui_style_trigger_runs_to_success_with_sensor_deferred(deployment, api, target):
    api.unpause(target.manual_dag_id)
    operate = target.extra.get("operate")  # the migration target: approvals on, the plan held (issue 21)
    conf = {**target.conf, "require_approvals": True} if operate else dict(target.conf)
    if operate:
        held = api.http.put(
            view_hold(target.manual_dag_id), json={"reason": "deployment test: hold the switch-off"}
        )
        assert held.status_code == 200 and held.json()["hold"]["reason"].startswith("deployment test"), (
            held.text
        )
    response = api.trigger(target.manual_dag_id, conf)
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["run_type"] == "manual"
    assert run["conf"] == conf

    began = time.monotonic()
    person = None
    if operate:
        person = PersonAtTheConsole(
            api.base_url, api.token, target.manual_dag_id, run["dag_run_id"], SandboxWorld.sandbox.segment.log
        )
        person.start()
    try:
        observed = api.wait_for_run(target.manual_dag_id, run["dag_run_id"], timeout=target.run_timeout)
    finally:
        if person is not None:
            person.stop()
    record("manual_run_s", round(time.monotonic() - began, 1))
    if person is not None:
        _assert_operated(person, observed)

    assert observed.state == "success", (
        f"run ended {observed.state}; task states seen {observed.compact()}\n"
        + api.failure_report(target.manual_dag_id, run["dag_run_id"])
    )
    assert set(observed.final_states().values()) == {"success"}, observed.compact()
    deferred = observed.tasks_seen_in("deferred")
    assert deferred, f"no task instance was seen in state 'deferred': {observed.compact()}"
    assert target.deferred_tasks <= deferred, observed.compact()
    record("deferred_tasks", sorted(deferred))
    target.check_result(api, target, run["dag_run_id"])  # probe: params echoed; migration: reconciliation


def _assert_operated(person, observed) -> None:
    """The approvals were answered, and the held plan waited at the switch-off, deferred, with Segment's
    warehouse still on, until the hold was released in the migration view."""
    assert not person.errors, person.errors
    assert set(person.approved) == {  # a gate retried (e.g. its state report lost) is answered again
        "server_side.approve_server_side_switched",
        "segment_final_load.approve_disable_segment_warehouse",
    }, person.approved
    assert person.released, "the switch-off never waited on the hold"
    assert person.held_view["hold"]["reason"] == "deployment test: hold the switch-off", person.held_view
    assert person.switch_offs_while_held == 0, "Segment's warehouse was switched off while the plan was held"
    assert "deferred" in observed.compact()[SWITCH_OFF], observed.compact()


def test_the_run_was_announced_on_slack_and_by_email_without_secrets(api, target):
    """The session's run (above) and a failed task reached the sandbox's Slack stand-in and SMTP server."""
    if not target.extra.get("operate"):
        pytest.skip(f"deployment target {target.name!r} has no plan that notifies")
    sandbox = SandboxWorld.sandbox
    rollback = target.manual_dag_id.replace("segment_to_rudderstack__", "segment_to_rudderstack_rollback__")
    api.unpause(rollback)
    failing = api.trigger(
        rollback, {"dry_run": True, "forse": True}
    )  # misspelt: the task fails before anything
    assert failing.status_code == 200, failing.text
    assert api.wait_for_run(rollback, failing.json()["dag_run_id"], timeout=120).state == "failed"

    def subjects(channel: str) -> list[str]:
        if channel == "slack":
            return [t.splitlines()[0].strip("*") for t in sandbox.slack.texts()]
        return [subject for subject, _ in sandbox.smtp.bodies()]

    wait_until(
        "the failure notification", lambda: any("FAILED: rollback" in s for s in subjects("email")), 60, 1
    )
    for channel in ("slack", "email"):
        got = subjects(channel)
        for expected in (
            "[sandbox] migration run started",
            "[sandbox] approval needed: Server-side clients switched to RudderStack?",
            "[sandbox] approval needed: Disable Segment's warehouse now?",
            "[sandbox] Cutover point: Segment's webhook to RudderStack is on",
            "[sandbox] Server side drained: Segment has nothing left from the server-side sources",
            "[sandbox] Segment's warehouse is off",
            "[sandbox] RudderStack is loading the warehouse",
            "[sandbox] Duplicate check done",
            "[sandbox] Segment's webhook is off",
            "[sandbox] Migration complete",
            "[sandbox] FAILED: rollback",
        ):
            assert expected in got, (channel, expected, got)
    # each waiting phase announced itself with its ETA when it began
    waiting = [t for t in sandbox.slack.texts() if t.startswith("*[sandbox] waiting: ")]
    assert waiting and all("\nETA: " in t for t in waiting), waiting
    assert any("wait_client_adoption" in t.splitlines()[0] for t in waiting), waiting
    texts = sandbox.slack.texts() + [body for _, body in sandbox.smtp.bodies()]
    approval = next(t for t in sandbox.slack.texts() if "approval needed: Disable" in t)
    assert "/required_actions" in approval and "dry run" in approval, approval
    failure = next(t for t in sandbox.slack.texts() if "FAILED: rollback" in t)
    assert "forse" in failure and "What to do:" in failure and "/dags/" in failure, failure
    leaked = [s for s in secrets_of(sandbox) if any(s in t for t in texts)]
    assert not leaked, f"{len(leaked)} secret(s) appear in the notifications"


def test_invalid_params_are_rejected_at_trigger_time(api, target):
    before = len(api.dag_runs(target.manual_dag_id))
    conf = {**target.conf, target.invalid_param: target.invalid_value}

    response = api.trigger(target.manual_dag_id, conf)

    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert target.invalid_param in str(detail), detail
    assert len(api.dag_runs(target.manual_dag_id)) == before, "a rejected trigger must not create a run"


def test_scheduled_runs_happen_on_their_own(api, target):
    if target.scheduled_dag_id is None:
        pytest.skip(f"deployment target {target.name!r} has no scheduled DAG")
    assert not api.dag_runs(target.scheduled_dag_id), "nothing may run before the DAG is unpaused"
    api.unpause(target.scheduled_dag_id)

    deadline = time.monotonic() + 90
    scheduled: list[dict] = []
    while time.monotonic() < deadline:
        scheduled = [r for r in api.dag_runs(target.scheduled_dag_id) if r["run_type"] == "scheduled"]
        if sum(r["state"] == "success" for r in scheduled) >= target.scheduled_runs_expected:
            break
        time.sleep(1)
    states = [(r["dag_run_id"], r["state"]) for r in scheduled]
    assert sum(r["state"] == "success" for r in scheduled) >= target.scheduled_runs_expected, states
    assert not [r for r in scheduled if r["state"] == "failed"], states
    assert {r["triggered_by"] for r in scheduled} == {"timetable"}, scheduled
    intervals = [(r["data_interval_start"], r["data_interval_end"]) for r in scheduled]
    assert len(set(intervals)) == len(intervals), f"each scheduled run covers its own interval: {intervals}"


def test_a_downstream_dag_runs_on_the_migrations_asset_events_and_reads_the_cutover(api, target):
    """After the migration run above: the DAG scheduled on the plan's asset alias (tests/deployment/dags/
    cutover_downstream.py) ran after the migration's events and read the cutover point and the overlap window from
    their extra; the report says what stays on Segment."""
    downstream = target.extra.get("downstream_dag_id")
    if downstream is None:
        pytest.skip(f"deployment target {target.name!r} has no downstream DAG")
    from tests.deployment.downstream_checks import (
        assert_the_downstream_run_read_the_cutover,
        assert_the_report_lists_what_stays_on_segment,
    )

    migration = [r for r in api.dag_runs(target.manual_dag_id) if r["state"] == "success"]
    assert migration, "the migration run of the test above did not succeed"
    assert_the_downstream_run_read_the_cutover(api, target, downstream, migration[-1])
    assert_the_report_lists_what_stays_on_segment(api, target, migration[-1])
