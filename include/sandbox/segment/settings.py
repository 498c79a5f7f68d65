"""What a Segment emulator starts with: its seeds (sources, warehouses) and its settings (limits, clocks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SegmentSettings", "SourceSeed", "WarehouseSeed"]


@dataclass
class SourceSeed:
    id: str
    slug: str
    name: str
    write_key: str
    schema: str


@dataclass
class WarehouseSeed:
    id: str = "wh_sandbox_pg"
    enabled: bool = True
    name: str = "Postgres"
    connected_sources: list[str] = field(default_factory=lambda: ["src_web_app", "src_backend"])


def _default_sources() -> list[SourceSeed]:
    return [
        SourceSeed("src_web_app", "web_app", "Web App", "wk_seg_web_app", "app_events"),
        SourceSeed("src_backend", "backend", "Backend", "wk_seg_backend", "app_events"),
    ]


@dataclass
class SegmentSettings:
    token: str = "sandbox-segment-token"
    workspace_id: str = "ws_sandbox"
    warehouses: list[WarehouseSeed] = field(default_factory=lambda: [WarehouseSeed()])
    sources: list[SourceSeed] = field(default_factory=_default_sources)
    load_interval_s: float | None = 5.0  # None or 0: loads run only when forced (POST /sandbox/loads/run)
    load_duration_s: float = 1.5
    sync_list_per_minute: int = 2
    api_requests_per_minute: int = 6000
    rate_window_s: float = 60.0
    page_size: int = 200
    webhook_max_attempts: int = 8
    webhook_initial_backoff_s: float = 0.5
    webhook_max_backoff_s: float = 30.0
    webhook_timeout_s: float = 5.0
    webhook_workers: int = 2
    advanced_sync_schedule: dict[str, Any] | None = None
    # Classic Webhooks is "maintenance" and "private" in Segment's catalog: new workspaces may not be able to
    # create it. False (the stricter default) refuses it like a workspace without it; Webhooks (Actions) works.
    classic_webhooks_available: bool = False
    # Destination subscription create/update/remove: "The rate limit for this endpoint is 5 requests per minute"
    # (segmentio/public-api-sdk-python docs/DestinationsApi.md).
    subscription_writes_per_minute: int = 5
