"""How many API calls the library's sensors make per hour of waiting, at their defaults.

1. Derived: from each sensor's default ``poke_interval``, the Segment sync-list floor (2 requests/minute) and
   the requests one check makes.
2. Measured: a SegmentWarehouseLoadSensor waits (poke mode, then deferred through its trigger) against the
   Segment emulator with a compressed clock (1 minute = 1 second: the emulator allows 2 sync-list requests per
   second, the sensor's floor and interval are scaled the same way); every request the emulator receives is
   counted. The ratio measured/derived is printed (close to 1 means the derivation holds), plus the 429s seen.

Usage: .venv/bin/python scripts/bench_sensor_api_calls.py [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import sys
import time
from collections import Counter
from datetime import UTC, datetime

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))

COMPRESSION = 60.0  # one emulated minute lasts one real second
WAREHOUSE_ID = "wh_sandbox_pg"
TOKEN = "sandbox-segment-token"


class CountingApp:
    """ASGI wrapper: counts every HTTP request the emulator receives, by (method, route kind) and status."""

    def __init__(self, app):
        self.app = app
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        kind = "sync-list" if path.endswith("/syncs") else "other"
        self.requests[f"{scope['method']} {kind}"] += 1

        async def counting_send(message):
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        return await self.app(scope, receive, counting_send)


def derived_table() -> list[tuple[str, float, float, int, float]]:
    from segment_rudderstack.sensors.migration import (
        ClientAdoptionSensor,
        RudderStackSyncGateSensor,
        RudderStackUploadSensor,
        SegmentSourceDrainedSensor,
        SegmentWarehouseLoadSensor,
    )

    started = datetime.now(UTC)
    sensors = [
        (
            SegmentWarehouseLoadSensor(task_id="a", warehouse_id="w", started_after=started),
            1,
            "Segment sync list",
        ),
        (
            RudderStackSyncGateSensor(task_id="b", warehouse_id="w", started_after=started),
            2,
            "Segment warehouse + sync list",
        ),
        (
            SegmentSourceDrainedSensor(task_id="c", warehouse_id="w", source_id="s", started_after=started),
            1,
            "Segment sync list",
        ),
        (
            RudderStackUploadSensor(task_id="d", source_ids=["s"]),
            1,
            "RudderStack pending-events (per source)",
        ),
        (
            ClientAdoptionSensor(task_id="e", warehouse_conn_id="x", namespace="n", webhook_source_id="s"),
            1,
            "warehouse query (not an API)",
        ),
    ]
    rows = []
    for sensor, per_check, what in sensors:
        interval = sensor._interval()
        rows.append(
            (
                type(sensor).__name__,
                float(sensor.poke_interval),
                interval,
                per_check,
                3600 / interval * per_check,
                what,
                float(sensor.min_poke_interval),
            )
        )
    return rows


def measure(seconds: float) -> dict[str, dict[str, float]]:
    from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

    from sandbox.common import ServerThread
    from sandbox.segment import SegmentEmulator, SegmentSettings
    from sandbox.warehouse import Warehouse
    from segment_rudderstack.sensors.migration import SegmentWarehouseLoadSensor

    # Compressed: the sync list allows 2 requests per (1-second) minute, like 2 per minute in real life.
    settings = SegmentSettings(load_interval_s=None, sync_list_per_minute=2, rate_window_s=60 / COMPRESSION)
    emulator = SegmentEmulator(settings, Warehouse("postgresql://unused/never-loaded"), None)
    counting = CountingApp(emulator.app)
    server = ServerThread(counting).start()
    os.environ["AIRFLOW_CONN_SEGMENT_DEFAULT"] = json.dumps(
        {
            "conn_type": "http",
            "host": server.url,
            "password": TOKEN,
            "extra": {"max_attempts": 5, "backoff_initial": 0.05, "backoff_max": 0.2},
        }
    )
    results: dict[str, dict[str, float]] = {}
    try:
        for mode, poke_interval in (
            ("poke, default interval", None),
            ("deferred, default interval", None),
            ("poke, interval below the floor", 1.0),
        ):
            defaults = SegmentWarehouseLoadSensor(
                task_id="x", warehouse_id=WAREHOUSE_ID, started_after="2000-01-01"
            )
            interval = (
                poke_interval if poke_interval is not None else float(defaults.poke_interval)
            ) / COMPRESSION
            sensor = SegmentWarehouseLoadSensor(
                task_id="wait_for_final_load",
                warehouse_id=WAREHOUSE_ID,
                started_after=datetime.now(UTC).isoformat(),  # no load will start: it waits the whole time
                poke_interval=interval,
                timeout=seconds,
                sync_list_requests_per_minute=2 * COMPRESSION,
                deferrable=mode.startswith("deferred"),
            )
            counting.requests.clear()
            counting.statuses.clear()
            began = time.monotonic()
            try:
                sensor.execute({})
            except AirflowSensorTimeout:
                pass
            except TaskDeferred as deferred:

                async def run(trigger=deferred.trigger):
                    async for event in trigger.run():
                        return event.payload

                assert asyncio.run(run())["status"] == "timeout"
            elapsed = time.monotonic() - began
            emulated_hours = elapsed * COMPRESSION / 3600
            sync_lists = counting.requests["GET sync-list"]
            expected = 1 + elapsed / sensor._interval()  # the first check, then one per interval
            results[mode] = {
                "elapsed_s": elapsed,
                "emulated_minutes": elapsed * COMPRESSION / 60,
                "sync_list_requests": sync_lists,
                "per_emulated_hour": sync_lists / emulated_hours,
                "expected": expected,
                "ratio": sync_lists / expected,
                "http_429": counting.statuses[429],
                "effective_interval_emulated_s": sensor._interval() * COMPRESSION,
            }
    finally:
        server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="real seconds each measured wait lasts")
    args = parser.parse_args()

    print("Derived, at the defaults (one check = the requests listed):")
    print(
        f"{'sensor':30} {'poke_interval':>13} {'floor':>6} {'effective':>9} {'req/check':>9} {'req/hour':>8}  what"
    )
    for name, poke, interval, per_check, per_hour, what, floor in derived_table():
        print(f"{name:30} {poke:13.0f} {floor:6.0f} {interval:9.0f} {per_check:9d} {per_hour:8.0f}  {what}")
    print(
        "  Segment's sync-list limit is 2/minute = 120/hour; the floor keeps every Segment sensor at or below it."
    )
    print(
        f"\nMeasured against the Segment emulator, clock compressed {COMPRESSION:.0f}x, {args.seconds:.0f} s per run:"
    )
    for mode, r in measure(args.seconds).items():
        print(
            f"  {mode:32} effective interval {r['effective_interval_emulated_s']:5.0f} s (emulated): "
            f"{r['sync_list_requests']:3d} sync-list requests in {r['emulated_minutes']:4.0f} emulated minutes "
            f"= {r['per_emulated_hour']:5.1f}/hour; measured/derived {r['ratio']:.2f}; 429s {r['http_429']}"
        )


if __name__ == "__main__":
    main()
