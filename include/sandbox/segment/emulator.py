"""The Segment emulator: one store, the background work over it (loads, webhook delivery), and the app that
includes one router per API resource. See the package docstring for the contracts it speaks."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import FastAPI

from sandbox.common import FaultInjector, RequestLog, fault_middleware, install_api_error_handler, redact
from sandbox.ledger import Ledger
from sandbox.segment import (
    control,
    delivery_overview,
    destinations,
    functions,
    sources,
    subscriptions,
    tracking,
    tracking_plans,
    warehouses,
    workspace,
)
from sandbox.segment.api import PublicApi
from sandbox.segment.delivery import WebhookDelivery
from sandbox.segment.delivery_overview import DeliveryOverviewRecorder
from sandbox.segment.loads import Loads
from sandbox.segment.settings import SegmentSettings
from sandbox.segment.store import SegmentStore
from sandbox.warehouse import Warehouse

__all__ = ["SegmentEmulator"]


class SegmentEmulator:
    """The Segment emulator; see the package docstring. `warehouse`/`ledger` may be shared with others."""

    def __init__(self, settings: SegmentSettings, warehouse: Warehouse, ledger: Ledger | None):
        self.settings = settings
        self.warehouse = warehouse
        self.ledger = ledger
        self.faults = FaultInjector()
        self.log = RequestLog()
        self._stop = threading.Event()
        self._wake_loads = threading.Event()
        self._threads: list[threading.Thread] = []
        self.delivery_overview = DeliveryOverviewRecorder()  # Delivery Overview metrics (beta Public API)
        self.store = SegmentStore.seeded(settings)
        self.api = PublicApi(settings, self.log, self.store.lock)
        self.loads = Loads(
            settings, self.store, warehouse, self.faults, self.log, self._stop, self._wake_loads
        )
        self.delivery = WebhookDelivery(
            settings, self.store, self.faults, self.log, self.delivery_overview, self._stop
        )
        self.intake = tracking.Intake(self.store, self.delivery_overview, self.delivery, ledger)
        self.app = self._build_app()

    def paths(self, message_id: str) -> list[str]:
        """The paths one event took, in order: received, queued_for_warehouse, loaded:<wh>, webhook:<dest>, ..."""
        return self.store.paths_of(message_id)

    def state(self) -> dict[str, Any]:
        store = self.store
        with store.lock:
            return {
                "warehouses": [
                    {
                        **redact(w),
                        "connectedSources": sorted(store.connections[w["id"]]),
                        "running": store.running.get(w["id"]),
                    }
                    for w in store.warehouses.values()
                ],
                "sources": [
                    {
                        "id": s["id"],
                        "slug": s["slug"],
                        "schema": s["schema"],
                        "pending": len(store.pending[s["id"]]),
                    }
                    for s in store.sources.values()
                ],
                "destinations": [
                    {
                        **redact(d),
                        "subscriptions": [dict(m) for m in store.subscriptions.get(d["id"], {}).values()],
                    }
                    for d in store.destinations.values()
                ],
                "counters": dict(store.counters),
                "webhookQueue": self.delivery.queued(),
                "faults": self.faults.state(),
            }

    # ============================================================================== background

    def start_background(self) -> None:
        """Start the load scheduler (when `load_interval_s` is set) and the webhook delivery workers."""
        if self._threads:
            return
        self._stop.clear()
        if self.settings.load_interval_s:
            self._threads.append(
                threading.Thread(target=self.loads.schedule, name="segment-loads", daemon=True)
            )
        for n in range(max(1, self.settings.webhook_workers)):
            self._threads.append(
                threading.Thread(target=self.delivery.work, name=f"segment-webhook-{n}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop_background(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake_loads.set()
        self.delivery.wake()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def wait_webhooks_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until no webhook delivery is queued or in flight (True) or the timeout passes (False)."""
        return self.delivery.wait_idle(timeout_s)

    def run_load(self, warehouse_id: str | None = None) -> list[dict[str, Any]]:
        """Run one load now for `warehouse_id` (default: every warehouse); returns the closed reports.

        Returns [] for a disabled warehouse. Blocks while another load of the same warehouse runs.
        """
        return self.loads.run(warehouse_id)

    def receive(self, source_id: str, events: list[dict[str, Any]]) -> None:
        """Accept validated events on a source (the Tracking API calls this)."""
        self.intake.receive(source_id, events)

    # ============================================================================== app

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Segment emulator (sandbox)", docs_url=None, redoc_url=None, openapi_url=None)
        install_api_error_handler(app)
        app.middleware("http")(fault_middleware(self.faults, rate_limited=self.api.injected_rate_limit))
        store, api, settings = self.store, self.api, self.settings
        app.include_router(
            delivery_overview.router(
                self.delivery_overview,
                dependencies=[api.auth, api.limited],
                source_exists=lambda sid: sid in store.sources,
                destination_source=lambda did: store.destinations.get(did, {}).get("sourceId"),
                faults=self.faults,
            )
        )
        app.include_router(workspace.router(api))
        app.include_router(warehouses.router(store, api, settings, self.loads))
        app.include_router(sources.router(store, api))
        app.include_router(functions.router(settings.workspace, api, self.faults))
        app.include_router(tracking_plans.router(settings.workspace, store, api, self.faults))
        app.include_router(destinations.router(store, api, settings))
        app.include_router(subscriptions.router(store, api, settings))
        app.include_router(tracking.router(store.write_keys, self.intake, self.log))
        app.include_router(control.router(store, self.faults, self.log, self.loads, self.state))
        return app
