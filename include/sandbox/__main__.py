"""`python -m sandbox start|stop|status|env|reconcile|control` (run from the repo, include/ on PYTHONPATH).

  start [--config FILE] [--host HOST] [--world default|multi|drift] [--foreground]
                            start the world in the background and print its connection settings; with
                            --foreground run it in this process until SIGTERM/Ctrl-C (e.g. in a container).
                            --world drift: the default world whose new app version drifts (a type change,
                            keys RudderStack names differently, a property named `channel`; the reconcile's
                            value check shows each at its column)
                            --host (or $SANDBOX_HOST): interface the emulators listen on, default 127.0.0.1;
                            $SANDBOX_PUBLIC_HOST: the host name written into the URLs and connections
  stop                      stop it (clients flushed, servers and embedded PostgreSQL stopped)
  status [--json]           is it running; emulator state summary
  env                       print the AIRFLOW_CONN_* lines (also in .sandbox/airflow-connections.env)
  reconcile [...]           ledger vs warehouse: every id once, then the value check (the values each client
                            sent against its row, per column); see `python -m sandbox reconcile --help`
  control EMULATOR ACTION [JSON]
                            call the emulator's /sandbox/ACTION: POST with JSON (or no body) for
                            faults, deploy-server-side, loads/run; GET for state, log, uploads. E.g.
                            control rudderstack deploy-server-side
                            control segment faults '{"load_failure": {"count": 1}}'
State lives in $SANDBOX_HOME (default <repo>/.sandbox).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import requests

from sandbox.config import WORLDS, default_home
from sandbox.supervisor import SupervisorError, read_state, run_foreground, running_state, spawn, stop
from sandbox.world import CONNECTIONS_FILE

GET_ACTIONS = frozenset({"state", "log", "uploads"})


def _print_settings(state: dict[str, Any]) -> None:
    print(f"Sandbox running (pid {state['pid']}), started in {state['start_seconds']}s; home {state['home']}")
    print(f"  Segment API + tracking : {state['segment_url']}  (token {state['segment_token']})")
    print(f"  RudderStack control    : {state['rudderstack_api_url']}  (token {state['rudderstack_token']})")
    print(f"  RudderStack data plane : {state['rudderstack_url']}")
    kind = "embedded" if state["embedded_warehouse"] else "given DSN"
    print(f"  Warehouse ({kind}) : {state['warehouse_dsn']}  schema {state['schema']}")
    print(f"  Airflow connections    : set -a; . {os.path.join(state['home'], CONNECTIONS_FILE)}; set +a")
    for name, value in state["airflow_connections"].items():
        print(f"    {name}='{value}'")


def _status(home, as_json: bool) -> int:
    state = running_state(home)
    if not state:
        print("No sandbox is running." if not as_json else json.dumps({"running": False}))
        return 3
    summary: dict[str, Any] = {"running": True, "pid": state["pid"], "started_at": state["started_at"]}
    for name, url in (("segment", state["segment_url"]), ("rudderstack", state["rudderstack_url"])):
        try:
            summary[name] = requests.get(f"{url}/sandbox/state", timeout=5).json()
        except requests.RequestException as exc:
            summary[name] = {"error": f"{type(exc).__name__}: {exc}"}
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    _print_settings(state)
    segment, rudder = summary["segment"].get("data", summary["segment"]), summary["rudderstack"]
    print(f"  Segment counters       : {segment.get('counters')}")
    print(
        f"  RudderStack uploads    : {rudder.get('uploads', {}).get('total')} "
        f"(last: {(rudder.get('uploads', {}).get('last') or {}).get('status')})"
    )
    print(f"  Clients                : {rudder.get('clients')}")
    return 0


def _control(home, emulator: str, action: str, body: str | None) -> int:
    state = read_state(home)
    if not state or not running_state(home):
        print("No sandbox is running; start it with `python -m sandbox start`.", file=sys.stderr)
        return 2
    base = {"segment": state["segment_url"], "rudderstack": state["rudderstack_url"]}.get(emulator)
    if base is None:
        print(f"Unknown emulator {emulator!r}; expected 'segment' or 'rudderstack'.", file=sys.stderr)
        return 2
    url = f"{base}/sandbox/{action.strip('/')}"
    if action in GET_ACTIONS and body is None:
        response = requests.get(url, timeout=30)
    else:
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            print(
                f'The body must be JSON, e.g. \'{{"server_error": {{"count": 2}}}}\'; got {body!r}',
                file=sys.stderr,
            )
            return 2
        response = requests.post(url, json=payload, timeout=30)
    print(response.text)
    return 0 if response.ok else 1


def build_parser() -> argparse.ArgumentParser:
    """The command line (also checked against docker-compose.yaml's `sandbox` command by the tests)."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start_p = sub.add_parser("start", help="start the sandbox in the background (or --foreground)")
    start_p.add_argument("--config", help="YAML/JSON settings file (see sandbox/config.py)")
    start_p.add_argument(
        "--host", help="interface the emulators listen on (default $SANDBOX_HOST or 127.0.0.1)"
    )
    start_p.add_argument(
        "--world",
        choices=WORLDS,
        help="default: one schema (include/plans/sandbox.yaml); multi: 3 client sources in 2 "
        "schemas plus a backend (include/plans/sandbox_multi.yaml); drift: the default world whose new app "
        "version drifts (config file: clients: {drift: true}). Also $SANDBOX_WORLD",
    )
    start_p.add_argument(
        "--foreground",
        action="store_true",
        help="run in this process until SIGTERM/SIGINT, then stop cleanly",
    )
    sub.add_parser("stop", help="stop the background sandbox")
    status_p = sub.add_parser("status", help="show whether it runs, and its state")
    status_p.add_argument("--json", action="store_true")
    sub.add_parser("env", help="print the AIRFLOW_CONN_* settings")
    sub.add_parser("reconcile", help="ledger vs warehouse report")
    control_p = sub.add_parser("control", help="call an emulator's /sandbox control endpoint")
    control_p.add_argument("emulator", choices=["segment", "rudderstack"])
    control_p.add_argument("action", help="faults | deploy-server-side | loads/run | state | log | uploads")
    control_p.add_argument("body", nargs="?", help="JSON body for POST actions")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    home = default_home()
    if argv and argv[0] == "reconcile":
        from sandbox.reconcile import main as reconcile_main

        os.environ.setdefault("SANDBOX_HOME", str(home))
        return reconcile_main(argv[1:])
    args = build_parser().parse_args(argv)

    if args.command == "start":
        if args.world:
            os.environ["SANDBOX_WORLD"] = args.world  # read by load_config, here or in the spawned process
        try:
            if args.foreground:
                return run_foreground(
                    home, config_path=args.config, host=args.host, on_running=_print_settings
                )
            state = spawn(home, config_path=args.config, host=args.host)
        except SupervisorError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        _print_settings(state)
        return 0
    if args.command == "stop":
        print(stop(home))
        return 0
    if args.command == "status":
        return _status(home, args.json)
    if args.command == "env":
        path = home / CONNECTIONS_FILE
        if not running_state(home) or not path.exists():
            print("No sandbox is running; start it with `python -m sandbox start`.", file=sys.stderr)
            return 2
        print(path.read_text(), end="")
        return 0
    return _control(home, args.emulator, args.action, args.body)


if __name__ == "__main__":
    sys.exit(main())
