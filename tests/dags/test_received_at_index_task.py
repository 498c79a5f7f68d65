"""warehouse.create_received_at_index adds one recorded step right after the preflight, before any other change."""

from __future__ import annotations

import pathlib

import yaml

from segment_rudderstack.factory.dags import build_all

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_index_step_follows_the_preflight_and_precedes_the_setup(tmp_path):
    plan = yaml.safe_load((ROOT / "include" / "plans" / "sandbox.yaml").read_text())
    plan["warehouse"]["create_received_at_index"] = True
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(plan))
    dag = build_all(tmp_path, reports_dir=tmp_path / "reports")["segment_to_rudderstack__sandbox"]

    task = dag.get_task("create_received_at_index")
    assert task.upstream_task_ids == {"preflight"}
    # the shape preflight (read-only) and its gate run between it and the setup
    assert task.downstream_task_ids == {"shape.check_shape"}
    gate = dag.get_task("shape.approve_shape_preflight")
    assert "setup_rudderstack.ensure_destination" in gate.downstream_task_ids
    assert (
        "create_received_at_index"
        not in build_all(ROOT / "include" / "plans", reports_dir=tmp_path)[
            "segment_to_rudderstack__sandbox"
        ].task_ids
    )  # off by default
