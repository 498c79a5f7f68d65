"""The one dry-run plan (evidence/dry_run_plan.py) and the plan's hold (safety/hold.py), as pure functions."""

from __future__ import annotations

from types import SimpleNamespace

from segment_rudderstack.evidence import report_render
from segment_rudderstack.evidence.dry_run_plan import (
    PLAN_KEY,
    change_entry,
    consolidate,
    note_entry,
    run_order,
)
from segment_rudderstack.evidence.report_facts import ReportFacts
from segment_rudderstack.safety.hold import hold_decision, hold_key, parse_hold


def task(task_id: str, *upstream: str) -> SimpleNamespace:
    return SimpleNamespace(task_id=task_id, upstream_task_ids=set(upstream))


def test_run_order_is_upstream_first_and_keeps_the_wiring_order_between_siblings():
    tasks = [task("report", "b", "c"), task("a"), task("c", "a"), task("b", "a")]
    assert run_order(tasks) == ["a", "c", "b", "report"]


def test_consolidated_plan_follows_the_run_order_and_numbers_every_step():
    warehouse_off = change_entry(
        {
            "target": "segment.warehouse",
            "target_id": "wh_1",
            "field": "enabled",
            "before": True,
            "after": False,
        }
    )
    by_task = {
        "segment_final_load.disable_segment_warehouse": [warehouse_off],
        "setup_rudderstack.ensure_destination": [
            change_entry(
                {
                    "target": "rudderstack.destination",
                    "target_id": "Warehouse",
                    "field": "exists",
                    "before": False,
                    "after": True,
                }
            )
        ],
        "segment_final_load.wait_final_load": [note_entry("Segment's final load", kind="wait")],
    }
    order = [
        "setup_rudderstack.ensure_destination",
        "segment_final_load.wait_final_load",
        "segment_final_load.disable_segment_warehouse",
    ]

    plan = consolidate(by_task, order)

    assert [(e["step"], e["task_id"]) for e in plan] == [(1, order[0]), (2, order[1]), (3, order[2])]
    facts = ReportFacts(plan_name="p", run_id="r", dry_run=True, extra={PLAN_KEY: plan})
    markdown = report_render.to_markdown(facts)
    assert "## Dry-run plan" in markdown
    assert (
        "| 3 | `segment_final_load.disable_segment_warehouse` | segment.warehouse `wh_1`: enabled true → false |"
        in markdown
    )
    assert "wait: Segment's final load" in markdown
    assert "<section id='dry_run_plan'>" in report_render.to_html(facts)
    assert markdown.index("## Dry-run plan") < markdown.index("## Timeline")


def test_a_real_run_report_has_no_dry_run_plan():
    facts = ReportFacts(plan_name="p", run_id="r", dry_run=False, extra={PLAN_KEY: []})
    assert "Dry-run plan" not in report_render.to_markdown(facts)


def test_hold_values():
    assert parse_hold(None) is None and parse_hold("") is None and parse_hold("off") is None
    assert parse_hold("waiting for sign-off").reason == "waiting for sign-off"
    held = parse_hold('{"reason": "board meeting", "by": "admin", "at": "2026-12-02T10:00:00+00:00"}')
    assert held.describe() == "held by admin since 2026-12-02T10:00:00+00:00: board meeting"
    assert parse_hold('{"held": false}') is None


def test_hold_decision_says_how_to_release():
    key = hold_key("segment_to_rudderstack__prod__changes")
    assert key == "segment_to_rudderstack__prod__hold"
    waiting = hold_decision(parse_hold("sign-off"), key)
    assert waiting.waiting and f"airflow variables delete {key}" in waiting.reason
    assert hold_decision(None, key).done
