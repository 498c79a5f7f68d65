"""How fast the sandbox starts and how many events per second its emulators sustain on this machine.

    PYTHONPATH=plugins:include .venv/bin/python -m scripts.bench_sandbox_throughput [--events 5000]

Measured in one run (numbers vary between machines and runs; compare the ratios):
1. `python -m sandbox start` / `stop` wall time (embedded PostgreSQL, background process).
2. Ingest: events/s accepted by Segment's tracking API and RudderStack's /v1/batch (gzip), batches of 100.
3. Warehouse: events/s written by a Segment load (append) and a RudderStack upload (merge).
4. Clients: events/s the client fleet sustains through the real SDKs, ledger write included.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import uuid

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include"), str(ROOT / "plugins")]

from sandbox.clients import AdoptionCurve, ClientFleet, ClientsConfig  # noqa: E402
from sandbox.config import load_config  # noqa: E402
from sandbox.world import Sandbox  # noqa: E402


def _events(n: int, tag: str) -> list[dict]:
    return [
        {
            "type": "track",
            "event": "Order Completed",
            "userId": f"u{i % 97}",
            "messageId": f"{tag}-{i}",
            "properties": {"revenue": i * 0.5, "currency": "EUR"},
            "context": {"app": {"version": "2.0.0"}},
        }
        for i in range(n)
    ]


def _post_batches(url: str, write_key: str, events: list[dict], *, compress: bool) -> float:
    session = requests.Session()
    began = time.perf_counter()
    for start in range(0, len(events), 100):
        body = json.dumps({"batch": events[start : start + 100]}).encode()
        headers = {"Content-Type": "application/json"}
        if compress:
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        session.post(
            f"{url}/v1/batch", data=body, headers=headers, auth=(write_key, ""), timeout=30
        ).raise_for_status()
    return time.perf_counter() - began


def bench_cli() -> tuple[float, float]:
    home = tempfile.mkdtemp(prefix="sbx-bench-")
    env = dict(os.environ, SANDBOX_HOME=home, PYTHONPATH=f"{ROOT / 'plugins'}:{ROOT / 'include'}")
    env.pop("SANDBOX_WAREHOUSE_DSN", None)
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sandbox", "start"], env=env, check=True, capture_output=True, cwd=ROOT
    )  # noqa: S603
    start_s = time.perf_counter() - began
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sandbox", "stop"], env=env, check=True, capture_output=True, cwd=ROOT
    )  # noqa: S603
    return start_s, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    n = args.events

    start_s, stop_s = bench_cli()
    print(f"sandbox start (CLI, embedded PostgreSQL): {start_s:.2f} s; stop: {stop_s:.2f} s")

    config = load_config(home=tempfile.mkdtemp(prefix="sbx-bench-world-"), clients_enabled=False)
    config.segment.load_interval_s = None
    config.rudderstack.upload_duration_s = 0.0
    world = Sandbox(config)
    info = world.start()
    print(f"in-process world start: {info.start_seconds:.2f} s")
    try:
        seg_events, rs_events = (
            _events(n, f"seg-{uuid.uuid4().hex[:6]}"),
            _events(n, f"rs-{uuid.uuid4().hex[:6]}"),
        )
        seg_s = _post_batches(info.segment_url, "wk_seg_web_app", seg_events, compress=False)
        rs_s = _post_batches(info.rudderstack_url, "wk_rs_app", rs_events, compress=True)
        print(f"ingest, Segment tracking API      : {n / seg_s:8.0f} events/s ({n} events in {seg_s:.2f} s)")
        print(f"ingest, RudderStack /v1/batch gzip: {n / rs_s:8.0f} events/s ({n} events in {rs_s:.2f} s)")

        began = time.perf_counter()
        requests.post(f"{info.segment_url}/sandbox/loads/run", timeout=300).raise_for_status()
        load_s = time.perf_counter() - began - config.segment.load_duration_s
        print(
            f"Segment load (append) into PG     : {n / load_s:8.0f} events/s (excl. {config.segment.load_duration_s}s"
            " simulated load duration)"
        )

        auth = {"Authorization": f"Bearer {info.rudderstack_token}"}
        dest = requests.post(
            f"{info.rudderstack_api_url}/destinations",
            headers=auth,
            timeout=10,
            json={
                "name": "bench",
                "type": "POSTGRES",
                "config": {"namespace": info.schema, "manualSync": True},
            },
        ).json()
        requests.post(
            f"{info.rudderstack_api_url}/connections",
            headers=auth,
            timeout=10,
            json={"sourceId": "rs_src_app", "destinationId": dest["destination"]["id"]},
        ).raise_for_status()
        began = time.perf_counter()
        world.rudderstack.trigger_upload(source_id="rs_src_app", destination_id=None)
        world.rudderstack.schedule_once()
        deadline = time.monotonic() + 300
        while (
            world.rudderstack.pending_events("rs_src_app")["pending_events"] and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        up_s = time.perf_counter() - began
        print(f"RudderStack upload (merge) into PG: {n / up_s:8.0f} events/s")

        clients = ClientsConfig(
            seed=99,
            events_per_second=100_000,
            max_events=min(n, 3000),
            schema=info.schema,
            adoption=AdoptionCurve(ramp_s=0.01),
            sdk_upload_interval_s=0.05,
        )
        fleet = ClientFleet(
            clients, world.ledger, segment_url=info.segment_url, rudderstack_url=info.rudderstack_url
        )
        began = time.perf_counter()
        fleet.start()
        fleet.wait_done(300)
        fleet.stop(flush=True)
        fleet_s = time.perf_counter() - began
        print(
            f"client fleet, real SDKs + ledger  : {clients.max_events / fleet_s:8.0f} events/s "
            f"({fleet.stats()['sent']} sent, {fleet.stats()['failed']} failed)"
        )
        print(
            f"ratio: demo default rate 4 events/s is {min(n / seg_s, n / rs_s, clients.max_events / fleet_s) / 4:.0f}x "
            "below the slowest measured path"
        )
    finally:
        world.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
