"""The migration's beginning: is there anything left to do (a complete migration makes later runs no-ops)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from segment_rudderstack.operators.undo import not_undone
from segment_rudderstack.safety.changelog import Change, ChangeLog
from segment_rudderstack.safety.trigger_conf import check_trigger_conf, dag_param_names
from segment_rudderstack.vocabulary import ChangeTarget

MIGRATION = ChangeTarget.MIGRATION
STATUS = "status"
COMPLETE = "complete"
ROLLED_BACK = "rolled_back"


def migration_status(log: ChangeLog, plan_name: str) -> Change | None:
    return log.last(MIGRATION, plan_name, STATUS)


class MigrationStatusOperator(BaseOperator):
    """First task of a migration run: when the plan's migration is already complete (and not rolled back
    since), say so and skip every other task, so a scheduled run after completion is a no-op.

    :param plan_name: the plan's name (the change log's migration status entry is keyed by it).
    :param change_log_key: the Airflow Variable holding the plan's change log.
    """

    ui_color = "#eeeeee"

    def __init__(self, *, plan_name: str, change_log_key: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.plan_name = plan_name
        self.change_log_key = change_log_key

    def execute(self, context: Any) -> dict[str, Any]:
        check_trigger_conf(context, dag_param_names(self))  # a misspelled param stops the run here
        status = migration_status(ChangeLog(self.change_log_key), self.plan_name)
        if status is not None and status.after == COMPLETE:
            message = (
                f"migration {self.plan_name!r} is already complete (at {status.at}, run {status.run_id}); "
                "nothing to do. Run the rollback DAG first to migrate again."
            )
            self.log.info(message)
            raise AirflowSkipException(message)
        self.log.info("migration %r: %s", self.plan_name, status.after if status else "not started")
        return {"status": status.after if status else "not started"}


not_undone(MIGRATION, "the migration's status is the rollback's own record: it becomes rolled_back")
