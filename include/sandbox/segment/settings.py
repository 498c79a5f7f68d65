"""What a Segment emulator starts with: its seeds (sources, warehouses) and its settings (limits, clocks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FunctionSeed",
    "OtherDestinationSeed",
    "SegmentSettings",
    "SourceSeed",
    "TrackingPlanSeed",
    "WarehouseSeed",
    "WorkspaceSeed",
    "sandbox_workspace",
]


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


# ------------------------------------------------ what the workspace holds beside the warehouse (What stays on Segment)


@dataclass
class OtherDestinationSeed:
    """A destination of a source that is not the migration's (DestinationV1)."""

    id: str
    source_id: str
    name: str
    enabled: bool = True


@dataclass
class FunctionSeed:
    """A Function of the workspace (ListFunctionItemV1)."""

    id: str
    display_name: str
    resource_type: str
    description: str = ""


@dataclass
class TrackingPlanSeed:
    """A tracking plan (TrackingPlanV1) and the sources connected to it."""

    id: str
    name: str
    source_ids: list[str] = field(default_factory=list)
    type: str = "LIVE"
    description: str = ""


@dataclass
class WorkspaceSeed:
    """What the workspace holds beside the warehouse (empty by default: a workspace with nothing else)."""

    destinations: list[OtherDestinationSeed] = field(default_factory=list)
    functions: list[FunctionSeed] = field(default_factory=list)
    tracking_plans: list[TrackingPlanSeed] = field(default_factory=list)


def sandbox_workspace() -> WorkspaceSeed:
    """The sandbox world's: an Amplitude destination and a tracking plan on the web app (a migrated source), and a
    destination Function, so the sandbox report's "What stays on Segment" has something in each table."""
    return WorkspaceSeed(
        destinations=[
            OtherDestinationSeed("dst_amplitude_web", "src_web_app", "Amplitude (product analytics)")
        ],
        functions=[
            FunctionSeed(
                "dfn_enrich_web",
                "Enrich web events",
                "DESTINATION",
                "Adds account traits before forwarding to the CRM",
            )
        ],
        tracking_plans=[TrackingPlanSeed("tp_web_app", "Web App Tracking Plan", ["src_web_app"])],
    )


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
    # Other destinations, Functions and tracking plans of the workspace (functions.py, tracking_plans.py); none by
    # default, the sandbox world's in sandbox.config.
    workspace: WorkspaceSeed = field(default_factory=lambda: WorkspaceSeed())
