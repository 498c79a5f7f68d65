"""Values the warehouse dialects return and the wait conditions decide on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AdoptionSample:
    """One check of the adoption share: rows received in the window ``[since, at)`` and how many of them
    still came through Segment. The warehouse dialects return it and the adoption condition decides on it.

    ``share`` is ``via_segment / total``, or ``None`` when the window holds no rows (no evidence either way).
    ``via_library`` / ``library_share`` count rows whose ``context_library_name`` is one of the requested
    library names (``None`` when none were asked for). Only ``at``, ``total`` and ``via_segment`` are kept
    between checks (:meth:`to_dict`).
    """

    at: datetime
    total: int
    via_segment: int
    since: datetime | None = None
    via_library: int | None = None
    tables: tuple[str, ...] = ()
    missing_tables: tuple[str, ...] = ()

    @property
    def until(self) -> datetime:
        """The end of the window (the instant of the check)."""
        return self.at

    @property
    def share(self) -> float | None:
        return (self.via_segment / self.total) if self.total else None

    @property
    def library_share(self) -> float | None:
        if self.via_library is None or not self.total:
            return None
        return self.via_library / self.total

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "total": self.total, "via_segment": self.via_segment}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdoptionSample:
        return cls(datetime.fromisoformat(data["at"]), int(data["total"]), int(data["via_segment"]))


@dataclass(frozen=True)
class DuplicateCount:
    """Message ids present more than once in a table, and how many rows beyond the first copy exist."""

    ids_with_duplicates: int
    extra_rows: int
