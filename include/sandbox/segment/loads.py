"""Scheduled warehouse loads: each enabled warehouse takes the events queued for its connected sources, keeps a
running sync report per source for `load_duration_s`, writes the events with `Warehouse.load_segment` (Segment's rules) and
closes the reports (Success / Partial / Failure). Faults "load_failure" and "load_partial" apply to the next load.
Events queued for a source that no longer reaches an enabled warehouse are not loaded by Segment."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from sandbox.common import FaultInjector, RequestLog, isoformat_z, utcnow
from sandbox.segment.settings import SegmentSettings
from sandbox.segment.store import SegmentStore
from sandbox.warehouse import Warehouse, WarehouseError

__all__ = ["Loads", "render_report"]

Taken = dict[str, list[tuple[int, dict[str, Any]]]]
Outcome = dict[str, tuple[str, int, list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]]


def _human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs}s"


def _notice(level: str, message: str) -> dict[str, Any]:
    """A `SyncNoticeV1` (SDK model sync_notice_v1.py): {level, message, createdAt}. Segment does not document
    the level values; the sandbox uses ERROR and WARNING."""
    return {"level": level, "message": message, "createdAt": isoformat_z(utcnow())}


def render_report(report: dict[str, Any]) -> dict[str, Any]:
    """A copy of a sync report as the API answers it: a running sync's partial duration counted up to now."""
    rendered = dict(report, notices=[dict(n) for n in report["notices"]])
    if rendered["end"] is None:
        seconds = max(0.0, (utcnow() - datetime.fromisoformat(rendered["start"])).total_seconds())
        rendered.update(duration=round(seconds, 3), humanDuration=_human_duration(seconds))
    return rendered


