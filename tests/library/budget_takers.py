"""Runs ConditionTriggers for a while in one asyncio loop, as a triggerer would (used in-process and as a
second process by test_sync_list_budget.py):

    python -m tests.library.budget_takers <seconds> '<json list of watch specs>'

prints ``ready`` once imported, then ``{"checks": n, "errors": [...]}`` on its last line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

CONN_ID = "segment_budget"
POKE_INTERVAL_S = 0.2
SOURCES = ["src_a", "src_b", "src_c", "src_d", "src_e"]  # 5 server-side sources on each warehouse


def plan_watches(warehouse_id: str, started_after: str, sources: list[str] = SOURCES) -> list[dict[str, Any]]:
    """One plan's sync-list watchers (as trigger watch specs): its final-load sensor, its sync gate and one drain
    sensor per server-side source, all on the plan's warehouse."""
    common = {"segment_conn_id": CONN_ID, "warehouse_id": warehouse_id, "started_after": started_after}
    load = {"source_ids": sources, "allow_partial": False, **common}
    specs = [
        {"class": "segment_rudderstack.waits.watches.SegmentLoadWatch", "kwargs": load},
        {"class": "segment_rudderstack.waits.watches.SyncGateWatch", "kwargs": load},
    ]
    specs += [
        {
            "class": "segment_rudderstack.waits.watches.SourceDrainedWatch",
            "kwargs": {**common, "source_id": s, "consecutive_loads": 2},
        }
        for s in sources
    ]
    return specs


@contextlib.contextmanager
def segment_emulator(pg_dsn: str, warehouse_ids: list[str], **settings: Any) -> Iterator[tuple[Any, str]]:
    """The Segment emulator on a real HTTP server with ``SOURCES`` connected to each of ``warehouse_ids``, no
    loads of its own; ``settings`` go to ``SegmentSettings`` (e.g. the sync-list limit). Yields it and its URL."""
    from sandbox.common import ServerThread
    from sandbox.segment import SegmentEmulator, SegmentSettings, SourceSeed, WarehouseSeed
    from sandbox.warehouse import Warehouse

    emulator = SegmentEmulator(
        SegmentSettings(
            sources=[SourceSeed(s, s, s, f"wk_{s}", "budget") for s in SOURCES],
            warehouses=[WarehouseSeed(id=w, connected_sources=SOURCES) for w in warehouse_ids],
            load_interval_s=None,
            **settings,
        ),
        Warehouse(pg_dsn),
        None,
    )
    server = ServerThread(emulator.app).start()
    try:
        yield emulator, server.url
    finally:
        server.stop()


def run_triggers(specs: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    from segment_rudderstack.triggers.condition import ConditionTrigger

    async def main() -> dict[str, Any]:
        deadline = time.time() + seconds
        triggers = [
            ConditionTrigger(
                watch={"class": s["class"], "kwargs": s["kwargs"]},
                poke_interval=POKE_INTERVAL_S,
                deadline=deadline,
            )
            for s in specs
        ]

        async def first_event(trigger):
            async for event in trigger.run():
                return event.payload

        events = await asyncio.gather(*(first_event(t) for t in triggers))
        return {
            "checks": sum(e.get("checks", 0) for e in events),
            "errors": [e for e in events if e["status"] != "timeout"],
        }

    return asyncio.run(main())


if __name__ == "__main__":
    import segment_rudderstack.triggers.condition  # noqa: F401 (imports done before saying ready)
    import segment_rudderstack.waits.watches  # noqa: F401

    print("ready", flush=True)
    print(json.dumps(run_triggers(json.loads(sys.argv[2]), float(sys.argv[1]))))
