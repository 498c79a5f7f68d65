"""What the shape checks found: one finding per table and column, graded stop / approve / note by the plan
(``shape.grades``, defaults in :data:`segment_rudderstack.plan.model.DEFAULT_SHAPE_GRADES`), and the verdict.

A finding says what differs (kind, table, column), why (the loader rule and its source), the numbers behind it,
examples, and what a person does about it (:data:`WHAT_TO_DO`). Findings travel through XCom as plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

STOP, APPROVE, NOTE = "stop", "approve", "note"
#: the XCom key of every shape check's result, and the report's facts key
SHAPE_KEY = "shape"
GRADE_ORDER = {STOP: 0, APPROVE: 1, NOTE: 2}

SAME_SHAPE = "same shape"
NEEDS_APPROVAL = "differences need approval"
DIFFERS = "shape differs"

#: what a person does with each kind of finding (docs/shape-continuity.md says more)
WHAT_TO_DO = {
    "namespace": "rename the schema, or point the plan at the schema RudderStack will write",
    "discarded": (
        "make the new clients send the type the column has (or migrate the column's type before the cutover); "
        "the discarded values are in rudder_discards"
    ),
    "truncated": "send integers, or migrate the column to a numeric type before the cutover",
    "moved": (
        "rename the key in the new clients, or make the downstream models read both columns (coalesce) before "
        "the cutover"
    ),
    "stopped_filling": (
        "make the new clients send this value (a renamed key? traits only in context.traits?), or accept that "
        "models reading this column get NULL for new rows"
    ),
    "changed": "check that the models reading this column accept RudderStack's value, then approve",
    "type_change": "check the models reading this column, then approve",
    "table_stopped": "check that the new clients still send these events",
    "format_change": "models comparing this column as text see RudderStack's timestamp format",
    "stringified": "models reading this text column see the value's text",
    "invisible_type": "RudderStack cannot read this column's type; values for it may go to a new column",
    "new_column": "nothing to do unless a model needs it",
    "own_column": "RudderStack fills this column its own way (see docs/shape-continuity.md)",
    "shadow_budget": (
        "approve the extra load, raise shape.shadow.max_rows / max_bytes, or set shape.shadow.enabled: false"
    ),
}


@dataclass(frozen=True)
class Finding:
    """One difference in one table (and column) found by one check."""

    kind: str
    table: str
    column: str | None
    cause: str
    check: str  # "preflight" | "shadow" | "continuity" | "discards"
    detail: str = ""
    grade: str = NOTE
    examples: tuple[str, ...] = ()
    count: int = 0

    @property
    def where(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table

    def describe(self) -> str:
        parts = [f"[{self.grade}] {self.where}: {self.kind.replace('_', ' ')}: {self.cause}"]
        if self.detail:
            parts.append(f"({self.detail})")
        if self.examples:
            parts.append("e.g. " + ", ".join(self.examples[:3]))
        parts.append(f"-> {WHAT_TO_DO.get(self.kind, 'check it')}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["examples"] = list(self.examples)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["examples"] = tuple(known.get("examples") or ())
        return cls(**known)


def graded(findings: Iterable[Finding], grades: Mapping[str, str]) -> list[Finding]:
    """Each finding with the plan's grade for its kind (a namespace difference always stops), worst first."""
    out = [replace(f, grade=STOP if f.kind == "namespace" else grades.get(f.kind, APPROVE)) for f in findings]
    return sorted(out, key=lambda f: (GRADE_ORDER.get(f.grade, 1), f.table, f.column or "", f.kind))


def verdict(findings: Iterable[Finding]) -> str:
    """``same shape`` (notes only), ``differences need approval`` or ``shape differs`` (something stops)."""
    grades = {f.grade for f in findings}
    if STOP in grades:
        return DIFFERS
    if APPROVE in grades:
        return NEEDS_APPROVAL
    return SAME_SHAPE


@dataclass
class ShapeResult:
    """A check's outcome as it travels through XCom: the verdict, its graded findings and the numbers."""

    check: str
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return verdict(self.findings)

    def of_grade(self, grade: str) -> list[Finding]:
        return [f for f in self.findings if f.grade == grade]

    def summary(self, limit: int = 30) -> str:
        lines = [f"shape ({self.check}): {self.verdict}"]
        shown = [f for f in self.findings if f.grade != NOTE] + self.of_grade(NOTE)
        lines += [f"  - {f.describe()}" for f in shown[:limit]]
        if len(shown) > limit:
            lines.append(f"  - ... and {len(shown) - limit} more (see the report)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
            "facts": self.facts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ShapeResult | None:
        if not isinstance(data, Mapping) or "check" not in data:
            return None
        return cls(
            check=str(data["check"]),
            findings=[Finding.from_dict(f) for f in data.get("findings") or []],
            facts=dict(data.get("facts") or {}),
        )
