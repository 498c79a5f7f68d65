"""End to end: the sandbox plan's DAG file, run with `airflow dags test` against the sandbox (real HTTP
emulators, real PostgreSQL, clients sending through the real SDKs), then proven from the outside:
reconciliation of every sent event and the safety invariants checked from the emulators' own logs. The main
migration runs on a bad day (faults on both APIs, the tracking endpoints, webhooks and uploads)."""

from __future__ import annotations

import pathlib
import re

import httpx
import psycopg2
import pytest

from sandbox.config import load_config
from sandbox.invariants import mutating_calls, warehouse_disabled_at, webhook_disabled_at
from sandbox.rehearsal import rehearse, run_dag
from segment_rudderstack.plan.model import load_plan
from tests.e2e.rollback_steps import roll_back

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAN = load_plan(ROOT / "include" / "plans" / "sandbox.yaml")
# Compressed further than the demo: loads every 2 s, RudderStack's 30 "minutes" in 15 s, a 20 s adoption ramp
# from the cutover (old app versions send through Segment's webhook once it is enabled, then fade).
FAST_CONF = {"adoption_window_seconds": 20, "adoption_consecutive_checks": 2}


def fast_world(
    tmp_path: pathlib.Path, ramp_s: float = 20.0, start_delay_s: float = 0.0, world: str = "default"
):
    return load_config(
        world=world,
        home=tmp_path / "sandbox",
        segment={"load_interval_s": 2.0, "load_duration_s": 0.5},
        rudderstack={"time_compression": 120.0, "upload_duration_s": 0.5},
        clients={
            "server_side_switch": "auto",
            "events_per_second": 6.0,
            "adoption": {
                "kind": "linear",
                "ramp_s": ramp_s,
                "start_delay_s": start_delay_s,
                "starts_at": "cutover",
            },
        },
    )


def shadow_left(sandbox) -> dict:
    """The shape check's shadow destinations still in RudderStack (read over its API), and whether its scratch
    schema still exists in the warehouse."""
    info = sandbox.info
    with httpx.Client(
        base_url=info.rudderstack_api_url,
        timeout=10,
        headers={"Authorization": f"Bearer {info.rudderstack_token}"},
    ) as api:
        listed = api.get("/destinations").json()["destinations"]
    with psycopg2.connect(info.warehouse_dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", ("app_events_rs_shadow",)
        )
        schema = cur.fetchone() is not None
    conn.close()
    return {"destinations": [d["name"] for d in listed if "(shape shadow)" in d["name"]], "schema": schema}


def arm_a_bad_day(sandbox) -> None:
    """429 storms, 5xx bursts and slow answers on both APIs (and the tracking endpoints the SDKs use), failed
    webhook deliveries and a failed RudderStack upload attempt. Each fault stays within the retry budget of whoever
    meets it (the hooks: 5 attempts; the client SDKs: 4 retries; Segment's webhook: 8 attempts): a bad day, not an
    outage."""
    sandbox.segment.faults.arm(
        {
            "rate_limit": {"count": 4, "retry_after": 1, "path_prefix": "/warehouses"},
            "server_error": {"count": 4, "status": 503, "path_prefix": "/warehouses"},
            "slow": {"count": 3, "seconds": 1.0, "path_prefix": "/v1/"},  # the tracking API the old app uses
            "webhook_failure": {"count": 5},
        }
    )
    sandbox.rudderstack.faults.arm(
        {
            "server_error": {"count": 3, "status": 502, "path_prefix": "/v2/"},
            "rate_limit": {"count": 2, "retry_after": 1, "path_prefix": "/v1/"},  # the new app's data plane
            "upload_failure": {"count": 1},
        }
    )


BAD_DAY = {
    "segment": {"rate_limit", "server_error", "slow", "webhook_failure"},
    "rudderstack": {"server_error", "rate_limit", "upload_failure"},
}


