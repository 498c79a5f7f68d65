"""Duplicate check/repair on the real PostgreSQL, the migration status gate and the report."""

from __future__ import annotations

import pathlib

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from segment_rudderstack.operators.report import MigrationReportOperator
from segment_rudderstack.operators.status import MigrationStatusOperator
from segment_rudderstack.operators.warehouse import DuplicateCheckOperator
from segment_rudderstack.safety.changelog import ChangeLog
from tests.library.world import WAREHOUSE_CONN, context


def seed_duplicates(world) -> None:
    """The overlap: one event loaded by Segment (append) and again, identical, by the webhook path."""
    event = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "dup-1"}
    other = {"type": "track", "event": "Order Completed", "userId": "u2", "messageId": "once-1"}
    world.warehouse.load(world.schema, [event, other], merge=False)
    world.warehouse.load(world.schema, [event], merge=False)


def duplicates(world, **kwargs):
    return DuplicateCheckOperator(
        task_id="duplicates",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        change_log_key=world.change_log_key,
        **kwargs,
    )


def test_duplicate_repair_keeps_one_row_per_id_once_and_logs_it(world):
    seed_duplicates(world)
    result = duplicates(world, repair=True).execute(context())
    assert result["duplicates"] == {"order_completed": 1, "tracks": 1}
    assert result["removed"] == {"order_completed": 1, "tracks": 1}
    assert sorted(world.warehouse.event_ids_by_table(world.schema)["tracks"].values()) == [1, 1]
    [change] = ChangeLog(world.change_log_key).entries()
    assert (change.target, change.after) == ("warehouse.rows", {"order_completed": 1, "tracks": 1})

    again = duplicates(world, repair=True).execute(context())
    assert again["duplicates"] == {} and again["removed"] == {}
    assert len(ChangeLog(world.change_log_key).entries()) == 1


def test_duplicate_check_without_repair_and_dry_run_repair_leave_rows_alone(world):
    seed_duplicates(world)
    assert duplicates(world).execute(context())["removed"] == {}
    dry = duplicates(world, repair=True, dry_run=True).execute(context())
    assert dry["removed"] == {"order_completed": 1, "tracks": 1}  # what it would remove
    assert world.warehouse.event_ids_by_table(world.schema)["tracks"]["dup-1"] == 2
    assert ChangeLog(world.change_log_key).entries() == []


def test_status_skips_a_completed_migration_and_the_report_marks_completion_only_for_real(world, tmp_path):
    status = MigrationStatusOperator(task_id="status", plan_name="p", change_log_key=world.change_log_key)
    assert status.execute(context())["status"] == "not started"

    def report(dry_run):
        return MigrationReportOperator(
            task_id="report",
            plan_name="p",
            reports_dir=str(tmp_path),
            task_ids={"adoption": "adoption"},
            change_log_key=world.change_log_key,
            dry_run=dry_run,
        )

    path = pathlib.Path(report(True).execute(context()))
    assert "DRY RUN: nothing was changed" in path.read_text()
    assert status.execute(context())["status"] == "not started"

    report(False).execute(context())
    with pytest.raises(AirflowSkipException, match="already complete"):
        status.execute(context())


def test_a_run_over_some_sources_leaves_the_migration_open_for_the_rest(world, tmp_path):
    status = MigrationStatusOperator(task_id="status", plan_name="p", change_log_key=world.change_log_key)
    MigrationReportOperator(
        task_id="report",
        plan_name="p",
        reports_dir=str(tmp_path),
        task_ids={"adoption": "adoption"},
        change_log_key=world.change_log_key,
        source_ids=["web", "backend"],
        selected_source_ids=["web"],
    ).execute(context())
    assert status.execute(context())["status"] == "partial (not migrated yet: backend)"  # not skipped
    MigrationReportOperator(
        task_id="report",
        plan_name="p",
        reports_dir=str(tmp_path),
        task_ids={"adoption": "adoption"},
        change_log_key=world.change_log_key,
        source_ids=["web", "backend"],
        selected_source_ids=["web", "backend"],
    ).execute(context())
    with pytest.raises(AirflowSkipException, match="already complete"):
        status.execute(context())
