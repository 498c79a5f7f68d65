"""What every migration operator shares: dry-run, before/after logging, and the change log.

Operators read the current state, compare it with what is wanted and change only what differs. Every
change goes through :meth:`MigrationOperator.apply_change`, which logs what/before/after, records it in
the plan's change log (for the rollback) and, in dry-run mode, only says what it would change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import BaseOperator

from segment_rudderstack.changelog import Change, ChangeLog
from segment_rudderstack.rendered import as_bool

__all__ = ["MigrationOperator", "as_bool"]




class MigrationOperator(BaseOperator):
    ui_color = "#fbe7c6"
    template_fields: tuple[str, ...] = ("dry_run",)

    def __init__(self, *, dry_run: bool | str = False, change_log_key: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.dry_run = dry_run
        self.change_log_key = change_log_key
        self._changes: list[dict[str, Any]] = []

    @property
    def is_dry_run(self) -> bool:
        return as_bool(self.dry_run)

    @property
    def change_log(self) -> ChangeLog:
        return ChangeLog(self.change_log_key)

    def apply_change(
        self,
        context: Any,
        *,
        target: str,
        target_id: str,
        field: str,
        before: Any,
        after: Any,
        apply: Callable[[], Any],
    ) -> bool:
        """Change ``field`` of ``target`` from ``before`` to ``after`` unless it already is ``after``.

        Returns True when a change was made (or, in dry-run mode, would be made)."""
        if before == after:
            self.log.info("unchanged: %s %s: %s is already %r", target, target_id, field, after)
            return False
        if self.is_dry_run:
            self.log.info("DRY RUN: would change %s %s: %s %r -> %r", target, target_id, field, before, after)
            self._changes.append({"target": target, "target_id": target_id, "field": field, "dry_run": True})
            return True
        self.log.info("changing %s %s: %s %r -> %r", target, target_id, field, before, after)
        apply()
        ti = context.get("ti") if context else None
        self.change_log.record(
            Change(
                target=target,
                target_id=target_id,
                field=field,
                before=before,
                after=after,
                task_id=self.task_id,
                run_id=getattr(ti, "run_id", None),
            )
        )
        self._changes.append({"target": target, "target_id": target_id, "field": field, "after": after})
        return True

    def create_missing(
        self, context: Any, *, target: str, target_id: str, make: Callable[[], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Create something that does not exist yet (logged and recorded like any change); returns what the
        service answered, or ``None`` in a dry run."""
        created: dict[str, Any] = {}
        self.apply_change(
            context, target=target, target_id=target_id, field="exists", before=False, after=True,
            apply=lambda: created.update(make()),
        )
        return created or None

    def set_destination_config(
        self, context: Any, hook: Any, destination_id: str, key: str, before: Any, after: Any
    ) -> bool:
        """Set one key of a RudderStack destination's config (merged by the hook), logged and recorded."""
        return self.apply_change(
            context,
            target="rudderstack.destination",
            target_id=destination_id,
            field=f"config.{key}",
            before=before,
            after=after,
            apply=lambda: hook.update_destination(destination_id, config={key: after}),
        )