class Loads:
    """The load scheduler and the loads it runs, over the store's queues and reports."""

    def __init__(
        self,
        settings: SegmentSettings,
        store: SegmentStore,
        warehouse: Warehouse,
        faults: FaultInjector,
        log: RequestLog,
        stop: threading.Event,
        wake: threading.Event,
    ):
        self.settings = settings
        self.store = store
        self.warehouse = warehouse
        self.faults = faults
        self.log = log
        self._stop = stop
        self._wake = wake

    def schedule(self) -> None:
        interval = float(self.settings.load_interval_s or 0)
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            for warehouse_id in list(self.store.warehouses):
                try:
                    self.run(warehouse_id)
                except Exception as exc:  # a broken load must not kill the scheduler
                    self.log.append(
                        "load", phase="error", warehouseId=warehouse_id, error=f"{type(exc).__name__}: {exc}"
                    )

    def run(self, warehouse_id: str | None = None) -> list[dict[str, Any]]:
        """Run one load now for `warehouse_id` (default: every warehouse); returns the closed reports.

        Returns [] for a disabled warehouse. Blocks while another load of the same warehouse runs.
        """
        if warehouse_id is None:
            return [r for wid in list(self.store.warehouses) for r in self.run(wid)]
        if warehouse_id not in self.store.warehouses:
            raise KeyError(f"unknown warehouse {warehouse_id!r}; known: {sorted(self.store.warehouses)}")
        with self.store.load_locks[warehouse_id]:
            return self._run_locked(warehouse_id)

    def _run_locked(self, warehouse_id: str) -> list[dict[str, Any]]:
        begun = self._begin(warehouse_id)
        if begun is None:
            return []
        taken, reports, failure, partial = begun
        began = time.monotonic()
        self._stop.wait(self.settings.load_duration_s)  # the load "runs"; ends early only on shutdown
        outcome = self._write(taken, failure, partial)
        return self._finish(warehouse_id, reports, outcome, began)

    def _begin(
        self, warehouse_id: str
    ) -> tuple[Taken, dict[str, dict[str, Any]], dict[str, Any] | None, dict[str, Any] | None] | None:
        """Take the queued events and open one running report per source (None: the warehouse is disabled)."""
        store = self.store
        with store.lock:
            if not store.warehouses[warehouse_id]["enabled"]:
                return None
            started = utcnow()
            taken: Taken = {sid: list(store.pending[sid]) for sid in sorted(store.connections[warehouse_id])}
            reports = {}
            for sid in taken:
                # SyncV1 (SDK model sync_v1.py): duration (seconds) and humanDuration are required also while
                # the sync runs ("Returns the partial duration if the sync has not finished yet"); rendered live
                # by `render_report`. The status enum is not documented: the sandbox says Running / Success /
                # Partial / Failure (the UI shows Success / Partial / Failure).
                report = {
                    "sourceId": sid,
                    "start": isoformat_z(started),
                    "end": None,
                    "status": "Running",
                    "duration": 0,
                    "humanDuration": _human_duration(0),
                    "count": 0,
                    "notices": [],
                }
                store.reports[warehouse_id].append(report)
                reports[sid] = report
            failure = self.faults.take("load_failure")
            partial = self.faults.take("load_partial")
            store.running[warehouse_id] = {"start": isoformat_z(started), "sources": sorted(taken)}
            store.counters["loads"] += 1
            self.log.append(
                "load",
                phase="start",
                warehouseId=warehouse_id,
                start=isoformat_z(started),
                sources=sorted(taken),
                schemas=sorted({store.sources[sid]["schema"] for sid in taken}),
                events=sum(len(v) for v in taken.values()),
            )
        return taken, reports, failure, partial

    def _write(self, taken: Taken, failure: dict[str, Any] | None, partial: dict[str, Any] | None) -> Outcome:
        """Write each source's events (half of them under "load_partial", none under "load_failure")."""
        outcome: Outcome = {}
        for sid, items in taken.items():
            if failure:
                note = failure.get("message", "Injected failure: the warehouse rejected the load")
                outcome[sid] = ("Failure", 0, [_notice("ERROR", note)], [])
                continue
            chosen = items[: len(items) // 2] if partial and items else items
            notices = []
            if partial and items:
                notices.append(
                    _notice(
                        "WARNING",
                        f"Partial load: {len(items) - len(chosen)} of {len(items)} "
                        "events deferred to the next load (injected fault)",
                    )
                )
            try:
                # Segment's documented loader rules: sandbox.segment_loader (append, go-snakecase, ...)
                result = self.warehouse.load_segment(
                    self.store.sources[sid]["schema"], [e for _, e in chosen]
                )
            except WarehouseError as exc:
                outcome[sid] = ("Failure", 0, [_notice("ERROR", str(exc))], [])
                continue
            notices += [
                _notice("WARNING", f"rejected {r['messageId']}: {r['reason']}") for r in result.rejected
            ]
            status = "Partial" if (partial and items) or result.rejected else "Success"
            outcome[sid] = (status, result.events_loaded, notices, chosen)
        return outcome

    def _finish(
        self, warehouse_id: str, reports: dict[str, dict[str, Any]], outcome: Outcome, began: float
    ) -> list[dict[str, Any]]:
        """Dequeue what was written and close the reports."""
        store = self.store
        with store.lock:
            ended = utcnow()
            seconds = time.monotonic() - began
            for sid, (status, count, notices, chosen) in outcome.items():
                if chosen:
                    last = chosen[-1][0]
                    store.pending[sid] = [p for p in store.pending[sid] if p[0] > last]
                    for _, event in chosen:
                        store.add_path(event["messageId"], f"loaded:{warehouse_id}")
                store.counters["loaded"] += count
                reports[sid].update(
                    end=isoformat_z(ended),
                    status=status,
                    duration=round(seconds, 3),
                    humanDuration=_human_duration(seconds),
                    count=count,
                    notices=notices,
                )
            store.running.pop(warehouse_id, None)
            self.log.append(
                "load",
                phase="end",
                warehouseId=warehouse_id,
                end=isoformat_z(ended),
                statuses={sid: o[0] for sid, o in outcome.items()},
                counts={sid: o[1] for sid, o in outcome.items()},
            )
            return [render_report(r) for r in reports.values()]

    def discard_unreachable_pending(self, reason: str) -> None:
        """Events queued for sources that no longer reach an enabled warehouse are not loaded by Segment."""
        store = self.store
        for sid, items in store.pending.items():
            if items and not store.open_warehouses(sid):
                for _, event in items:
                    store.add_path(event["messageId"], "not_loaded")
                store.counters["not_loaded"] += len(items)
                self.log.append("warehouse_queue", sourceId=sid, discarded=len(items), reason=reason)
                store.pending[sid] = []
