"""What every migration operator shares: dry-run, before/after logging, and the change log.

Operators read the current state, compare it with what is wanted and change only what differs. Every
change goes through :meth:`MigrationOperator.apply_change`, which logs what/before/after and records it
through :meth:`MigrationOperator.record_change` in the plan's change log (for the rollback); in dry-run mode
it only says what it would change (and keeps that in ``would_change``). A dry run is explicit: an id an
upstream task did not return is a failure in a real run (:meth:`MigrationOperator.require_upstream`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.evidence.dry_run_plan import NOTE, change_entry, note_entry, push_entries
from segment_rudderstack.operators.outages import OutageRidingOperator
from segment_rudderstack.rendered import as_bool
from segment_rudderstack.safety.changelog import DONE, NOT_APPLIED, Change, ChangeLog
from segment_rudderstack.vocabulary import ChangeTarget

__all__ = ["ChangeTarget", "MigrationOperator", "as_bool"]


class MigrationOperator(OutageRidingOperator):
    """Base of the operators that change Segment, RudderStack or the warehouse. Each one rides out outages of
    the services it calls and fails at once on configuration errors (:class:`OutageRidingOperator`: arguments
    ``transient_budget_seconds`` and ``deferrable``).

    :param dry_run: read everything, change nothing, and say what would change (also a rendered template).
    :param change_log_key: the Airflow Variable holding the plan's change log (``Plan.change_log_key``);
        ``None`` logs changes without keeping them (nothing to roll back).
    """

    ui_color = "#fbe7c6"
    template_fields: tuple[str, ...] = ("dry_run",)

    def __init__(self, *, dry_run: bool | str = False, change_log_key: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.dry_run = dry_run
        self.change_log_key = change_log_key
        #: what a dry run of this task would have changed (empty in a real run: see the change log)
        self.would_change: list[Change] = []
        #: the same with what it would wait for or do besides, for the run's dry-run plan (XCom ``would_change``)
        self.dry_run_entries: list[dict[str, Any]] = []

    @property
    def is_dry_run(self) -> bool:
        return as_bool(self.dry_run)

    @property
    def change_log(self) -> ChangeLog:
        return ChangeLog(self.change_log_key)

    def require_upstream(self, value: Any, what: str) -> bool:
        """Whether ``value`` (an id an upstream task returned) is there to act on.

        Missing in a dry run: ``False`` (the upstream task only said what it would create). Missing in a real
        run: the task fails, naming the upstream tasks that should have returned it.
        """
        if value not in (None, "", "None"):
            return True
        if self.is_dry_run:
            return False
        upstream = ", ".join(sorted(self.upstream_task_ids)) or "none"
        raise AirflowFailException(
            f"{self.task_id}: {what} is empty; expected the id an upstream task returned (upstream tasks: "
            f"{upstream}). Did that task run in dry-run mode, or was it skipped? Re-run it for real first."
        )

    def change(
        self, context: Any, *, target: ChangeTarget | str, target_id: str, field: str, before: Any, after: Any
    ) -> Change:
        """The change-log entry for one change made by this task in this run (the one place entries are built)."""
        ti = context.get("ti") if context else None
        return Change(
            target=str(target),
            target_id=target_id,
            field=field,
            before=before,
            after=after,
            task_id=self.task_id,
            run_id=getattr(ti, "run_id", None),
        )

    def record_change(
        self, context: Any, *, target: ChangeTarget | str, target_id: str, field: str, before: Any, after: Any
    ) -> Change:
        """Record a change made outside :meth:`apply_change` (bookkeeping, a repair); in a dry run, keep it in
        ``would_change`` instead."""
        change = self.change(
            context, target=target, target_id=target_id, field=field, before=before, after=after
        )
        if self.is_dry_run:
            self.would_change.append(change)
            self._plan_entry(context, change_entry(change))
        else:
            self.change_log.record(change)
        return change

    def dry_run_note(self, context: Any, text: str, kind: str = NOTE) -> None:
        """In a dry run: log what a real run would do here besides a recorded change (wait for something,
        trigger an upload) and keep it in the run's dry-run plan (:mod:`segment_rudderstack.evidence.dry_run_plan`)."""
        self.log.info("DRY RUN: %s", text)
        self._plan_entry(context, note_entry(text, kind))

    def _plan_entry(self, context: Any, entry: dict[str, Any]) -> None:
        self.dry_run_entries.append(entry)
        push_entries(context, self.dry_run_entries)

    def apply_change(
        self,
        context: Any,
        *,
        target: ChangeTarget | str,
        target_id: str,
        field: str,
        before: Any,
        after: Any,
        apply: Callable[[], Any],
        outcome: Callable[[], dict[str, Any]] | None = None,
        last_look: Callable[[], None] | None = None,
    ) -> bool:
        """Change ``field`` of ``target`` from ``before`` to ``after`` unless it already is ``after``.

        The change log gets an intent before ``apply`` and the outcome after it (``outcome()`` adds fields to
        it, e.g. the id of a created object). ``last_look`` runs after the intent is recorded and right before
        ``apply``: a guard that raises to refuse leaves the intent resolved as not applied (the bookkeeping
        before a change then never widens the window between the guard's observation and the change).
        Returns True when a change was made (or, in dry-run mode, would be made)."""
        if not self.is_dry_run:
            self.settle_intents(target, target_id, field, current=before)
        if before == after:
            self.log.info("unchanged: %s %s: %s is already %r", target, target_id, field, after)
            return False
        if self.is_dry_run:
            self.log.info("DRY RUN: would change %s %s: %s %r -> %r", target, target_id, field, before, after)
            self.record_change(
                context, target=target, target_id=target_id, field=field, before=before, after=after
            )
            return True
        # One writer per plan: this run must hold the plan's lease, and no rollback may have started since this
        # migration run began (then it stops here, before the change).
        self.ensure_writer(context)
        self.log.info("changing %s %s: %s %r -> %r", target, target_id, field, before, after)
        log = self.change_log
        # Write-ahead: the intent is in the log before the outside call, so a task killed mid-call leaves a
        # trace that the retry or the rollback resolves from the real state.
        seq = log.begin(
            self.change(context, target=target, target_id=target_id, field=field, before=before, after=after)
        )
        if last_look is not None:
            try:
                last_look()
            except BaseException:
                log.resolve(seq, NOT_APPLIED)
                raise
        try:
            apply()
        except Exception as exc:
            if getattr(exc, "request_sent", True) is False:
                log.resolve(seq, NOT_APPLIED)  # never reached the service: certainly not applied
            # otherwise the outcome is unknown (e.g. a timeout): the intent stays open for the retry/rollback
            raise
        log.resolve(seq, DONE, **(outcome() if outcome else {}))
        return True

    #: which kind of run this operator's changes belong to (the rollback overrides it)
    writer_kind = "migration"

    def ensure_writer(self, context: Any) -> None:
        """Take or renew the plan's writer lease for this run (see :mod:`segment_rudderstack.safety.writer`)."""
        if not self.change_log_key:
            return
        from segment_rudderstack.safety.writer import PlanWriter

        PlanWriter(self.change_log_key).acquire(context, self.writer_kind)

    def exclusive_resources(self, context: Any, resources: list[str], *, release: bool = False) -> None:
        """Hold (or, with ``release``, give back) the leases on outside resources this plan may share with
        other plans (a Segment warehouse, a warehouse schema) around its irreversible steps."""
        if not self.change_log_key or self.is_dry_run or not resources:
            return
        from segment_rudderstack.safety.writer import SharedResources

        shared = SharedResources(self.change_log_key)
        if release:
            shared.release(resources)
        else:
            shared.acquire(context, resources)

    def segment_warehouse_resource(self, segment_conn_id: str, warehouse_id: str) -> str:
        """The name several plans' leases share for one Segment warehouse (the API's host + the warehouse id)."""
        from segment_rudderstack.hooks.segment import SegmentHook

        hook = SegmentHook(segment_conn_id=segment_conn_id)
        hook.load_connection()
        return f"segment.warehouse:{hook.base_url}/{warehouse_id}"

    def settle_intents(
        self, target: str, target_id: str, field: str, *, current: Any, object_id: str | None = None
    ) -> list[Any]:
        """Resolve open intents on (target, target_id, field) left by an attempt that died mid-change, from
        ``current`` (the real state just read): done when it is what the intent wanted, else not applied."""
        settled = []
        for intent in self.change_log.open_intents(str(target), target_id, field):
            status = DONE if current == intent.after else NOT_APPLIED
            self.log.warning(
                "an earlier attempt (task %s, run %s) died while changing %s; the real state shows it %s",
                intent.task_id,
                intent.run_id,
                intent.describe(),
                "went through: recorded now" if status == DONE else "did not happen",
            )
            extra = {"object_id": object_id} if object_id else {}
            settled.append(self.change_log.resolve(intent.seq, status, resolved_by="retry", **extra))
        return settled

    def adopt_existing(self, target: str, target_id: str, object_id: str | None) -> None:
        """An object with this plan's deterministic name exists: if an earlier attempt died while creating it,
        its open intent is resolved now (the object is this plan's, and the rollback will undo it)."""
        if not self.is_dry_run:
            self.settle_intents(str(target), target_id, "exists", current=True, object_id=object_id)

    def create_missing(
        self, context: Any, *, target: ChangeTarget, target_id: str, make: Callable[[], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Create something that does not exist yet (logged and recorded like any change); returns what the
        service answered, or ``None`` in a dry run."""
        created: dict[str, Any] = {}
        self.apply_change(
            context,
            target=target,
            target_id=target_id,
            field="exists",
            before=False,
            after=True,
            apply=lambda: created.update(make()),
            outcome=lambda: {"object_id": created.get("id")},
        )
        return created or None

    def set_destination_config(
        self, context: Any, hook: Any, destination_id: str, key: str, before: Any, after: Any
    ) -> bool:
        """Set one key of a RudderStack destination's config (merged by the hook), logged and recorded."""
        return self.apply_change(
            context,
            target=ChangeTarget.RUDDERSTACK_DESTINATION,
            target_id=destination_id,
            field=f"config.{key}",
            before=before,
            after=after,
            apply=lambda: hook.update_destination(destination_id, config={key: after}),
        )