def changes(sandbox) -> tuple[int, int]:
    """How many changes Segment's and RudderStack's emulators have received so far (their own logs)."""
    return (
        len(mutating_calls(sandbox.segment.log.entries())),
        len(mutating_calls(sandbox.rudderstack.log.entries())),
    )


def run_a_plan_on_schema_web_v2(sandbox, env: dict, tmp: pathlib.Path):
    """The sandbox plan pointed at schema ``web_v2`` (which RudderStack would write as ``web_v_2``), built by the
    real factory from a DAG folder of its own and run with ``airflow dags test`` against the same sandbox."""
    import yaml

    plan = yaml.safe_load((ROOT / "include" / "plans" / "sandbox.yaml").read_text())
    plan["name"], plan["warehouse"]["namespace"] = "sandbox_web_v2", "web_v2"
    (tmp / "plans").mkdir(parents=True, exist_ok=True)
    (tmp / "plans" / "sandbox_web_v2.yaml").write_text(yaml.safe_dump(plan))
    (tmp / "dags").mkdir(exist_ok=True)
    # the docstring names "airflow" and "dag": Airflow's safe-mode discovery skips files that do not
    (tmp / "dags" / "web_v2.py").write_text(
        '"""Airflow DAGs of the web_v2 plan."""\n'
        "import pathlib\n"
        "from segment_rudderstack.factory.dags import build_all\n"
        f"globals().update(build_all(pathlib.Path({str(tmp / 'plans')!r}), reports_dir=pathlib.Path({str(tmp)!r})))\n"
    )
    before = changes(sandbox)
    run = run_dag(
        "segment_to_rudderstack__sandbox_web_v2",
        env={**env, "AIRFLOW__CORE__DAGS_FOLDER": str(tmp / "dags")},
        conf=None,
        log_dir=tmp / "logs",
        timeout_s=300,
    )
    return run, tuple(a - b for a, b in zip(changes(sandbox), before, strict=True))


@pytest.fixture(scope="module")
def migration(tmp_path_factory):
    """One full migration on a bad day (the faults above), a re-run after completion, the rollback DAG twice,
    then a dry run of the rolled-back plan (everything to do again), all on one sandbox."""
    observed: dict = {}

    def after_run(sandbox, env, result):
        observed["faults"] = {
            "segment": sandbox.segment.faults.state(),
            "rudderstack": sandbox.rudderstack.faults.state(),
        }
        observed["shadow_left"] = shadow_left(sandbox)
        log_dir = result.runs[0].log_path.parent
        observed["rollback"], observed["warehouse_after_rollback"] = roll_back(PLAN, sandbox, env, result)
        before = changes(sandbox)
        observed["rollback_again"] = run_dag(
            PLAN.rollback_dag_id, env=env, conf=None, log_dir=log_dir, timeout_s=300
        )
        after = changes(sandbox)
        observed["changes_by_second_rollback"] = (after[0] - before[0], after[1] - before[1])
        observed["dry_run"] = run_dag(
            PLAN.dag_id, env=env, conf={**FAST_CONF, "dry_run": True}, log_dir=log_dir, timeout_s=300
        )
        observed["changes_by_dry_run"] = tuple(a - b for a, b in zip(changes(sandbox), after, strict=True))
        observed["web_v2"] = run_a_plan_on_schema_web_v2(sandbox, env, log_dir.parent / "web_v2")

    tmp = tmp_path_factory.mktemp("e2e")
    # Retries slow the run down; old app versions start moving at the cutover however late it comes and fade
    # over 40 s, so they send through the webhook after it is on and the switch-off's replacement-path proof
    # sees deliveries.
    result = rehearse(
        fast_world(tmp, ramp_s=40.0),
        dag_id=PLAN.dag_id,
        change_log_key=PLAN.change_log_key,
        conf=FAST_CONF,
        rerun=True,
        before_run=arm_a_bad_day,
        after_run=after_run,
        timeout_s=600,
    )
    return result, observed


