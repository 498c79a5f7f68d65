"""What the warehouse cutover leaves on Segment, read by the preflight and written into the report.

Moving a warehouse from Segment to RudderStack moves only the warehouse: the migrated sources keep their other
Segment destinations (and any other warehouse), the workspace keeps its Functions, and the sources' tracking
plans keep validating what still arrives through Segment. The preflight reads them from Segment's Public API
(segmentio/public-api-sdk-python: SourcesApi ``list_connected_destinations_from_source`` /
``list_connected_warehouses_from_source``, FunctionsApi ``list_functions``, TrackingPlansApi
``list_tracking_plans`` / ``list_sources_from_tracking_plan``) where the token may read them; a 403 (or a 404:
a workspace without the Functions feature) is written down as such, never a failure: nothing here decides
whether the migration is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from segment_rudderstack.evidence.report import Section, Table, register_section
from segment_rudderstack.evidence.report_facts import ReportFacts
from segment_rudderstack.hooks.errors import ApiError
from segment_rudderstack.vocabulary import (
    MIGRATION_WEBHOOK_NAME,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_METADATA_ID,
)

#: The ``resourceType`` values of ``list_functions`` (SDK model ListFunctionItemV1's enum); the parameter is
#: required, so the workspace's Functions are read one type at a time.
FUNCTION_TYPES: tuple[str, ...] = (
    "SOURCE",
    "DESTINATION",
    "INSERT_SOURCE",
    "INSERT_DESTINATION",
    "INSERT_TRANSFORMATION",
)
#: Key of the preflight's summary (and of the report's section).
SUMMARY_KEY = "stays_on_segment"
SECTION_TITLE = "What stays on Segment"


def _unreadable(what: str, error: ApiError) -> str:
    """A note saying why ``what`` was not read: the token may not (403), the workspace lacks the feature (404),
    or Segment did not answer (the hooks' retries are spent)."""
    if error.status == 403:
        return (
            f"{what}: not read, Segment answered 403 Forbidden (the token may not read them); give the token "
            f"read access to them, or check them in Segment's app"
        )
    if error.status == 404:
        return f"{what}: not read, Segment answered 404 (the workspace may not have this feature)"
    return f"{what}: not read ({error}); check them in Segment's app"


def _read(what: str, notes: list[str], read: Callable[[], Any]) -> Any:
    """``read()``, or None with a note when Segment refused or failed it (informational: never fails a task)."""
    try:
        return read()
    except ApiError as error:
        notes.append(_unreadable(what, error))
        return None


def _is_migration_webhook(destination: dict[str, Any]) -> bool:
    metadata_id = (destination.get("metadata") or {}).get("id")
    return (
        metadata_id in (WEBHOOKS_METADATA_ID, WEBHOOKS_ACTIONS_METADATA_ID)
        and destination.get("name") == MIGRATION_WEBHOOK_NAME
    )


def _destination_row(destination: dict[str, Any]) -> dict[str, Any]:
    metadata = destination.get("metadata") or {}
    return {
        "source_id": destination.get("sourceId"),
        "id": destination.get("id"),
        "name": destination.get("name"),
        "type": metadata.get("name") or metadata.get("slug"),
        "enabled": bool(destination.get("enabled")),
    }


def _destinations(hook: Any, source_ids: Sequence[str], warehouse_id: str, notes: list[str]) -> dict:
    destinations: list[dict[str, Any]] = []
    warehouses: list[dict[str, Any]] = []
    for source_id in source_ids:
        found = _read(
            f"destinations of source {source_id}",
            notes,
            lambda s=source_id: hook.list_connected_destinations(s),
        )
        destinations += [_destination_row(d) for d in found or [] if not _is_migration_webhook(d)]
        connected = _read(
            f"warehouses of source {source_id}",
            notes,
            lambda s=source_id: hook.list_connected_warehouses(s),
        )
        warehouses += [
            {
                "source_id": source_id,
                "id": w.get("id"),
                "type": (w.get("metadata") or {}).get("name"),
                "enabled": bool(w.get("enabled")),
            }
            for w in connected or []
            if w.get("id") != warehouse_id
        ]
    return {"destinations": destinations, "warehouses": warehouses}


def _functions(hook: Any, notes: list[str]) -> list[dict[str, Any]] | None:
    functions: list[dict[str, Any]] = []
    for resource_type in FUNCTION_TYPES:
        found = _read(
            f"Functions of type {resource_type}", notes, lambda t=resource_type: hook.list_functions(t)
        )
        if found is None:
            return None  # the same answer would come for every type: said once
        functions += [
            {"id": f.get("id"), "name": f.get("displayName"), "type": f.get("resourceType") or resource_type}
            for f in found
        ]
    return functions


def _tracking_plans(hook: Any, source_ids: Iterable[str], notes: list[str]) -> list[dict[str, Any]] | None:
    plans = _read("tracking plans", notes, hook.list_tracking_plans)
    if plans is None:
        return None
    wanted = set(source_ids)
    connected = []
    for plan in plans:
        sources = _read(
            f"sources of tracking plan {plan.get('id')}",
            notes,
            lambda p=plan: hook.list_tracking_plan_sources(p["id"]),
        )
        mine = sorted(s.get("id") for s in sources or [] if s.get("id") in wanted)
        if mine:
            connected.append(
                {"id": plan.get("id"), "name": plan.get("name"), "type": plan.get("type"), "sources": mine}
            )
    return connected


def read_what_stays(hook: Any, source_ids: Sequence[str], warehouse_id: str) -> dict[str, Any]:
    """What the cutover of ``warehouse_id`` leaves on Segment for ``source_ids`` (JSON-safe, for XCom):
    ``destinations`` and ``warehouses`` (other than the plan's) connected to the sources, except the migration's
    own webhooks; the workspace's ``functions`` and the sources' ``tracking_plans`` (None: not readable); and
    ``notes`` saying what could not be read and why.

    :param hook: a :class:`~segment_rudderstack.hooks.segment.SegmentHook`.
    :param source_ids: the migrated Segment sources.
    :param warehouse_id: the Segment warehouse the migration replaces.
    """
    notes: list[str] = []
    found = _destinations(hook, source_ids, warehouse_id, notes)
    found["functions"] = _functions(hook, notes)
    found["tracking_plans"] = _tracking_plans(hook, source_ids, notes)
    found["notes"] = notes
    return found


def _merged(facts: ReportFacts) -> dict[str, Any] | None:
    """The preflights' findings (one preflight, or one per lane) as one."""
    found = [
        r.get(SUMMARY_KEY)
        for name, r in sorted(facts.results.items())
        if name.split(" ")[0] == "preflight" and isinstance(r, dict) and isinstance(r.get(SUMMARY_KEY), dict)
    ]
    if not found:
        return None
    merged: dict[str, Any] = {"destinations": [], "warehouses": [], "notes": []}
    for part in found:
        for key in merged:
            merged[key] += [x for x in part.get(key) or [] if x not in merged[key]]
        for key in ("functions", "tracking_plans"):
            if part.get(key) is not None:
                merged.setdefault(key, [])
                merged[key] += [x for x in part[key] if x not in merged[key]]
    return merged


def section_stays_on_segment(facts: ReportFacts) -> Section | None:
    """The report's "What stays on Segment" (after the changes); None when no preflight read it."""
    found = _merged(facts)
    if found is None:
        return None
    yes_no = {True: "enabled", False: "disabled"}
    blocks: list[Any] = [
        "The migration moves only the warehouse. These stay on Segment and keep receiving what the migrated "
        "sources send to Segment (old app versions until their webhook is switched off): move or retire them "
        "separately."
    ]
    rows = [
        [d["source_id"], d["name"], d["type"], d["id"], yes_no[d["enabled"]]] for d in found["destinations"]
    ]
    rows += [
        [w["source_id"], "(warehouse)", w["type"], w["id"], yes_no[w["enabled"]]] for w in found["warehouses"]
    ]
    blocks.append(
        Table(["source", "destination", "type", "id", "state"], rows)
        if rows
        else "No other destination or warehouse is connected to the migrated sources."
    )
    if found.get("tracking_plans") is not None:
        plans = [[p["name"], p["type"], p["id"], ", ".join(p["sources"])] for p in found["tracking_plans"]]
        blocks.append(
            Table(["tracking plan", "type", "id", "migrated sources"], plans)
            if plans
            else "No tracking plan is connected to the migrated sources."
        )
    if found.get("functions") is not None:
        functions = [[f["name"], f["type"], f["id"]] for f in found["functions"]]
        blocks.append(
            Table(["function (workspace)", "type", "id"], functions)
            if functions
            else "The workspace has no Functions."
        )
    if found["notes"]:
        blocks.append(list(found["notes"]))
    return Section(SECTION_TITLE, blocks, key=SUMMARY_KEY)


register_section(SUMMARY_KEY, section_stays_on_segment, after="changes")
