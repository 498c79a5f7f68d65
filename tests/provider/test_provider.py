"""The library as an Airflow provider: metadata, connection types seen by Airflow's ProvidersManager, the
UI's Test button (Airflow's Connection.test_connection) against the emulators' real test endpoints, and
extra links from tasks to the vendors' pages.

The package is installed editable by `make install` (`pip install -e plugins`); these tests fail when it is not."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import BaseOperatorLink

from segment_rudderstack.hooks import RudderStackDataPlaneHook, RudderStackHook, SegmentHook
from segment_rudderstack.provider_info import PACKAGE_NAME, get_provider_info

CONN_TYPES = {
    "segment": SegmentHook,
    "rudderstack": RudderStackHook,
    "rudderstack_data_plane": RudderStackDataPlaneHook,
}


def _import(path: str):
    module, _, name = path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


def test_provider_info_registers_the_three_connection_types_with_ui_fields():
    info = get_provider_info()
    types = {c["connection-type"]: c for c in info["connection-types"]}
    assert set(types) == set(CONN_TYPES)
    for conn_type, entry in types.items():
        hook = _import(entry["hook-class-name"])
        assert hook is CONN_TYPES[conn_type] and hook.conn_type == conn_type
        behaviour = entry["ui-field-behaviour"]
        assert "schema" in behaviour["hidden-fields"] and behaviour["relabeling"]["host"]
        assert behaviour["placeholders"]["extra"].startswith("{")
    assert types["segment"]["ui-field-behaviour"]["relabeling"]["password"] == "Public API token"
    assert types["rudderstack"]["ui-field-behaviour"]["relabeling"]["password"] == "Service access token"
    assert types["rudderstack_data_plane"]["ui-field-behaviour"]["relabeling"]["host"] == "Data plane URL"
    for link in info["extra-links"]:
        assert issubclass(_import(link), BaseOperatorLink)


def test_provider_info_is_valid_for_airflow():
    from airflow.providers_manager import _create_provider_info_schema_validator

    _create_provider_info_schema_validator().validate(get_provider_info())


@pytest.fixture(scope="module")
def providers():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert PACKAGE_NAME in manager.providers, "install the provider: make install (pip install -e plugins)"
    return manager


def test_airflow_sees_the_connection_types_and_their_form(providers):
    hooks = providers.hooks
    for conn_type, hook in CONN_TYPES.items():
        info = hooks[conn_type]
        assert info.package_name == PACKAGE_NAME
        assert info.hook_class_name == f"{hook.__module__}.{hook.__name__}"
        assert info.connection_testable  # the UI shows the Test button
    behaviours = providers.field_behaviours
    assert behaviours["segment"]["hidden_fields"] == ["schema", "port", "login"]
    assert (
        behaviours["rudderstack_data_plane"]["placeholders"]["extra"]
        == '{"warehouse_path_prefix": "/v1/warehouse"}'
    )


# ---------------------------------------------------------------- the Test button, against the emulators
@pytest.fixture(scope="module")
def emulators(pg_dsn):
    from sandbox.common import ServerThread
    from sandbox.rudderstack_emulator import RudderStackEmulator, RudderStackSettings
    from sandbox.segment import SegmentEmulator, SegmentSettings
    from sandbox.warehouse import Warehouse

    warehouse = Warehouse(pg_dsn)
    segment = SegmentEmulator(SegmentSettings(load_interval_s=None), warehouse, None)
    rudderstack = RudderStackEmulator(RudderStackSettings(), warehouse)
    servers = [ServerThread(segment.app).start(), ServerThread(rudderstack.app).start()]
    yield {
        "segment": (servers[0].url, segment.settings.token),
        "rudderstack": (servers[1].url, rudderstack.settings.token),
    }
    for server in servers:
        server.stop()


def _test_button(monkeypatch, conn_type: str, host: str, password: str | None):
    """What the UI's Test button runs: Airflow's Connection.test_connection (hook found by conn_type)."""
    from airflow.models.connection import Connection

    fields = {"conn_type": conn_type, "host": host, "password": password}
    monkeypatch.setenv("AIRFLOW_CONN_UI_TEST", json.dumps({k: v for k, v in fields.items() if v is not None}))
    return Connection(conn_id="ui_test", **fields).test_connection()


@pytest.mark.parametrize("conn_type", ["segment", "rudderstack", "rudderstack_data_plane"])
def test_the_test_button_reaches_each_service(providers, emulators, monkeypatch, conn_type):
    url, token = emulators["segment" if conn_type == "segment" else "rudderstack"]
    ok, message = _test_button(
        monkeypatch, conn_type, url, token if conn_type != "rudderstack_data_plane" else None
    )
    assert ok, message
    assert message.startswith("Connection to ")


@pytest.mark.parametrize("conn_type", ["segment", "rudderstack"])
def test_the_test_button_reports_a_wrong_token_without_showing_it(
    providers, emulators, monkeypatch, conn_type
):
    url, _ = emulators[conn_type]
    ok, message = _test_button(monkeypatch, conn_type, url, "wrong-token-SECRET-42")
    assert not ok
    assert "401" in message and "wrong-token-SECRET-42" not in message


# ---------------------------------------------------------------- extra links
@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    import pathlib

    from segment_rudderstack.factory.dags import build_all

    root = pathlib.Path(__file__).resolve().parents[2]
    return build_all(root / "include" / "plans", reports_dir=tmp_path_factory.mktemp("r"))[
        "segment_to_rudderstack__sandbox"
    ]


def _links(task) -> dict[str, BaseOperatorLink]:
    return {link.name: link for link in task.operator_extra_links}


def test_tasks_link_to_the_segment_warehouse_and_the_rudderstack_destination(dag, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMENT_SANDBOX",
        json.dumps(
            {"conn_type": "segment", "host": "http://127.0.0.1:1", "extra": {"workspace_slug": "acme"}}
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_RUDDERSTACK_SANDBOX", json.dumps({"conn_type": "rudderstack"}))
    warehouse_tasks = [
        "segment_final_load.wait_final_load",
        "segment_final_load.disable_segment_warehouse",
        "release_rudderstack.wait_sync_gate",
        "server_side.wait_drained__src_backend",
    ]
    for task_id in warehouse_tasks:
        task = dag.get_task(task_id)
        task.segment_conn_id = "segment_sandbox"
        url = _links(task)["Segment warehouse"].get_link(task, ti_key=None)
        assert url == f"https://app.segment.com/acme/warehouses/{task.warehouse_id}/overview", task_id
    webhooks = dag.get_task("route_segment_to_rudderstack.ensure_webhooks")
    assert _links(webhooks)["Segment destinations"].get_link(webhooks, ti_key=None).endswith("/destinations")

    for task_id in [
        "setup_rudderstack.hold_sync",
        "release_rudderstack.release_sync",
        "release_rudderstack.wait_upload",
    ]:
        task = dag.get_task(task_id)
        link = _links(task)["RudderStack destination"]
        assert (
            link.get_link(task, ti_key=None) == ""
        )  # still a template at parse time: no link rather than a bad one
        task.destination_id = "dst_42"  # as rendered when the task runs
        assert link.get_link(task, ti_key=None) == "https://app.rudderstack.com/destinations/dst_42"


def test_the_destination_link_of_the_ensure_step_uses_the_id_it_returned(dag):
    task = dag.get_task("setup_rudderstack.ensure_destination")

    class RunningTask:  # the Task SDK passes the running task instance as ti_key when the task finishes
        task_id = task.task_id

        def xcom_pull(self, task_ids):
            return "dst_created" if task_ids == task.task_id else None

    assert _links(task)["RudderStack destination"].get_link(task, ti_key=RunningTask()) == (
        "https://app.rudderstack.com/destinations/dst_created"
    )


def test_links_survive_dag_serialization(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    data = DagSerialization.to_dict(dag)
    tasks = {t["__var"]["task_id"]: t["__var"] for t in data["dag"]["tasks"]}
    assert (
        "Segment warehouse" in tasks["segment_final_load.disable_segment_warehouse"]["_operator_extra_links"]
    )
    assert "RudderStack destination" in tasks["release_rudderstack.wait_upload"]["_operator_extra_links"]
