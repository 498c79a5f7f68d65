"""`python -m sandbox start --foreground` (the docker compose `sandbox` service's command) as a process."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import requests

from sandbox.config import load_config

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _wait_for_state(home: pathlib.Path, proc: subprocess.Popen, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode} during start-up:\n{proc.stdout.read()}"
        try:
            state = json.loads((home / "state.json").read_text())
        except (OSError, ValueError):
            state = None
        if state and state.get("status") == "running":
            return state
        time.sleep(0.05)
    raise AssertionError(f"{home / 'state.json'} did not say running within {timeout_s}s")


def test_foreground_runs_until_sigterm_then_stops_cleanly(tmp_path, pg_dsn, ledger_schema):
    config = tmp_path / "world.yaml"
    config.write_text(f"ledger_schema: {ledger_schema}\nclients_enabled: false\n")
    home = tmp_path / "home"
    env = dict(
        os.environ,
        SANDBOX_HOME=str(home),
        SANDBOX_WAREHOUSE_DSN=pg_dsn,
        PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")]),
    )
    command = [
        sys.executable,
        "-m",
        "sandbox",
        "start",
        "--foreground",
        "--host",
        "127.0.0.1",
        "--config",
        str(config),
    ]
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,  # noqa: S603 - our own module
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        state = _wait_for_state(home, proc)
        assert state["pid"] == proc.pid, "the world runs in the started process itself, not a detached child"
        assert state["segment_url"].startswith("http://127.0.0.1:")
        for url in (state["segment_url"], state["rudderstack_url"]):
            assert requests.get(f"{url}/sandbox/state", timeout=10).status_code == 200, url

        again = subprocess.run([*command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)  # noqa: S603
        assert again.returncode == 1 and "already running" in again.stderr, again.stderr

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    output = proc.stdout.read()
    assert "AIRFLOW_CONN_SEGMENT_SANDBOX=" in output and "sandbox stopped" in output, output
    assert json.loads((home / "state.json").read_text())["status"] == "stopped"
    try:
        requests.get(f"{state['segment_url']}/sandbox/state", timeout=2)
        raise AssertionError("the Segment emulator still answers after the sandbox stopped")
    except requests.ConnectionError:
        pass


def test_wildcard_host_advertises_the_public_name(tmp_path):
    inside = load_config(home=tmp_path, host="0.0.0.0")
    assert (inside.local_host, inside.advertised_host) == ("127.0.0.1", "127.0.0.1")
    compose = load_config(home=tmp_path, host="0.0.0.0", public_host="sandbox")
    assert (compose.local_host, compose.advertised_host) == ("127.0.0.1", "sandbox")
