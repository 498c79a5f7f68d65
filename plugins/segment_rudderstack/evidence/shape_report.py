"""The report's section "Shape continuity" (docs/shape-continuity.md): the verdict first, then each check's
findings (what differs, why, what to do), each table's columns whose fill changed, the discards and the shadow
comparison. The facts are the shape checks' XCom ``shape`` (``facts.extra[SHAPE_KEY]``: task id → result)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segment_rudderstack.evidence.report import Section, Table, register_section
from segment_rudderstack.evidence.report_facts import ReportFacts
from segment_rudderstack.shape.findings import (
    DIFFERS,
    NEEDS_APPROVAL,
    SAME_SHAPE,
    SHAPE_KEY,
    WHAT_TO_DO,
    ShapeResult,
)

CHECK_TITLES = {
    "preflight": "Before any change (preflight)",
    "shadow": "Shadow load, before Segment's warehouse is switched off",
    "continuity": "After RudderStack's loads, before Segment's webhook is switched off",
}
#: a column's fill change worth a line even without a finding (percentage points)
FILL_CHANGE_SHOWN = 0.10
MAX_FINDINGS, MAX_COLUMNS = 40, 25


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value):.0%}"


def results_of(facts: ReportFacts) -> dict[str, ShapeResult]:
    raw: Mapping[str, Any] = facts.extra.get(SHAPE_KEY) or {}
    results = {task_id: ShapeResult.from_dict(data) for task_id, data in raw.items()}
    return {task_id: r for task_id, r in sorted(results.items()) if r is not None}


def overall(results: Mapping[str, ShapeResult]) -> str:
    verdicts = {r.verdict for r in results.values()}
    for worst in (DIFFERS, NEEDS_APPROVAL):
        if worst in verdicts:
            return worst
    return SAME_SHAPE


def _finding_rows(result: ShapeResult) -> list[list[Any]]:
    return [
        [
            f.grade,
            f"`{f.where}`",
            f.kind.replace("_", " "),
            f.cause + (f" ({f.detail})" if f.detail else ""),
            ", ".join(f.examples[:2]) or "—",
            WHAT_TO_DO.get(f.kind, ""),
        ]
        for f in result.findings[:MAX_FINDINGS]
    ]


def _fill_rows(result: ShapeResult) -> list[list[Any]]:
    flagged = {(f.table, f.column) for f in result.findings}
    rows = []
    for table, data in sorted(_tables(result).items()):
        shown = 0
        for column, (before, after) in sorted((data.get("columns") or {}).items()):
            changed = before is not None and after is not None and abs(before - after) >= FILL_CHANGE_SHOWN
            if (table, column) in flagged or changed:
                if shown < MAX_COLUMNS:
                    rows.append([f"`{table}`", f"`{column}`", _pct(before), _pct(after)])
                shown += 1
    return rows


def _tables(result: ShapeResult) -> dict[str, Any]:
    tables = result.facts.get("tables")
    return tables if isinstance(tables, Mapping) else {}


def _table_rows(result: ShapeResult) -> list[list[Any]]:
    return [
        [
            f"`{table}`",
            data.get("before_rows", 0),
            data.get("after_rows", 0),
            ", ".join(f"{lib}: {n}" for lib, n in (data.get("libraries") or {}).items()) or "—",
        ]
        for table, data in sorted(_tables(result).items())
    ]


def _check_blocks(task_id: str, result: ShapeResult) -> list[Any]:
    title = CHECK_TITLES.get(result.check, result.check)
    blocks: list[Any] = [f"**{title}** (`{task_id}`): **{result.verdict}**."]
    if result.check == "preflight":
        blocks.append(
            f"Before snapshot: {result.facts.get('table_count', 0)} tables, {result.facts.get('column_count', 0)} "
            "columns; "
            f"up to {result.facts.get('sample_rows', 0)} recent values per table read to predict RudderStack's "
            "reading of each column."
        )
        cost = result.facts.get("shadow_cost")
        if cost:
            blocks.append(
                f"The shadow load into `{result.facts.get('shadow_schema')}` adds about {cost['rows']:,} rows "
                f"and {cost['bytes']:,} bytes over {cost['overlap_hours']:g} h ({cost['method']})."
            )
    if result.check == "shadow":
        blocks.append(
            f"RudderStack's rows in the scratch schema `{result.facts.get('shadow_schema')}` compared with "
            f"Segment's for {result.facts.get('compared_ids', 0)} message ids both loaded."
        )
    if result.findings:
        headers = ["grade", "where", "what", "why", "examples", "what to do"]
        blocks.append(Table(headers, _finding_rows(result)))
    tables = _table_rows(result)
    if tables:
        blocks.append(Table(["table", "rows before", "rows after", "after, by client library"], tables))
    fills = _fill_rows(result)
    if fills:
        blocks.append(Table(["table", "column", "filled before", "filled after"], fills))
    return blocks


def section_shape(facts: ReportFacts) -> Section | None:
    results = results_of(facts)
    if not results:
        return None
    verdict = overall(results)
    blocks: list[Any] = [
        f"**Verdict: {verdict}.** "
        + {
            SAME_SHAPE: "Every column Segment filled keeps its values, type and fill (notes below are expected "
            "differences).",
            NEEDS_APPROVAL: "Some columns differ; a person approved (or is asked to approve) each difference "
            "listed below.",
            DIFFERS: "Some columns would not keep their values: the run stopped before the irreversible step; "
            "each cause and what to do is listed below.",
        }[verdict]
    ]
    for task_id, result in results.items():
        blocks += _check_blocks(task_id, result)
    return Section("Shape continuity", blocks, key=SHAPE_KEY)


register_section(SHAPE_KEY, section_shape, after="verdict")
