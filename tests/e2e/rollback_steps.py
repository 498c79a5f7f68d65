"""What both end-to-end rehearsals do after the migration run: run the plan's rollback DAG, then read Segment's
warehouse back over its API (as a data engineer would check it)."""

from __future__ import annotations

import httpx

from sandbox.rehearsal import run_dag


def roll_back(plan, sandbox, env, result) -> tuple[object, dict]:
    """The rollback DAG's run (logs beside the migration's) and Segment's warehouse afterwards."""
    log_dir = result.runs[0].log_path.parent
    rollback = run_dag(plan.rollback_dag_id, env=env, conf=None, log_dir=log_dir, timeout_s=300)
    with httpx.Client(
        base_url=sandbox.info.segment_url,
        timeout=10,
        headers={"Authorization": f"Bearer {sandbox.info.segment_token}"},
    ) as segment:
        warehouse = segment.get("/warehouses/wh_sandbox_pg").json()["data"]["warehouse"]
    return rollback, warehouse
