"""`python -m sandbox start | status | control | stop` as a user runs them (real background process)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "sandbox", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_start_status_control_stop_round_trip(tmp_path, pg_dsn, ledger_schema):
    config = tmp_path / "world.yaml"
    config.write_text(
        f"ledger_schema: {ledger_schema}\nclients_enabled: false\nsegment: {{load_interval_s: 0}}\n"
    )
    env = dict(
        os.environ,
        SANDBOX_HOME=str(tmp_path / "home"),
        SANDBOX_WAREHOUSE_DSN=pg_dsn,
        PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")]),
    )
    started = _cli("start", "--config", str(config), env=env)
    try:
        assert started.returncode == 0, started.stderr
        assert "AIRFLOW_CONN_RUDDERSTACK_SANDBOX=" in started.stdout and "given DSN" in started.stdout
        again = _cli("start", env=env)
        assert again.returncode == 1 and "already running" in again.stderr

        status = _cli("status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        summary = json.loads(status.stdout)
        assert summary["running"] is True and summary["rudderstack"]["server_side_deployed_at"] is None

        deployed = _cli("control", "rudderstack", "deploy-server-side", env=env)
        assert deployed.returncode == 0 and json.loads(deployed.stdout)["server_side_deployed"] is True
        armed = _cli("control", "segment", "faults", '{"load_failure": {"count": 1}}', env=env)
        assert armed.returncode == 0, armed.stdout
        state = json.loads(_cli("status", "--json", env=env).stdout)
        assert state["rudderstack"]["server_side_deployed_at"] is not None
        assert "load_failure" in json.dumps(state["segment"])

        env_out = _cli("env", env=env)
        assert env_out.stdout.count("AIRFLOW_CONN_") == 6  # 4 services + the Slack and SMTP receivers
    finally:
        stopped = _cli("stop", env=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    after = _cli("status", env=env)
    assert after.returncode == 3 and "No sandbox is running" in after.stdout
