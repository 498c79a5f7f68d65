"""The shape comparisons, pure: RudderStack's rows against Segment's for the same message ids (the shadow
load), per-column fill before and after, types against the before snapshot, and RudderStack's discards.

Inputs are what the dialect's shape queries return (``dialects/shape_queries.py``) turned into plain dicts;
outputs are ungraded :class:`~segment_rudderstack.shape.findings.Finding` s (the plan grades them).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from segment_rudderstack.shape.findings import Finding
from segment_rudderstack.shape.rudderstack_rules import RUDDERSTACK_OWN_COLUMNS, predict, rudder_type
from segment_rudderstack.shape.values import normalised, same_text, same_value, shown

#: columns every loader fills by itself: compared by neither check (their meaning is documented instead)
LOAD_COLUMNS = frozenset({"id", "uuid_ts", "loaded_at", "received_at", "uuid"})
#: RudderStack's own columns whose values are expected to move for the same event: its times (the receive time
#: where the event has none, e.g. originalTimestamp of a webhook-forwarded event: processor.go
#: enhanceWithTimeFields) and the request IPs (the webhook's sender). A difference is an ``own_column`` note; any
#: other own column (``channel``, the source and destination columns) differing is ``changed``.
SHIFTING_OWN_COLUMNS = frozenset(
    {"sent_at", "original_timestamp", "timestamp", "context_ip", "context_request_ip", "context_passed_ip"}
)
#: prediction kinds that are findings of their own (the rest keep the value)
PREDICTED = {"discarded": "discarded", "truncated": "truncated", "format_change": "format_change"}
EXAMPLES = 3


@dataclass
class Fill:
    """Rows of one table in one window and how many carry a value in each column."""

    rows: int = 0
    filled: dict[str, int] = field(default_factory=dict)

    def share(self, column: str) -> float | None:
        return None if not self.rows else self.filled.get(column, 0) / self.rows

    def add(self, rows: int, filled: Mapping[str, int]) -> None:
        self.rows += rows
        for column, n in filled.items():
            self.filled[column] = self.filled.get(column, 0) + n


def _own(column: str) -> bool:
    return column in RUDDERSTACK_OWN_COLUMNS


def _moved_to(value: Any, row: Mapping[str, Any], skip: str) -> str | None:
    if value is None:
        return None
    target = normalised(value)
    for other, candidate in row.items():
        if other != skip and candidate is not None and normalised(candidate) == target:
            return other
    return None


@dataclass
class _ColumnTally:
    kept: int = 0
    changed: list[str] = field(default_factory=list)
    moved: Counter = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)
    reformatted: list[str] = field(default_factory=list)

    def total(self) -> int:
        return self.kept + len(self.changed) + sum(self.moved.values()) + len(self.missing)


def _tally_column(
    column: str,
    segment_rows: Mapping[str, Mapping[str, Any]],
    shadow_rows: Mapping[str, Mapping[str, Any]],
    discarded_ids: set[tuple[str, str]],
) -> _ColumnTally:
    tally = _ColumnTally()
    for message_id, seg in segment_rows.items():
        theirs = seg.get(column)
        shadow = shadow_rows.get(message_id)
        if theirs is None or shadow is None:
            continue
        ours = shadow.get(column)
        if ours is None:
            target = _moved_to(theirs, shadow, column)
            if target and (message_id, column) not in discarded_ids:
                tally.moved[target] += 1
            else:
                tally.missing.append(message_id)
        elif not same_value(theirs, ours):
            tally.changed.append(f"{message_id}: {shown(theirs)} -> {shown(ours)}")
        else:
            tally.kept += 1
            if not same_text(theirs, ours) and isinstance(theirs, str) and isinstance(ours, str):
                tally.reformatted.append(f"{shown(theirs)} -> {shown(ours)}")
    return tally


def _column_findings(table: str, column: str, tally: _ColumnTally, check: str) -> list[Finding]:
    total = tally.total()
    found: list[Finding] = []
    for target, n in tally.moved.most_common():
        found.append(
            Finding(
                "moved",
                table,
                column,
                f"RudderStack writes this value to {table}.{target}, Segment wrote it to {column} (its names "
                "differ: lodash-style vs go-snakecase, or traits in context.traits)",
                check,
                detail=f"{n} of {total} values compared",
                count=n,
            )
        )
    if tally.missing:
        found.append(
            Finding(
                "stopped_filling",
                table,
                column,
                "Segment's row has a value here, RudderStack's row for the same message id has none",
                check,
                detail=f"{len(tally.missing)} of {total} values compared",
                examples=tuple(tally.missing[:EXAMPLES]),
                count=len(tally.missing),
            )
        )
    if tally.changed:
        cause = (
            "RudderStack fills this column its own way"
            if _own(column)
            else "RudderStack's value differs from Segment's for the same message id"
        )
        if _own(column):
            cause += f" ({RUDDERSTACK_OWN_COLUMNS[column]})"
        found.append(
            Finding(
                "own_column" if column in SHIFTING_OWN_COLUMNS else "changed",
                table,
                column,
                cause,
                check,
                detail=f"{len(tally.changed)} of {total} values compared",
                examples=tuple(tally.changed[:EXAMPLES]),
                count=len(tally.changed),
            )
        )
    if tally.reformatted:
        found.append(
            Finding(
                "format_change",
                table,
                column,
                "the same instant, written in RudderStack's format (EW/datatype.go)",
                check,
                detail=f"{len(tally.reformatted)} of {total} values compared",
                examples=tuple(tally.reformatted[:EXAMPLES]),
                count=len(tally.reformatted),
            )
        )
    return found


def compare_same_ids(
    table: str,
    *,
    real_columns: Iterable[str],
    segment_rows: Mapping[str, Mapping[str, Any]],
    shadow_rows: Mapping[str, Mapping[str, Any]],
    discarded_ids: Iterable[tuple[str, str]] = (),
    check: str = "shadow",
) -> list[Finding]:
    """Per column Segment filled: for the message ids both loaded, is RudderStack's value the same, in another
    column (moved), missing, or different? ``discarded_ids`` are ``(row id, column)`` pairs RudderStack parked
    in ``rudder_discards`` (reported by :func:`discard_findings`, not again as moved)."""
    discarded = set(discarded_ids)
    found: list[Finding] = []
    for column in sorted(set(real_columns) - LOAD_COLUMNS):
        tally = _tally_column(column, segment_rows, shadow_rows, discarded)
        found += _column_findings(table, column, tally, check)
    return found


def predicted_values(
    table: str,
    *,
    warehouse: str,
    real_types: Mapping[str, str],
    rows: Iterable[Mapping[str, Any]],
    check: str,
) -> list[Finding]:
    """What the real schema's existing column types do to the values RudderStack sends (the existing type wins,
    rudder-server ``warehouse/schema``): a value discarded, truncated or reformatted, per column."""
    outcomes: dict[tuple[str, str], list[str]] = defaultdict(list)
    details: dict[tuple[str, str], str] = {}
    for row in rows:
        for column, value in row.items():
            if value is None or column in LOAD_COLUMNS or column not in real_types:
                continue
            outcome = predict(rudder_type(warehouse, real_types[column]), value)
            kind = PREDICTED.get(outcome.kind)
            if kind:
                outcomes[(column, kind)].append(shown(value))
                details.setdefault((column, kind), outcome.detail)
    return [
        Finding(
            kind,
            table,
            column,
            f"{details[(column, kind)]} (column type {real_types[column]}; the warehouse's type wins)",
            check,
            detail=f"{len(values)} values seen",
            examples=tuple(values[:EXAMPLES]),
            count=len(values),
        )
        for (column, kind), values in sorted(outcomes.items())
    ]


#: a column is judged "stopped filling" only when Segment's rows filled at least this share of it: a sparser column
#: is filled by some senders only (e.g. `context_service_name` by the back end), and the rows before and after the
#: cutover need not come from the same mix of senders; the report still shows its fill before and after
JUDGED_FILL = 0.5


def compare_fill(
    table: str, *, before: Fill, after: Fill, min_rows: int, fill_drop: float, check: str
) -> list[Finding]:
    """Columns Segment's rows filled (at least :data:`JUDGED_FILL` of them) that RudderStack's rows fill much less
    (below ``fill_drop`` of the old share), and columns only RudderStack's rows fill. Windows with fewer than
    ``min_rows`` rows are not judged."""
    if before.rows < min_rows or after.rows < min_rows:
        return []
    found: list[Finding] = []
    for column in sorted(set(before.filled) | set(after.filled)):
        if column in LOAD_COLUMNS:
            continue
        old, new = before.share(column) or 0.0, after.share(column) or 0.0
        numbers = f"filled in {old:.0%} of {before.rows} rows before, {new:.0%} of {after.rows} after"
        if old >= JUDGED_FILL and new < old * fill_drop:
            cause = (
                f"RudderStack fills this column its own way ({RUDDERSTACK_OWN_COLUMNS[column]})"
                if _own(column)
                else "the new clients' rows leave this column empty"
            )
            found.append(Finding("stopped_filling", table, column, cause, check, detail=numbers))
        elif old == 0 and new > 0:
            kind = "own_column" if _own(column) else "new_column"
            cause = RUDDERSTACK_OWN_COLUMNS[column] if _own(column) else "only RudderStack's rows fill it"
            found.append(Finding(kind, table, column, cause, check, detail=numbers))
    return found


def compare_types(
    before: Mapping[str, Mapping[str, str]], now: Mapping[str, Mapping[str, str]], *, check: str
) -> list[Finding]:
    """Columns whose type changed since the before snapshot, and columns and tables added since."""
    found: list[Finding] = []
    for table in sorted(now):
        old = before.get(table)
        for column, data_type in sorted(now[table].items()):
            if old is None or column not in old:
                if old is not None and not _own(column):
                    found.append(
                        Finding("new_column", table, column, f"added since the cutover ({data_type})", check)
                    )
                continue
            if str(old[column]).lower() != str(data_type).lower():
                found.append(
                    Finding("type_change", table, column, f"was {old[column]}, is {data_type}", check)
                )
    return found


def table_findings(
    before: Mapping[str, Fill], after: Mapping[str, Fill], *, min_rows: int, check: str
) -> list[Finding]:
    """Tables Segment's rows filled (at least ``min_rows``) that get no RudderStack rows while others do."""
    if not any(f.rows for f in after.values()):
        return []
    return [
        Finding(
            "table_stopped",
            table,
            None,
            "Segment loaded rows here; RudderStack has loaded none since",
            check,
            detail=f"{fill.rows} rows before",
        )
        for table, fill in sorted(before.items())
        if fill.rows >= min_rows and not (after.get(table) and after[table].rows)
    ]


def discard_findings(groups: Iterable[Mapping[str, Any]], *, check: str) -> list[Finding]:
    """One finding per (table, column, reason) in ``rudder_discards``: the value set NULL, the row loaded."""
    return [
        Finding(
            "discarded",
            str(g["table_name"]),
            str(g["column_name"]),
            f"RudderStack set the value NULL and kept it in rudder_discards: {g.get('reason')}",
            check,
            detail=f"{g.get('count', 0)} values",
            examples=tuple(
                f"row {e.get('row_id')}: {shown(e.get('column_value'))}"
                for e in (g.get("examples") or [])[:EXAMPLES]
            ),
            count=int(g.get("count") or 0),
        )
        for g in groups
    ]
