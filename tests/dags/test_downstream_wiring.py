"""The migration DAG's wiring for downstream tools (docs/downstream.md): each lane's upload sensor and duplicate
check declare the lane's asset alias (a name from the plan alone, known at parse time), the release and the
switch-off carry the writer change for OpenLineage; XComArgs, no I/O."""

from __future__ import annotations

import pathlib

import pytest
from airflow.sdk import AssetAlias

from segment_rudderstack.factory.dags import build_all

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dags(tmp_path_factory):
    return build_all(ROOT / "include" / "plans", reports_dir=tmp_path_factory.mktemp("reports"))


def test_the_one_lane_plan_announces_its_tables_after_the_first_load_and_the_duplicate_check(dags):
    dag = dags["segment_to_rudderstack__sandbox"]
    upload = dag.get_task("release_rudderstack.wait_upload")
    check = dag.get_task("duplicate_check")

    assert upload.outlets == [
        AssetAlias("segment_to_rudderstack__sandbox__app_events__rudderstack_first_load")
    ]
    assert check.outlets == [AssetAlias("segment_to_rudderstack__sandbox__app_events__duplicate_checked")]
    for task, stage in ((upload, "rudderstack_first_load"), (check, "duplicate_checked")):
        wired = task.cutover_assets
        assert (wired["plan"], wired["lane"], wired["schema"], wired["stage"]) == (
            "sandbox",
            "app_events",
            "app_events",
            stage,
        )
        # the cutover point, the release and the destination come from the tasks that made them
        assert wired["cutover_at"].operator.task_id == "route_segment_to_rudderstack.ensure_webhooks"
        assert wired["released_at"].operator.task_id == "release_rudderstack.release_sync"
        assert wired["destination_id"].operator.task_id == "setup_rudderstack.ensure_destination"


def test_each_lane_of_a_multi_schema_plan_has_its_own_aliases(dags):
    dag = dags["segment_to_rudderstack__sandbox_multi"]
    aliases = {t.task_id: [o.name for o in t.outlets] for t in dag.tasks if t.outlets}

    assert aliases == {
        "release_rudderstack.app_events.wait_upload": [
            "segment_to_rudderstack__sandbox_multi__app_events__rudderstack_first_load"
        ],
        "release_rudderstack.mobile_events.wait_upload": [
            "segment_to_rudderstack__sandbox_multi__mobile_events__rudderstack_first_load"
        ],
        "duplicate_check.app_events": [
            "segment_to_rudderstack__sandbox_multi__app_events__duplicate_checked"
        ],
        "duplicate_check.mobile_events": [
            "segment_to_rudderstack__sandbox_multi__mobile_events__duplicate_checked"
        ],
    }
    assert dag.get_task("duplicate_check.mobile_events").cutover_assets["schema"] == "mobile_events"


def test_the_release_and_the_switch_off_carry_the_writer_change(dags):
    dag = dags["segment_to_rudderstack__sandbox_multi"]
    switch_off = dag.get_task("segment_final_load.disable_segment_warehouse").writer_change
    release = dag.get_task("release_rudderstack.mobile_events.release_sync").writer_change

    assert switch_off["step"] == "switch_off_segment_warehouse"
    assert [lane["schema"] for lane in switch_off["lanes"]] == ["app_events", "mobile_events"]
    assert release["step"] == "release_rudderstack_sync"
    assert [lane["schema"] for lane in release["lanes"]] == ["mobile_events"]
    assert release["cutover_at"].operator.task_id == "route_segment_to_rudderstack.cutover_point"
    assert release["lanes"][0]["destination_id"].operator.task_id == (
        "setup_rudderstack.mobile_events.ensure_destination"
    )
