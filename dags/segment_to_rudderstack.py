"""Airflow DAGs: one migration DAG and one rollback DAG per plan file in include/plans/ (wiring only: reads YAML, no I/O)."""

import pathlib

from segment_rudderstack.factory.dags import build_all

ROOT = pathlib.Path(__file__).resolve().parent.parent

globals().update(build_all(ROOT / "include" / "plans", reports_dir=ROOT / "reports"))
