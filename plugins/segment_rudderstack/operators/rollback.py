"""The rollback: undo the migration's recorded outside changes from its change log."""

from __future__ import annotations

from typing import Any

# the modules whose operators record changes register their undo steps on import
import segment_rudderstack.operators.indexes  # noqa: F401
import segment_rudderstack.operators.rudderstack  # noqa: F401
import segment_rudderstack.operators.segment  # noqa: F401
import segment_rudderstack.operators.shape  # noqa: F401
import segment_rudderstack.operators.warehouse  # noqa: F401
from segment_rudderstack.operators.base import MigrationOperator, as_bool
from segment_rudderstack.operators.status import MIGRATION, ROLLED_BACK, STATUS, migration_status
from segment_rudderstack.operators.undo import Undo, undo_step_for
from segment_rudderstack.safety.changelog import DONE, INTENT, NOT_APPLIED, Change
from segment_rudderstack.safety.trigger_conf import check_trigger_conf, dag_param_names


class RollbackOperator(MigrationOperator):
    """Undo the migration's outside changes using its change log: re-enable Segment's warehouse (or reconnect
    its sources), disable the Webhooks destinations, and hold RudderStack's sync. Idempotent and dry-runnable.

    :param plan_name: the plan's name (its migration status becomes ``rolled_back``).
    :param segment_conn_id: the Segment Public API connection.
    :param rudderstack_conn_id: the RudderStack control plane connection.
    :param migration_dag_id: the plan's migration DAG: the rollback refuses while a run of it is active.
    :param force: roll back even while a migration run is active (that run stops before its next change).
    """

    def __init__(
        self,
        *,
        plan_name: str,
        segment_conn_id: str,
        rudderstack_conn_id: str,
        migration_dag_id: str | None = None,
        force: bool | str = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.plan_name = plan_name
        self.segment_conn_id = segment_conn_id
        self.rudderstack_conn_id = rudderstack_conn_id
        self.migration_dag_id = migration_dag_id
        self.force = force

    writer_kind = "rollback"
    template_fields = (*MigrationOperator.template_fields, "force")

    def _hooks(self):
        from segment_rudderstack.hooks.rudderstack import RudderStackHook
        from segment_rudderstack.hooks.segment import SegmentHook

        return SegmentHook(segment_conn_id=self.segment_conn_id), RudderStackHook(
            rudderstack_conn_id=self.rudderstack_conn_id
        )

    def execute(self, context: Any) -> dict[str, Any]:
        check_trigger_conf(context, dag_param_names(self))
        if not self.is_dry_run and self.change_log_key:
            # Refuse while a migration run is active (unless forced: then that run stops before its next change).
            from segment_rudderstack.safety.writer import PlanWriter

            PlanWriter(self.change_log_key).start_rollback(
                context, migration_dag_id=self.migration_dag_id, force=as_bool(self.force)
            )
        segment, rudderstack = self._hooks()
        undo = Undo(rollback=self, segment=segment, rudderstack=rudderstack)
        log = self.change_log
        # The latest change of every object this plan touched, plus the intents a task left open when it died
        # mid-change: what they aimed at is read from the real state (objects carry deterministic names).
        recorded = log.latest()
        open_intents = log.open_intents()
        empty = not recorded and not open_intents
        done: list[str] = []
        by_target: dict[tuple[str, str, str], Change] = {}
        for change in [*recorded, *open_intents]:
            by_target.setdefault((change.target, change.target_id, change.field), change)
        for (target, target_id, field), change in sorted(by_target.items()):
            step = undo_step_for(target, field)
            if step is not None and (outcome := step(undo, context, target_id, field, change)):
                done += [outcome] if isinstance(outcome, str) else outcome
        status = migration_status(self.change_log, self.plan_name)
        if status is not None and status.after != ROLLED_BACK:
            self.apply_change(
                context,
                target=MIGRATION,
                target_id=self.plan_name,
                field=STATUS,
                before=status.after,
                after=ROLLED_BACK,
                apply=lambda: None,
            )
        self.log.info(
            "rollback: %s",
            rollback_summary(done, empty=empty, dry_run=self.is_dry_run, change_log_key=self.change_log_key),
        )
        if not self.is_dry_run and self.change_log_key:
            from segment_rudderstack.safety.writer import PlanWriter

            PlanWriter(self.change_log_key).release(context)
        return {"undone": done, "dry_run": self.is_dry_run}

    def settle_by_rollback(self, change: Change, object_id: str | None) -> None:
        """An intent left open by a task that died mid-creation: settled from what the rollback found."""
        if self.is_dry_run or change.status != INTENT:
            return
        found = object_id is not None
        self.log.warning(
            "open intent #%s (task %s died mid-change: %s): %s",
            change.seq,
            change.task_id,
            change.describe(),
            "it went through; undone now" if found else "settled as not applied",
        )
        self.change_log.resolve(
            change.seq,
            DONE if found else NOT_APPLIED,
            resolved_by="rollback",
            **({"object_id": object_id} if object_id else {}),
        )


def rollback_summary(done: list[str], *, empty: bool, dry_run: bool, change_log_key: str | None) -> str:
    """One closing line that agrees with itself: an empty log, what was (or would be) undone, or that every
    recorded change was already undone."""
    if empty:
        return f"the change log {change_log_key} is empty: this plan changed nothing, so there is nothing to undo"
    if done:
        return f"{'would undo' if dry_run else 'undid'} {len(done)} change(s): " + "; ".join(done)
    return "every recorded change is already undone (an earlier rollback, or someone undid them by hand)"
