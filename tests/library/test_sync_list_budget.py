"""Segment's sync-list limit holds for the whole deployment: sensors and triggers of several plans, in two
processes, share one budget kept in PostgreSQL, and the emulator (which answers 429 over its limit) logs no
429 and never more calls per window than its limit.

(scripts/bench_sync_list_budget.py runs the issue's full case: 3 plans with 5 server-side sources each.)
The clock is compressed: the emulator allows 2 sync-list calls per 1.5-second window (Segment: 2 per minute),
and the Segment connection says so (80 per minute); the sensors ask to poll every 0.2 s, far faster.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from segment_rudderstack.sensors.migration import SegmentWarehouseLoadSensor
from tests.library.budget_takers import CONN_ID, plan_watches, run_triggers, segment_emulator

ROOT = pathlib.Path(__file__).resolve().parents[2]
WINDOW_S = 1.5
LIMIT = 2
RUN_S = 12.0


@pytest.fixture
def segment(pg_dsn, monkeypatch):
    # the poke-mode sensor's warehouse, and one warehouse per plan (a plan migrates one warehouse)
    warehouses = ["wh_sandbox_pg", "wh_plan1", "wh_plan2", "wh_plan3"]
    with segment_emulator(pg_dsn, warehouses, sync_list_per_minute=LIMIT, rate_window_s=WINDOW_S) as (
        emulator,
        url,
    ):
        env = {
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(
                {
                    "conn_type": "http",
                    "host": url,
                    "password": emulator.settings.token,
                    "extra": {
                        "sync_list_budget_conn_id": "budget_pg",
                        "sync_list_requests_per_minute": LIMIT * 60 / WINDOW_S,
                        "max_attempts": 1,
                    },
                }
            ),
            "AIRFLOW_CONN_BUDGET_PG": pg_dsn,
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield emulator, env


def watches(plan: int) -> list[dict]:
    """One plan's sync-list watchers, on its own warehouse; no load starts, so every watcher keeps waiting."""
    return [{**spec, "plan": plan} for spec in plan_watches(f"wh_plan{plan}", datetime.now(UTC).isoformat())]


def test_plans_in_two_processes_share_the_sync_list_limit(segment, pg_dsn):
    emulator, env = segment
    # Process 2 (another triggerer, or a worker on another machine): plan 2's final-load and drain sensors.
    other = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.library.budget_takers",
            str(RUN_S),
            json.dumps(watches(2)[:1] + watches(2)[2:4]),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert other.stdout.readline().strip() == "ready", other.stderr.read()[-3000:]
    # This process: plan 1's triggers in a loop, and one sensor poking in a worker thread (no triggerer).
    poked: list[str] = []

    def poke_mode_sensor():
        sensor = SegmentWarehouseLoadSensor(
            task_id="plan1_poke",
            warehouse_id="wh_sandbox_pg",
            started_after=datetime.now(UTC).isoformat(),
            segment_conn_id=CONN_ID,
            deferrable=False,
            poke_interval=0.2,
            timeout=RUN_S / 2,
            sync_list_requests_per_minute=600,  # asks for 10 a second: the shared budget must still hold
        )
        try:
            sensor.execute({})
        except AirflowSensorTimeout:
            poked.append("timed out waiting, as expected")

    poker = threading.Thread(target=poke_mode_sensor)
    poker.start()
    mine = run_triggers(watches(1)[:3], RUN_S)
    poker.join(RUN_S + 60)
    out, err = other.communicate(timeout=RUN_S + 60)
    assert other.returncode == 0, err[-3000:]
    theirs = json.loads(out.strip().splitlines()[-1])

    calls = emulator.log.entries("sync_list")
    assert [c for c in calls if c["status"] == 429] == []
    admitted = sorted(datetime.fromisoformat(c["at"].replace("Z", "+00:00")).timestamp() for c in calls)
    # Never more than LIMIT calls in any window (the emulator's clock has millisecond precision).
    crowded = [(a, b) for a, b in zip(admitted, admitted[LIMIT:], strict=False) if b - a < WINDOW_S - 0.002]
    assert crowded == [], f"{len(crowded)} windows with more than {LIMIT} calls"
    # The budget was used, not just left idle: calls came at about its pace from both processes.
    assert len(admitted) >= RUN_S / 3
    assert mine["checks"] >= 1 and theirs["checks"] >= 1 and poked
    assert mine["errors"] == [] and theirs["errors"] == []


def test_the_log_check_catches_a_budget_looser_than_the_limit(segment, monkeypatch):
    """The contrast: three plans' watchers with a budget that allows 4 times Segment's limit get 429s, and the
    emulator's log shows them (so the checks above can fail). (One plan's watchers share one read per turn,
    tests/library/test_shared_sync_pages.py; three plans on three warehouses make three.)"""
    emulator, env = segment
    conn = json.loads(env[f"AIRFLOW_CONN_{CONN_ID.upper()}"])
    conn["extra"]["sync_list_requests_per_minute"] *= 4
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    run_triggers(
        watches(1) + watches(2) + watches(3), 8.0
    )  # long enough to exceed the limit on a loaded machine too
    assert [c for c in emulator.log.entries("sync_list") if c["status"] == 429]
