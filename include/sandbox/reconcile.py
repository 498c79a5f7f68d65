"""Reconciliation: compare the ledger of sent events with what is in the warehouse.

Per table: `sent` (distinct message ids the clients sent), `loaded` (of those, how many are in the table),
`missing` (sent, not in the table, not dropped), `duplicated` (ids with more than one row),
`dropped_after_close` (sent while no path to the warehouse was open, not in the table, and dropped after the
migration's own webhook switch-off: the adoption threshold's accepted tail), `lost_after_close` (dropped while no
path was open *before* that switch-off, or with no switch-off by the migration at all: lost by a migration step),
`misplaced` (rows whose id the ledger recorded for another schema: an event that landed in the wrong
schema) and `unexpected` (rows whose id the ledger does not know, e.g. history loaded before the run).
Rows are matched by `id` (the message id) in the standard tables, which both loaders name alike
(sandbox.segment_loader, sandbox.rudderstack_loader). RudderStack writes into ToSafeNamespace(namespace): for a
schema whose name snake-cases differently (`web_v2` -> `web_v_2`) its rows are in another schema and count as
missing here, as they would be for the warehouse's users.
`Report.ok` is true when nothing is missing, duplicated, lost after close or misplaced. `reconcile_schemas` reconciles every
schema of a world with several (one per lane) and is ok only when each of them is.

`Report.values`: the value check (sandbox.value_check) of the same schema, when the ledger recorded the values its
clients sent: per column, each value the client set kept, changed, moved or lost in its row. It is reported
apart and does not change `Report.ok` (ids); a check that could not run says so there, the id proof stands.

CLI (wired as `python -m sandbox reconcile`): ``python -m sandbox.reconcile --dsn ... --schema app_events``
(``--schema`` may be repeated; default: every schema of the running sandbox). Prints the value check after the
ids (``--no-values`` skips it). Exit code 0 when ok, 1 when any event is missing, duplicated or misplaced, 2 when
it cannot run (the value check never changes it).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.ledger import DEFAULT_LEDGER_SCHEMA, Ledger
from sandbox.value_check import ValueReport, check_values
from sandbox.warehouse import EVENT_TABLES, Warehouse

__all__ = ["Report", "SchemasReport", "TableReport", "main", "reconcile", "reconcile_schemas"]

SAMPLE_IDS = 10
DEFAULT_SCHEMA = "app_events"


@dataclass
class TableReport:
    table: str
    sent: int = 0
    loaded: int = 0
    missing: int = 0
    duplicated: int = 0
    dropped_after_close: int = 0
    lost_after_close: int = 0
    misplaced: int = 0
    unexpected: int = 0
    missing_ids: list[str] = field(default_factory=list)
    duplicated_ids: list[str] = field(default_factory=list)
    misplaced_ids: list[str] = field(default_factory=list)


COLUMNS = (
    "sent",
    "loaded",
    "missing",
    "duplicated",
    "dropped_after_close",
    "lost_after_close",
    "misplaced",
    "unexpected",
)


@dataclass
class Report:
    schema: str
    tables: list[TableReport]
    #: the value check of the schema (None: not run, or the ledger recorded no values); apart from `ok`
    values: ValueReport | None = None

    @property
    def missing(self) -> int:
        return sum(t.missing for t in self.tables)

    @property
    def duplicated(self) -> int:
        return sum(t.duplicated for t in self.tables)

    @property
    def misplaced(self) -> int:
        return sum(t.misplaced for t in self.tables)

    @property
    def lost_after_close(self) -> int:
        return sum(t.lost_after_close for t in self.tables)

    @property
    def ok(self) -> bool:
        return (
            self.missing == 0 and self.duplicated == 0 and self.misplaced == 0 and self.lost_after_close == 0
        )

    def table(self, name: str) -> TableReport:
        for report in self.tables:
            if report.table == name:
                return report
        return TableReport(table=name)

    def totals(self) -> TableReport:
        total = TableReport(table="TOTAL")
        for t in self.tables:
            for name in COLUMNS:
                setattr(total, name, getattr(total, name) + getattr(t, name))
        return total

    def to_dict(self) -> dict:
        return {
            "schema": self.schema,
            "ok": self.ok,
            "tables": [asdict(t) for t in self.tables],
            "totals": asdict(self.totals()),
            **({"values": self.values.to_dict()} if self.values is not None else {}),
        }

    def format(self) -> str:
        columns = COLUMNS
        width = max([len("table"), *(len(t.table) for t in self.tables), len("TOTAL")])
        lines = [
            f"Reconciliation of schema {self.schema!r}: " + ("OK" if self.ok else "FAILED"),
            "  ".join(["table".ljust(width), *(c.rjust(len(c)) for c in columns)]),
        ]
        for t in [*self.tables, self.totals()]:
            lines.append(
                "  ".join([t.table.ljust(width), *(str(getattr(t, c)).rjust(len(c)) for c in columns)])
            )
        for t in self.tables:
            if t.missing_ids:
                lines.append(f"{t.table}: missing e.g. {', '.join(t.missing_ids)}")
            if t.duplicated_ids:
                lines.append(f"{t.table}: duplicated e.g. {', '.join(t.duplicated_ids)}")
            if t.misplaced_ids:
                lines.append(
                    f"{t.table}: misplaced (sent for another schema) e.g. {', '.join(t.misplaced_ids)}"
                )
        if not self.ok:
            lines.append(
                "Missing events were sent but never loaded; duplicated ids have more than one row; "
                "misplaced ids belong to a source of another schema. Check the emulators' logs "
                "(/sandbox/log) for the order of loads and switches."
            )
        if self.values is not None:
            lines.append(self.values.format())
        return "\n".join(lines)


@dataclass
class SchemasReport:
    """The reconciliation of every schema of a world (one per lane): ok only when each schema is."""

    reports: list[Report]

    @property
    def schema(self) -> str:
        return ", ".join(r.schema for r in self.reports)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    @property
    def missing(self) -> int:
        return sum(r.missing for r in self.reports)

    @property
    def duplicated(self) -> int:
        return sum(r.duplicated for r in self.reports)

    @property
    def misplaced(self) -> int:
        return sum(r.misplaced for r in self.reports)

    @property
    def lost_after_close(self) -> int:
        return sum(r.lost_after_close for r in self.reports)

    @property
    def values(self) -> ValueReport | None:
        """The value checks of every schema, summed (None when none ran); apart from `ok`."""
        return ValueReport.combined(r.values for r in self.reports)

    def by_schema(self) -> dict[str, Report]:
        return {r.schema: r for r in self.reports}

    def totals(self) -> TableReport:
        total = TableReport(table="TOTAL")
        for report in self.reports:
            part = report.totals()
            for name in COLUMNS:
                setattr(total, name, getattr(total, name) + getattr(part, name))
        return total

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "schemas": [r.to_dict() for r in self.reports],
            "totals": asdict(self.totals()),
        }

    def format(self) -> str:
        return "\n\n".join(r.format() for r in self.reports)


def reconcile(
    dsn: str,
    schema: str,
    *,
    ledger_schema: str = DEFAULT_LEDGER_SCHEMA,
    source: str | None = None,
    accepted_after: datetime | None = None,
    values: bool = True,
) -> Report:
    """Compare the ledger (events recorded for `schema` or for no schema) with the tables in `schema`; rows
    of events the ledger recorded for another schema are counted as misplaced.

    ``accepted_after``: when the migration itself switched Segment's webhook off (after adoption held); events
    Segment dropped after it are the accepted tail, any other drop is counted lost (``lost_after_close``).
    ``values``: also run the value check (`Report.values`, when the ledger recorded the clients' values)."""
    ledger = Ledger(dsn, schema=ledger_schema)
    try:
        every_row = ledger.sent(source=source)
        dropped_rows = ledger.dropped()
        dropped_ids = {row["message_id"] for row in dropped_rows}
        accepted_ids = {
            row["message_id"]
            for row in dropped_rows
            if accepted_after is not None and _as_utc(row["at"]) >= accepted_after
        }
    finally:
        ledger.close()
    sent_rows = [row for row in every_row if row.get("schema") in (None, schema)]
    elsewhere = {row["message_id"] for row in every_row if row.get("schema") not in (None, schema)}
    sent_by_table: dict[str, set[str]] = {}
    for row in sent_rows:
        sent_by_table.setdefault(row["table"], set()).add(row["message_id"])
    all_sent = set().union(*sent_by_table.values()) if sent_by_table else set()
    in_warehouse = Warehouse(dsn).event_ids_by_table(schema)

    names = [t for t in EVENT_TABLES if t in sent_by_table or t in in_warehouse]
    names += sorted(t for t in sent_by_table if t not in EVENT_TABLES)
    reports = []
    for name in names:
        sent = sent_by_table.get(name, set())
        rows: Counter = in_warehouse.get(name, Counter())
        report = TableReport(table=name, sent=len(sent))
        absent = sorted(i for i in sent if rows.get(i, 0) == 0)
        report.loaded = len(sent) - len(absent)
        missing = [i for i in absent if i not in dropped_ids]
        report.missing = len(missing)
        dropped = [i for i in absent if i in dropped_ids]
        report.dropped_after_close = sum(1 for i in dropped if i in accepted_ids)
        report.lost_after_close = len(dropped) - report.dropped_after_close
        duplicated = sorted(i for i, n in rows.items() if n > 1)
        report.duplicated = len(duplicated)
        misplaced = sorted(i for i in rows if i not in all_sent and i in elsewhere)
        report.misplaced = len(misplaced)
        report.unexpected = sum(1 for i in rows if i not in all_sent and i not in elsewhere)
        report.missing_ids = missing[:SAMPLE_IDS]
        report.duplicated_ids = duplicated[:SAMPLE_IDS]
        report.misplaced_ids = misplaced[:SAMPLE_IDS]
        reports.append(report)
    return Report(
        schema=schema,
        tables=reports,
        values=_value_check(dsn, schema, ledger_schema, sent_rows) if values else None,
    )


def _value_check(dsn: str, schema: str, ledger_schema: str, sent_rows: list[dict]) -> ValueReport | None:
    """The value check of `schema` over the ledger rows the id reconciliation read; None when the ledger
    recorded no values for them. A check that fails is reported as such: the id proof does not depend on it."""
    try:
        checked = check_values(dsn, schema, ledger_schema=ledger_schema, sent_rows=sent_rows)
    except Exception as exc:  # noqa: BLE001 - reported in the value check's place, never hiding the ids
        return ValueReport(schema=schema, error=f"{type(exc).__name__}: {exc}")
    return checked if checked.recorded else None


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def reconcile_schemas(
    dsn: str,
    schemas: list[str],
    *,
    ledger_schema: str = DEFAULT_LEDGER_SCHEMA,
    accepted_after: datetime | None = None,
    values: bool = True,
) -> SchemasReport:
    """Reconcile each schema on its own (every event must be in its source's schema exactly once)."""
    return SchemasReport(
        [
            reconcile(dsn, schema, ledger_schema=ledger_schema, accepted_after=accepted_after, values=values)
            for schema in schemas
        ]
    )


def _state() -> dict:
    home = pathlib.Path(os.environ.get("SANDBOX_HOME", ".sandbox"))
    try:
        return json.loads((home / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _dsn_from_state() -> str | None:
    state = _state()
    if not state:
        return None
    warehouse = state.get("warehouse")
    return (
        state.get("dsn")
        or state.get("warehouse_dsn")
        or (warehouse.get("dsn") if isinstance(warehouse, dict) else None)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox reconcile",
        description="Compare the sandbox ledger with the warehouse: sent, loaded, missing, duplicated, dropped.",
    )
    parser.add_argument(
        "--dsn", help="warehouse DSN (default: $SANDBOX_WAREHOUSE_DSN, else the running sandbox)"
    )
    parser.add_argument(
        "--schema",
        action="append",
        help="warehouse schema, repeatable (default: every schema of the running sandbox, "
        f"else {DEFAULT_SCHEMA})",
    )
    parser.add_argument("--ledger-schema", default=DEFAULT_LEDGER_SCHEMA)
    parser.add_argument("--source", help="only events sent to this source id")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--accepted-after",
        type=_as_utc,
        default=None,
        help="ISO instant of the migration's own webhook switch-off: events Segment dropped after it "
        "are the accepted tail; any other drop counts as lost_after_close",
    )
    parser.add_argument(
        "--no-values",
        action="store_true",
        help="skip the value check (the values each client sent against its row, per column)",
    )
    args = parser.parse_args(argv)
    dsn = args.dsn or os.environ.get("SANDBOX_WAREHOUSE_DSN") or _dsn_from_state()
    if not dsn:
        print(
            "No warehouse DSN: pass --dsn, set SANDBOX_WAREHOUSE_DSN, or start the sandbox "
            "(python -m sandbox start) so .sandbox/state.json holds it.",
            file=sys.stderr,
        )
        return 2
    schemas = args.schema or _state().get("schemas") or [DEFAULT_SCHEMA]
    try:
        reports = [
            reconcile(
                dsn,
                s,
                ledger_schema=args.ledger_schema,
                source=args.source,
                accepted_after=args.accepted_after,
                values=not args.no_values,
            )
            for s in schemas
        ]
        report: Report | SchemasReport = reports[0] if len(reports) == 1 else SchemasReport(reports)
    except Exception as exc:  # noqa: BLE001 - a CLI reports any failure as text and exit 2
        print(
            f"Reconciliation could not run against schemas {schemas}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
