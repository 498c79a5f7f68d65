"""What the deployment tests deploy: DAG folder, plugins, environment, which DAG to trigger with what.

The tests only read `ACTIVE`: the migration DAG (real dags/ folder) against the sandbox by default, or
`DEPLOYMENT_TARGET=probe` for the small probe DAGs alone (a quick check of the harness itself).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent


@contextlib.contextmanager
def no_services() -> Iterator[dict[str, str]]:
    yield {}


@dataclass(frozen=True)
class DeploymentTarget:
    name: str
    dags_folder: pathlib.Path
    manual_dag_id: str
    conf: Mapping[str, object]  # what the trigger form would submit
    invalid_param: str  # a param name ...
    invalid_value: object  # ... and a value its schema rejects at trigger time
    described_params: Mapping[str, str]  # param -> description text the trigger form must show
    scheduled_dag_id: str | None  # a DAG with a short schedule; None: the target has none
    scheduled_runs_expected: int = 2  # runs the scheduler must create on its own (catchup off)
    deferred_tasks: frozenset[str] = frozenset()  # tasks that must be seen `deferred`; empty = any task
    plugins_folder: pathlib.Path = ROOT / "plugins"
    extra_dag_bundles: Mapping[str, pathlib.Path] = field(default_factory=dict)  # name -> folder
    # Name of an empty DAG bundle (a temporary folder) that a test fills with a plan's DAG file at run time;
    # None: the target has none (the scheduled-plan test needs the sandbox, so only the migration target does).
    plan_bundle: str | None = None
    # Starts what the DAG talks to (e.g. the sandbox) and yields extra env such as AIRFLOW_CONN_* URIs.
    services: Callable[[], contextlib.AbstractContextManager[Mapping[str, str]]] = no_services
    # Asserts what a finished manual run produced: (api, target, run_id) -> None.
    check_result: Callable[..., None] = lambda api, target, run_id: None
    run_timeout: float = 120.0
    extra: Mapping[str, object] = field(default_factory=dict)


def probe_params_echoed(api, target: DeploymentTarget, run_id: str) -> None:
    echoed = api.xcom(target.manual_dag_id, run_id, "echo_params")
    assert echoed == dict(target.conf), f"the task saw params {echoed}, the trigger sent {dict(target.conf)}"


def probe_target() -> DeploymentTarget:
    from tests.deployment.dags import deployment_probe as probe

    return DeploymentTarget(
        name="probe",
        dags_folder=HERE / "dags",
        manual_dag_id="deployment_probe_manual",
        conf={"target_namespace": "analytics_eu", "dry_run": False, "wait_seconds": 3},
        invalid_param="target_namespace",
        invalid_value="Not-A-Schema",
        described_params={
            "target_namespace": probe.NAMESPACE_DESCRIPTION,
            "dry_run": probe.DRY_RUN_DESCRIPTION,
            "wait_seconds": probe.WAIT_DESCRIPTION,
        },
        scheduled_dag_id="deployment_probe_scheduled",
        deferred_tasks=frozenset({"wait_in_triggerer"}),
        check_result=probe_params_echoed,
    )


@contextlib.contextmanager
def running_sandbox(**overrides) -> Iterator:
    """A sandbox world (emulators, embedded warehouse, simulated clients) in this process, in a temporary home.

    Server-side services "deploy" onto RudderStack once its warehouse destination is connected (in real life a
    deploy outside Airflow; the DAG waits for Segment to drain afterwards). `overrides` are `load_config`
    settings, e.g. segment={"load_interval_s": 2}; `clients` settings are merged with that default."""
    import tempfile

    from sandbox.config import load_config
    from sandbox.rehearsal import wait_for_first_loads
    from sandbox.world import Sandbox

    clients = {"server_side_switch": "auto", **overrides.pop("clients", {})}
    config = load_config(
        home=pathlib.Path(tempfile.mkdtemp(prefix="srm-deploy-sandbox-")), clients=clients, **overrides
    )
    sandbox = Sandbox(config)
    try:
        sandbox.start()
        wait_for_first_loads(sandbox)  # the plan's preflight needs the tables Segment's loads create
        yield sandbox
    finally:
        sandbox.stop(flush=False)


class SandboxWorld:
    """The sandbox of the migration target, shared by the session's deployment and its result check."""

    sandbox = None

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[dict[str, str]]:
        # Old app versions start moving at the cutover (when Segment's webhook is enabled) and fade over 40 s, so
        # the release's upload check finds rows from the webhook path however long the deployment took to boot.
        adoption = {"kind": "linear", "ramp_s": 40.0, "start_delay_s": 0.0, "starts_at": "cutover"}
        with running_sandbox(clients={"adoption": adoption}) as sandbox:
            cls.sandbox = sandbox
            try:
                yield dict(sandbox.info.airflow_connections)
            finally:
                cls.sandbox = None


