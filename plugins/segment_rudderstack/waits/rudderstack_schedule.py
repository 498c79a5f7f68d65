"""When RudderStack creates its next warehouse upload on its own (no trigger): pure functions of the
destination's config and the time.

They follow rudder-server's warehouse router, ``warehouse/router/scheduling.go``:

- ``canCreateUpload``: a triggered upload always runs; otherwise nothing under ``manualSync``; nothing while
  the UTC time of day is strictly inside ``excludeWindow``; without ``syncStartAt`` (or ``syncFrequency``) an
  upload runs once the sync frequency elapsed since the last upload; otherwise one runs when no upload was
  created since the latest scheduled time.
- ``scheduledTimes``: the scheduled times of a day are ``syncStartAt + k * syncFrequency`` (minutes) for every
  integer k that keeps them inside the day [00:00, 24:00); they restart from ``syncStartAt`` each day.
- ``prevScheduledTime``: the latest of them at or before now (yesterday's last one before the first).

The library cannot read RudderStack's upload history without the internal warehouse API, so it reports both
the latest and the next scheduled time: an upload starts at the router's next pass after the latest one if no
upload was created since then, otherwise at the next one. The sandbox emulator keeps its own, time-compressed
copy of these rules (``include/sandbox/rudderstack_schedule.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MINUTES_PER_DAY = 1440
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")  # "HH:MM", two-digit hours, as the sandbox's contract


def _minutes_of_day(value: Any) -> int | None:
    match = _HHMM.match(str(value or "").strip())
    return int(match.group(1)) * 60 + int(match.group(2)) if match else None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def scheduled_times(sync_frequency_minutes: int, sync_start_at: str) -> list[int]:
    """Minutes of the day at which uploads are scheduled (rudder-server ``scheduledTimes``), sorted."""
    start = _minutes_of_day(sync_start_at)
    if start is None:
        raise ValueError(f"syncStartAt must be a UTC time of day 'HH:MM', got {sync_start_at!r}")
    if sync_frequency_minutes <= 0:
        raise ValueError(
            f"syncFrequency must be a positive number of minutes, got {sync_frequency_minutes!r}"
        )
    before = list(range(start - sync_frequency_minutes, -1, -sync_frequency_minutes))
    after = list(range(start, MINUTES_PER_DAY, sync_frequency_minutes))
    return sorted(before) + after


def in_exclude_window(config: Mapping[str, Any], moment: datetime) -> bool:
    window = config.get("excludeWindow") or {}
    if not isinstance(window, Mapping):
        return False
    start = _minutes_of_day(window.get("excludeWindowStartTime"))
    end = _minutes_of_day(window.get("excludeWindowEndTime"))
    if start is None or end is None:
        return False
    current = moment.hour * 60 + moment.minute
    # checkCurrentTimeExistsInExcludeWindow: strict bounds; a window may wrap midnight.
    if start < current < end:
        return True
    return start > end and (current > start or current < end)


def _after_exclude_window(config: Mapping[str, Any], moment: datetime) -> datetime:
    """``moment``, or the first minute after it that is outside the exclude window."""
    probe = moment
    for _ in range(MINUTES_PER_DAY + 1):
        if not in_exclude_window(config, probe):
            return probe
        probe = probe.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return moment


@dataclass(frozen=True)
class UploadSchedule:
    """What RudderStack's own schedule says about the next automatic upload."""

    automatic: bool  # False under manualSync: only triggered uploads run
    latest_slot: datetime | None
    next_slot: datetime | None
    frequency_minutes: int | None
    explanation: str


def upload_schedule(config: Mapping[str, Any], now: datetime) -> UploadSchedule:
    """The latest and next scheduled upload times of a warehouse destination ``config`` at ``now`` (UTC)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    now = now.astimezone(UTC)
    if _truthy(config.get("manualSync")):
        return UploadSchedule(
            False, None, None, None, "manualSync is on: RudderStack creates no upload until one is triggered"
        )
    try:
        frequency = int(str(config.get("syncFrequency") or "").strip())
    except ValueError:
        frequency = None
    start_at = config.get("syncStartAt")
    if not frequency or _minutes_of_day(start_at) is None:
        every = f"{frequency} min" if frequency else "its default sync frequency"
        return UploadSchedule(
            True,
            None,
            None,
            frequency,
            f"no syncStartAt: RudderStack uploads once {every} passed since its last upload",
        )
    times = scheduled_times(frequency, str(start_at))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    current = now.hour * 60 + now.minute
    earlier = [t for t in times if t <= current]
    latest = (
        midnight + timedelta(minutes=earlier[-1])
        if earlier
        else (midnight - timedelta(days=1) + timedelta(minutes=times[-1]))
    )
    later = [t for t in times if t > current]
    upcoming = (
        midnight + timedelta(minutes=later[0])
        if later
        else (midnight + timedelta(days=1) + timedelta(minutes=times[0]))
    )
    next_slot = _after_exclude_window(config, upcoming)
    window = " (moved past the exclude window)" if next_slot != upcoming else ""
    explanation = (
        f"syncStartAt {start_at} UTC every {frequency} min: the latest scheduled time was "
        f"{latest:%Y-%m-%d %H:%M} UTC and the next is {next_slot:%Y-%m-%d %H:%M} UTC{window}. RudderStack starts "
        "an upload at its next scheduler pass if none was created since the latest scheduled time (outside the "
        "exclude window), otherwise at the next one"
    )
    return UploadSchedule(True, latest, next_slot, frequency, explanation)
