"""The Segment emulator's state: the stores the routers and the background work read and change, under one lock.

Each router is handed this object explicitly (never the emulator), so what a resource can touch is visible in
its module: the stores it names, and the lookups below that answer 404 as Segment does."""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.common import ApiError
from sandbox.segment.catalog import (
    AMPLITUDE_ACTIONS_METADATA,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_METADATA_ID,
    source_metadata,
    warehouse_metadata,
)
from sandbox.segment.settings import SegmentSettings

__all__ = ["COUNTERS", "SegmentStore"]

COUNTERS = (
    "received",
    "loaded",
    "dropped",
    "not_loaded",
    "webhook_delivered",
    "webhook_retried",
    "webhook_gave_up",
    "loads",
)


@dataclass
class SegmentStore:
    """Sources, warehouses, their connections, destinations and their mappings, queued events, sync reports and
    the path each event took. Every read and change holds `lock`."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    write_keys: dict[str, str] = field(default_factory=dict)
    warehouses: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: dict[str, set[str]] = field(default_factory=dict)
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )  # destination id -> mapping id -> mapping
    pending: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    running: dict[str, dict[str, Any]] = field(default_factory=dict)
    load_locks: dict[str, threading.Lock] = field(default_factory=dict)
    paths: dict[str, list[str]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    # ============================================================================== seeds

    @classmethod
    def seeded(cls, settings: SegmentSettings) -> SegmentStore:
        store = cls()
        store._seed(settings)
        return store

    def _seed(self, s: SegmentSettings) -> None:
        for seed in s.sources:
            self.sources[seed.id] = {
                "id": seed.id,
                "slug": seed.slug,
                "name": seed.name,
                "workspaceId": s.workspace_id,
                "enabled": True,
                "writeKeys": [seed.write_key],
                "labels": [],
                "metadata": source_metadata(),
                "settings": {},
                "schema": seed.schema,
            }
            self.write_keys[seed.write_key] = seed.id
            self.pending[seed.id] = []
        for seed in s.warehouses:
            self.warehouses[seed.id] = {
                "id": seed.id,
                "workspaceId": s.workspace_id,
                "enabled": seed.enabled,
                "metadata": warehouse_metadata(),
                "settings": {"name": seed.name, "database": "postgres"},
            }
            unknown = [sid for sid in seed.connected_sources if sid not in self.sources]
            if unknown:
                raise ValueError(
                    f"warehouse seed {seed.id!r} connects unknown sources {unknown}; "
                    f"known sources are {sorted(self.sources)}"
                )
            self.connections[seed.id] = set(seed.connected_sources)
            self.reports[seed.id] = []
            self.load_locks[seed.id] = threading.Lock()
        for other in s.workspace.destinations:  # DestinationV1 (SDK models/destination_v1.py)
            if other.source_id not in self.sources:
                raise ValueError(f"destination seed {other.id!r} is on unknown source {other.source_id!r}")
            self.destinations[other.id] = {
                "id": other.id,
                "name": other.name,
                "enabled": other.enabled,
                "sourceId": other.source_id,
                "settings": {},
                "metadata": dict(AMPLITUDE_ACTIONS_METADATA),
            }

    # ============================================================================== reads & paths

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):04d}{uuid.uuid4().hex[:8]}"

    def open_warehouses(self, source_id: str) -> list[str]:
        return [
            wid
            for wid, srcs in self.connections.items()
            if source_id in srcs and self.warehouses[wid]["enabled"]
        ]

    def enabled_webhooks(self, source_id: str) -> list[dict[str, Any]]:
        kinds = (WEBHOOKS_METADATA_ID, WEBHOOKS_ACTIONS_METADATA_ID)
        return [
            d
            for d in self.destinations.values()
            if d["sourceId"] == source_id and d["enabled"] and d["metadata"]["id"] in kinds
        ]

    def add_path(self, message_id: str, path: str) -> None:
        self.paths.setdefault(message_id, []).append(path)

    def paths_of(self, message_id: str) -> list[str]:
        """The paths one event took, in order: received, queued_for_warehouse, loaded:<wh>, webhook:<dest>, ..."""
        with self.lock:
            return list(self.paths.get(message_id, []))

    # ============================================================================== lookups (404 as Segment)

    def get_warehouse(self, warehouse_id: str) -> dict[str, Any]:
        warehouse = self.warehouses.get(warehouse_id)
        if warehouse is None:
            raise ApiError(404, "not-found", f"Warehouse {warehouse_id!r} not found in this workspace")
        return warehouse

    def get_source(self, source_id: str) -> dict[str, Any]:
        source = self.sources.get(source_id)
        if source is None:
            raise ApiError(404, "not-found", f"Source {source_id!r} not found in this workspace")
        return source

    def get_destination(self, destination_id: str) -> dict[str, Any]:
        destination = self.destinations.get(destination_id)
        if destination is None:
            raise ApiError(404, "not-found", f"Destination {destination_id!r} not found in this workspace")
        return destination

    def get_subscription(self, destination_id: str, subscription_id: str) -> dict[str, Any]:
        self.get_destination(destination_id)
        mapping = self.subscriptions.get(destination_id, {}).get(subscription_id)
        if mapping is None:
            raise ApiError(
                404,
                "not-found",
                f"Subscription {subscription_id!r} not found on destination {destination_id!r}",
            )
        return mapping