def test_migration_succeeds_and_every_event_is_in_the_warehouse_exactly_once(migration):
    result, _ = migration
    first = result.runs[0]
    assert first.ok, first.log_path.read_text()[-4000:]
    report = result.report
    assert report is not None
    totals = report.totals()
    assert totals.sent > 100, "the clients should have sent events through both SDKs"
    assert totals.missing == 0 and totals.duplicated == 0, report.format()
    assert report.ok
    # The overlap really happened: old-app events went through Segment's webhook to RudderStack while Segment
    # still loaded them too, and the merge left one row each.
    assert result.segment_counters.get("webhook_delivered", 0) > 0, result.segment_counters
    stats = result.client_stats["sent_by_source"]
    # Both SDK paths were used, before and after the cutover.
    assert (
        stats.get("src_web_app")
        and stats.get("rs_src_app")
        and stats.get("src_backend")
        and stats.get("rs_src_backend")
    ), stats


def test_safety_invariants_hold_in_the_emulators_own_logs(migration):
    result, _ = migration
    assert result.violations == []
    warehouse_off = warehouse_disabled_at(result.segment_log)
    webhook_off = webhook_disabled_at(result.segment_log)
    assert len(warehouse_off) == 1 and len(webhook_off) == 1
    assert warehouse_off[0] < webhook_off[0]


def test_segments_own_metrics_prove_the_webhook_path_and_show_app_versions_in_the_report(migration):
    """The production proof (no ledger): Segment's Delivery Overview counts of what its webhook delivered match
    what RudderStack loaded, bucket by bucket, before the webhook was switched off; the report says which app
    versions still sent to Segment."""
    result, _ = migration
    log = result.runs[0].log_path.read_text()
    assert re.search(r"webhook path matches: Segment delivered [1-9]", log), log[-3000:]
    written = re.search(r"report(?: written to|:) (\S+\.md)", log)
    assert written, log[-3000:]
    report = pathlib.Path(written.group(1)).read_text()
    assert "## Proof from Segment's metrics" in report and "### Webhook path: matches" in report
    # old app versions sent to Segment after the cutover (the emulated installs run 1.8.2 or 1.9.4)
    assert re.search(r"\| src_web_app \| 1\.(8\.2|9\.4) \| [1-9]\d* \| \d+ \|", report), report[-3000:]
    assert "### Continuity around the cutover" in report


def _report_text(run) -> str:
    log = run.log_path.read_text()
    written = re.search(r"report(?: written to|:) (\S+\.md)", log)
    assert written, log[-3000:]
    return pathlib.Path(written.group(1)).read_text()


def test_the_clean_world_keeps_its_shape_value_for_value(migration):
    """The shape checks on the clean world: the preflight, the shadow load compared with Segment's rows and the
    continuity check say "same shape"; the sandbox's value check finds every sent value in its column."""
    result, observed = migration
    report = _report_text(result.runs[0])
    section = report[report.index("## Shape continuity") :]
    assert section.startswith("## Shape continuity\n\n**Verdict: same shape.**"), section[:3000]
    for check in ("Before any change (preflight)", "Shadow load", "After RudderStack's loads"):
        assert check in section, section[:3000]
    compared = re.search(r"compared with Segment's for (\d+) message ids", section)
    assert compared and int(compared.group(1)) > 0, section[:3000]
    values = result.report.values
    assert values.values > 0 and values.lost == values.moved == values.changed == 0, values.format()
    # the shadow destination and its scratch schema were removed after the comparison
    assert observed["shadow_left"] == {"destinations": [], "schema": False}


def test_a_bad_day_loses_nothing_and_takes_no_unsafe_step(migration):
    """The migration above ran on a bad day: every armed fault really happened (all consumed), so it was not a
    quiet one; no client SDK gave up, and the run still lost, duplicated and switched off nothing too early (the
    tests above)."""
    result, observed = migration
    for emulator, expected in BAD_DAY.items():
        faults = observed["faults"][emulator]
        assert faults["armed"] == {}, (emulator, faults, result.segment_counters)
        assert expected <= set(faults["fired"]), (emulator, faults)
    assert result.client_stats["failed"] == 0, "a client SDK gave up: the faults were beyond its retries"
    assert result.report is not None and result.report.totals().dropped_after_close == 0


