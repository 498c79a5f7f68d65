"""The report of a plan with several schemas: each lane's figures side by side, and a verdict that speaks for
the whole run (the last lane's release and webhook switch-off, not "already done")."""

from __future__ import annotations

from segment_rudderstack.evidence.lane_report import LANES_KEY, lane_table, run_wide_results
from segment_rudderstack.evidence.report import milestones, sections
from segment_rudderstack.evidence.report_facts import ReportFacts

LANES = {
    "app_events": {
        "destination": "dst_app",
        "segment_source": "src_seg_app",
        "webhooks": {"destinations": {"src_web_app": "d1"}, "cutover_at": "2026-11-29T08:00:00+00:00"},
        "release": {"released_at": "2026-11-29T08:05:00+00:00"},
        "upload": {"reason": "RudderStack loaded 65 row(s) into the warehouse after the release"},
        "duplicates": {"duplicates": 0},
        "adoption": {"share": 0.0},
        "webhook_disabled": {"disabled": ["d1"], "at": "2026-11-29T08:09:00+00:00"},
    },
    "mobile_events": {
        "destination": "dst_mob",
        "segment_source": "src_seg_mob",
        "webhooks": {
            "destinations": {"src_ios_app": "d2", "src_android_app": "d3"},
            "cutover_at": "2026-11-29T08:00:30+00:00",
        },
        "release": {"released_at": "2026-11-29T08:04:00+00:00"},
        "upload": None,  # a step that has not run shows as '-'
        "duplicates": {"duplicates": 2},
        "adoption": {"share": 0.015},
        "webhook_disabled": {"disabled": ["d2", "d3"], "at": "2026-11-29T08:11:00+00:00"},
    },
}


def test_lanes_side_by_side():
    lines = lane_table(LANES)
    assert lines[0] == "| | app_events | mobile_events |"
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert rows["webhooks enabled"].endswith("| 1 | 2 |")
    assert rows["duplicate ids"].endswith("| 0 | 2 |")
    assert rows["final adoption share"].endswith("| 0.00% | 1.50% |")
    assert rows["upload seen"].endswith(
        "| RudderStack loaded 65 row(s) into the warehouse after the release | - |"
    )


def test_run_wide_milestones_come_from_the_last_lane():
    facts = ReportFacts(plan_name="multi", run_id="r", results=run_wide_results(LANES))
    marks = milestones(facts)
    assert marks["cutover"].isoformat() == "2026-11-29T08:00:30+00:00"
    assert marks["released"].isoformat() == "2026-11-29T08:05:00+00:00"
    assert marks["webhook_off"].isoformat() == "2026-11-29T08:11:00+00:00"
    assert facts.results["webhook_disabled"]["disabled"] == ["d1", "d2", "d3"]


def test_the_report_has_a_lanes_section_only_with_several_lanes():
    with_lanes = ReportFacts(plan_name="multi", run_id="r", extra={LANES_KEY: LANES})
    titles = [s.title for s in sections(with_lanes)]
    assert "Lanes side by side" in titles
    assert "Lanes side by side" not in [s.title for s in sections(ReportFacts(plan_name="one", run_id="r"))]
