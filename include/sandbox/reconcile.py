"""Reconciliation: compare the ledger of sent events with what is in the warehouse.

Per table: `sent` (distinct message ids the clients sent), `loaded` (of those, how many are in the table),
`missing` (sent, not in the table, not dropped), `duplicated` (ids with more than one row),
`dropped_after_close` (sent while no path to the warehouse was open, and not in the table) and
`unexpected` (rows whose id the ledger does not know, e.g. history loaded before the run).
`Report.ok` is true when nothing is missing and nothing is duplicated.

CLI (wired as `python -m sandbox reconcile`): ``python -m sandbox.reconcile --dsn ... --schema app_events``.
Exit code 0 when ok, 1 when any event is missing or duplicated, 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field

from sandbox.ledger import DEFAULT_LEDGER_SCHEMA, Ledger
from sandbox.warehouse import EVENT_TABLES, Warehouse

__all__ = ["Report", "TableReport", "main", "reconcile"]

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
    unexpected: int = 0
    missing_ids: list[str] = field(default_factory=list)
    duplicated_ids: list[str] = field(default_factory=list)


@dataclass
class Report:
    schema: str
    tables: list[TableReport]

    @property
    def missing(self) -> int:
        return sum(t.missing for t in self.tables)

    @property
    def duplicated(self) -> int:
        return sum(t.duplicated for t in self.tables)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.duplicated == 0

    def table(self, name: str) -> TableReport:
        for report in self.tables:
            if report.table == name:
                return report
        return TableReport(table=name)

    def totals(self) -> TableReport:
        total = TableReport(table="TOTAL")
        for t in self.tables:
            for name in ("sent", "loaded", "missing", "duplicated", "dropped_after_close", "unexpected"):
                setattr(total, name, getattr(total, name) + getattr(t, name))
        return total

    def to_dict(self) -> dict:
        return {"schema": self.schema, "ok": self.ok, "tables": [asdict(t) for t in self.tables],
                "totals": asdict(self.totals())}

    def format(self) -> str:
        columns = ("sent", "loaded", "missing", "duplicated", "dropped_after_close", "unexpected")
        width = max([len("table"), *(len(t.table) for t in self.tables), len("TOTAL")])
        lines = [f"Reconciliation of schema {self.schema!r}: " + ("OK" if self.ok else "FAILED"),
                 "  ".join(["table".ljust(width), *(c.rjust(len(c)) for c in columns)])]
        for t in [*self.tables, self.totals()]:
            lines.append("  ".join([t.table.ljust(width), *(str(getattr(t, c)).rjust(len(c)) for c in columns)]))
        for t in self.tables:
            if t.missing_ids:
                lines.append(f"{t.table}: missing e.g. {', '.join(t.missing_ids)}")
            if t.duplicated_ids:
                lines.append(f"{t.table}: duplicated e.g. {', '.join(t.duplicated_ids)}")
        if not self.ok:
            lines.append("Missing events were sent but never loaded; duplicated ids have more than one row. "
                         "Check the emulators' logs (/sandbox/log) for the order of loads and switches.")
        return "\n".join(lines)


def reconcile(
    dsn: str, schema: str, *, ledger_schema: str = DEFAULT_LEDGER_SCHEMA, source: str | None = None
) -> Report:
    """Compare the ledger (events recorded for `schema` or for no schema) with the tables in `schema`."""
    ledger = Ledger(dsn, schema=ledger_schema)
    try:
        sent_rows = ledger.sent(schema=schema, source=source)
        dropped_ids = {row["message_id"] for row in ledger.dropped()}
    finally:
        ledger.close()
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
        report.dropped_after_close = len(absent) - len(missing)
        duplicated = sorted(i for i, n in rows.items() if n > 1)
        report.duplicated = len(duplicated)
        report.unexpected = sum(1 for i in rows if i not in all_sent)
        report.missing_ids = missing[:SAMPLE_IDS]
        report.duplicated_ids = duplicated[:SAMPLE_IDS]
        reports.append(report)
    return Report(schema=schema, tables=reports)


def _dsn_from_state() -> str | None:
    home = pathlib.Path(os.environ.get("SANDBOX_HOME", ".sandbox"))
    try:
        state = json.loads((home / "state.json").read_text())
    except (OSError, ValueError):
        return None
    warehouse = state.get("warehouse")
    return state.get("dsn") or state.get("warehouse_dsn") or (
        warehouse.get("dsn") if isinstance(warehouse, dict) else None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox reconcile",
        description="Compare the sandbox ledger with the warehouse: sent, loaded, missing, duplicated, dropped.",
    )
    parser.add_argument("--dsn", help="warehouse DSN (default: $SANDBOX_WAREHOUSE_DSN, else the running sandbox)")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA, help=f"warehouse schema (default {DEFAULT_SCHEMA})")
    parser.add_argument("--ledger-schema", default=DEFAULT_LEDGER_SCHEMA)
    parser.add_argument("--source", help="only events sent to this source id")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    dsn = args.dsn or os.environ.get("SANDBOX_WAREHOUSE_DSN") or _dsn_from_state()
    if not dsn:
        print("No warehouse DSN: pass --dsn, set SANDBOX_WAREHOUSE_DSN, or start the sandbox "
              "(python -m sandbox start) so .sandbox/state.json holds it.", file=sys.stderr)
        return 2
    try:
        report = reconcile(dsn, args.schema, ledger_schema=args.ledger_schema, source=args.source)
    except Exception as exc:  # noqa: BLE001 - a CLI reports any failure as text and exit 2
        print(f"Reconciliation could not run against schema {args.schema!r}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
