"""The sandbox plan's DAG carries what a long cutover needs (issue 21): notifiers where things happen, a DAG-run
Deadline Alert, the dry-run plan's run order, the hold honoured by the three irreversible steps, and approval
gates that show the part of the latest dry-run plan they let happen."""

from __future__ import annotations

import pathlib

import pytest

from segment_rudderstack.evidence.dry_run_plan import change_entry, plan_variable
from segment_rudderstack.factory.dags import build_all
from segment_rudderstack.notify.notifier import MigrationNotifier
from segment_rudderstack.operators.approval import approved_plan_text
from segment_rudderstack.operators.hold import HoldHonouring
from segment_rudderstack.safety.changelog import default_store

PLANS = pathlib.Path(__file__).resolve().parents[2] / "include" / "plans"


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    return build_all(PLANS, reports_dir=tmp_path_factory.mktemp("reports"))["segment_to_rudderstack__sandbox"]


def _events(callbacks) -> list[tuple[str, str | None]]:
    return [(c.event, c.milestone) for c in callbacks or [] if isinstance(c, MigrationNotifier)]


def test_notifiers_are_where_things_happen(dag):
    assert _events(dag.get_task("migration_status").on_execute_callback) == [("run_started", None)]
    assert all(("failure", None) in _events(t.on_failure_callback) for t in dag.tasks)
    milestones = {
        "route_segment_to_rudderstack.ensure_webhooks": "cutover",
        "server_side.wait_drained__src_backend": "server_side_drained",
        "segment_final_load.disable_segment_warehouse": "warehouse_off",
        "release_rudderstack.wait_upload": "rudderstack_loading",
        "duplicate_check": "duplicates",
        "client_adoption.disable_segment_webhook": "webhook_off",
        "report": "complete",
    }
    for task_id, name in milestones.items():
        assert ("milestone", name) in _events(dag.get_task(task_id).on_success_callback), task_id
    assert (
        dag.get_task("client_adoption.wait_client_adoption").notify_settings["slack"]["conn_id"]
        == "slack_sandbox"
    )


def test_a_run_past_its_deadline_is_a_deadline_alert(tmp_path):
    text = (
        (PLANS / "sandbox.yaml")
        .read_text()
        .replace("# run_deadline_minutes: 20160", "run_deadline_minutes: 30")
    )
    (tmp_path / "deadline.yaml").write_text(text.replace("name: sandbox", "name: deadline"))
    alert = build_all(tmp_path, reports_dir=tmp_path)["segment_to_rudderstack__deadline"].deadline
    alert = alert[0] if isinstance(alert, list) else alert
    assert alert.interval.total_seconds() == 30 * 60
    assert alert.callback.path == "segment_rudderstack.notify.notifier.run_past_deadline"
    assert alert.callback.kwargs["plan_name"] == "deadline"


def test_the_irreversible_steps_honour_the_hold_and_the_report_knows_the_run_order(dag):
    held = sorted(t.task_id for t in dag.tasks if isinstance(t, HoldHonouring))
    assert held == [
        "client_adoption.disable_segment_webhook",
        "release_rudderstack.release_sync",
        "segment_final_load.disable_segment_warehouse",
    ]
    order = dag.get_task("report").task_order
    assert order[0] == "migration_status" and order[-1] == "report" and len(order) == len(dag.tasks)
    assert order.index("segment_final_load.disable_segment_warehouse") < order.index(
        "release_rudderstack.release_sync"
    )


def test_an_approval_gate_shows_what_it_lets_happen_from_the_latest_dry_run():
    store = default_store()
    key = plan_variable("approvals_test")
    entry = change_entry(
        {
            "target": "segment.warehouse",
            "target_id": "wh_1",
            "field": "enabled",
            "before": True,
            "after": False,
        }
    )
    plan = [
        {"step": 1, "task_id": "setup_rudderstack.hold_sync", **entry},
        {"step": 7, "task_id": "segment_final_load.disable_segment_warehouse", **entry},
    ]
    assert "No dry run of this plan is recorded" in approved_plan_text("approvals_test", ["x"])
    store.set(
        key,
        {"run_id": "manual__dry", "at": "2026-12-02T10:00:00+00:00", "entries": plan},
        serialize_json=True,
    )
    try:
        text = approved_plan_text("approvals_test", ["segment_final_load.disable_segment_warehouse"])
    finally:
        store.delete(key)
    assert "**What approving lets happen** (the dry run manual__dry" in text
    assert (
        "- 7. `segment_final_load.disable_segment_warehouse`: segment.warehouse `wh_1`: enabled true → false"
        in text
    )
    assert "hold_sync" not in text
