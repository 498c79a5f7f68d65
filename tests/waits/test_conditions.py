"""The wait conditions decide on observed state alone; these cases are the safety rules in miniature."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from segment_rudderstack.waits.conditions import (
    AdoptionSample,
    Outcome,
    adoption_decision,
    segment_load_decision,
    source_drained_decision,
    sync_gate_decision,
    upload_decision,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sync:
    source_id: str
    start: datetime
    end: datetime | None
    status: str
    count: int | None = 10


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_load_before_cutover_does_not_count():
    reports = [Sync("web", at(-10), at(-8), "Success")]
    assert segment_load_decision(reports, started_after=T0).outcome is Outcome.WAIT


def test_successful_load_after_cutover_is_done():
    reports = [Sync("web", at(-10), at(-8), "Success"), Sync("web", at(5), at(7), "success")]
    decision = segment_load_decision(reports, started_after=T0, source_ids=["web"])
    assert decision.outcome is Outcome.DONE
    assert decision.details["last_load_end"] == at(7).isoformat()


def test_running_load_always_waits_even_after_a_success():
    reports = [Sync("web", at(5), at(7), "Success"), Sync("web", at(9), None, "Running")]
    decision = segment_load_decision(reports, started_after=T0, source_ids=["web"])
    assert decision.outcome is Outcome.WAIT
    assert "running" in decision.reason


@pytest.mark.parametrize("status", ["Failure", "FAILED", "partial"])
def test_failed_or_partial_final_load_fails(status):
    reports = [Sync("web", at(5), at(7), status)]
    decision = segment_load_decision(reports, started_after=T0, source_ids=["web"])
    assert decision.outcome is Outcome.FAILED
    assert status in decision.reason and "expected Success" in decision.reason


def test_partial_allowed_by_plan_counts():
    reports = [Sync("web", at(5), at(7), "Partial")]
    assert segment_load_decision(reports, started_after=T0, allow_partial=True).outcome is Outcome.DONE


def test_unknown_status_is_not_terminal():
    reports = [Sync("web", at(5), at(7), "Reticulating")]
    decision = segment_load_decision(reports, started_after=T0, source_ids=["web"])
    assert decision.outcome is Outcome.WAIT and "Reticulating" in decision.reason


def test_every_watched_source_needs_its_own_load():
    reports = [Sync("web", at(5), at(7), "Success"), Sync("backend", at(-5), at(-3), "Success")]
    decision = segment_load_decision(reports, started_after=T0, source_ids=["web", "backend"])
    assert decision.outcome is Outcome.WAIT and "backend" in decision.reason


def test_newest_load_wins_after_a_failure():
    reports = [Sync("web", at(5), at(7), "Failure"), Sync("web", at(10), at(12), "Success")]
    assert segment_load_decision(reports, started_after=T0, source_ids=["web"]).outcome is Outcome.DONE


def test_gate_never_opens_while_a_segment_load_runs_even_with_warehouse_disabled():
    reports = [Sync("web", at(5), at(7), "Success"), Sync("web", at(8), None, "")]
    decision = sync_gate_decision(reports, warehouse_enabled=False, started_after=T0)
    assert decision.outcome is Outcome.WAIT


def test_gate_opens_when_warehouse_disabled_and_idle():
    reports = [Sync("web", at(5), at(7), "Success")]
    decision = sync_gate_decision(reports, warehouse_enabled=False, started_after=at(100))
    assert decision.outcome is Outcome.DONE


def test_drain_needs_consecutive_empty_loads():
    reports = [
        Sync("backend", at(1), at(2), "Success", 5),
        Sync("backend", at(3), at(4), "Success", 0),
    ]
    assert source_drained_decision(reports, source_id="backend", started_after=T0).outcome is Outcome.WAIT
    reports.append(Sync("backend", at(5), at(6), "Success", 0))
    assert source_drained_decision(reports, source_id="backend", started_after=T0).outcome is Outcome.DONE


def upload(rows, pending=None):
    return upload_decision(
        rows, destination_id="dst", loaded_after="2026-11-29T12:00:00+00:00", pending=pending
    )


def test_upload_waits_until_every_connected_source_shows_rows_loaded_after_the_release():
    waiting = upload({"src_webhook": 12, "src_app": 0})
    assert waiting.outcome is Outcome.WAIT and waiting.details["missing_sources"] == ["src_app"]
    assert "src_app" in waiting.reason
    decision = upload({"src_webhook": 12, "src_app": 3})
    assert decision.outcome is Outcome.DONE and decision.details["loaded_rows"] == 15


def test_pending_events_of_a_task_run_is_only_an_extra_signal():
    # Nothing pending for the task run proves nothing about event-stream sources: rows still decide.
    nothing_pending = {
        "pending_events": False,
        "pending_staging_files": 0,
        "pending_uploads": 0,
        "aborted_events": False,
    }
    assert upload({"src_app": 0}, nothing_pending).outcome is Outcome.WAIT
    # Staging files are always there under continuous traffic; they do not hold the decision.
    busy = {**nothing_pending, "pending_events": True, "pending_staging_files": 4}
    assert upload({"src_app": 2}, busy).outcome is Outcome.DONE
    assert upload({"src_app": 2}, {**busy, "pending_uploads": 1}).outcome is Outcome.WAIT
    assert upload({"src_app": 2}, {**busy, "aborted_events": True}).outcome is Outcome.FAILED


def sample(minutes: float, total: int, via: int) -> AdoptionSample:
    return AdoptionSample(at=at(minutes), total=total, via_segment=via)


def test_adoption_needs_the_whole_streak():
    low = [sample(i, 1000, 5) for i in range(3)]
    assert adoption_decision(low[:2], threshold=0.01, consecutive=3).outcome is Outcome.WAIT
    decision = adoption_decision(low, threshold=0.01, consecutive=3)
    assert decision.outcome is Outcome.DONE and decision.details["streak"] == 3


def test_adoption_streak_resets_on_a_high_check():
    history = [sample(0, 1000, 5), sample(1, 1000, 50), sample(2, 1000, 5), sample(3, 1000, 5)]
    decision = adoption_decision(history, threshold=0.01, consecutive=3)
    assert decision.outcome is Outcome.WAIT and decision.details["streak"] == 2


def test_an_empty_window_is_no_evidence():
    history = [sample(0, 1000, 0), sample(1, 0, 0), sample(2, 1000, 0)]
    decision = adoption_decision(history, threshold=0.01, consecutive=2, min_events=10)
    assert decision.outcome is Outcome.WAIT
    assert adoption_decision(history[:1], threshold=0.01, consecutive=1).outcome is Outcome.DONE


def test_a_running_load_of_another_source_also_blocks():
    # The warehouse is shared: switching it off (or releasing RudderStack) while any source loads is unsafe.
    reports = [Sync("web", at(5), at(7), "Success"), Sync("other", at(8), None, "Running")]
    assert segment_load_decision(reports, started_after=T0, source_ids=["web"]).outcome is Outcome.WAIT
    gate = sync_gate_decision(reports, warehouse_enabled=True, started_after=T0, source_ids=["web"])
    assert gate.outcome is Outcome.WAIT and gate.details["running"] == 1