# A sandbox for a plan run in a deployment, compressed so a run takes minutes: Segment loads every 2 s, and
# RudderStack's 30-"minute" upload slot is 15 s at 120x (so a 20 s adoption window always holds a load).
COMPRESSED = {
    "segment": {"load_interval_s": 2.0, "load_duration_s": 0.5},
    "rudderstack": {"time_compression": 120.0, "upload_duration_s": 0.5},
}
# a plan's connection (plan section, field), the prefix of its id in a test plan, and the sandbox's
# AIRFLOW_CONN_* setting it gets its fields from
PLAN_CONNECTIONS = [
    ("segment", "conn_id", "segment", "AIRFLOW_CONN_SEGMENT_SANDBOX"),
    ("rudderstack", "conn_id", "rudderstack", "AIRFLOW_CONN_RUDDERSTACK_SANDBOX"),
    (
        "rudderstack",
        "data_plane_conn_id",
        "rudderstack_data_plane",
        "AIRFLOW_CONN_RUDDERSTACK_DATA_PLANE_SANDBOX",
    ),
    ("warehouse", "conn_id", "warehouse", "AIRFLOW_CONN_WAREHOUSE_SANDBOX"),
]
PLAN_DAG_FILE = '''"""Airflow DAGs of a test plan (written by {test})."""

from segment_rudderstack.factory.dags import build_all

globals().update(build_all({plans!r}, reports_dir={reports!r}))
'''


def copy_of_sandbox_plan(name: str, schedule: str | None = None) -> dict:
    """include/plans/sandbox.yaml as plan ``name``: its own connection ids (e.g. ``segment_<name>``, so it never
    reaches the session's sandbox) and a 20 s adoption window of 2 checks."""
    import yaml

    plan = yaml.safe_load((ROOT / "include" / "plans" / "sandbox.yaml").read_text())
    plan["name"] = name
    plan["schedule"] = schedule
    for section, field_name, prefix, _ in PLAN_CONNECTIONS:
        plan[section][field_name] = f"{prefix}_{name}"
    plan["adoption"].update(window_seconds=20, consecutive_checks=2)
    plan.pop("notify", None)  # its messages would land in the session sandbox's receivers
    return plan


