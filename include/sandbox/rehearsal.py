"""A full rehearsal: start the sandbox, run the migration DAG with ``airflow dags test`` against it, let
the clients finish, let RudderStack load what it holds, then reconcile ledger and warehouse and check the
safety invariants from the emulators' own logs. ``make demo`` and the end-to-end test both use this.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from sandbox import invariants
from sandbox.config import SandboxConfig
from sandbox.reconcile import Report, SchemasReport, reconcile, reconcile_schemas
from sandbox.world import Sandbox, SandboxInfo

REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclass
class DagRunResult:
    dag_id: str
    returncode: int
    seconds: float
    log_path: pathlib.Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class RehearsalResult:
    info: SandboxInfo
    runs: list[DagRunResult] = field(default_factory=list)
    #: one schema: its Report; several (a multi-schema world): a SchemasReport with one Report per schema
    report: Report | SchemasReport | None = None
    violations: list[str] = field(default_factory=list)
    segment_log: list[dict[str, Any]] = field(default_factory=list)
    rudderstack_log: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    client_stats: dict[str, Any] = field(default_factory=dict)
    #: Segment emulator counters at the end (loads, events loaded, webhook deliveries, ...)
    segment_counters: dict[str, Any] = field(default_factory=dict)
    #: after each DAG run: (changes Segment's emulator had accepted, changes RudderStack's had accepted)
    changes_after_run: list[tuple[int, int]] = field(default_factory=list)
    #: when the migration's own switch-off task disabled Segment's webhook (from the change log)
    webhook_switch_offs: list[datetime] = field(default_factory=list)


def airflow_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment an ``airflow`` command of this project runs with (the Makefile sets the same)."""
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(REPO / ".airflow"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    path = [str(REPO / "plugins"), str(REPO / "include")]
    env["PYTHONPATH"] = os.pathsep.join(path + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra or {})
    return env


def airflow_bin() -> str:
    candidate = pathlib.Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def reset_change_log(key: str, env: dict[str, str]) -> None:
    """A fresh sandbox has none of the changes an earlier rehearsal logged: forget them."""
    subprocess.run(
        [airflow_bin(), "variables", "delete", key], env=env, capture_output=True, text=True, timeout=120
    )


def migration_webhook_switch_offs(change_log_key: str, env: dict[str, str]) -> list[datetime]:
    """When the migration's own switch-off task disabled Segment's webhook, from the plan's change log (read with
    ``airflow variables export``, so it is the deployment's metadata DB, whatever this process imported)."""
    with tempfile.TemporaryDirectory() as folder:
        target = pathlib.Path(folder) / "variables.json"
        subprocess.run(
            [airflow_bin(), "variables", "export", str(target)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        try:
            variables = json.loads(target.read_text())
        except (OSError, ValueError):
            return []

    def value(key: str) -> Any:
        raw = variables.get(key)
        try:
            return json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return None

    head = value(change_log_key)
    entries = []
    if isinstance(head, dict):
        entries = [value(f"{change_log_key}__{seq:06d}") for seq in range(1, int(head.get("next", 1)))]
    elif isinstance(head, list):
        entries = head
    return sorted(
        datetime.fromisoformat(e["at"])
        for e in entries
        if isinstance(e, dict)
        and e.get("target") == "segment.destination"
        and e.get("field") == "enabled"
        and e.get("after") is False
        and e.get("status", "done") == "done"
        and str(e.get("task_id") or "").endswith("disable_segment_webhook")
    )


def run_dag(
    dag_id: str,
    *,
    env: dict[str, str],
    conf: dict[str, Any] | None,
    log_dir: pathlib.Path,
    timeout_s: float,
    progress: Callable[[float], None] | None = None,
    progress_interval_s: float = 10.0,
) -> DagRunResult:
    """``airflow dags test`` in a subprocess; ``progress(elapsed_s)`` is called every ``progress_interval_s``
    while it runs (e.g. `make demo`'s progress line)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{dag_id}-{int(time.time())}.log"
    command = [airflow_bin(), "dags", "test", dag_id]
    if conf:
        command += ["--conf", json.dumps(conf)]
    began = time.monotonic()
    with log_path.open("w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        next_progress = began + progress_interval_s
        while proc.poll() is None and time.monotonic() - began < timeout_s:
            time.sleep(min(0.5, max(0.05, timeout_s - (time.monotonic() - began))))
            if progress is not None and time.monotonic() >= next_progress and proc.poll() is None:
                next_progress += progress_interval_s
                try:
                    progress(time.monotonic() - began)
                except Exception as exc:  # a progress line must never break the rehearsal
                    print(f"[rehearsal] progress not available: {type(exc).__name__}: {exc}", flush=True)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            out.write(f"\n[rehearsal] airflow dags test did not finish within {timeout_s:.0f} s\n")
            code = -1
        else:
            code = proc.returncode
    text = log_path.read_text(errors="replace")
    # `airflow dags test` exits 0 even when a task failed: read the run's final state from its log.
    if code == 0 and "state=success" not in text.rsplit("DagRun Finished", 1)[-1]:
        code = 1
    return DagRunResult(dag_id, code, time.monotonic() - began, log_path)


def drain_rudderstack(sandbox: Sandbox, timeout_s: float = 60.0) -> bool:
    """Trigger an upload for every warehouse destination and wait until nothing is pending."""
    info = sandbox.info
    assert info is not None and sandbox.rudderstack is not None
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=info.rudderstack_url, timeout=10) as client:
        state = client.get("/sandbox/state").json()
        destinations = [d["id"] for d in state.get("destinations", []) if d.get("enabled", True)]
        if not destinations:
            return False  # nothing can load (e.g. after a dry run): no point waiting
        # One trigger per destination (rudder-server triggers every warehouse of the destination when
        # destination_id is given); the source id is required to find the workspace.
        source_of = {
            c["destinationId"]: c["sourceId"]
            for c in state.get("connections", [])
            if c.get("enabled", True) and c["destinationId"] in destinations
        }
        for destination_id, source_id in source_of.items():
            client.post(
                "/internal/v1/warehouse/trigger-upload",
                json={"source_id": source_id, "destination_id": destination_id},
            )
        sources = [s["id"] for s in state.get("sources", [])]
        while time.monotonic() < deadline:
            # The emulator's own view (the real pending-events only counts uploads of one source task run).
            pending = [client.get("/sandbox/pending", params={"source_id": s}).json() for s in sources]
            busy = sum(
                int(p.get(k) or 0)
                for p in pending
                for k in ("pending_events", "pending_staging_files", "pending_uploads")
            )
            if busy == 0:
                return True
            time.sleep(0.5)
    return False


def wait_for_first_loads(
    sandbox: Sandbox, tables: tuple[str, ...] = ("tracks", "identifies"), timeout_s: float = 60.0
) -> None:
    """A rehearsal starts from a warehouse Segment already loads into: wait until its first loads created
    the tables a plan's preflight requires."""
    assert sandbox.warehouse is not None and sandbox.info is not None
    deadline = time.monotonic() + timeout_s
    for schema in sandbox.info.schemas or [sandbox.info.schema]:
        while not set(tables) <= set(sandbox.warehouse.tables(schema)):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Segment's emulator created no {tables} tables in schema {schema!r} within {timeout_s:.0f} s"
                )
            time.sleep(0.25)


def rehearse(
    config: SandboxConfig,
    *,
    dag_id: str,
    change_log_key: str,
    conf: dict[str, Any] | None = None,
    log_dir: pathlib.Path | None = None,
    timeout_s: float = 900,
    rerun: bool = False,
    before_run=None,
    after_run=None,
    progress=None,
) -> RehearsalResult:
    """Run one rehearsal; the sandbox is stopped before this returns (even on failure)."""
    log_dir = log_dir or (pathlib.Path(config.home) / "logs")
    sandbox = Sandbox(config)
    began = time.monotonic()
    info = sandbox.start()
    result = RehearsalResult(info=info)
    try:
        result.timings["sandbox_start_s"] = time.monotonic() - began
        env = airflow_env(info.airflow_connections)
        reset_change_log(change_log_key, env)
        wait_for_first_loads(sandbox)
        if before_run is not None:
            before_run(sandbox)  # e.g. arm faults for a bad-day rehearsal

        def changes() -> tuple[int, int]:
            return (
                len(invariants.mutating_calls(sandbox.segment.log.entries())),
                len(invariants.mutating_calls(sandbox.rudderstack.log.entries())),
            )

        report_progress = (lambda elapsed: progress(sandbox, env, elapsed)) if progress is not None else None
        result.runs.append(
            run_dag(
                dag_id, env=env, conf=conf, log_dir=log_dir, timeout_s=timeout_s, progress=report_progress
            )
        )
        result.changes_after_run.append(changes())
        result.timings["migration_s"] = result.runs[-1].seconds
        if rerun and result.runs[-1].ok:
            result.runs.append(run_dag(dag_id, env=env, conf=conf, log_dir=log_dir, timeout_s=timeout_s))
            result.changes_after_run.append(changes())
            result.timings["rerun_s"] = result.runs[-1].seconds
        # The invariants are about the migration: judge the logs as they stand when its runs are over,
        # before anything the rehearsal does afterwards (a rollback, the final drain's explicit upload).
        switch_offs = migration_webhook_switch_offs(change_log_key, env)
        result.webhook_switch_offs = switch_offs
        result.violations = invariants.check(
            sandbox.segment.log.entries(),
            sandbox.rudderstack.log.entries(),
            migration_webhook_off=switch_offs,
        )
        if after_run is not None:
            after_run(sandbox, env, result)
        _settle_and_reconcile(sandbox, result, switch_offs)
    finally:
        sandbox.stop(flush=False)
    result.timings["total_s"] = time.monotonic() - began
    return result


def _settle_and_reconcile(sandbox: Sandbox, result: RehearsalResult, switch_offs: list[datetime]) -> None:
    """After the migration's runs: stop the clients, let webhooks and RudderStack drain, then reconcile the
    warehouse against the ledger and keep the emulators' counters and logs."""
    info = result.info
    settle = time.monotonic()
    if sandbox.clients is not None:
        sandbox.clients.stop(flush=True)
        result.client_stats = dict(sandbox.clients.stats())
    if sandbox.segment is not None:
        sandbox.segment.wait_webhooks_idle(timeout_s=30)
        # A warehouse Segment still loads (a dry run, a run that stopped before the switch-off) holds the clients'
        # last events until its next scheduled load: run that load now, as RudderStack's upload is triggered
        # below (a disabled warehouse loads nothing, so after a switch-off this changes nothing).
        sandbox.segment.run_load()
    drain_rudderstack(sandbox)
    result.timings["settle_s"] = time.monotonic() - settle
    if len(info.schemas) > 1:
        result.report = reconcile_schemas(
            info.warehouse_dsn,
            info.schemas,
            ledger_schema=info.ledger_schema,
            accepted_after=min(switch_offs) if switch_offs else None,
        )
    else:
        result.report = reconcile(
            info.warehouse_dsn,
            info.schema,
            ledger_schema=info.ledger_schema,
            accepted_after=min(switch_offs) if switch_offs else None,
        )
    result.segment_counters = dict(sandbox.segment.state()["counters"]) if sandbox.segment else {}
    result.segment_log = sandbox.segment.log.entries() if sandbox.segment else []
    result.rudderstack_log = sandbox.rudderstack.log.entries() if sandbox.rudderstack else []
