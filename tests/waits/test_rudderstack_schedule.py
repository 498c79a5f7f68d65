"""RudderStack's own upload schedule (rudder-server warehouse/router/scheduling.go), as the release logs it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segment_rudderstack.waits.rudderstack_schedule import scheduled_times, upload_schedule


def at(day: int, hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2026, 11, day, hours, minutes, tzinfo=UTC)


def test_scheduled_times_are_rudder_servers_example():
    # scheduling.go: "Syncing every 3hrs starting at 13:00 (scheduled times: 13:00, 16:00, 19:00, 22:00, 01:00,
    # 04:00, 07:00, 10:00)"
    assert scheduled_times(180, "13:00") == [60, 240, 420, 600, 780, 960, 1140, 1320]
    assert scheduled_times(30, "00:00")[:3] == [0, 30, 60] and len(scheduled_times(30, "00:00")) == 48


@pytest.mark.parametrize(
    ("now", "latest", "upcoming"),
    [
        (at(29, "18:00"), at(29, "16:00"), at(29, "19:00")),  # "18:00 -> 16:00 same day"
        (at(29, "00:30"), at(28, "22:00"), at(29, "01:00")),  # "00:30 -> 22:00 prev day"
        (at(29, "22:30"), at(29, "22:00"), at(30, "01:00")),  # after the day's last slot: tomorrow's first
    ],
)
def test_latest_and_next_slot(now, latest, upcoming):
    schedule = upload_schedule({"syncFrequency": "180", "syncStartAt": "13:00"}, now)
    assert (schedule.latest_slot, schedule.next_slot) == (latest, upcoming)
    assert f"{upcoming:%Y-%m-%d %H:%M}" in schedule.explanation


def test_a_slot_inside_the_exclude_window_moves_past_it():
    config = {
        "syncFrequency": "60",
        "syncStartAt": "00:00",
        "excludeWindow": {"excludeWindowStartTime": "08:30", "excludeWindowEndTime": "10:15"},
    }
    schedule = upload_schedule(config, at(29, "08:40"))
    assert schedule.next_slot == at(29, "10:15")  # the window's bounds are exclusive in rudder-server
    assert "exclude window" in schedule.explanation


def test_manual_sync_and_a_missing_start_time_have_no_slot():
    held = upload_schedule(
        {"syncFrequency": "30", "syncStartAt": "01:00", "manualSync": True}, at(29, "05:00")
    )
    assert not held.automatic and held.next_slot is None and "triggered" in held.explanation
    no_start = upload_schedule({"syncFrequency": "360"}, at(29, "05:00"))
    assert no_start.automatic and no_start.next_slot is None and "360 min" in no_start.explanation
    with pytest.raises(ValueError, match="timezone-aware"):
        upload_schedule({}, datetime(2026, 11, 29))
