"""Hooks for Segment's Public API and RudderStack's control and data planes.

All three retry 5xx, timeouts and connection errors with exponential backoff, honour 429 ``Retry-After``,
never retry other 4xx, and raise :class:`ApiError` / :class:`ResponseFormatError` with messages free of secrets.
"""

from segment_rudderstack.hooks.errors import ApiError, ResponseFormatError
from segment_rudderstack.hooks.protocol import RetryPolicy
from segment_rudderstack.hooks.rudderstack import RudderStackDataPlaneHook, RudderStackHook
from segment_rudderstack.hooks.segment import (
    ALL_EVENT_TYPES_TRIGGER,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_ACTIONS_SEND_ACTION_ID,
    WEBHOOKS_METADATA_ID,
    SegmentHook,
    SyncReport,
    SyncState,
    parse_sync_report,
)

__all__ = [
    "ALL_EVENT_TYPES_TRIGGER",
    "WEBHOOKS_ACTIONS_METADATA_ID",
    "WEBHOOKS_ACTIONS_SEND_ACTION_ID",
    "WEBHOOKS_METADATA_ID",
    "ApiError",
    "ResponseFormatError",
    "RetryPolicy",
    "RudderStackDataPlaneHook",
    "RudderStackHook",
    "SegmentHook",
    "SyncReport",
    "SyncState",
    "parse_sync_report",
]
