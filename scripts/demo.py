"""`make demo`: rehearse the whole Segment → RudderStack migration on the local sandbox and prove the result.

Starts the sandbox (emulators + embedded PostgreSQL + simulated clients sending through the real SDKs),
runs the sandbox plan's migration DAG with `airflow dags test`, lets the clients finish and RudderStack
load what it holds, then prints the reconciliation (every event sent is in the warehouse exactly once) with
its value check (each value sent, in its column), the safety-invariant check (from the emulators' own logs)
and where the report is. Exits non-zero when an event is lost or duplicated, the DAG failed or an invariant
broke (the value check is reported, not gated: `--world drift` shows its drifts there).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from sandbox.config import load_config
from sandbox.invariants import warehouse_disabled_at, webhook_disabled_at
from sandbox.rehearsal import rehearse
from segment_rudderstack.plan.model import load_plan

REPO = pathlib.Path(__file__).resolve().parents[1]


COLUMNS = {
    "sent": "distinct events the simulated clients sent (the ledger), per table",
    "loaded": "of those, how many are in the warehouse table (by message id)",
    "missing": "sent, not in the warehouse, and not dropped on purpose: LOST (must be 0)",
    "duplicated": "message ids with more than one row in the table (must be 0)",
    "dropped_after_close": "dropped by Segment after the migration's own webhook switch-off (old clients past "
    "the adoption threshold): the accepted tail, counted apart from losses",
    "lost_after_close": "dropped by Segment while no path to the warehouse was open BEFORE the migration's own "
    "switch-off (e.g. a rollback or a step out of order): LOST by a migration step (must be 0)",
    "misplaced": "rows whose id the ledger recorded for another schema: an event in the wrong lane (must be 0)",
    "unexpected": "rows whose id the ledger does not know (history loaded before the rehearsal)",
}
# The value check after the table (sandbox.value_check): each value a client sent against its row, in the column
# Segment's loader names (the one the models read). Reported apart: it does not change the exit code.
VALUE_KINDS = {
    "kept": "the same value in its column",
    "changed": "another value in its column (reformatted, truncated, stringified, overwritten)",
    "moved": "its column is empty, the same value is in another column (a key RudderStack names differently)",
    "lost": "empty everywhere in the row (with RudderStack's reason when it parked the value in rudder_discards)",
}


class Progress:
    """One line every few seconds while the DAG runs: elapsed time, the phase it is in, and the adoption share
    (events still arriving through Segment's webhook) as it falls. Read from Airflow's metadata database
    (the run's task instances, as the migration view does) and from the warehouse (the sensor's own query)."""

    def __init__(self, plan):
        self.plan = plan
        #: phase label -> (first ETA seen, last ETA seen): printed at the end beside when the phase ended
        self.etas: dict[str, list[str]] = {}

    def __call__(self, sandbox, env: dict[str, str], elapsed: float) -> None:
        import os

        from airflow.utils.session import create_session

        from segment_rudderstack.ui.view import plan_facts

        os.environ.update({k: v for k, v in env.items() if k.startswith("AIRFLOW_CONN_")})
        from segment_rudderstack.ui.operations import phase_etas

        with create_session() as session:
            facts, extra = plan_facts(self.plan.dag_id, session)
        self.last_facts = facts
        etas = phase_etas(facts, extra)
        for text in etas.values():
            label = text.split(":", 1)[0]
            self.etas.setdefault(label, [text, text])[1] = text
        eta = next(iter(etas.values()), None)
        print(progress_line(facts, elapsed, self._share(facts), eta), flush=True)

    def _share(self, facts) -> str:
        lanes = self.plan.lanes
        if len(lanes) == 1:
            return self._lane_share(facts, lanes[0].schema, "")
        return "; ".join(
            f"{lane.name}: {self._lane_share(facts, lane.schema, ' ' + lane.name)}" for lane in lanes
        )

    def _lane_share(self, facts, schema: str, suffix: str) -> str:
        """The share in one lane's schema (``suffix``: how the report names that lane's steps)."""
        from datetime import UTC, datetime, timedelta

        from segment_rudderstack.dialects import dialect_for_conn_id

        source_id = facts.results.get("segment_source" + suffix)
        if not isinstance(source_id, str) or not facts.result("webhooks" + suffix).get("cutover_at"):
            return "not measured before the cutover"
        if not facts.results.get("upload" + suffix):  # every row is still Segment's own load: no share yet
            return "n/a until RudderStack's first load"
        now = datetime.now(UTC)
        adoption = self.plan.adoption
        sample = dialect_for_conn_id(self.plan.warehouse.conn_id).adoption_share(
            schema,
            webhook_source_id=source_id,
            since=now - timedelta(seconds=adoption.window_seconds),
            until=now,
            library_names=adoption.library_names or None,
        )
        if sample.share is None:
            return f"no event in the last {adoption.window_seconds} s yet"
        return (
            f"{sample.share:.1%} still through Segment ({sample.via_segment} of {sample.total} events in the "
            f"last {adoption.window_seconds} s; threshold {adoption.threshold:.1%})"
        )


def progress_line(facts, elapsed: float, adoption: str, eta: str | None = None) -> str:
    """``[demo]   1 min 05 s | <phase> (<state>, <time> in it) | adoption: <share>[ | ETA <estimate>]``."""
    from segment_rudderstack.evidence.report import duration, phase_rows

    rows = phase_rows(facts)
    current = next((r for r in rows if r.state in ("running", "failed")), None)
    if current is None:
        done = [r for r in rows if r.state == "done"]
        phase = f"{done[-1].phase.label}: done" if done else "starting"
    else:
        since = (
            f", {duration((facts.generated_at - current.started).total_seconds())} in it"
            if current.started
            else ""
        )
        phase = f"{current.phase.label} ({current.state}{since})"
    return f"[demo] {duration(elapsed):>12} | {phase} | adoption: {adoption}" + (
        f" | ETA {eta}" if eta else ""
    )


def explain_columns() -> None:
    print("[demo] reconciliation columns:")
    for name, meaning in COLUMNS.items():
        print(f"  {name:<20} {meaning}")


def value_check_lines(report) -> list[str]:
    """What `make demo` says about the value check of `report` (a Report or a SchemasReport); the block itself
    is printed with the reconciliation."""
    values = report.values
    if values is None:
        return ["[demo] value check: not run (the ledger recorded no values)"]
    lines = ["[demo] value check classes (per value the clients sent, in the column Segment's loader names):"]
    lines += [f"  {kind:<8} {meaning}" for kind, meaning in VALUE_KINDS.items()]
    if values.error is not None:
        lines.append(f"[demo] value check: could not run ({values.error})")
    elif values.ok:
        lines.append(f"[demo] value check: OK, all {values.values:,} values kept in their columns")
    else:
        lines.append(
            f"[demo] value check: {values.changed:,} changed, {values.moved:,} moved, {values.lost:,} lost of "
            f"{values.values:,} values (see the columns above; the ids alone are still complete)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--plan",
        default="sandbox",
        help="plan in include/plans/ (sandbox_multi: the multi-schema world, one lane per schema)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="trigger with dry_run on (make demo DRY_RUN=1): change nothing, print the consolidated plan",
    )
    parser.add_argument(
        "--world",
        choices=("default", "drift"),
        default="default",
        help="drift (make demo WORLD=drift): the clients' new app version drifts (sandbox.clients DRIFT_*: a "
        "type change, keys RudderStack names differently, a property named channel)",
    )
    args = parser.parse_args(argv)
    plan = load_plan(REPO / "include" / "plans" / f"{args.plan}.yaml")
    # A plan of several schemas runs against the multi-schema world (3 client sources in 2 schemas + backend).
    world = "multi" if len(plan.lanes) > 1 else "default"
    # Server-side services "deploy" onto RudderStack as soon as its warehouse destination is connected; in the
    # drift world (on either plan) the clients carry the drifts.
    clients = {"server_side_switch": "auto", **({"drift": True} if args.world == "drift" else {})}
    config = load_config(world=world, clients=clients)
    mode = (" as a DRY RUN" if args.dry_run else "") + (" in the drift world" if config.clients.drift else "")
    print(f"[demo] starting the sandbox in {config.home} and running {plan.dag_id}{mode} ...", flush=True)
    began = time.monotonic()
    print(
        "[demo] progress every 10 s: elapsed | phase | adoption share (events still arriving through Segment) "
        "| ETA of the phase",
        flush=True,
    )
    progress, received = Progress(plan), {}
    result = rehearse(
        config,
        dag_id=plan.dag_id,
        change_log_key=plan.change_log_key,
        conf={"dry_run": True} if args.dry_run else None,
        progress=progress,
        after_run=lambda sandbox, env, result: received.update(_notifications(sandbox)),
    )
    ok = _print_outcome(result, plan, dry_run=args.dry_run)
    _print_operations(progress, received)
    print(f"[demo] total wall time {time.monotonic() - began:.0f} s")
    print(_final_line(ok, args.dry_run))
    return 0 if ok else 1


def _final_line(ok: bool, dry_run: bool) -> str:
    if not ok:
        return "[demo] FAILED (see above)"
    return "[demo] OK: dry run changed nothing" if dry_run else "[demo] OK: nothing lost, nothing duplicated"


def _print_outcome(result, plan, *, dry_run: bool) -> bool:
    run = result.runs[0]
    print(
        f"[demo] migration DAG {'succeeded' if run.ok else 'FAILED'} in {run.seconds:.0f} s "
        f"(airflow log: {run.log_path})"
    )
    print(
        f"[demo] sandbox start {result.timings['sandbox_start_s']:.1f} s; clients sent "
        f"{result.client_stats.get('sent')} events ({result.client_stats.get('sent_by_source')})"
    )
    for label, moments in (
        ("Segment warehouse disabled", warehouse_disabled_at(result.segment_log)),
        ("Segment webhook disabled", webhook_disabled_at(result.segment_log)),
    ):
        print(f"[demo] {label} at: {', '.join(m.isoformat() for m in moments) or 'never'}")
    print()
    print(
        result.report.format() if result.report else "[demo] no reconciliation (the run did not get that far)"
    )
    if result.report:
        print(
            f"[demo] events dropped after close and counted lost (not after the migration's own webhook "
            f"switch-off at {', '.join(m.isoformat() for m in result.webhook_switch_offs) or 'never'}): "
            f"{result.report.lost_after_close}"
        )
        explain_columns()
        for line in value_check_lines(result.report):
            print(line)
    print()
    if result.violations:
        print("[demo] SAFETY INVARIANT VIOLATIONS:")
        for violation in result.violations:
            print(f"  - {violation}")
    else:
        print("[demo] safety invariants held (checked from the emulators' own request logs)")
    changed = any(result.changes_after_run[:1] and result.changes_after_run[0])
    if dry_run:
        print(f"[demo] outside changes in the dry run (Segment, RudderStack): {result.changes_after_run[:1]}")
    _print_report(plan, dry_run)
    ok = run.ok and result.report is not None and result.report.ok and not result.violations
    return ok and not (dry_run and changed)


def _print_report(plan, dry_run: bool) -> None:
    reports = sorted((REPO / "reports" / plan.name).glob("*.md"), key=lambda p: p.stat().st_mtime)
    if not reports:
        return
    verdict = next(
        (line.strip("*") for line in reports[-1].read_text().splitlines() if line.startswith("**")), ""
    )
    print(f"[demo] report verdict: {verdict}")
    print(f"[demo] migration report: {reports[-1]} (HTML: {reports[-1].with_suffix('.html')})")
    if dry_run:
        import json

        from segment_rudderstack.evidence.dry_run_plan import describe

        steps = json.loads(reports[-1].with_suffix(".json").read_text()).get("dry_run_plan") or []
        print(
            f"[demo] the consolidated dry-run plan: {len(steps)} step(s), in the order a real run takes them"
        )
        for step in steps:
            print(f"  {step['step']:>3}. {step['task_id']}: {describe(step)}")


def _notifications(sandbox) -> dict[str, list[str]]:
    """What the sandbox's Slack stand-in and SMTP server received (subjects / first lines)."""
    slack = [t.splitlines()[0].strip("*") for t in sandbox.slack.texts()] if sandbox.slack else []
    mail = [subject for subject, _ in sandbox.smtp.bodies()] if sandbox.smtp else []
    return {"slack": slack, "email": mail}


def _print_operations(progress, received: dict[str, list[str]]) -> None:
    if progress.etas:
        print("[demo] ETAs per phase (the first and the last estimate seen while it ran):")
        for label, (first, last) in progress.etas.items():
            print(f"  {label}:\n    first: {first.split(': ', 1)[-1]}\n    last:  {last.split(': ', 1)[-1]}")
    for channel in ("slack", "email"):
        messages = received.get(channel) or []
        print(f"[demo] notifications received by the sandbox's {channel} ({len(messages)}):")
        for subject in messages:
            print(f"  - {subject}")


if __name__ == "__main__":
    sys.exit(main())
