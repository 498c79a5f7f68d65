"""Every file in dags/ imports without errors and without touching the network or a database."""

from __future__ import annotations

import pathlib

from airflow.dag_processing.dagbag import DagBag

DAGS = pathlib.Path(__file__).resolve().parents[2] / "dags"


def test_dags_folder_has_no_import_errors():
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}, bag.import_errors
    assert bag.dags, "dags/ defines no DAG"
    for dag_id, dag in bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