@contextlib.contextmanager
def plan_world(api, bundle_folder: pathlib.Path, tmp_path: pathlib.Path, plan: dict, test: str) -> Iterator:
    """A compressed sandbox of the plan's own (old clients ramp off over 30 s), its connections created over REST
    as Admin -> Connections does, and the plan's DAG file in the deployment's plan bundle; yields the sandbox."""
    import json

    import yaml

    # old clients start moving at the cutover (Segment's webhook enabled), over 30 s
    adoption = {"kind": "linear", "ramp_s": 30.0, "start_delay_s": 0.0, "starts_at": "cutover"}
    with running_sandbox(**COMPRESSED, clients={"adoption": adoption}) as sandbox:
        for section, field_name, _, setting in PLAN_CONNECTIONS:
            fields = json.loads(sandbox.info.airflow_connections[setting])
            if isinstance(fields.get("extra"), dict):  # the REST API takes extra as a JSON string
                fields["extra"] = json.dumps(fields["extra"])
            body = {"connection_id": plan[section][field_name], **fields}
            response = api.http.post("/api/v2/connections", json=body)
            assert response.status_code == 201, response.text
        plans = tmp_path / "plans"
        plans.mkdir()
        (plans / f"{plan['name']}.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
        (bundle_folder / f"{plan['name']}_plan.py").write_text(
            PLAN_DAG_FILE.format(test=test, plans=str(plans), reports=str(tmp_path / "reports"))
        )
        yield sandbox


def assert_reconciled(sandbox) -> None:
    """After a migration run: clients flushed, both tools' loads settled, then every event exactly once and
    no safety invariant broken (read from the emulators' own request logs)."""
    from sandbox import invariants
    from sandbox.reconcile import reconcile
    from sandbox.rehearsal import drain_rudderstack

    sandbox.clients.stop(flush=True)
    sandbox.segment.wait_webhooks_idle(timeout_s=30)
    assert drain_rudderstack(sandbox), "RudderStack still had pending events 60 s after the run"
    # These runs have no rollback: the webhook switch-off in Segment's log is the migration's own, after which
    # old clients' events are the accepted tail; any other drop counts as lost.
    switch_offs = invariants.webhook_disabled_at(sandbox.segment.log.entries())
    report = reconcile(
        sandbox.info.warehouse_dsn,
        sandbox.info.schema,
        ledger_schema=sandbox.info.ledger_schema,
        accepted_after=min(switch_offs) if switch_offs else None,
    )
    assert report.ok, report.format()
    violations = invariants.check(sandbox.segment.log.entries(), sandbox.rudderstack.log.entries())
    assert not violations, violations


def migration_reconciled(api, target: DeploymentTarget, run_id: str) -> None:
    """The check of the manual migration run: reconciliation and safety invariants on the target's sandbox."""
    assert_reconciled(SandboxWorld.sandbox)


def migration_target() -> DeploymentTarget:
    """The real dags/ folder and plan include/plans/sandbox.yaml against the sandbox."""
    from segment_rudderstack.plan.model import load_plan

    plan = load_plan(ROOT / "include" / "plans" / "sandbox.yaml")
    return DeploymentTarget(
        name="migration",
        dags_folder=ROOT / "dags",
        manual_dag_id=plan.dag_id,
        conf={"dry_run": False},
        invalid_param="adoption_threshold",
        invalid_value="most",
        described_params={
            "dry_run": "Read everything and change nothing",
            "adoption_threshold": "share (0-1) of events",
        },
        # The scheduler's basics are proven quickly on the probe's scheduled DAG (a second DAG bundle next to
        # the real dags folder); the migration DAG on a schedule is test_scheduled_plan.py, in `plan_bundle`.
        scheduled_dag_id="deployment_probe_scheduled",
        extra_dag_bundles={"deployment-probe": HERE / "dags"},
        plan_bundle="scheduled-plan",  # test_scheduled_plan.py writes a plan with a schedule into it
        services=SandboxWorld.running,
        check_result=migration_reconciled,
        run_timeout=600.0,
        # a DAG of the probe bundle scheduled on the sandbox plan's asset alias (docs/downstream.md)
        # the manual run is operated like a long cutover (issue 21): approvals answered, the plan held at the
        # switch-off and released in the view, and its notifications checked (tests/deployment/operations.py)
        extra={"downstream_dag_id": "sandbox_downstream_models", "operate": True},
    )


TARGETS: dict[str, Callable[[], DeploymentTarget]] = {"probe": probe_target, "migration": migration_target}

ACTIVE: DeploymentTarget = TARGETS[os.environ.get("DEPLOYMENT_TARGET", "migration")]()
