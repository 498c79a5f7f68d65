"""A plan whose sources load into several schemas: one lane per schema, each phase one task group per lane,
Segment's final load and switch-off once for the warehouse; lanes can be picked in the trigger form."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml
from airflow.sdk.exceptions import AirflowSkipException, ParamValidationError

from segment_rudderstack.factory.dags import build_migration_dag
from segment_rudderstack.operators.lanes import (
    CutoverPointOperator,
    LaneSelectedOperator,
    selected_source_ids,
)
from segment_rudderstack.plan.model import PlanError, parse_plan
from tests.dags.test_migration_dag import upstream_closure

ROOT = pathlib.Path(__file__).resolve().parents[2]
MULTI = yaml.safe_load((ROOT / "include" / "plans" / "sandbox_multi.yaml").read_text())
LANES = ["app_events", "mobile_events", "shop_events"]


def three_lanes() -> dict:
    data = copy.deepcopy(MULTI)
    data["sources"].append(
        {"id": "src_shop", "kind": "client", "schema": "shop_events", "rudderstack_source_id": "rs_src_shop"}
    )
    return data


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    return build_migration_dag(parse_plan(three_lanes()), reports_dir=tmp_path_factory.mktemp("reports"))


def test_each_phase_has_one_group_per_lane_and_the_warehouse_steps_once(dag):
    groups = dag.task_group.get_task_group_dict()
    for phase in (
        "setup_rudderstack",
        "route_segment_to_rudderstack",
        "release_rudderstack",
        "client_adoption",
    ):
        assert {f"{phase}.{lane}" for lane in LANES} <= set(groups), phase
    ids = set(dag.task_ids)
    assert {f"preflight.{lane}" for lane in LANES} | {f"duplicate_check.{lane}" for lane in LANES} <= ids
    assert [t for t in ids if t.rsplit(".", 1)[-1] == "disable_segment_warehouse"] == [
        "segment_final_load.disable_segment_warehouse"
    ]
    assert [t for t in ids if t.endswith("wait_final_load")] == ["segment_final_load.wait_final_load"]


@pytest.mark.parametrize("lane", LANES)
def test_every_lane_follows_the_runbook(dag, lane):
    order = [
        f"setup_rudderstack.{lane}.lane_selected",
        f"setup_rudderstack.{lane}.ensure_destination",
        f"setup_rudderstack.{lane}.hold_sync",
        f"setup_rudderstack.{lane}.ensure_segment_source",
        f"route_segment_to_rudderstack.{lane}.ensure_webhooks",
        "route_segment_to_rudderstack.cutover_point",
        "segment_final_load.wait_final_load",
        "segment_final_load.disable_segment_warehouse",
        f"release_rudderstack.{lane}.wait_sync_gate",
        f"release_rudderstack.{lane}.release_sync",
        f"release_rudderstack.{lane}.wait_upload",
        f"duplicate_check.{lane}",
        f"client_adoption.{lane}.wait_client_adoption",
        f"client_adoption.{lane}.disable_segment_webhook",
        "report",
    ]
    for before, after in zip(order, order[1:], strict=False):
        assert before in upstream_closure(dag, after), (before, after)
    # Every lane's preflight comes before any lane changes anything.
    assert {f"preflight.{other}" for other in LANES} <= upstream_closure(
        dag, f"setup_rudderstack.{lane}.ensure_destination"
    )


def test_each_lane_writes_only_its_own_schema(dag):
    for lane in LANES:
        assert dag.get_task(f"setup_rudderstack.{lane}.ensure_destination").namespace == lane
        assert dag.get_task(f"release_rudderstack.{lane}.wait_upload").namespace == lane
        assert dag.get_task(f"duplicate_check.{lane}").namespace == lane
        assert dag.get_task(f"client_adoption.{lane}.wait_client_adoption").namespace == lane
    names = {dag.get_task(f"setup_rudderstack.{lane}.ensure_destination").destination_name for lane in LANES}
    assert len(names) == 3  # one destination per lane, found again by its own name on a re-run
    assert dag.get_task("setup_rudderstack.mobile_events.ensure_segment_source").connect_source_ids == [
        "rs_src_android",
        "rs_src_ios",
    ]


def test_joins_after_lanes_run_when_a_lane_was_left_out(dag):
    assert (
        dag.get_task("route_segment_to_rudderstack.cutover_point").trigger_rule
        == "none_failed_min_one_success"
    )
    assert (
        dag.get_task("report").trigger_rule == "all_done"
    )  # and says which lanes ran (ops: failed runs too)


def test_lanes_param_is_checked_like_sources(dag):
    params = copy.deepcopy(dag.params)
    assert params.validate()["lanes"] == LANES
    for bad in (["elsewhere"], []):
        params = copy.deepcopy(dag.params)
        with pytest.raises(ParamValidationError, match="lanes"):
            params.update({"lanes": bad})
            params.validate()


def test_selected_sources_combine_the_sources_and_lanes_fields():
    lanes = {
        "app_events": ["src_web_app", "src_backend"],
        "mobile_events": ["src_ios_app", "src_android_app"],
    }
    everything = {"sources": ["src_web_app", "src_backend", "src_ios_app", "src_android_app"]}
    assert selected_source_ids(lanes, everything) == everything["sources"]
    assert selected_source_ids(lanes, {**everything, "lanes": ["mobile_events"]}) == [
        "src_ios_app",
        "src_android_app",
    ]
    assert selected_source_ids(
        lanes, {"sources": ["src_web_app", "src_ios_app"], "lanes": ["app_events"]}
    ) == ["src_web_app"]


def test_a_lane_with_no_selected_source_is_skipped():
    gate = LaneSelectedOperator(
        task_id="g",
        lane="mobile_events",
        schema="mobile_events",
        source_ids=["src_ios_app", "src_android_app"],
        selected_source_ids=["src_web_app"],
    )
    with pytest.raises(AirflowSkipException, match="not migrated in this run"):
        gate.execute({})
    gate.selected_source_ids = ["src_web_app", "src_ios_app"]
    assert gate.execute({})["sources"] == ["src_ios_app"]


def test_cutover_point_is_the_latest_lane_cutover():
    point = CutoverPointOperator(
        task_id="c", cutovers=["2026-11-29T07:00:05+00:00", None, "2026-11-29T07:00:09Z"]
    )
    assert point.execute({}) == "2026-11-29T07:00:09+00:00"
    point.cutovers = [None, None]
    with pytest.raises(ValueError, match="no lane reported a cutover point"):
        point.execute({})


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["sources"][2].pop("schema"), "name no schema and warehouse.namespace is not set"),
        (lambda d: d["rudderstack"]["destination"].update(id="dst_1"), "one destination per schema"),
        (lambda d: d["sources"][2].update(schema="APP_events"), "differ only in case"),
        (lambda d: d["sources"][2].update(schema="mobile; drop"), "sources[2].schema"),
    ],
)
def test_bad_multi_schema_plans_are_refused(change, expected):
    data = copy.deepcopy(MULTI)
    change(data)
    with pytest.raises(PlanError) as err:
        parse_plan(data)
    assert expected in str(err.value)


def test_a_one_schema_plan_keeps_its_names_and_namespace():
    plan = parse_plan(yaml.safe_load((ROOT / "include" / "plans" / "sandbox.yaml").read_text()))
    (lane,) = plan.lanes
    assert (lane.schema, lane.destination_name) == ("app_events", plan.rudderstack.destination.name)
    multi = parse_plan(MULTI)
    assert [lane.destination_name for lane in multi.lanes] == [
        "Warehouse (migrated from Segment) [app_events]",
        "Warehouse (migrated from Segment) [mobile_events]",
    ]
