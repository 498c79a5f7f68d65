"""One real local Airflow deployment shared by the deployment tests of a session.

The deployment (scheduler, dag-processor, triggerer, api-server; LocalExecutor; embedded PostgreSQL
metadata DB) is started once, used by every test in this folder, and stopped after the last of them (or at
the end of the session) even when a test fails. Its wall time and the peak memory of its processes are printed in the terminal
summary and written to test-artifacts/deployment-metrics.json.
"""

from __future__ import annotations

import contextlib
import pathlib
import time

import pytest

from scripts.airflow_local import ApiClient, DeploymentSpec, LocalAirflow
from tests.deployment.metrics import ARTIFACTS, METRICS, save
from tests.deployment.targets import ACTIVE, DeploymentTarget


@pytest.fixture(scope="session")
def target() -> DeploymentTarget:
    return ACTIVE


@pytest.fixture(scope="session")
def plan_bundle_folder(target: DeploymentTarget, tmp_path_factory) -> pathlib.Path | None:
    """The empty DAG bundle folder a test writes a plan's DAG file into (None when the target has none)."""
    return tmp_path_factory.mktemp("plan-bundle") if target.plan_bundle else None


# What the session's deployment holds open (its services and the Airflow processes): closed right after the last
# test of this folder (see pytest_runtest_teardown), so an idle deployment and its sandbox traffic do not slow
# the rest of the suite; closing again at the session's end does nothing.
_OPEN: list[contextlib.ExitStack] = []
HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def deployment(target: DeploymentTarget, plan_bundle_folder: pathlib.Path | None):
    started = time.monotonic()
    bundles = dict(target.extra_dag_bundles)
    if plan_bundle_folder is not None:
        bundles[target.plan_bundle] = plan_bundle_folder
    stack = contextlib.ExitStack()
    _OPEN.append(stack)
    with stack:
        service_env = stack.enter_context(target.services())
        spec = DeploymentSpec(
            dags_folder=target.dags_folder,
            plugins_folder=target.plugins_folder,
            extra_dag_bundles=bundles,
            extra_env=dict(service_env),
            save_logs_to=ARTIFACTS / "deployment-logs",
        )
        airflow = LocalAirflow(spec)
        stack.callback(_stop_and_measure, airflow, target, started)
        airflow.start()
        yield airflow


def _stop_and_measure(airflow: LocalAirflow, target: DeploymentTarget, started: float) -> None:
    airflow.stop()
    METRICS.update(
        {
            "target": target.name,
            "ready_after_s": round(airflow.ready_after_s, 1),
            "deployment_wall_s": round(time.monotonic() - started, 1),
            "peak_rss_sum_mib": round(airflow.memory.rss_bytes / 2**20),
            "peak_pss_sum_mib": round(airflow.memory.pss_bytes / 2**20),
            "processes_at_peak": airflow.memory.processes_at_peak,
            "memory_samples": airflow.memory.samples,
        }
    )
    save()


# trylast: after pytest's own teardown, so the last test's fixtures still reach the deployment
@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After the last test of this folder: stop the shared deployment now, not at the session's end."""
    items = item.session.items
    rest = items[items.index(nextitem) :] if nextitem in items else []
    if not any(HERE in pathlib.Path(later.path).resolve().parents for later in rest):
        while _OPEN:
            _OPEN.pop().close()


@pytest.fixture(scope="session")
def api(deployment: LocalAirflow, target: DeploymentTarget) -> ApiClient:
    client = deployment.api()
    for dag_id in {target.manual_dag_id, target.scheduled_dag_id} - {None}:
        client.wait_for_dag(dag_id)
    return client


def pytest_terminal_summary(terminalreporter):
    if "target" in METRICS:
        terminalreporter.write_line(
            "local Airflow deployment ({target}): ready after {ready_after_s}s, total {deployment_wall_s}s, "
            "peak RSS sum {peak_rss_sum_mib} MiB, peak PSS sum {peak_pss_sum_mib} MiB "
            "({processes_at_peak} processes at the peak)".format(**{"processes_at_peak": "?", **METRICS})
        )
        for key in ("manual_run_s", "deferred_tasks", "scheduled_plan_s"):
            if key in METRICS:
                terminalreporter.write_line(f"  {key}: {METRICS[key]}")