def test_rerun_after_completion_changes_nothing(migration):
    result, _ = migration
    first, rerun = result.runs
    assert first.ok and rerun.ok
    assert "is already complete" in rerun.log_path.read_text()
    after_first, after_rerun = result.changes_after_run
    assert after_first[0] > 0 and after_first[1] > 0, "the migration itself changed both services"
    assert after_rerun == after_first, "the re-run sent a changing request to Segment or RudderStack"


def test_rollback_restores_segment_and_is_idempotent(migration):
    _, observed = migration
    assert observed["rollback"].ok, observed["rollback"].log_path.read_text()[-3000:]
    assert observed["warehouse_after_rollback"]["enabled"] is True
    assert observed["rollback_again"].ok
    log = observed["rollback_again"].log_path.read_text()
    assert "every recorded change is already undone" in log  # the second rollback undoes nothing
    assert observed["changes_by_second_rollback"][0] == 0  # Segment: nothing left to undo


def test_dry_run_changes_nothing_in_either_emulator(migration):
    _, observed = migration
    run = observed["dry_run"]
    assert run.ok, run.log_path.read_text()[-4000:]
    assert observed["changes_by_dry_run"] == (0, 0)
    text = run.log_path.read_text()
    assert "DRY RUN: would change rudderstack.destination" in text
    assert "DRY RUN: would wait here" in text


def test_a_drifting_world_stops_before_segments_warehouse_is_switched_off_naming_each_column(tmp_path):
    """The drift world's new app version changes a property's type, sends keys RudderStack names differently and a
    property named `channel`: nothing is lost by id, but the shadow comparison stops the run before Segment's
    warehouse is switched off, naming each drifted column and its cause; the report says so; the rollback removes
    the shadow destination and its scratch schema."""
    observed: dict = {}

    def after_run(sandbox, env, result):
        observed["before_rollback"] = shadow_left(sandbox)
        observed["rollback"], _ = roll_back(PLAN, sandbox, env, result)
        observed["after_rollback"] = shadow_left(sandbox)

    result = rehearse(
        fast_world(tmp_path, world="drift"),
        dag_id=PLAN.dag_id,
        change_log_key=PLAN.change_log_key,
        conf=FAST_CONF,
        after_run=after_run,
        timeout_s=400,
    )
    run = result.runs[0]
    assert not run.ok
    log = run.log_path.read_text()
    stopped = log[log.index("the warehouse would not keep its shape") :]
    for line in (
        "cart_viewed.items: discarded",
        "product_viewed.skucode: moved",
        "identifies.crmid: moved",
        "order_completed.channel: ",
    ):
        assert line in stopped, stopped[:4000]
    assert warehouse_disabled_at(result.segment_log) == []  # Segment's warehouse was never switched off
    report = _report_text(run)
    assert "## Shape continuity\n\n**Verdict: shape differs.**" in report, report[:3000]
    assert "`cart_viewed.items`" in report
    assert observed["before_rollback"]["schema"] is True  # kept as evidence while the run is stopped
    assert observed["rollback"].ok
    assert observed["after_rollback"] == {"destinations": [], "schema": False}


def test_a_schema_rudderstack_would_write_elsewhere_is_refused_before_any_change(migration):
    """A plan on ``web_v2``: RudderStack snake-cases the namespace (rudder-server ``ToSafeNamespace``) and would
    load ``web_v_2``, which no model reads. The run stops at its preflight, naming both, and changes nothing."""
    _, observed = migration
    run, changed = observed["web_v2"]
    assert not run.ok, run.log_path.read_text()[-3000:]
    text = run.log_path.read_text()
    assert "preflight found problems; nothing was changed" in text, text[-3000:]
    assert "Segment loads the schema 'web_v2', but RudderStack would write to 'web_v_2'" in text
    assert changed == (0, 0)
