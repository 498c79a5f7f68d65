"""RudderStack's warehouse upload scheduling rules, as pure functions.

These follow rudder-server's warehouse router (`warehouse/router/scheduling.go`, `canCreateUpload`; the library's
own, uncompressed copy for logging the next slot is `segment_rudderstack/waits/rudderstack_schedule.py`):

1. an explicitly triggered upload is always allowed;
2. otherwise nothing is uploaded while the current UTC time of day is inside the destination's
   `excludeWindow` (`{"excludeWindowStartTime": "HH:MM", "excludeWindowEndTime": "HH:MM"}`, may wrap midnight);
3. otherwise nothing is uploaded under `manualSync`;
4. otherwise an upload is allowed once a slot `syncStartAt + k * syncFrequency` has passed since the last
   upload was created (without `syncStartAt`: once `syncFrequency` has passed since the last upload).

The sandbox compresses time: `syncFrequency` minutes become `minutes * 60 / time_compression` real seconds
(time_compression 60 means one RudderStack minute lasts one real second). Times of day (`syncStartAt`, the
exclude window) stay real UTC wall-clock times, because they name a time of day rather than a duration.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

ALLOWED_SYNC_FREQUENCIES = ("30", "60", "180", "360", "720", "1440")
DEFAULT_SYNC_FREQUENCY = "30"
WAREHOUSE_TYPES = frozenset({"POSTGRES", "SNOWFLAKE", "RS", "BQ", "CLICKHOUSE", "MSSQL", "AZURE_SYNAPSE"})
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ConfigError(ValueError):
    """A destination config that RudderStack would reject (message names the field and the expected value)."""


def is_warehouse(destination_type: str) -> bool:
    return str(destination_type).upper() in WAREHOUSE_TYPES


def _parse_hhmm(value: str, field: str) -> dt.time:
    match = _HHMM.match(str(value))
    if not match:
        raise ConfigError(f"config.{field} must be a UTC time of day 'HH:MM' (e.g. '02:30'), got {value!r}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def validate_warehouse_config(config: Mapping[str, Any]) -> None:
    """Raise ConfigError when a warehouse destination config breaks RudderStack's rules."""
    namespace = config.get("namespace")
    if not namespace or not isinstance(namespace, str):
        raise ConfigError(
            "config.namespace is required for a warehouse destination (the schema to load into)"
        )
    frequency = config.get("syncFrequency", DEFAULT_SYNC_FREQUENCY)
    if str(frequency) not in ALLOWED_SYNC_FREQUENCIES:
        raise ConfigError(
            f"config.syncFrequency must be one of {', '.join(ALLOWED_SYNC_FREQUENCIES)} (minutes, as a string), "
            f"got {frequency!r}"
        )
    if config.get("syncStartAt"):
        _parse_hhmm(config["syncStartAt"], "syncStartAt")
    window = config.get("excludeWindow") or {}
    if not isinstance(window, Mapping):
        raise ConfigError(
            "config.excludeWindow must be an object {excludeWindowStartTime, excludeWindowEndTime}"
        )
    start, end = window.get("excludeWindowStartTime"), window.get("excludeWindowEndTime")
    if bool(start) != bool(end):
        raise ConfigError(
            "config.excludeWindow needs both excludeWindowStartTime and excludeWindowEndTime, or neither"
        )
    if start:
        _parse_hhmm(start, "excludeWindow.excludeWindowStartTime")
        _parse_hhmm(end, "excludeWindow.excludeWindowEndTime")


def sync_frequency_seconds(config: Mapping[str, Any], time_compression: float) -> float:
    minutes = int(str(config.get("syncFrequency") or DEFAULT_SYNC_FREQUENCY))
    return minutes * 60.0 / float(time_compression)


def in_exclude_window(config: Mapping[str, Any], now: dt.datetime) -> bool:
    """True when `now` (UTC) falls inside the destination's exclude window (end exclusive; may wrap midnight)."""
    window = config.get("excludeWindow") or {}
    start, end = window.get("excludeWindowStartTime"), window.get("excludeWindowEndTime")
    if not start or not end:
        return False
    start_t = _parse_hhmm(start, "excludeWindow.excludeWindowStartTime")
    end_t = _parse_hhmm(end, "excludeWindow.excludeWindowEndTime")
    current = now.astimezone(dt.UTC).time().replace(second=0, microsecond=0)
    # rudder-server's checkCurrentTimeExistsInExcludeWindow has strict bounds; including the start minute here
    # blocks a little more (stricter, never looser).
    if start_t <= end_t:
        return start_t <= current < end_t
    return current >= start_t or current < end_t


def previous_slot(config: Mapping[str, Any], now: dt.datetime, time_compression: float) -> dt.datetime | None:
    """The latest slot `syncStartAt + k * syncFrequency` at or before `now`; None when syncStartAt is not set."""
    if not config.get("syncStartAt"):
        return None
    start_t = _parse_hhmm(config["syncStartAt"], "syncStartAt")
    now = now.astimezone(dt.UTC)
    anchor = now.replace(hour=start_t.hour, minute=start_t.minute, second=0, microsecond=0)
    if anchor > now:
        anchor -= dt.timedelta(days=1)
    step = sync_frequency_seconds(config, time_compression)
    k = int((now - anchor).total_seconds() // step)
    return anchor + dt.timedelta(seconds=k * step)


def upload_decision(
    config: Mapping[str, Any],
    *,
    now: dt.datetime,
    last_upload_created_at: dt.datetime | None,
    triggered: bool,
    time_compression: float,
) -> tuple[bool, str]:
    """(may an upload be created now, why). Staged data is checked by the caller."""
    if triggered:
        return True, "triggered"
    if in_exclude_window(config, now):
        return False, "inside exclude window"
    if _truthy(config.get("manualSync")):
        return False, "manualSync is on (only triggered uploads run)"
    if last_upload_created_at is None:
        return True, "first upload"
    slot = previous_slot(config, now, time_compression)
    if slot is not None:
        if last_upload_created_at < slot:
            return True, f"slot {slot.isoformat()} passed"
        return False, "waiting for the next sync slot"
    due = last_upload_created_at + dt.timedelta(seconds=sync_frequency_seconds(config, time_compression))
    if now >= due:
        return True, "sync frequency elapsed"
    return False, "waiting for the sync frequency to elapse"
