"""Check the migration's safety invariants from the emulators' own records (not from the DAG's word).

Input: the entries of the Segment emulator's and the RudderStack emulator's RequestLog. Output: a list
of violations, each a sentence saying what happened when; an empty list means every invariant held.
Both emulators run on one machine clock, so their timestamps compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Load:
    warehouse_id: str
    start: datetime
    end: datetime | None
    statuses: dict[str, str]
    schemas: frozenset[str] = frozenset()  # the schemas it writes (its sources'); empty: not known, so all

    def running_at(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)

    def writes(self, schema: str) -> bool:
        return not self.schemas or schema in self.schemas


def _schemas(load_start: dict[str, Any]) -> frozenset[str]:
    return frozenset(load_start.get("schemas") or ())


def segment_loads(segment_log: list[dict[str, Any]]) -> list[Load]:
    loads: list[Load] = []
    open_loads: dict[str, dict[str, Any]] = {}
    for entry in segment_log:
        if entry.get("kind") != "load":
            continue
        wid = entry.get("warehouseId")
        if entry.get("phase") == "start":
            open_loads[wid] = entry
        elif entry.get("phase") == "end" and wid in open_loads:
            began = open_loads.pop(wid)
            statuses = dict(entry.get("statuses") or {})
            loads.append(Load(wid, _t(began["start"]), _t(entry["end"]), statuses, _schemas(began)))
    loads += [Load(w, _t(e["start"]), None, {}, _schemas(e)) for w, e in open_loads.items()]
    return loads


def _changes(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in log if e.get("kind") == "api" and (e.get("status") in (None, 200, 201))]


def _enabled(value: Any) -> bool | None:
    return value.get("enabled") if isinstance(value, dict) else None


def _manual_sync(value: Any) -> bool | None:
    if isinstance(value, dict):
        return (value.get("config") or {}).get("manualSync")
    return None


def _routes_over_time(segment_log: list[dict[str, Any]]) -> list[tuple[datetime, str, str, bool]]:
    """(at, source id, destination id, route enabled) after every change to a webhook route (destination or its
    mapping), in order. A route delivers when its destination is enabled and (when it has mappings) one is."""
    source_of: dict[str, str] = {}
    destination_on: dict[str, bool] = {}
    mappings_on: dict[str, dict[str, bool]] = {}
    out: list[tuple[datetime, str, str, bool]] = []
    for e in _changes(segment_log):
        destination_id = e.get("destinationId")
        if not destination_id:
            continue
        body = e.get("body") if isinstance(e.get("body"), dict) else {}
        if e.get("method") == "POST" and body.get("sourceId") and not e.get("subscriptionId"):
            source_of[destination_id] = body["sourceId"]
        after = _enabled(e.get("after"))
        if e.get("subscriptionId"):
            mappings_on.setdefault(destination_id, {})[e["subscriptionId"]] = bool(after)
        else:
            destination_on[destination_id] = bool(after)
        if destination_id in source_of:
            maps = mappings_on.get(destination_id) or {}
            on = destination_on.get(destination_id, False) and (not maps or any(maps.values()))
            out.append((_t(e["at"]), source_of[destination_id], destination_id, on))
    return out


def check_webhook_path(
    segment_log: list[dict[str, Any]],
    *,
    migration_webhook_off: list[datetime] | None = None,
    adoption_held_at: datetime | None = None,
    tolerance_s: float = 10.0,
) -> list[str]:
    """Segment's warehouse is disabled only while every migrated client source's webhook route is enabled; and
    (when the caller says when the migration's own switch-off happened and when adoption held) the webhook is
    disabled only by the migration, after the adoption condition held."""
    violations: list[str] = []
    timeline = _routes_over_time(segment_log)
    for at in warehouse_disabled_at(segment_log):
        state: dict[str, dict[str, bool]] = {}
        for moment, source_id, destination_id, on in timeline:
            if moment <= at:
                state.setdefault(source_id, {})[destination_id] = on
        off = sorted(source for source, routes in state.items() if not any(routes.values()))
        if off:
            violations.append(
                f"Segment warehouse disabled at {at.isoformat()} while the webhook of migrated client source(s) "
                f"{', '.join(off)} was disabled: their events had no path to the warehouse"
            )
    if migration_webhook_off is not None:
        for at in webhook_disabled_at(segment_log):
            ours = any(0 <= (m - at).total_seconds() <= tolerance_s for m in migration_webhook_off)
            if not ours:
                violations.append(
                    f"Segment webhook disabled at {at.isoformat()}, not by the migration's own switch-off"
                )
            elif adoption_held_at is not None and at < adoption_held_at:
                violations.append(
                    f"Segment webhook disabled at {at.isoformat()} before the adoption condition held "
                    f"({adoption_held_at.isoformat()})"
                )
    return violations


def check(
    segment_log: list[dict[str, Any]], rudderstack_log: list[dict[str, Any]], **webhook: Any
) -> list[str]:
    """Every invariant; ``webhook`` goes to :func:`check_webhook_path` (the migration's switch-off instants and
    when adoption held, when the caller knows them)."""
    violations: list[str] = check_webhook_path(segment_log, **webhook)
    loads = segment_loads(segment_log)
    segment_changes = _changes(segment_log)
    webhook_enables = [
        _t(e["at"])
        for e in segment_changes
        if e.get("destinationId")
        and _enabled(e.get("after")) is True
        and _enabled(e.get("before")) is not True
    ]
    # 1. Segment's warehouse is never disabled while a load runs, nor before a load that started after the
    #    webhook was enabled finished successfully.
    for e in segment_changes:
        if not (e.get("warehouseId") and e.get("method") == "PATCH"):
            continue
        if not (_enabled(e.get("before")) is True and _enabled(e.get("after")) is False):
            continue
        at = _t(e["at"])
        running = [load for load in loads if load.warehouse_id == e["warehouseId"] and load.running_at(at)]
        if running or e.get("loadRunning"):
            violations.append(f"Segment warehouse disabled at {e['at']} while a Segment load was running")
        cutover = max((w for w in webhook_enables if w <= at), default=None)
        confirmed = [
            load
            for load in loads
            if load.warehouse_id == e["warehouseId"]
            and cutover is not None
            and load.start >= cutover
            and load.end is not None
            and load.end <= at
            and load.statuses
            and all(s.lower() == "success" for s in load.statuses.values())
        ]
        if not confirmed:
            violations.append(
                f"Segment warehouse disabled at {e['at']} without a successful Segment load that started after "
                f"the webhook was enabled ({cutover.isoformat() if cutover else 'never enabled'})"
            )
    violations += _rudderstack_during_segment_loads(rudderstack_log, loads)
    return violations


def _rudderstack_during_segment_loads(rudderstack_log: list[dict[str, Any]], loads: list[Load]) -> list[str]:
    violations: list[str] = []
    # 2. RudderStack's sync is never released while a Segment load is running, and no RudderStack upload
    #    into the warehouse starts while a Segment load runs.
    for e in _changes(rudderstack_log):
        if (
            e.get("action") == "update_destination"
            and _manual_sync(e.get("before")) is True
            and _manual_sync(e.get("after")) is False
        ):
            at = _t(e["at"])
            if any(load.running_at(at) for load in loads):
                violations.append(f"RudderStack sync released at {e['at']} while a Segment load was running")
    #    The rule is about two loaders writing the same tables at once (runbook step 4): an upload into a schema
    #    the running Segment load does not write (the shape check's scratch schema, plan shape.shadow) is not
    #    judged by it.
    for e in rudderstack_log:
        if e.get("kind") == "upload" and e.get("event") == "start" and e.get("event_count"):
            at = _t(e["at"])
            namespace = str(e.get("namespace") or "")
            if any(load.running_at(at) and load.writes(namespace) for load in loads):
                violations.append(
                    f"RudderStack upload {e.get('upload_id')} started at {e['at']} during a Segment load"
                )
    return violations


def webhook_disabled_at(segment_log: list[dict[str, Any]]) -> list[datetime]:
    """When a webhook destination was switched off. A Webhooks (Actions) route is switched off at its
    destination (which stops every mapping at once); its mapping switched off after it is not a second switch-off."""
    return [
        _t(e["at"])
        for e in _changes(segment_log)
        if e.get("destinationId")
        and not e.get("subscriptionId")
        and _enabled(e.get("before")) is True
        and _enabled(e.get("after")) is False
    ]


def warehouse_disabled_at(segment_log: list[dict[str, Any]]) -> list[datetime]:
    return [
        _t(e["at"])
        for e in _changes(segment_log)
        if e.get("warehouseId") and _enabled(e.get("before")) is True and _enabled(e.get("after")) is False
    ]


def mutating_calls(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every change an emulator accepted (for "dry run changes nothing" and "re-run changes nothing")."""
    return [e for e in _changes(log) if e.get("method") in ("POST", "PUT", "PATCH", "DELETE")]
