"""On the sandbox world's Segment, the preflight's read of what stays on Segment finds the Amplitude destination,
the tracking plan and the Function next to the migrated web app, and the report's "What stays on Segment" lists
them; where the token may not read tracking plans (403) or Functions are missing (404), the report says so."""

from __future__ import annotations

import json

import pytest

from sandbox.common import ServerThread
from sandbox.config import load_config
from sandbox.segment import SegmentEmulator
from sandbox.warehouse import Warehouse
from segment_rudderstack.evidence.report_facts import ReportFacts
from segment_rudderstack.evidence.report_render import to_markdown
from segment_rudderstack.evidence.stays_on_segment import SECTION_TITLE, read_what_stays
from segment_rudderstack.hooks.segment import SegmentHook

MIGRATED = ["src_web_app", "src_backend"]


@pytest.fixture
def sandbox_segment(pg_dsn, monkeypatch):
    settings = load_config().segment  # the default world, as `python -m sandbox start` runs it
    settings.load_interval_s = None
    emulator = SegmentEmulator(settings, Warehouse(pg_dsn), None)
    server = ServerThread(emulator.app).start()
    conn = {"conn_type": "http", "host": server.url, "password": settings.token, "extra": {"max_attempts": 1}}
    monkeypatch.setenv("AIRFLOW_CONN_SEGMENT_STAYS", json.dumps(conn))
    try:
        yield emulator
    finally:
        server.stop()


def report_of(found: dict) -> str:
    facts = ReportFacts(
        plan_name="sandbox", run_id="manual__stays", results={"preflight": {"stays_on_segment": found}}
    )
    return to_markdown(facts)


def test_the_sandbox_report_lists_what_stays_on_segment(sandbox_segment):
    warehouse_id = sandbox_segment.settings.warehouses[0].id
    found = read_what_stays(SegmentHook(segment_conn_id="segment_stays"), MIGRATED, warehouse_id)

    assert [(d["source_id"], d["name"], d["type"]) for d in found["destinations"]] == [
        ("src_web_app", "Amplitude (product analytics)", "Amplitude (Actions)")
    ]
    assert found["warehouses"] == []  # the plan's own warehouse is the one being replaced
    assert [(p["name"], p["sources"]) for p in found["tracking_plans"]] == [
        ("Web App Tracking Plan", ["src_web_app"])
    ]
    assert [(f["name"], f["type"]) for f in found["functions"]] == [("Enrich web events", "DESTINATION")]
    assert found["notes"] == []
    report = report_of(found)
    section = report[report.index(f"## {SECTION_TITLE}") :]
    assert "Amplitude (product analytics)" in section and "dst_amplitude_web" in section
    assert "Web App Tracking Plan" in section and "Enrich web events" in section


def test_the_report_says_what_the_token_could_not_read(sandbox_segment):
    sandbox_segment.faults.arm(
        {"tracking_plans_forbidden": {"count": -1}, "functions_unavailable": {"count": -1}}
    )
    warehouse_id = sandbox_segment.settings.warehouses[0].id
    found = read_what_stays(SegmentHook(segment_conn_id="segment_stays"), MIGRATED, warehouse_id)

    assert found["tracking_plans"] is None and found["functions"] is None
    assert len(found["destinations"]) == 1  # what it could read is still listed
    report = report_of(found)
    assert "tracking plans: not read, Segment answered 403 Forbidden" in report
    assert "Functions of type SOURCE: not read, Segment answered 404" in report
