"""Segment's warehouse sync statuses, normalised (pure; shared by the hook's ``SyncReport`` and the wait
conditions). Segment does not document the status enum (its UI shows Success / Partial / Failure), so values
match case-insensitively and anything unknown is *not* terminal."""

from __future__ import annotations

import enum
from datetime import datetime


class SyncState(enum.StrEnum):
    """What a Segment warehouse sync report says, normalised. Only SUCCESS/PARTIAL/FAILURE are terminal."""

    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in (SyncState.SUCCESS, SyncState.PARTIAL, SyncState.FAILURE)


_STATUS_STATES = {
    **dict.fromkeys(("success", "succeeded", "successful", "ok", "completed", "complete"), SyncState.SUCCESS),
    **dict.fromkeys(
        ("partial", "partial_success", "partially_succeeded", "partialsuccess", "partial success"),
        SyncState.PARTIAL,
    ),
    **dict.fromkeys(("failure", "failed", "error", "errored"), SyncState.FAILURE),
    **dict.fromkeys(("running", "in_progress", "in progress", "started", "pending"), SyncState.RUNNING),
}


def classify(end: datetime | None, status: str | None) -> SyncState:
    """A sync with no end is running whatever its status says; otherwise the status decides."""
    if end is None:
        return SyncState.RUNNING
    return _STATUS_STATES.get((status or "").strip().lower(), SyncState.UNKNOWN)
