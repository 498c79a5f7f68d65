"""ETA per phase (evidence/eta.py): each estimate states its basis and range, and says "unknown" without one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from segment_rudderstack.evidence.eta import adoption_eta, rudderstack_next_upload, segment_next_load

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def load(minutes_ago: float, seconds: float = 60) -> dict:
    start = NOW - timedelta(minutes=minutes_ago)
    return {"start": start.isoformat(), "end": (start + timedelta(seconds=seconds)).isoformat()}


def test_segment_next_load_follows_the_observed_cadence_with_its_range():
    reports = [load(m) for m in (190, 130, 70, 10)]  # hourly, the latest 10 min ago, each 1 min long

    eta = segment_next_load(reports, NOW)

    assert eta.at == NOW + timedelta(minutes=50, seconds=60)
    assert "median of 3 interval(s)" in eta.basis and "3600-3600 s" in eta.basis
    assert "about 2026-12-02 12:51:00 UTC" in eta.text()


def test_segment_next_load_is_unknown_before_two_loads():
    eta = segment_next_load([load(10)], NOW)
    assert not eta.known and "unknown (fewer than two Segment loads seen" in eta.text()


def test_segment_advanced_schedule_wins_over_the_cadence():
    schedule = {
        "enabled": True,
        "schedule": {"timezone": "Europe/Berlin", "times": [{"hourOfDay": 15, "enabled": True}]},
    }
    eta = segment_next_load([load(70), load(10)], NOW, schedule)
    # 15:00 in Berlin (UTC+1 in December) is 14:00 UTC, plus the observed one-minute load
    assert eta.at == datetime(2026, 12, 2, 14, 1, tzinfo=UTC)
    assert "advanced sync schedule (Europe/Berlin)" in eta.basis


def test_a_late_load_moves_the_estimate_to_the_next_slot_instead_of_the_past():
    eta = segment_next_load([load(190), load(130)], NOW)  # the one due 70 min ago never came
    assert eta.at > NOW


def test_drain_needs_several_loads():
    one = segment_next_load([load(m) for m in (130, 70, 10)], NOW)
    two = segment_next_load([load(m) for m in (130, 70, 10)], NOW, loads=2)
    assert two.at - one.at == timedelta(hours=1) and "next 2 loads" in two.what


def test_rudderstack_slot_from_the_destination_config_or_unknown_while_held():
    slot = rudderstack_next_upload({"syncFrequency": "30", "syncStartAt": "00:10"}, NOW)
    assert slot.at == datetime(2026, 12, 2, 12, 10, tzinfo=UTC)
    held = rudderstack_next_upload({"manualSync": True, "syncFrequency": "30"}, NOW)
    assert not held.known and "manualSync is on" in held.basis


def history(shares: list[float], every_minutes: float = 60) -> list[dict]:
    start = NOW - timedelta(minutes=every_minutes * (len(shares) - 1))
    return [
        {
            "at": (start + timedelta(minutes=every_minutes * i)).isoformat(),
            "total": 1000,
            "via_segment": round(s * 1000),
        }
        for i, s in enumerate(shares)
    ]


def test_adoption_trend_is_extrapolated_to_the_threshold_with_its_uncertainty():
    eta = adoption_eta(
        history([0.50, 0.40, 0.31, 0.20]), 0.02, consecutive_checks=3, check_interval_seconds=3600, now=NOW
    )

    assert eta.known and eta.low <= eta.at <= eta.high
    # falling ~10 points an hour from 20 %: the threshold about 1.8 h from now, plus 2 more checks an hour apart
    assert NOW + timedelta(hours=3.5) < eta.at < NOW + timedelta(hours=4.2)
    assert "least-squares line through 4 checks" in eta.basis and "one standard error" in eta.basis


def test_adoption_is_unknown_without_a_falling_trend_or_enough_checks():
    assert "at least 3" in adoption_eta(history([0.5, 0.4]), 0.02, now=NOW).basis
    flat = adoption_eta(history([0.3, 0.31, 0.3, 0.32]), 0.02, now=NOW)
    assert not flat.known and "not falling" in flat.basis


def test_adoption_at_the_threshold_needs_only_the_remaining_checks():
    eta = adoption_eta(
        history([0.3, 0.1, 0.01]), 0.02, consecutive_checks=3, check_interval_seconds=600, now=NOW
    )
    assert eta.at == NOW + timedelta(minutes=20)


def test_the_report_shows_each_waiting_phases_estimate_and_how_long_it_took():
    from segment_rudderstack.evidence import eta_report, report_render
    from segment_rudderstack.evidence.report_facts import ReportFacts, TaskFact

    eta = segment_next_load([load(m) for m in (190, 130, 70, 10)], NOW)
    facts = ReportFacts(
        plan_name="p",
        run_id="r",
        tasks={"segment_final_load.wait_final_load": TaskFact(state="success", duration=125.0)},
        extra={eta_report.ETAS_KEY: {"segment_final_load.wait_final_load": eta.to_dict()}},
    )
    markdown = report_render.to_markdown(facts)
    assert "## ETA per phase" in markdown
    assert (
        "| Segment's final load, warehouse off | `segment_final_load.wait_final_load` | Segment's next load: about"
        in markdown
    )
    assert "| 2 min 05 s |" in markdown
