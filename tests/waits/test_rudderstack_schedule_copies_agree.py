"""The library and the sandbox each keep a copy of rudder-server's upload scheduling rules (the sandbox's is a
contract of its own, time-compressed). Run both on the same cases: the same times of day are accepted and
refused, and at time compression 1 the latest scheduled slot and the exclude window agree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox import rudderstack_schedule as sandbox
from segment_rudderstack.waits import rudderstack_schedule as library

TIMES_OF_DAY = [
    ("00:00", True),
    ("02:30", True),
    ("23:59", True),
    ("9:30", False),  # one-digit hour: "HH:MM" only
    ("24:00", False),
    ("12:60", False),
    ("2:5", False),
    ("noon", False),
]


def _library_accepts(value: str) -> bool:
    try:
        library.scheduled_times(30, value)
    except ValueError:
        return False
    return True


def _sandbox_accepts(value: str) -> bool:
    try:
        sandbox.validate_warehouse_config({"namespace": "app", "syncStartAt": value})
    except sandbox.ConfigError:
        return False
    return True


@pytest.mark.parametrize("value, accepted", TIMES_OF_DAY)
def test_both_copies_accept_and_refuse_the_same_times_of_day(value, accepted):
    assert _library_accepts(value) is accepted
    assert _sandbox_accepts(value) is accepted


SLOTS = [
    # (syncFrequency, syncStartAt, now) -> both copies name the same latest slot
    ("30", "00:10", datetime(2026, 12, 2, 0, 5, tzinfo=UTC)),
    ("60", "02:30", datetime(2026, 12, 2, 4, 0, tzinfo=UTC)),
    ("180", "22:00", datetime(2026, 12, 2, 2, 0, tzinfo=UTC)),  # before today's syncStartAt: yesterday's run
    ("360", "05:00", datetime(2026, 12, 2, 23, 59, tzinfo=UTC)),
    ("720", "13:15", datetime(2026, 12, 2, 13, 15, tzinfo=UTC)),  # exactly on a slot
    ("1440", "06:00", datetime(2026, 12, 2, 5, 59, tzinfo=UTC)),
]


@pytest.mark.parametrize("frequency, start_at, now", SLOTS)
def test_both_copies_name_the_same_latest_slot(frequency, start_at, now):
    config = {"namespace": "app", "syncFrequency": frequency, "syncStartAt": start_at}
    assert library.upload_schedule(config, now).latest_slot == sandbox.previous_slot(config, now, 1.0)


@pytest.mark.parametrize(
    "moment, inside",
    [
        (datetime(2026, 12, 2, 1, 30, tzinfo=UTC), True),
        (datetime(2026, 12, 2, 3, 30, tzinfo=UTC), False),
        (datetime(2026, 12, 2, 23, 30, tzinfo=UTC), True),  # the window wraps midnight
        (datetime(2026, 12, 2, 12, 0, tzinfo=UTC), False),
    ],
)
def test_both_copies_agree_inside_and_outside_the_exclude_window(moment, inside):
    config = {"excludeWindow": {"excludeWindowStartTime": "23:00", "excludeWindowEndTime": "03:00"}}
    # on the window's first minute the sandbox is stricter (it blocks it too); interior minutes agree
    assert library.in_exclude_window(config, moment) is inside
    assert sandbox.in_exclude_window(config, moment) is inside
