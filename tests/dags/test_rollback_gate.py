"""The rollback DAG: an approval gate when the plan requires approvals (not for a dry run), and one closing
log line that agrees with itself (before: "the change log is empty" and "already rolled back" together)."""

from __future__ import annotations

import logging
import pathlib
import uuid

from segment_rudderstack.factory.dags import build_all
from segment_rudderstack.operators.rollback import RollbackOperator, rollback_summary

ROOT = pathlib.Path(__file__).resolve().parents[2]
SANDBOX = (ROOT / "include" / "plans" / "sandbox.yaml").read_text()


def rollback_dag(tmp_path, approvals: bool):
    text = SANDBOX.replace("require_approvals: false", f"require_approvals: {str(approvals).lower()}")
    (tmp_path / "plan.yaml").write_text(text)
    return build_all(tmp_path, reports_dir=tmp_path)["segment_to_rudderstack_rollback__sandbox"]


def test_a_plan_that_requires_approvals_gets_a_gate_before_the_rollback(tmp_path):
    dag = rollback_dag(tmp_path, approvals=True)
    assert dag.get_task("rollback").upstream_task_ids == {"approve_rollback"}
    gate = dag.get_task("approve_rollback")
    assert gate.fail_on_reject is True and "Roll back migration sandbox?" == gate.subject
    env = dag.get_template_env()
    assert env.from_string(gate.required).render(params={"dry_run": False}) is True
    assert (
        env.from_string(gate.required).render(params={"dry_run": True}) is False
    )  # a dry run needs no approval


def test_a_plan_without_approvals_rolls_back_directly(tmp_path):
    dag = rollback_dag(tmp_path, approvals=False)
    assert set(dag.task_ids) == {"rollback"}


def test_an_empty_change_log_says_so_once_and_nothing_else(caplog, capfd):
    operator = RollbackOperator(
        task_id="rollback",
        plan_name="nothing_here",
        segment_conn_id="unused",
        rudderstack_conn_id="unused",
        change_log_key=f"test_rollback_{uuid.uuid4().hex}",
    )
    with caplog.at_level(logging.INFO):
        assert operator.execute({})["undone"] == []
    out = caplog.text + "".join(capfd.readouterr())  # the Task SDK logs through structlog to the console
    assert out.count("rollback: the change log") == 1
    assert f"the change log {operator.change_log_key} is empty: this plan changed nothing" in out
    assert "already" not in out


def test_the_closing_line_names_what_was_undone_or_that_it_already_was():
    assert (
        rollback_summary(
            ["re-enabled Segment warehouse wh_1"], empty=False, dry_run=False, change_log_key="k"
        )
        == "undid 1 change(s): re-enabled Segment warehouse wh_1"
    )
    assert rollback_summary(
        ["re-enabled Segment warehouse wh_1"], empty=False, dry_run=True, change_log_key="k"
    ).startswith("would undo 1 change(s)")
    assert rollback_summary([], empty=False, dry_run=False, change_log_key="k").startswith(
        "every recorded change is already undone"
    )
