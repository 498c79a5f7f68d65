"""The rollback: undo the migration's recorded outside changes from its change log."""

from __future__ import annotations

from typing import Any

from segment_rudderstack.operators.base import MigrationOperator, as_bool
from segment_rudderstack.operators.status import MIGRATION, ROLLED_BACK, STATUS, migration_status
from segment_rudderstack.safety.changelog import DONE, INTENT, NOT_APPLIED, Change
from segment_rudderstack.safety.trigger_conf import check_trigger_conf, dag_param_names
from segment_rudderstack.vocabulary import ChangeTarget


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

    def _undo_steps(self, segment, rudderstack) -> dict[tuple[ChangeTarget, str], Any]:
        """How each kind of recorded change is undone: ``(target, field)`` -> step(context, target_id, field,
        change) returning what was done (``None``: already undone). Field ``"config."`` matches every config key."""
        from segment_rudderstack.operators.indexes import received_at_index_undo_steps

        return {
            **self._segment_undo_steps(segment),
            **self._mapping_undo_steps(segment),
            **self._rudderstack_undo_steps(rudderstack),
            **received_at_index_undo_steps(self),
        }

    def _segment_undo_steps(self, segment) -> dict[tuple[ChangeTarget, str], Any]:
        from segment_rudderstack.hooks.segment_webhooks import is_connected

        def warehouse_enabled(context, target_id, field, change=None):
            current = bool(segment.get_warehouse(target_id).get("enabled"))
            if self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_WAREHOUSE,
                target_id=target_id,
                field=field,
                before=current,
                after=True,
                apply=lambda: segment.set_warehouse_enabled(target_id, True),
            ):
                return f"re-enabled Segment warehouse {target_id}"
            return None

        def source_connected(context, target_id, field, change=None):
            warehouse_id, _, source_id = target_id.partition(":")
            if self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_WAREHOUSE_SOURCE,
                target_id=target_id,
                field=field,
                before=is_connected(segment, warehouse_id, source_id),
                after=True,
                apply=lambda: segment.connect_warehouse_source(warehouse_id, source_id),
            ):
                return f"reconnected Segment source {source_id} to warehouse {warehouse_id}"
            return None

        def webhook_enabled(context, target_id, field, change=None):
            current = bool(segment.get_destination(target_id).get("enabled"))
            if self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_DESTINATION,
                target_id=target_id,
                field=field,
                before=current,
                after=False,
                apply=lambda: segment.set_destination_enabled(target_id, False),
            ):
                return f"disabled Segment webhook destination {target_id}"
            return None

        def webhook_created(context, target_id, field, change):
            # Created by this plan (perhaps by an attempt that died before writing the outcome): find it by its
            # deterministic name (<source id>:<destination name>) and make sure it no longer forwards events.
            source_id, _, name = target_id.partition(":")
            found = [
                d
                for d in segment.list_connected_destinations(source_id)
                if d.get("id") == change.object_id or d.get("name") == name
            ]
            self._settle_by_rollback(change, found[0].get("id") if found else None)
            return [text for d in found if (text := webhook_enabled(context, d["id"], "enabled"))]

        return {
            (ChangeTarget.SEGMENT_DESTINATION, "exists"): webhook_created,
            (ChangeTarget.SEGMENT_WAREHOUSE, "enabled"): warehouse_enabled,
            (ChangeTarget.SEGMENT_WAREHOUSE_SOURCE, "connected"): source_connected,
            (ChangeTarget.SEGMENT_DESTINATION, "enabled"): webhook_enabled,
        }

    def _mapping_undo_steps(self, segment) -> dict[tuple[ChangeTarget, str], Any]:
        """Webhooks (Actions) mappings (id ``<destination>/<mapping>``): switched off, never deleted."""

        def mapping_enabled(context, target_id, field, change=None):
            destination_id, _, mapping_id = target_id.partition("/")
            current = bool(segment.get_destination_subscription(destination_id, mapping_id).get("enabled"))
            if self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION,
                target_id=target_id,
                field=field,
                before=current,
                after=False,
                apply=lambda: segment.set_destination_subscription_enabled(destination_id, mapping_id, False),
            ):
                return f"disabled Segment webhook mapping {target_id}"
            return None

        def mapping_created(context, target_id, field, change):
            # Created by this plan (perhaps by an attempt that died before writing the outcome): found by its
            # deterministic name (<destination id>/<mapping name>) and switched off.
            destination_id, _, name = target_id.partition("/")
            found = [
                m
                for m in segment.list_destination_subscriptions(destination_id)
                if m.get("id") == change.object_id or m.get("name") == name
            ]
            self._settle_by_rollback(change, found[0].get("id") if found else None)
            return [
                text
                for m in found
                if (text := mapping_enabled(context, f"{destination_id}/{m['id']}", "enabled"))
            ]

        return {
            (ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION, "exists"): mapping_created,
            (ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION, "enabled"): mapping_enabled,
        }

    def _rudderstack_undo_steps(self, rudderstack) -> dict[tuple[ChangeTarget, str], Any]:
        def sync_held(context, target_id, field, change=None):
            config = rudderstack.get_destination(target_id).get("config") or {}
            before = bool(config.get("manualSync", False))
            if self.set_destination_config(context, rudderstack, target_id, "manualSync", before, True):
                return f"held RudderStack sync on destination {target_id}"
            return None

        def destination_created(context, target_id, field, change):
            matches = [
                d
                for d in rudderstack.list_destinations()
                if d.get("id") == change.object_id or d.get("name") == target_id
            ]
            self._settle_by_rollback(change, matches[0].get("id") if matches else None)
            return sync_held(context, matches[0]["id"], "config.manualSync") if matches else None

        def append_mode_restored(context, target_id, field, change):
            # This plan switched preferAppend off for the overlap (merge mode): give back what it was. A latest
            # change that already restored it (restore_append_after_duplicate_check) leaves nothing to undo.
            done = [text for text in [sync_held(context, target_id, "config.manualSync")] if text]
            if change is None or change.after is not False:
                return done
            current = (rudderstack.get_destination(target_id).get("config") or {}).get("preferAppend")
            if self.set_destination_config(
                context, rudderstack, target_id, "preferAppend", current, change.before
            ):
                done.append(f"restored preferAppend={change.before!r} on RudderStack destination {target_id}")
            return done

        return {
            (ChangeTarget.RUDDERSTACK_DESTINATION, "exists"): destination_created,
            (ChangeTarget.RUDDERSTACK_DESTINATION, "config.preferAppend"): append_mode_restored,
            (
                ChangeTarget.RUDDERSTACK_DESTINATION,
                "config.",
            ): sync_held,  # any other config key: hold the sync
        }

    def execute(self, context: Any) -> dict[str, Any]:
        check_trigger_conf(context, dag_param_names(self))
        if not self.is_dry_run and self.change_log_key:
            # Refuse while a migration run is active (unless forced: then that run stops before its next change).
            from segment_rudderstack.safety.writer import PlanWriter

            PlanWriter(self.change_log_key).start_rollback(
                context, migration_dag_id=self.migration_dag_id, force=as_bool(self.force)
            )
        segment, rudderstack = self._hooks()
        steps = self._undo_steps(segment, rudderstack)
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
            key = "config." if field.startswith("config.") else field
            step = steps.get((target, field)) or steps.get((target, key))
            if step is not None and (outcome := step(context, target_id, field, change)):
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

    def _settle_by_rollback(self, change: Change, object_id: str | None) -> None:
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
