"""Bad plans fail on load with a message that names the field; good plans load with their defaults."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from segment_rudderstack.plan.model import PlanError, load_plan, parse_plan

SANDBOX_PLAN = pathlib.Path(__file__).resolve().parents[2] / "include" / "plans" / "sandbox.yaml"


def base() -> dict:
    return yaml.safe_load(SANDBOX_PLAN.read_text())


def test_sandbox_plan_loads():
    plan = load_plan(SANDBOX_PLAN)
    assert plan.dag_id == "segment_to_rudderstack__sandbox"
    assert [s.id for s in plan.client_sources] == ["src_web_app"]
    assert [s.id for s in plan.server_sources] == ["src_backend"]
    assert plan.segment.webhook_kind == "actions"  # Webhooks (Actions) unless the plan asks for classic


def _set(data: dict, path: str, value):
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


DELETE = object()

BAD = [
    ("segment.warehouse_id", DELETE, "segment.warehouse_id: Field required"),
    ("warehouse", DELETE, "warehouse: Field required"),
    ("sources", [], "sources: List should have at least 1 item"),
    ("sources.0.kind", "mobile", "sources[0].kind"),
    ("sources.1.id", "src_web_app", "source ids listed twice: ['src_web_app']"),
    (
        "warehouse.namespace",
        "app_events; drop table tracks",
        "warehouse.namespace: 'app_events; drop table tracks'",
    ),
    ("warehouse.namespace", 'app"events', "is not a plain schema name"),
    ("adoption.threshold", 1.5, "adoption.threshold: Input should be less than or equal to 1"),
    ("adoption.threshold", "lots", "adoption.threshold: Input should be a valid number"),
    ("adoption.consecutive_checks", 0, "adoption.consecutive_checks"),
    ("rudderstack.destination.sync_frequency_minutes", 45, "must be one of [30, 60, 180, 360, 720, 1440]"),
    ("rudderstack.destination.config", {"namespace": "other"}, "set the namespace under warehouse.namespace"),
    ("schedule", "every tuesday", "not a valid cron expression"),
    ("schedule", "@fortnightly", "schedule: '@fortnightly' is not a valid cron expression or Airflow preset"),
    ("rudderstack.destination.config", {"host": "db", "password": "hunter2"}, "look like credentials"),
    ("name", "Sandbox Plan", "name: must be lower-case letters"),
    ("segment.final_step", "delete_everything", "segment.final_step"),
    ("segment.webhook_kind", "webhooks", "segment.webhook_kind: Input should be 'actions' or 'classic'"),
    ("waits.deferable", True, "waits.deferable: unknown field"),
    ("segment.conn_id", "bad id with spaces", "segment.conn_id"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[f"{p}={v!r}"[:60] for p, v, _ in BAD])
def test_bad_plan_is_rejected_naming_the_field(path, value, message):
    data = copy.deepcopy(base())
    _set(data, path, value)
    with pytest.raises(PlanError) as err:
        parse_plan(data, origin="plan.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("plan.yaml: invalid migration plan")


def test_not_yaml_and_not_a_mapping(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed")
    with pytest.raises(PlanError, match="not valid YAML"):
        load_plan(broken)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(PlanError, match="expected a mapping"):
        load_plan(listy)
    with pytest.raises(PlanError, match="cannot read plan file"):
        load_plan(tmp_path / "missing.yaml")
