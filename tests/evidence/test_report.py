"""The migration report reads at a glance: the verdict first (complete / waiting for X since T / failed at Y
and what to do), a timeline and key figures as tables, raw results only in the sidecar JSON, a chart in UTC
with the milestones, and an HTML version with the same content."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta

from segment_rudderstack.evidence import report
from segment_rudderstack.evidence.report import Section, register_section
from segment_rudderstack.evidence.report_chart import adoption_figure
from segment_rudderstack.evidence.report_facts import ReportFacts, TaskFact, phase_of
from segment_rudderstack.evidence.report_render import write_report

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


ALL_TASKS = [
    "migration_status",
    "preflight",
    "setup_rudderstack.ensure_destination",
    "route_segment_to_rudderstack.ensure_webhooks",
    "segment_final_load.wait_final_load",
    "segment_final_load.disable_segment_warehouse",
    "release_rudderstack.release_sync",
    "release_rudderstack.wait_upload",
    "duplicate_check",
    "client_adoption.wait_client_adoption",
    "client_adoption.disable_segment_webhook",
    "report",
]


def facts(states: dict[str, str] | None = None, **overrides) -> ReportFacts:
    history = [{"at": at(20 + i), "total": 100, "via_segment": v} for i, v in enumerate([60, 30, 8, 0, 0])]
    base = dict(
        plan_name="prod",
        run_id="manual__2026-11-29",
        results={
            "webhooks": {"cutover_at": at(2)},
            "segment_warehouse": {"disabled": True, "at": at(9)},
            "release": {"released": True, "released_at": at(10)},
            "duplicates": {"duplicates": {"tracks": 3}, "removed": {"tracks": 3}, "since": at(-60)},
            "adoption": {"history": history, "share": 0.0},
            "webhook_disabled": {"disabled": ["dst_1"], "at": at(25)},
        },
        changes=[
            {
                "at": at(1),
                "target": "rudderstack.destination",
                "target_id": "dst_9",
                "field": "exists",
                "before": False,
                "after": True,
                "task_id": "setup_rudderstack.ensure_destination",
            }
        ],
        tasks={t: TaskFact(state=(states or {}).get(t, "success")) for t in ALL_TASKS},
        threshold=0.01,
        window_seconds=300,
        consecutive_checks=2,
        run_started_at=T0,
    )
    base.update(overrides)
    return ReportFacts(**base)


def test_a_complete_run_states_the_verdict_first_with_tables_and_no_raw_json(tmp_path):
    paths = write_report(facts(), tmp_path, "run")
    text = paths["markdown"].read_text()
    first_section = text.split("## ")[1]
    assert (
        first_section.startswith("Verdict")
        and "**COMPLETE: Segment's warehouse off since 2026-11-29 06:09:00 UTC" in first_section
    )
    assert "```json" not in text  # raw results live in the sidecar
    assert text.index("## Timeline") < text.index("## Key figures") < text.index("## Outside changes")
    assert (
        "| Cutover: Segment's webhook to RudderStack | done | 2026-11-29 06:01:00 UTC | 2026-11-29 06:02:00 UTC | 1 min 00 s |"
        in text
    )
    assert "| adoption share through Segment, last check | 0.00% (0 of 100 events) |" in text
    assert "| adoption threshold | 1.00%, window 5 min 00 s, 2 consecutive checks |" in text
    raw = json.loads(paths["json"].read_text())
    assert raw["results"]["release"]["released_at"] == at(10) and raw["verdict"]["kind"] == "complete"
    assert paths["chart"].stat().st_size > 0 and "![adoption share over time (UTC)](run-adoption.png)" in text


def test_the_html_version_has_the_same_sections_and_verdict(tmp_path):
    paths = write_report(facts(), tmp_path, "run")
    markdown, page = paths["markdown"].read_text(), paths["html"].read_text()
    titles = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    for title in titles:
        assert f"<h2>{html.escape(title)}</h2>" in page
    assert "class='verdict v-complete'" in page and "<strong>COMPLETE:" in page
    assert "<img src='run-adoption.png'" in page


def test_a_failed_run_says_where_and_what_to_do():
    states = {"preflight": "failed", **{t: "upstream_failed" for t in ALL_TASKS[2:-1]}, "report": "running"}
    result = report.verdict(facts(states, results={}, changes=[]))
    assert result.kind == "failed"
    assert result.text.startswith("FAILED at Preflight (task `preflight`)")
    assert "Nothing was changed yet" in result.todo and "rollback DAG" in result.todo


def test_a_waiting_run_says_for_what_and_since_when():
    states = {
        "client_adoption.wait_client_adoption": "deferred",
        "client_adoption.disable_segment_webhook": "none",
        "report": "none",
    }
    f = facts(states)
    f.results["webhook_disabled"] = None
    f.tasks["client_adoption.wait_client_adoption"].start = T0 + timedelta(minutes=19)
    result = report.verdict(f)
    assert result.kind == "waiting"
    assert result.text == (
        "WAITING for clients to move to the new app version (share through Segment at or below "
        "the threshold) (now 0.00% through Segment; threshold 1.00%) since 2026-11-29 06:19:00 UTC."
    )


def test_a_dry_run_and_a_partial_run_say_so():
    assert report.verdict(facts(dry_run=True)).text.startswith("DRY RUN: nothing was changed")
    assert report.verdict(facts(left_out_sources=["src_backend"])).text.startswith(
        "PARTIAL: this run migrated its sources; not migrated yet: src_backend"
    )


def test_the_chart_is_in_utc_with_milestones_threshold_and_window():
    fig = adoption_figure(facts())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        "share through Segment's webhook",
        "threshold 1.00%",
        "window of the last check (5 min 00 s)",
        "cutover",
        "Segment warehouse off",
        "Segment webhook off",
    ]
    assert ax.get_xlabel() == "time (UTC), 2026-11-29"


def test_other_engineers_add_sections_before_the_appendix(tmp_path):
    register_section(
        "per_lane", lambda f: Section("Per lane", [report.Table(["lane", "rows"], [["app", 3]])])
    )
    try:
        paths = write_report(facts(), tmp_path, "run")
        text = paths["markdown"].read_text()
        assert text.index("## Outside changes") < text.index("## Per lane") < text.index("## Appendix")
        assert "<h2>Per lane</h2>" in paths["html"].read_text()
    finally:
        report._SECTIONS[:] = [(k, b) for k, b in report._SECTIONS if k != "per_lane"]


def test_every_task_of_a_multi_schema_plan_belongs_to_a_phase():
    import pathlib

    from segment_rudderstack.factory.dags import build_all

    plans = pathlib.Path(__file__).resolve().parents[2] / "include" / "plans"
    for dag_id, dag in build_all(plans, reports_dir="/tmp").items():
        if "rollback" not in dag_id:
            assert [t for t in dag.task_ids if phase_of(t) is None] == [], dag_id
