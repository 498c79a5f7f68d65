"""End to end, several schemas: the multi-schema world (web app + backend in `app_events`, iOS and Android apps
in `mobile_events`) migrated by include/plans/sandbox_multi.yaml, one lane per schema. One sandbox serves the
whole module: the migration, then the rollback DAG, then a dry run (it must change nothing)."""

from __future__ import annotations

import pathlib

import pytest

from sandbox.config import load_config
from sandbox.invariants import mutating_calls, warehouse_disabled_at, webhook_disabled_at
from sandbox.rehearsal import rehearse, run_dag
from segment_rudderstack.plan.model import load_plan
from tests.e2e.rollback_steps import roll_back

pytestmark = pytest.mark.slow

PLAN = load_plan(pathlib.Path(__file__).resolve().parents[2] / "include" / "plans" / "sandbox_multi.yaml")
FAST_CONF = {"adoption_window_seconds": 20, "adoption_consecutive_checks": 2}
SCHEMAS = {"app_events": {"rs_src_app", "rs_src_backend"}, "mobile_events": {"rs_src_ios", "rs_src_android"}}


@pytest.fixture(scope="module")
def migration(tmp_path_factory):
    observed: dict = {}
    tmp = tmp_path_factory.mktemp("multi")
    config = load_config(
        world="multi",
        home=tmp / "sandbox",
        segment={"load_interval_s": 2.0, "load_duration_s": 0.5},
        rudderstack={"time_compression": 120.0, "upload_duration_s": 0.5},
        # Each client source's new app version starts rolling out when its lane enables Segment's webhook, so old
        # versions of every source still send through the webhook for a while.
        clients={
            "server_side_switch": "auto",
            "events_per_second": 8.0,
            "adoption": {"kind": "linear", "ramp_s": 45.0, "start_delay_s": 0.0, "starts_at": "cutover"},
        },
    )

    def changes(sandbox) -> tuple[int, int]:
        return (
            len(mutating_calls(sandbox.segment.log.entries())),
            len(mutating_calls(sandbox.rudderstack.log.entries())),
        )

    def after_run(sandbox, env, result):
        observed["rudderstack_state"] = sandbox.rudderstack.state()
        log_dir = result.runs[0].log_path.parent
        observed["rollback"], observed["warehouse_after_rollback"] = roll_back(PLAN, sandbox, env, result)
        observed["segment_after_rollback"] = sandbox.segment.state()
        observed["rudderstack_after_rollback"] = sandbox.rudderstack.state()
        # A dry run of the rolled-back plan (so it has everything to do again) must change nothing.
        before = changes(sandbox)
        observed["dry_run"] = run_dag(
            PLAN.dag_id, env=env, conf={**FAST_CONF, "dry_run": True}, log_dir=log_dir, timeout_s=300
        )
        after = changes(sandbox)
        observed["dry_run_changes"] = (after[0] - before[0], after[1] - before[1])

    result = rehearse(
        config,
        dag_id=PLAN.dag_id,
        change_log_key=PLAN.change_log_key,
        conf=FAST_CONF,
        after_run=after_run,
        timeout_s=600,
    )
    return result, observed


def test_plan_has_one_lane_per_schema():
    assert [(lane.name, lane.source_ids) for lane in PLAN.lanes] == [
        ("app_events", ["src_web_app", "src_backend"]),
        ("mobile_events", ["src_ios_app", "src_android_app"]),
    ]


def test_dry_run_changes_nothing(migration):
    _, observed = migration
    run = observed["dry_run"]
    assert run.ok, run.log_path.read_text()[-4000:]
    assert observed["dry_run_changes"] == (0, 0)
    text = run.log_path.read_text()
    assert "DRY RUN" in text
    for lane in ("app_events", "mobile_events"):  # both lanes were gone through, not skipped
        assert f"lane '{lane}' (schema '{lane}') migrates sources" in text


def test_every_event_is_in_its_own_schema_exactly_once(migration):
    result, _ = migration
    run = result.runs[0]
    assert run.ok, run.log_path.read_text()[-4000:]
    by_schema = result.report.by_schema()
    assert sorted(by_schema) == ["app_events", "mobile_events"]
    for schema, report in by_schema.items():
        totals = report.totals()
        assert totals.sent > 50, (schema, report.format())
        assert (totals.missing, totals.duplicated, totals.misplaced) == (0, 0, 0), report.format()
    assert result.report.ok
    assert result.violations == []
    assert (
        len(warehouse_disabled_at(result.segment_log)) == 1
    )  # Segment's warehouse: switched off once, for all
    # Three client sources, three webhooks, each switched off after the warehouse.
    assert len(webhook_disabled_at(result.segment_log)) == 3
    assert min(webhook_disabled_at(result.segment_log)) > warehouse_disabled_at(result.segment_log)[0]


def test_each_lane_has_its_own_destination_and_segment_source(migration):
    _, observed = migration
    state = observed["rudderstack_state"]
    destinations = {d["id"]: d for d in state["destinations"]}
    namespace_of = {d["config"]["namespace"]: d["id"] for d in destinations.values()}
    assert sorted(namespace_of) == sorted(SCHEMAS)
    sources = {s["id"]: s for s in state["sources"]}
    for schema, rs_sources in SCHEMAS.items():
        connected = {
            c["sourceId"]
            for c in state["connections"]
            if c["destinationId"] == namespace_of[schema] and c.get("enabled", True)
        }
        webhook_sources = {s for s in connected if sources[s]["type"] == "Segment"}
        assert connected - webhook_sources == rs_sources, (schema, connected)
        assert len(webhook_sources) == 1, (schema, connected)
        # The lane's webhook path was used: old app versions' events reached the lane's Segment-type source.
        assert sources[webhook_sources.pop()]["receivedEvents"] > 0, schema


def test_rollback_of_a_multi_lane_plan_restores_segment_and_holds_every_lane(migration):
    _, observed = migration
    assert observed["rollback"].ok, observed["rollback"].log_path.read_text()[-3000:]
    assert observed["warehouse_after_rollback"]["enabled"] is True
    webhooks = [d for d in observed["segment_after_rollback"]["destinations"] if d.get("sourceId")]
    assert len(webhooks) == 3 and not any(d["enabled"] for d in webhooks)
    warehouses = [
        d
        for d in observed["rudderstack_after_rollback"]["destinations"]
        if d["config"].get("namespace") in SCHEMAS
    ]
    assert len(warehouses) == 2 and all(d["config"].get("manualSync") is True for d in warehouses)
