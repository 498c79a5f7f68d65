"""The shape-continuity steps (docs/shape-continuity.md): the warehouse keeps its shape across the cutover, or
the run says exactly where it does not before the steps that cannot be taken back.

- :class:`ShapePreflightOperator` (read-only, before any change): the before snapshot, the namespace RudderStack
  will really write, how RudderStack reads each column's type and what it would do to the values Segment loaded.
- :class:`EnsureShadowDestinationOperator`: a second RudderStack warehouse destination on the lane's sources,
  loading the overlap into a scratch schema while the real destination's sync is held (recorded; undone by
  deleting it and dropping the schema).
- :class:`CompareShadowOperator`: the shadow's rows against Segment's for the same message ids, the new clients'
  fill against Segment's, the values against the real columns' types. Gates Segment's warehouse switch-off.
- :class:`RemoveShadowOperator`: the shadow destination and schema removed once compared.
- :class:`ShapeContinuityOperator`: after RudderStack loads the real schema: fill before and after per column
  (split by client library), type changes against the before snapshot, and ``rudder_discards`` since the release.
  Gates Segment's webhook switch-off.

Each check grades its findings by the plan (``shape.grades``): a ``stop`` fails the task naming every finding; an
``approve`` lets the run reach the approval gate after it (XCom ``needs_approval``, ``approval_text``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.instants import parse_instant
from segment_rudderstack.operators.base import MigrationOperator
from segment_rudderstack.operators.outages import OutageRidingOperator
from segment_rudderstack.operators.rudderstack import EnsureRudderStackDestinationOperator
from segment_rudderstack.operators.undo import Undo, undoes
from segment_rudderstack.plan.model import DEFAULT_SHAPE_GRADES
from segment_rudderstack.shape.findings import APPROVE, SHAPE_KEY, STOP, Finding, ShapeResult, graded
from segment_rudderstack.shape.shadow_cost import budget_findings, estimate, row_text_bytes
from segment_rudderstack.vocabulary import ChangeTarget

SEPARATOR = "|"
#: XCom keys of every shape check (the report and the view read them)
RESULT_KEY, NEEDS_APPROVAL_KEY, APPROVAL_TEXT_KEY = SHAPE_KEY, "needs_approval", "approval_text"
#: tables the checks never judge: RudderStack's own
OWN_TABLES = ("rudder_discards", "rudder_identity_mappings", "rudder_identity_merge_rules")
SAMPLE_IDS = 500


def warehouse_kind(dialect: Any) -> str:
    return "snowflake" if dialect.name == "snowflake" else "postgres"


def judged_tables(names: Sequence[str]) -> list[str]:
    return sorted(t for t in names if t.lower() not in OWN_TABLES and not t.lower().startswith("rudder_"))


class _ShapeCheck(OutageRidingOperator):
    """What the shape checks share: the plan's grades, the result in XCom, stop or ask."""

    ui_color = "#e8daef"
    check = "shape"

    def __init__(self, *, warehouse_conn_id: str, grades: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id
        self.grades = {**DEFAULT_SHAPE_GRADES, **dict(grades or {})}

    def dialect(self) -> Any:
        from segment_rudderstack.dialects import dialect_for_conn_id

        return dialect_for_conn_id(self.warehouse_conn_id)

    def conclude(self, context: Any, findings: list[Finding], facts: dict[str, Any]) -> dict[str, Any]:
        result = ShapeResult(self.check, graded(findings, self.grades), facts)
        data = result.to_dict()
        ti = context["ti"]
        ti.xcom_push(key=RESULT_KEY, value=data)
        asks = result.of_grade(APPROVE)
        ti.xcom_push(key=NEEDS_APPROVAL_KEY, value=bool(asks))
        ti.xcom_push(
            key=APPROVAL_TEXT_KEY,
            value="\n".join(f"- {f.describe()}" for f in asks) if asks else "",
        )
        self.log.info("%s", result.summary())
        stops = result.of_grade(STOP)
        if stops:
            raise AirflowFailException(
                f"{self.task_id}: the warehouse would not keep its shape ({len(stops)} finding(s) that stop the "
                "run; nothing irreversible was done):\n"
                + "\n".join(f"  - {f.describe()}" for f in stops)
                + "\nFix each cause (or grade the finding's kind differently in the plan's shape.grades, knowingly) "
                "and clear this task."
            )
        return data


class ShapePreflightOperator(_ShapeCheck):
    """Read-only, before any change: the before snapshot of ``namespace`` (tables, columns, types, lengths); the
    namespace RudderStack will really write (rudder-server ToSafeNamespace) must equal it; per column, how
    RudderStack reads its type and what it would do to a bounded sample of the values Segment loaded in the last
    ``lookback_hours``. With ``shadow_schema``: the scratch schema must be creatable (or exist empty), and the
    shadow load's extra rows and bytes over ``shadow_overlap_hours`` are estimated (shape/shadow_cost.py) and held
    against ``shadow_max_rows`` / ``shadow_max_bytes``.

    :param namespace: the schema Segment writes.
    :param sample_rows: values read per table (the latest in the window).
    :param lookback_hours: the window the sample is read from.
    :param shadow_schema: the shadow load's scratch schema (``None``: no shadow load).
    :param shadow_overlap_hours: how long the shadow is expected to load (the cost estimate's duration).
    :param shadow_max_rows: the estimated extra rows allowed (``None``: no limit).
    :param shadow_max_bytes: the estimated extra bytes allowed (``None``: no limit).
    """

    check = "preflight"
    template_fields = ("namespace",)

    def __init__(
        self,
        *,
        namespace: str,
        sample_rows: int = 500,
        lookback_hours: float = 72,
        shadow_schema: str | None = None,
        shadow_overlap_hours: float = 24,
        shadow_max_rows: int | None = None,
        shadow_max_bytes: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.namespace = namespace
        self.sample_rows = sample_rows
        self.lookback_hours = lookback_hours
        self.shadow_schema = shadow_schema
        self.shadow_overlap_hours = shadow_overlap_hours
        self.shadow_max_rows = shadow_max_rows
        self.shadow_max_bytes = shadow_max_bytes

    def execute(self, context: Any) -> dict[str, Any]:
        from segment_rudderstack.dialects.shape_queries import schema_snapshot
        from segment_rudderstack.shape.rudderstack_rules import namespace_problem

        findings: list[Finding] = []
        problem = namespace_problem(self.namespace)
        if problem:
            findings.append(Finding("namespace", self.namespace, None, problem, self.check))
        dialect = self.dialect()
        snapshot = schema_snapshot(dialect, self.namespace)
        types = snapshot_types(snapshot)
        now = datetime.now(UTC)
        column_findings, samples = self._column_findings(dialect, types, now)
        findings += column_findings
        cost = None
        if self.shadow_schema:
            findings += self._shadow_findings(dialect)
            cost = self._shadow_cost(dialect, snapshot, samples, now)
            findings += budget_findings(
                cost,
                self.shadow_schema,
                max_rows=self.shadow_max_rows,
                max_bytes=self.shadow_max_bytes,
                check=self.check,
            )
        facts = {
            "namespace": self.namespace,
            "before": types,
            "table_count": len(types),
            "column_count": sum(len(c) for c in types.values()),
            "sample_rows": self.sample_rows,
            "window": [(now - timedelta(hours=float(self.lookback_hours))).isoformat(), now.isoformat()],
            "shadow_schema": self.shadow_schema,
            "shadow_cost": cost.to_dict() if cost else None,
        }
        return self.conclude(context, findings, facts)

    def _shadow_cost(
        self, dialect: Any, snapshot: Any, samples: Mapping[str, tuple[int, int]], now: datetime
    ):
        """The shadow load's estimated extra rows and bytes: one bounded count per table over the window."""
        from segment_rudderstack.dialects.shape_queries import column_fill

        start, types = now - timedelta(hours=float(self.lookback_hours)), snapshot_types(snapshot)
        rows = {
            table: sum(
                f.rows
                for f in column_fill(
                    dialect, self.namespace, table, [], start=start, end=now, snapshot=snapshot
                )
            )
            for table in judged_tables(list(types))
            if "received_at" in types[table]
        }
        cost = estimate(
            rows,
            samples,
            window_hours=float(self.lookback_hours),
            overlap_hours=float(self.shadow_overlap_hours),
        )
        self.log.info(
            "the shadow load into %s: about %s rows and %s bytes over %s h (%s)",
            self.shadow_schema,
            f"{cost.rows:,}",
            f"{cost.bytes:,}",
            f"{cost.overlap_hours:g}",
            cost.method,
        )
        return cost

    def _column_findings(
        self, dialect: Any, types: Mapping[str, Mapping[str, str]], now: datetime
    ) -> tuple[list[Finding], dict[str, tuple[int, int]]]:
        """The type and value findings, and each sampled table's (rows, bytes as text) for the cost estimate."""
        from segment_rudderstack.dialects.shape_queries import value_sample
        from segment_rudderstack.shape.rudderstack_rules import predict_column, rudder_type

        kind, start = warehouse_kind(dialect), now - timedelta(hours=float(self.lookback_hours))
        found: list[Finding] = []
        samples: dict[str, tuple[int, int]] = {}
        for table in judged_tables(list(types)):
            columns = types[table]
            for column, data_type in sorted(columns.items()):
                if rudder_type(kind, data_type) is None:
                    found.append(
                        Finding(
                            "invisible_type",
                            table,
                            column,
                            f"RudderStack's {kind} type map has no entry for {data_type!r}: it does not see this "
                            "column's type",
                            self.check,
                        )
                    )
            if not self.sample_rows or "received_at" not in columns:
                continue
            rows = value_sample(
                dialect, self.namespace, table, sorted(columns), start=start, end=now, limit=self.sample_rows
            )
            samples[table] = row_text_bytes(rows)
            for column, data_type in sorted(columns.items()):
                if column in ("id", "received_at", "uuid_ts", "loaded_at"):
                    continue
                prediction = predict_column(kind, data_type, (r.get(column) for r in rows))
                found += prediction_findings(table, column, data_type, prediction, self.check)
        return found, samples

    def _shadow_findings(self, dialect: Any) -> list[Finding]:
        from segment_rudderstack.dialects.scratch_schema import may_create_schema, table_count

        tables = table_count(dialect, self.shadow_schema)
        if tables is None and may_create_schema(dialect) is False:
            return [
                Finding(
                    "namespace",
                    self.shadow_schema,
                    None,
                    f"the shadow load needs the scratch schema {self.shadow_schema!r}, and the warehouse user may "
                    "not create schemas: GRANT CREATE ON DATABASE to it, create the schema empty, or set "
                    "shape.shadow.enabled: false",
                    self.check,
                )
            ]
        if tables:
            return [
                Finding(
                    "namespace",
                    self.shadow_schema,
                    None,
                    f"the shadow load's scratch schema {self.shadow_schema!r} already holds {tables} table(s); it "
                    "must be empty (it is dropped after the comparison): name another in shape.shadow.schema, or "
                    "drop it",
                    self.check,
                )
            ]
        return []


def snapshot_types(snapshot: Any) -> dict[str, dict[str, str]]:
    """``{table: {column: data_type}}`` (lower-case names) of a schema snapshot."""
    return snapshot.types()


def _windowed(types: Mapping[str, Mapping[str, str]]) -> dict[str, Mapping[str, str]]:
    """The event tables: those with ``received_at`` (every window is read through it)."""
    return {table: columns for table, columns in types.items() if "received_at" in columns}


#: a column prediction's worst outcome → the finding it makes (the rest keep the value)
PREDICTION_KINDS = {
    "discarded": "discarded",
    "truncated": "truncated",
    "invisible": "invisible_type",
    "format_change": "format_change",
    "stringified": "stringified",
}


def prediction_findings(
    table: str, column: str, data_type: str, prediction: Any, check: str
) -> list[Finding]:
    found = []
    for outcome, n in sorted(prediction.counts.items()):
        kind = PREDICTION_KINDS.get(outcome)
        if not kind or not n or (kind == "invisible_type"):
            continue
        example = prediction.examples.get(outcome)
        found.append(
            Finding(
                kind,
                table,
                column,
                f"if new clients send the values Segment received, RudderStack would {outcome.replace('_', ' ')} "
                f"them (column type {data_type}, RudderStack reads it as {prediction.rudder_type})",
                check,
                detail=f"{n} of {sum(prediction.counts.values())} sampled values",
                examples=(str(example),) if example is not None else (),
                count=n,
            )
        )
    return found


class EnsureShadowDestinationOperator(EnsureRudderStackDestinationOperator):
    """A second RudderStack warehouse destination, the real one's twin with namespace ``namespace`` (the scratch
    schema) and its sync not held, connected to ``connect_source_ids`` (the lane's Segment-type source and the
    new clients' sources): it loads the overlap while the real destination waits. Recorded
    (``rudderstack.shadow_destination``, ``warehouse.scratch_schema``); the rollback deletes it and drops the
    schema. Returns the shadow destination's id (``None`` in a dry run).

    :param warehouse_conn_id: the warehouse connection the scratch schema is in (recorded for the undo).
    :param connect_source_ids: the RudderStack sources the shadow loads from.
    """

    template_fields = (*EnsureRudderStackDestinationOperator.template_fields, "connect_source_ids")

    def __init__(self, *, warehouse_conn_id: str, connect_source_ids: Sequence[str] = (), **kwargs: Any):
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id
        self.connect_source_ids = connect_source_ids

    def new_config(self) -> dict[str, Any]:
        return {**super().new_config(), "manualSync": False}

    def execute(self, context: Any) -> str | None:
        hook = self.rudderstack()
        existing = self._find(hook)
        if existing is None:
            config = self.new_config()
            self.apply_change(
                context,
                target=ChangeTarget.WAREHOUSE_SCRATCH_SCHEMA,
                target_id=SEPARATOR.join([self.warehouse_conn_id, self.namespace]),
                field="exists",
                before=False,
                after=True,
                apply=lambda: (
                    None
                ),  # RudderStack creates it on the shadow's first load; recorded for the undo
            )
            existing = self.create_missing(
                context,
                target=ChangeTarget.RUDDERSTACK_SHADOW_DESTINATION,
                target_id=self.destination_name,
                make=lambda: hook.create_destination(
                    name=self.destination_name, type=self.destination_type, config=config, enabled=True
                ),
            )
        else:
            self.adopt_existing(
                ChangeTarget.RUDDERSTACK_SHADOW_DESTINATION, self.destination_name, existing.get("id")
            )
        if not existing:
            self.dry_run_note(context, "the shadow destination would be connected to the lane's sources")
            return None
        self._connect(context, hook, existing["id"])
        self.log.info("shadow destination %s loads into %r", existing["id"], self.namespace)
        return existing["id"]

    def _connect(self, context: Any, hook: Any, destination_id: str) -> None:
        connected = {
            c.get("sourceId") for c in hook.list_connections() if c.get("destinationId") == destination_id
        }
        for source_id in [s for s in self.connect_source_ids if s and s != "None"]:
            if source_id in connected:
                continue
            self.apply_change(
                context,
                target=ChangeTarget.RUDDERSTACK_CONNECTION,
                target_id=f"{source_id}->{destination_id}",
                field="enabled",
                before=None,
                after=True,
                apply=lambda s=source_id: hook.create_connection(source_id=s, destination_id=destination_id),
            )


def _remove_shadow_destination(step: MigrationOperator, context: Any, hook: Any, name: str, object_id: Any):
    """Delete the shadow destination ``name`` (its connections first); recorded. ``False`` when already gone."""
    found = [d for d in hook.list_destinations() if d.get("id") == object_id or d.get("name") == name]
    if not found:
        return False
    destination_id = found[0]["id"]

    def delete() -> None:
        for connection in hook.list_connections():
            if connection.get("destinationId") == destination_id:
                hook.delete_connection(connection["id"])
        hook.delete_destination(destination_id)

    return step.apply_change(
        context,
        target=ChangeTarget.RUDDERSTACK_SHADOW_DESTINATION,
        target_id=name,
        field="exists",
        before=True,
        after=False,
        apply=delete,
    )


def _drop_scratch_schema(step: MigrationOperator, context: Any, target_id: str) -> bool:
    from segment_rudderstack.dialects import dialect_for_conn_id
    from segment_rudderstack.dialects.scratch_schema import drop_schema, table_count

    conn_id, schema = target_id.split(SEPARATOR, 1)
    dialect = dialect_for_conn_id(conn_id)
    if table_count(dialect, schema) is None:
        return False
    return step.apply_change(
        context,
        target=ChangeTarget.WAREHOUSE_SCRATCH_SCHEMA,
        target_id=target_id,
        field="exists",
        before=True,
        after=False,
        apply=lambda: drop_schema(dialect, schema),
    )


class RemoveShadowOperator(MigrationOperator):
    """Once compared: the shadow destination deleted (with its connections) and its scratch schema dropped,
    each a recorded change. Nothing to do when they are gone already.

    :param rudderstack_conn_id: the control plane connection.
    :param warehouse_conn_id: the warehouse connection the scratch schema is in.
    :param destination_name: the shadow destination's name.
    :param shadow_schema: the scratch schema.
    """

    ui_color = "#e8daef"

    def __init__(
        self,
        *,
        rudderstack_conn_id: str,
        warehouse_conn_id: str,
        destination_name: str,
        shadow_schema: str,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.rudderstack_conn_id = rudderstack_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.destination_name = destination_name
        self.shadow_schema = shadow_schema

    def execute(self, context: Any) -> dict[str, bool]:
        from segment_rudderstack.hooks.rudderstack import RudderStackHook

        hook = RudderStackHook(self.rudderstack_conn_id)
        removed = _remove_shadow_destination(self, context, hook, self.destination_name, None)
        dropped = _drop_scratch_schema(
            self, context, SEPARATOR.join([self.warehouse_conn_id, self.shadow_schema])
        )
        return {"destination_removed": bool(removed), "schema_dropped": bool(dropped)}


@undoes(ChangeTarget.RUDDERSTACK_SHADOW_DESTINATION, "exists")
def undo_shadow_destination(undo: Undo, context: Any, target_id: str, field: str, change: Any = None):
    object_id = getattr(change, "object_id", None)
    if _remove_shadow_destination(undo.rollback, context, undo.rudderstack, target_id, object_id):
        return f"deleted the shape check's shadow destination {target_id!r}"
    return None


@undoes(ChangeTarget.WAREHOUSE_SCRATCH_SCHEMA, "exists")
def undo_scratch_schema(undo: Undo, context: Any, target_id: str, field: str, change: Any = None):
    if _drop_scratch_schema(undo.rollback, context, target_id):
        return f"dropped the shadow load's scratch schema {target_id.split(SEPARATOR, 1)[1]!r}"
    return None


def _instant(value: Any, what: str) -> datetime:
    moment = parse_instant(value)
    if moment is None:
        raise AirflowFailException(
            f"expected {what} as an instant (an upstream task's output), got {value!r}"
        )
    return moment


def fill_of(rows: Sequence[Any], *, loader: str | None = None, libraries: set | None = None) -> Any:
    """The :class:`~segment_rudderstack.shape.compare.Fill` of the fill groups ``rows`` (``column_fill``'s
    answer) of one loader (``segment`` / ``rudderstack``; ``None``: both) and of ``libraries`` (``None``: all)."""
    from segment_rudderstack.shape.compare import Fill

    fill = Fill()
    for row in rows:
        if loader is not None and row.loader != loader:
            continue
        if libraries is not None and row.library not in libraries:
            continue
        fill.add(row.rows, row.filled)
    return fill


def fill_facts(before: Any, after: Any, by_library: Mapping[str, int]) -> dict[str, Any]:
    """A table's line in the report: rows before and after, each column's share before and after."""
    columns = sorted(set(before.filled) | set(after.filled))
    return {
        "before_rows": before.rows,
        "after_rows": after.rows,
        "columns": {c: [before.share(c), after.share(c)] for c in columns},
        "libraries": dict(sorted(by_library.items())),
    }


def _libraries(rows: Sequence[Any], loader: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        if row.loader == loader:
            key = row.library or "(none)"
            counts[key] = counts.get(key, 0) + row.rows
    return counts


def discard_dicts(groups: Sequence[Any]) -> list[dict[str, Any]]:
    return [g.to_dict() for g in groups]


class CompareShadowOperator(_ShapeCheck):
    """Before Segment's warehouse is switched off: the shadow destination's rows (what RudderStack writes for the
    same events) against Segment's. For the message ids in both: per column Segment filled, the same value, a
    different one, one in another column, or none; the values RudderStack sends against the real columns' types
    (the warehouse's type wins: discarded, truncated, reformatted); for the rows only the new clients sent: each
    column's fill against Segment's rows of the same table; the shadow's own ``rudder_discards``.

    :param namespace: the schema Segment writes.
    :param shadow_schema: the shadow's scratch schema.
    :param shadow_destination_id: the shadow destination (upstream output; empty only in a dry run).
    :param cutover_at: the cutover point (the overlap starts there).
    :param lookback_hours: Segment's rows read before the cutover for the fill comparison.
    :param sample_rows: shadow rows compared per table (the latest).
    :param min_rows: rows a fill share needs to be judged.
    :param fill_drop: stopped filling below this share of the old fill.
    :param dry_run: a dry run has no shadow destination: it says so and compares nothing.
    """

    check = "shadow"
    template_fields = ("namespace", "shadow_destination_id", "cutover_at", "dry_run")

    def __init__(
        self,
        *,
        namespace: str,
        shadow_schema: str,
        shadow_destination_id: str | None,
        cutover_at: Any,
        lookback_hours: float = 72,
        sample_rows: int = SAMPLE_IDS,
        min_rows: int = 20,
        fill_drop: float = 0.5,
        dry_run: Any = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.namespace = namespace
        self.shadow_schema = shadow_schema
        self.shadow_destination_id = shadow_destination_id
        self.cutover_at = cutover_at
        self.lookback_hours = lookback_hours
        self.sample_rows = sample_rows
        self.min_rows = min_rows
        self.fill_drop = fill_drop
        self.dry_run = dry_run

    def execute(self, context: Any) -> dict[str, Any] | None:
        from segment_rudderstack.dialects.scratch_schema import table_count
        from segment_rudderstack.dialects.shape_queries import discards_since, schema_snapshot
        from segment_rudderstack.rendered import as_bool
        from segment_rudderstack.shape.compare import discard_findings, table_findings

        if self.shadow_destination_id in (None, "", "None"):
            if as_bool(self.dry_run):
                self.log.info("DRY RUN: no shadow destination: the comparison would run once it loaded")
                return None
            raise AirflowFailException(
                f"{self.task_id}: expected the shadow destination's id from the upstream task, got none"
            )
        dialect = self.dialect()
        cutover, now = _instant(self.cutover_at, "cutover_at"), datetime.now(UTC)
        start = cutover - timedelta(hours=float(self.lookback_hours))
        self._snapshots = {
            self.namespace: schema_snapshot(dialect, self.namespace),
            self.shadow_schema: schema_snapshot(dialect, self.shadow_schema),
        }
        scratch = self._snapshots[self.shadow_schema]
        self._require_shadow(scratch.tables if scratch.exists else None, "before the comparison")
        real = _windowed(snapshot_types(self._snapshots[self.namespace]))
        shadow = _windowed(snapshot_types(self._snapshots[self.shadow_schema]))
        discards = discards_since(dialect, self.shadow_schema, since=start, examples=self.sample_rows)
        discarded = {(str(row_id), g.column_name) for g in discards for row_id, _ in g.examples}
        findings, facts, before, after = [], {"tables": {}, "compared_ids": 0}, {}, {}
        for table in judged_tables(sorted(set(shadow) | set(real))):
            try:
                table_found, table_facts = self._table(
                    dialect, table, real, shadow, (start, cutover, now), discarded
                )
            except Exception:  # a table read from the snapshot is gone: was the scratch schema removed?
                self._require_shadow(table_count(dialect, self.shadow_schema), "during the comparison")
                raise
            findings += table_found
            before[table], after[table] = table_facts.pop("_fills")
            facts["tables"][table] = table_facts
            facts["compared_ids"] += table_facts.get("compared_ids", 0)
        findings += table_findings(before, after, min_rows=self.min_rows, check=self.check)
        findings += [
            f
            for f in discard_findings(discard_dicts(discards), check=self.check)
            if f.column in real.get(f.table, {})
        ]
        facts.update(shadow_schema=self.shadow_schema, window=[start.isoformat(), now.isoformat()])
        self._require_shadow(table_count(dialect, self.shadow_schema), "during the comparison")
        return self.conclude(context, findings, facts)

    def _require_shadow(self, tables: Any, when: str) -> None:
        """No verdict from a scratch schema that is missing or empty (never loaded, or removed by a rollback):
        its absence would read as "nothing differs"."""
        if tables:
            return
        raise AirflowFailException(
            f"{self.task_id}: expected the shadow load's rows in the scratch schema {self.shadow_schema!r} "
            f"{when}, found {'no schema' if tables is None else 'no tables'}: nothing can be compared, so the shape "
            "is not proven. A rollback removes the schema (then this run is over: do not clear it); otherwise "
            "clear wait_shadow_load and this task once the shadow destination has loaded, or set "
            "shape.shadow.enabled: false in the plan"
        )

    def _fill(self, dialect: Any, schema: str, table: str, columns: list[str], window: tuple) -> list[Any]:
        from segment_rudderstack.dialects.shape_queries import column_fill

        start, _, now = window
        snapshot = self._snapshots[schema]
        return column_fill(dialect, schema, table, columns, start=start, end=now, snapshot=snapshot)

    def _same_ids(self, dialect, table, real_cols, sample, discarded) -> tuple[list[Finding], int]:
        """Segment's rows for the sampled shadow rows' ids, compared column by column. Not ``users``: its id is the
        user id and each loader keeps the latest traits it saw, not one event's."""
        if table == "users":
            return [], 0
        from segment_rudderstack.dialects.shape_queries import values_by_id
        from segment_rudderstack.shape.compare import compare_same_ids

        ids = [r["id"] for r in sample]
        theirs = values_by_id(dialect, self.namespace, table, sorted(real_cols), ids) if real_cols else {}
        ours = {str(r["id"]): r for r in sample if str(r["id"]) in theirs}
        found = compare_same_ids(
            table,
            real_columns=real_cols,
            segment_rows=theirs,
            shadow_rows=ours,
            discarded_ids=discarded,
            check=self.check,
        )
        return found, len(ours)

    def _table(self, dialect, table, real, shadow, window, discarded) -> tuple[list[Finding], dict[str, Any]]:
        from segment_rudderstack.dialects.shape_queries import value_sample
        from segment_rudderstack.shape.compare import compare_fill, predicted_values

        start, _, now = window
        real_cols, shadow_cols = real.get(table, {}), shadow.get(table, {})
        columns = sorted(set(real_cols) | set(shadow_cols))
        before_rows = self._fill(dialect, self.namespace, table, columns, window) if real_cols else []
        before = fill_of(before_rows, loader="segment")
        if not shadow_cols:
            return [], {"_fills": (before, fill_of([])), **fill_facts(before, fill_of([]), {})}
        sample = value_sample(
            dialect,
            self.shadow_schema,
            table,
            sorted(shadow_cols),
            start=start,
            end=now,
            limit=self.sample_rows,
        )
        found, compared = self._same_ids(dialect, table, real_cols, sample, discarded)
        kind = warehouse_kind(dialect)
        found += predicted_values(table, warehouse=kind, real_types=real_cols, rows=sample, check=self.check)
        shadow_rows = self._fill(dialect, self.shadow_schema, table, columns, window)
        old_libraries = {r.library for r in before_rows if r.loader == "segment"}
        after = fill_of(shadow_rows, libraries={r.library for r in shadow_rows} - old_libraries)
        found += compare_fill(
            table,
            before=before,
            after=after,
            min_rows=self.min_rows,
            fill_drop=self.fill_drop,
            check=self.check,
        )
        by_library: dict[str, int] = {}
        for r in shadow_rows:
            by_library[r.library or "(none)"] = by_library.get(r.library or "(none)", 0) + r.rows
        # a table stopped only when the shadow got none of its rows (old clients' rows via the webhook count too)
        return found, {
            "_fills": (before, fill_of(shadow_rows)),
            "compared_ids": compared,
            **fill_facts(before, after, by_library),
        }


class ShapeContinuityOperator(_ShapeCheck):
    """After RudderStack loads the real schema, before Segment's webhook is switched off: per table and column,
    the share of rows carrying a value before the cutover (Segment's rows) and after it (rows
    ``context_destination_id`` = the destination, split by client library); columns that stopped filling, new
    columns, tables that stopped receiving rows, type changes against the preflight's before snapshot; and every
    (table, column, reason) in ``rudder_discards`` since the release, with examples.

    :param namespace: the schema.
    :param destination_id: the real RudderStack destination (upstream output).
    :param cutover_at: the cutover point.
    :param released_at: when RudderStack's sync was released (the discards watch starts there).
    :param preflight_task_id: the shape preflight task (its before snapshot).
    :param lookback_hours: Segment's rows read before the cutover (the "before" window).
    :param min_rows: rows a fill share needs to be judged.
    :param fill_drop: stopped filling below this share of the old fill.
    :param dry_run: a dry run without a destination compares nothing.
    """

    check = "continuity"
    template_fields = ("namespace", "destination_id", "cutover_at", "released_at", "dry_run")

    def __init__(
        self,
        *,
        namespace: str,
        destination_id: str | None,
        cutover_at: Any,
        released_at: Any,
        preflight_task_id: str,
        lookback_hours: float = 72,
        min_rows: int = 20,
        fill_drop: float = 0.5,
        dry_run: Any = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.namespace = namespace
        self.destination_id = destination_id
        self.cutover_at = cutover_at
        self.released_at = released_at
        self.preflight_task_id = preflight_task_id
        self.lookback_hours = lookback_hours
        self.min_rows = min_rows
        self.fill_drop = fill_drop
        self.dry_run = dry_run

    def _before_types(self, context: Any) -> dict[str, dict[str, str]]:
        data = context["ti"].xcom_pull(task_ids=self.preflight_task_id, key=RESULT_KEY)
        result = ShapeResult.from_dict(data)
        return dict(result.facts.get("before") or {}) if result else {}

    def execute(self, context: Any) -> dict[str, Any] | None:
        from segment_rudderstack.dialects.shape_queries import column_fill, discards_since, schema_snapshot
        from segment_rudderstack.rendered import as_bool
        from segment_rudderstack.shape.compare import (
            compare_fill,
            compare_types,
            discard_findings,
            table_findings,
        )

        if self.destination_id in (None, "", "None") and as_bool(self.dry_run):
            self.log.info("DRY RUN: no destination: the continuity check would run after RudderStack's load")
            return None
        dialect = self.dialect()
        cutover, now = _instant(self.cutover_at, "cutover_at"), datetime.now(UTC)
        released = parse_instant(self.released_at) or cutover
        start = cutover - timedelta(hours=float(self.lookback_hours))
        snapshot = schema_snapshot(dialect, self.namespace)
        now_types = snapshot_types(snapshot)
        findings = compare_types(self._before_types(context), now_types, check=self.check)
        befores, afters, tables = {}, {}, {}
        for table in judged_tables(list(_windowed(now_types))):
            columns = sorted(now_types[table])
            before_rows = column_fill(
                dialect, self.namespace, table, columns, start=start, end=cutover, snapshot=snapshot
            )
            after_rows = column_fill(
                dialect,
                self.namespace,
                table,
                columns,
                start=cutover,
                end=now,
                destination_id=self.destination_id,
                snapshot=snapshot,
            )
            before, after = fill_of(before_rows, loader="segment"), fill_of(after_rows, loader="rudderstack")
            findings += compare_fill(
                table,
                before=before,
                after=after,
                min_rows=self.min_rows,
                fill_drop=self.fill_drop,
                check=self.check,
            )
            befores[table], afters[table] = before, after
            tables[table] = fill_facts(before, after, _libraries(after_rows, "rudderstack"))
        findings += table_findings(befores, afters, min_rows=self.min_rows, check=self.check)
        discards = discards_since(dialect, self.namespace, since=released)
        findings += discard_findings(discard_dicts(discards), check="discards")
        facts = {
            "tables": tables,
            "discards": discard_dicts(discards),
            "window": [start.isoformat(), cutover.isoformat(), now.isoformat()],
            "released_at": released.isoformat(),
        }
        return self.conclude(context, findings, facts)
