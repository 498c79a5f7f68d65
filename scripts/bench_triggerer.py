"""Benchmark: N deferred Segment sensors in one triggerer loop, against the http provider's HttpSensorTrigger.

A local HTTP server (a separate process, so its CPU is not counted) answers every sync-list request with the
same page of ``--reports`` Segment sync reports (the shape of Segment's ``GET /warehouses/{id}/syncs``); the
baseline's path answers the same body with 404, so HttpSensorTrigger keeps polling too. Each mode runs in its
own process (so RSS is its own): N triggers in one asyncio loop, first checks spread over one interval, for
``--seconds``. Printed per mode, over the time after a warm-up interval:

- CPU per check: process CPU time / checks made;
- on time: checks that started within 0.5 s of when they were due (previous check's end + interval), as a
  share of the checks due in the window;
- loop lag p99: how late a 50 ms ticker wakes up;
- RSS per trigger: RSS growth from before the triggers started, divided by N.

    .venv/bin/python scripts/bench_triggerer.py [--triggers 500] [--interval 5] [--seconds 40] [--reports 500]

Timings are from one run on one machine (2 shared cores here): compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))

TOKEN = "bench-segment-token"
CONN_ID = "segment_bench"
LATE_S = 0.5


# ------------------------------------------------------------------------------------------ server
def sync_page(reports: int) -> bytes:
    """A page of Segment sync reports (SyncV1: sourceId, start, end, status, duration, count, notices)."""
    now = datetime.now(UTC)
    items = []
    for n in range(reports):
        start = now - timedelta(minutes=10 * (n + 1))
        items.append(
            {
                "sourceId": f"src_{n % 40:03d}",
                "start": start.isoformat(),
                "end": (start + timedelta(seconds=90)).isoformat(),
                "status": "SUCCESS",
                "duration": 90.0,
                "humanDuration": "1m30s",
                "count": 1000 + n,
                "notices": [],
            }
        )
    return json.dumps(
        {"data": {"reports": items, "pagination": {"current": "MA==", "totalEntries": reports}}}
    ).encode()


def serve(port: int, reports: int) -> None:
    import uvicorn

    body = sync_page(reports)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        status = 404 if scope["path"].startswith("/baseline/") else 200
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ one mode
def rss_kb() -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_mode(mode: str, url: str, triggers: int, interval: float, seconds: float) -> dict:
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "http", "host": url, "password": TOKEN}
    )
    from airflow.providers.http.hooks.http import HttpAsyncHook
    from airflow.providers.http.triggers.http import HttpSensorTrigger

    from segment_rudderstack.triggers.condition import ConditionTrigger
    from segment_rudderstack.waits.watches import SegmentLoadWatch

    checks: dict[str, list[tuple[float, float]]] = {}

    def instrument(cls, name, key_of):
        original = getattr(cls, name)

        async def timed(self, *args, **kwargs):
            began = time.monotonic()
            try:
                return await original(self, *args, **kwargs)
            finally:
                checks.setdefault(key_of(self, args, kwargs), []).append((began, time.monotonic()))

        setattr(cls, name, timed)

    if mode == "ours":
        instrument(SegmentLoadWatch, "aobserve", lambda self, a, k: self.warehouse_id)
    else:
        instrument(HttpAsyncHook, "run", lambda self, a, k: k.get("endpoint"))

    lags: list[float] = []

    async def ticker(stop: float) -> None:
        while time.monotonic() < stop:
            before = time.monotonic()
            await asyncio.sleep(0.05)
            lags.append(time.monotonic() - before - 0.05)

    async def one(n: int, start: float, stop: float) -> None:
        delay = n * interval / triggers
        if mode == "ours":
            trigger = ConditionTrigger(
                watch=SegmentLoadWatch(
                    segment_conn_id=CONN_ID,
                    warehouse_id=f"wh_{n:04d}",
                    started_after=datetime.now(UTC).isoformat(),
                    source_ids=None,
                    allow_partial=False,
                ).spec(),
                poke_interval=interval,
                deadline=time.time() + (stop - time.monotonic()) + 60,
                first_check_at=time.time() + delay,
            )
        else:
            trigger = HttpSensorTrigger(
                endpoint=f"/baseline/wh_{n:04d}/syncs", http_conn_id=CONN_ID, poke_interval=interval
            )
            await asyncio.sleep(delay)
        async for event in trigger.run():
            raise RuntimeError(f"trigger {n} fired unexpectedly: {event.payload}")

    async def main() -> dict:
        # Warm-up: one trigger makes its first checks, so imports and the shared client are not counted per trigger.
        warm = asyncio.create_task(one(triggers, time.monotonic(), time.monotonic() + seconds + interval * 3))
        while not checks:
            await asyncio.sleep(0.05)
        start = time.monotonic()
        stop = start + seconds
        rss_before = rss_kb()
        tasks = [asyncio.create_task(one(n, start, stop)) for n in range(triggers)]
        tick = asyncio.create_task(ticker(stop))
        await asyncio.sleep(interval * 2)  # warm-up: every trigger has made its first checks
        cpu0, window0 = time.process_time(), time.monotonic()
        lags.clear()
        await asyncio.sleep(max(0.0, stop - time.monotonic()))
        cpu1, window1 = time.process_time(), time.monotonic()
        rss_after = rss_kb()
        for t in (*tasks, warm):
            t.cancel()
        await asyncio.gather(*tasks, warm, tick, return_exceptions=True)
        errors = [t.exception() for t in tasks if not t.cancelled() and t.exception()]
        if errors:
            raise errors[0]
        made = on_time = due = 0
        durations = []
        for key, spans in checks.items():
            if key.endswith(f"{triggers:04d}") or key.endswith(f"{triggers:04d}/syncs"):
                continue  # the warm-up trigger
            for (_, prev_end), (began, end) in zip(spans, spans[1:], strict=False):
                if window0 <= began < window1:
                    made += 1
                    durations.append(end - began)
                    on_time += began - (prev_end + interval) <= LATE_S
            # checks due in the window if every check had been on time (check length from this trigger)
            span = statistics.median([e - b for b, e in spans]) if spans else 0.0
            due += int((window1 - window0) / (interval + span))
        lags.sort()
        return {
            "mode": mode,
            "triggers": triggers,
            "checks": made,
            "due": due,
            "cpu_ms_per_check": (cpu1 - cpu0) * 1000 / max(made, 1),
            "on_time_pct": 100.0 * min(on_time, due) / max(due, 1),
            "made_pct": 100.0 * min(made, due) / max(due, 1),
            "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))] if lags else float("nan"),
            "check_ms_p50": 1000 * statistics.median(durations) if durations else float("nan"),
            "rss_kb_per_trigger": (rss_after - rss_before) / triggers,
            "rss_mb": rss_after / 1024,
        }

    return asyncio.run(main())


# ------------------------------------------------------------------------------------------ driver
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--triggers", type=int, default=500)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.reports)
        return
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.url, args.triggers, args.interval, args.seconds)))
        return

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--reports", str(args.reports)]
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the benchmark server did not start") from None
                time.sleep(0.2)
        results = {}
        for mode in ("baseline", "ours"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--mode",
                    mode,
                    "--url",
                    f"http://127.0.0.1:{port}",
                    "--triggers",
                    str(args.triggers),
                    "--interval",
                    str(args.interval),
                    "--seconds",
                    str(args.seconds),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(10)

    print(
        f"{args.triggers} triggers, {args.interval:g} s interval, {args.seconds:g} s, page of {args.reports} "
        "sync reports"
    )
    print(
        f"{'':34} {'CPU ms/check':>12} {'checks made':>11} {'on time':>8} {'lag p99 ms':>10} "
        f"{'check p50 ms':>12} {'RSS KB/trigger':>14} {'RSS MB':>7}"
    )
    names = {"baseline": "HttpSensorTrigger (http provider)", "ours": "ConditionTrigger (this library)"}
    for mode in ("baseline", "ours"):
        r = results[mode]
        print(
            f"{names[mode]:34} {r['cpu_ms_per_check']:>12.2f} {r['made_pct']:>10.1f}% {r['on_time_pct']:>7.1f}% "
            f"{r['lag_p99_ms']:>10.1f} {r['check_ms_p50']:>12.1f} {r['rss_kb_per_trigger']:>14.1f} "
            f"{r['rss_mb']:>7.0f}"
        )
    ratio = results["ours"]["cpu_ms_per_check"] / results["baseline"]["cpu_ms_per_check"]
    print(
        f"CPU per check, ours / HttpSensorTrigger: {ratio:.2f} (goal: at most 2); goals for ours: on time >= 99 %, "
        "lag p99 < 100 ms, RSS < 150 KB per trigger"
    )


if __name__ == "__main__":
    main()
