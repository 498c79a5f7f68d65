"""The proof from Segment's metrics in the DAG: Segment's webhook is only switched off after the webhook path was
verified (and, with ``proof.on_gap: approve``, after a person accepted a gap); the plan's adoption signal picks
the sensor."""

from __future__ import annotations

from segment_rudderstack.factory.dags import build_all
from segment_rudderstack.sensors.migration import ClientAdoptionSensor
from segment_rudderstack.sensors.proof import SegmentAdoptionSensor
from tests.dags.test_migration_dag import PLANS, upstream_closure

SWITCH_OFF = "client_adoption.disable_segment_webhook"


def _dag(tmp_path, **replace: str):
    text = (PLANS / "sandbox.yaml").read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "proofed.yaml").write_text(text.replace("name: sandbox", "name: proofed"))
    return build_all(tmp_path, reports_dir=tmp_path)["segment_to_rudderstack__proofed"]


def test_the_webhook_is_switched_off_only_after_the_webhook_path_was_verified(tmp_path):
    dag = _dag(tmp_path)
    assert "client_adoption.verify_webhook_path" in upstream_closure(dag, SWITCH_OFF)
    assert "client_adoption.wait_client_adoption" in upstream_closure(
        dag, "client_adoption.verify_webhook_path"
    )
    assert dag.get_task("client_adoption.verify_webhook_path").on_gap == "fail"
    assert isinstance(dag.get_task("client_adoption.wait_client_adoption"), SegmentAdoptionSensor)  # "both"


def test_a_gap_can_be_accepted_by_a_person_when_the_plan_says_so(tmp_path):
    dag = _dag(tmp_path, **{"on_gap: fail": "on_gap: approve"})
    gate = "client_adoption.approve_webhook_path_gap"
    assert gate in upstream_closure(dag, SWITCH_OFF)
    assert "client_adoption.verify_webhook_path" in upstream_closure(dag, gate)
    choice = dag.get_task(gate)
    # three answers instead of approve-or-fail: proceed to the switch-off, hold the plan, or roll back
    assert choice.options == ["Proceed", "Hold", "Roll back"]
    assert choice.options_mapping == {
        "Proceed": "client_adoption.proceed",
        "Hold": "client_adoption.hold_plan",
        "Roll back": "client_adoption.roll_back",
    }
    assert {"client_adoption.proceed", "client_adoption.hold_plan"} <= dag.get_task(
        SWITCH_OFF
    ).upstream_task_ids
    assert (
        dag.get_task("client_adoption.roll_back").trigger_dag_id == "segment_to_rudderstack_rollback__proofed"
    )
    assert (
        "client_adoption.stop_after_roll_back"
        in dag.get_task("client_adoption.roll_back").downstream_task_ids
    )


def test_without_the_proof_the_warehouse_signal_alone_decides(tmp_path):
    dag = _dag(
        tmp_path, **{"  enabled: true\n  granularity: MINUTE": "  enabled: false\n  granularity: MINUTE"}
    )
    assert "client_adoption.verify_webhook_path" not in dag.task_ids
    assert type(dag.get_task("client_adoption.wait_client_adoption")) is ClientAdoptionSensor
