"""Warehouse checks after the switch: duplicates in the overlap window (and their optional repair)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.lineage.assets import AnnouncesCutover
from segment_rudderstack.operators.base import MigrationOperator, as_bool
from segment_rudderstack.operators.undo import not_undone
from segment_rudderstack.vocabulary import ChangeTarget


class DuplicateCheckOperator(AnnouncesCutover, MigrationOperator):
    """Count message ids present more than once per table among rows received in the last
    ``lookback_hours`` (the overlap window); with ``repair`` keep exactly one row per id and report what was
    removed. Per-event tables (one per track event name) are included when ``tables`` is not given.

    :param warehouse_conn_id: the warehouse connection.
    :param namespace: the schema to check.
    :param tables: the tables to check (default: every table but RudderStack's own).
    :param lookback_hours: the overlap window: rows received in the last hours.
    :param repair: keep one row per id (a dry run only counts what it would remove).

    With ``cutover_assets`` (see :class:`~segment_rudderstack.lineage.assets.AnnouncesCutover`), the lane's tables
    get an asset event for downstream DAGs once the check (and its repair) is done.
    """

    template_fields = (*MigrationOperator.template_fields, "repair", "lookback_hours", "cutover_assets")

    def __init__(
        self,
        *,
        warehouse_conn_id: str,
        namespace: str,
        tables: Sequence[str] | None = None,
        lookback_hours: float | str = 72,
        repair: bool | str = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id
        self.namespace = namespace
        self.tables = list(tables) if tables else None
        self.lookback_hours = lookback_hours
        self.repair = repair

    def execute(self, context: Any) -> dict[str, Any]:
        from segment_rudderstack.dialects import dialect_for_conn_id

        dialect = dialect_for_conn_id(self.warehouse_conn_id)
        tables = self.tables or sorted(
            t for t in dialect.list_tables(self.namespace) if not t.startswith("rudder_")
        )
        since = datetime.now(UTC) - timedelta(hours=float(self.lookback_hours))
        counts = dialect.count_duplicates(self.namespace, tables, since=since)
        found = {t: c.extra_rows for t, c in counts.items() if c.extra_rows}
        self.log.info(
            "duplicate ids since %s in %d tables: %s", since.isoformat(), len(counts), found or "none"
        )
        removed: dict[str, int] = {}
        if found and as_bool(self.repair):
            if self.is_dry_run:
                removed = dict(found)  # the repair keeps one row per id: it removes exactly the extra rows
                self.dry_run_note(context, f"the duplicate repair would remove {removed}")
            else:
                removed = dialect.repair_duplicates(self.namespace, list(found), since=since)
                self.log.info("repair removed %s", removed)
            self.record_change(
                context,
                target=ChangeTarget.WAREHOUSE_ROWS,
                target_id=self.namespace,
                field="duplicates_removed",
                before=found,
                after=removed,
            )
        elif found:
            self.log.warning("found duplicate rows %s; set repair_duplicates to keep one row per id", found)
        result = {
            "since": since.isoformat(),
            "tables_checked": len(counts),
            "duplicates": found,
            "removed": removed,
            "dry_run": self.is_dry_run,
        }
        self.announce_cutover(context, result)  # asset events for downstream DAGs (lineage/assets.py)
        return result


not_undone(ChangeTarget.WAREHOUSE_ROWS, "the rows the duplicate repair removed were copies of rows that stay")
