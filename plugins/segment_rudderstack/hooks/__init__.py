"""Hooks for Segment's Public API and RudderStack's control and data planes.

All three retry 5xx, timeouts and connection errors with exponential backoff, honour 429 ``Retry-After``,
never retry other 4xx, and raise :class:`ApiError` / :class:`ResponseFormatError` with messages free of secrets.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names resolved on first use (PEP 562): the DAG processor imports this package at parse time, through modules
# that need only a small part of it, and must not pay for the rest (scripts/bench_parse.py measures it).
_HOMES = {
    "ALL_EVENT_TYPES_TRIGGER": "segment_rudderstack.hooks.segment",
    "ApiError": "segment_rudderstack.hooks.errors",
    "ResponseFormatError": "segment_rudderstack.hooks.errors",
    "RetryPolicy": "segment_rudderstack.hooks.protocol",
    "RudderStackDataPlaneHook": "segment_rudderstack.hooks.rudderstack",
    "RudderStackHook": "segment_rudderstack.hooks.rudderstack",
    "SegmentHook": "segment_rudderstack.hooks.segment",
    "SyncReport": "segment_rudderstack.hooks.segment",
    "SyncState": "segment_rudderstack.hooks.segment",
    "WEBHOOKS_ACTIONS_METADATA_ID": "segment_rudderstack.hooks.segment",
    "WEBHOOKS_ACTIONS_SEND_ACTION_ID": "segment_rudderstack.hooks.segment",
    "WEBHOOKS_METADATA_ID": "segment_rudderstack.hooks.segment",
    "parse_sync_report": "segment_rudderstack.hooks.segment",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
