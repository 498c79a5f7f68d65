"""Benchmark: DAG parse + serialization of the plans' DAGs against a twin of the same shape and Params.

For 1, 10 and 50 plans (copies of ``include/plans/sandbox.yaml`` under different names) it times, in one
process and after a warm-up, what the dag-processor does for each DAG file: build every migration and
rollback DAG (``build_all``) and serialize each one (``DagSerialization.to_dict``). The baselines are built
from the real DAGs' structure before timing:

- *twin*: one ``EmptyOperator`` per task, same task ids, task groups, dependencies, schedule and the same
  DAG ``Params`` (carried by every task, Airflow's default);
- *empty twin*: the same without Params.

It prints the median of ``--runs`` timings, the per-plan cost and the ratios real/twin (goal: at most 1.25).

    .venv/bin/python scripts/bench_parse.py [--plans 1 10 50] [--runs 3]

Timings are from one run on one machine: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))


def write_plans(folder: pathlib.Path, count: int) -> None:
    text = (ROOT / "include" / "plans" / "sandbox.yaml").read_text()
    for n in range(count):
        (folder / f"plan_{n:03d}.yaml").write_text(text.replace("name: sandbox", f"name: bench_{n:03d}", 1))


def shape(dag) -> dict:
    """What a twin needs: DAG arguments, Params, groups and edges (read outside the timings)."""
    return {
        "dag_id": dag.dag_id,
        "schedule": dag.schedule if not hasattr(dag, "timetable") else None,
        "start_date": dag.start_date,
        "params": {k: dag.params.get_param(k) for k in dag.params},
        "tasks": [(t.task_id, t.task_group.group_id if t.task_group else None) for t in dag.tasks],
        "edges": [(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids],
    }


def build_twin(spec: dict, with_params: bool):
    import copy

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, TaskGroup

    params = copy.deepcopy(spec["params"]) if with_params else None
    with DAG(
        spec["dag_id"] + "__twin", schedule=None, start_date=spec["start_date"], catchup=False, params=params
    ) as dag:
        groups: dict[str, TaskGroup] = {}
        ops = {}
        for task_id, group_id in spec["tasks"]:
            if group_id and group_id not in groups:
                groups[group_id] = TaskGroup(group_id)
            local = task_id.split(".", 1)[1] if group_id else task_id
            ops[task_id] = EmptyOperator(task_id=local, task_group=groups.get(group_id))
        for upstream, downstream in spec["edges"]:
            ops[upstream] >> ops[downstream]
    return dag


def real(folder: pathlib.Path, reports: pathlib.Path) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    from segment_rudderstack.factory.dags import build_all

    for dag in build_all(folder, reports_dir=reports).values():
        DagSerialization.to_dict(dag)


def twin(specs: list[dict], with_params: bool) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    for spec in specs:
        DagSerialization.to_dict(build_twin(spec, with_params))


def timed(fn, runs: int) -> float:
    fn()  # warm-up (imports, caches)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plans", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from segment_rudderstack.factory.dags import build_all

    print(
        f"{'plans':>5} {'real ms':>9} {'ms/plan':>8} {'twin ms':>9} {'empty twin ms':>14} "
        f"{'real/twin':>10} {'real/empty':>11} {'tasks':>6}"
    )
    worst = 0.0
    for count in args.plans:
        with tempfile.TemporaryDirectory() as tmp:
            folder = pathlib.Path(tmp)
            write_plans(folder, count)
            reports = folder / "reports"
            dags = build_all(folder, reports_dir=reports)
            specs = [shape(d) for d in dags.values()]
            tasks = sum(len(s["tasks"]) for s in specs)

            real_s = timed(lambda f=folder, r=reports: real(f, r), args.runs)
            twin_s = timed(lambda s=specs: twin(s, True), args.runs)
            empty_s = timed(lambda s=specs: twin(s, False), args.runs)
        ratio = real_s / twin_s
        worst = max(worst, ratio)
        print(
            f"{count:>5} {real_s * 1000:>9.1f} {real_s * 1000 / count:>8.1f} {twin_s * 1000:>9.1f} "
            f"{empty_s * 1000:>14.1f} {ratio:>10.2f} {real_s / empty_s:>11.2f} {tasks:>6}"
        )
    print(f"worst real/twin ratio: {worst:.2f} (goal: at most 1.25)")


if __name__ == "__main__":
    main()
