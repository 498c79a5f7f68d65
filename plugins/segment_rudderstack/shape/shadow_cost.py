"""What the shadow load will add to the warehouse during the overlap, estimated at the preflight from what Segment
loaded recently (docs/shape-continuity.md, "Cost of the shadow load"), and whether that fits the plan's budget.

The estimate is a rate times a duration: the rows Segment loaded per hour over the preflight's window, times the
hours the shadow is expected to load (``shape.shadow.overlap_hours``: from its creation to the comparison after
Segment's final load). Bytes are the sample's mean row size with every value as text (UTF-8): a floor, since the
warehouse's own storage overhead, indexes and RudderStack's extra columns are not counted. Pure: the preflight
passes in what it read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from segment_rudderstack.shape.findings import Finding

METHOD = (
    "rows Segment loaded per hour over the preflight's window x the expected overlap; bytes: the sampled rows' "
    "mean size with values as text, a floor: storage overhead and indexes are not counted"
)


def row_text_bytes(rows: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(rows, bytes) of sampled rows, every non-NULL value counted as its UTF-8 text."""
    count = size = 0
    for row in rows:
        count += 1
        size += sum(len(str(v).encode()) for v in row.values() if v is not None)
    return count, size


@dataclass(frozen=True)
class ShadowCost:
    """The shadow load's estimated extra rows and bytes over ``overlap_hours``."""

    rows: int
    bytes: int
    rows_per_hour: float
    overlap_hours: float
    by_table: dict[str, int]
    method: str = METHOD

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(
    rows_in_window: Mapping[str, int],
    samples: Mapping[str, tuple[int, int]],
    *,
    window_hours: float,
    overlap_hours: float,
) -> ShadowCost:
    """From the rows per table Segment loaded in a window of ``window_hours`` and each table's sample
    ``(rows, bytes)`` (:func:`row_text_bytes`): the rows and bytes the shadow loads over ``overlap_hours``."""
    if window_hours <= 0:
        raise ValueError(f"window_hours must be > 0, got {window_hours}")
    scale = float(overlap_hours) / float(window_hours)
    by_table = {table: round(n * scale) for table, n in sorted(rows_in_window.items())}
    size = 0.0
    for table, rows in by_table.items():
        sampled, sampled_bytes = samples.get(table, (0, 0))
        if sampled:
            size += rows * sampled_bytes / sampled
    total = sum(rows_in_window.values())
    return ShadowCost(
        rows=sum(by_table.values()),
        bytes=round(size),
        rows_per_hour=round(total / float(window_hours), 3),
        overlap_hours=float(overlap_hours),
        by_table=by_table,
    )


def budget_findings(
    cost: ShadowCost, schema: str, *, max_rows: int | None, max_bytes: int | None, check: str
) -> list[Finding]:
    """A ``shadow_budget`` finding when the estimate exceeds the plan's ``shape.shadow.max_rows`` or
    ``max_bytes`` (a limit left unset is no limit)."""
    over = []
    if max_rows is not None and cost.rows > max_rows:
        over.append(f"{cost.rows:,} rows > max_rows {max_rows:,}")
    if max_bytes is not None and cost.bytes > max_bytes:
        over.append(f"about {cost.bytes:,} bytes > max_bytes {max_bytes:,}")
    if not over:
        return []
    return [
        Finding(
            "shadow_budget",
            schema,
            None,
            f"the shadow load would add {', '.join(over)} over {cost.overlap_hours:g} h of overlap "
            f"({cost.rows_per_hour:,.0f} rows/h recently)",
            check,
            detail=cost.method,
            count=cost.rows,
        )
    ]
