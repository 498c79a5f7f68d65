"""`make demo`: rehearse the whole Segment → RudderStack migration on the local sandbox and prove the result.

Starts the sandbox (emulators + embedded PostgreSQL + simulated clients sending through the real SDKs),
runs the sandbox plan's migration DAG with `airflow dags test`, lets the clients finish and RudderStack
load what it holds, then prints the reconciliation (every event sent is in the warehouse exactly once),
the safety-invariant check (from the emulators' own logs) and where the report is. Exits non-zero when
any of that fails.
"""

from __future__ import annotations

import pathlib
import sys
import time

from sandbox.config import load_config
from sandbox.invariants import warehouse_disabled_at, webhook_disabled_at
from sandbox.rehearsal import rehearse
from segment_rudderstack.plan import load_plan

REPO = pathlib.Path(__file__).resolve().parents[1]


def main() -> int:
    plan = load_plan(REPO / "include" / "plans" / "sandbox.yaml")
    # Server-side services "deploy" onto RudderStack as soon as its warehouse destination is connected.
    config = load_config(clients={"server_side_switch": "auto"})
    print(f"[demo] starting the sandbox in {config.home} and running {plan.dag_id} ...", flush=True)
    began = time.monotonic()
    result = rehearse(config, dag_id=plan.dag_id, change_log_key=plan.change_log_key)
    run = result.runs[0]
    print(f"[demo] migration DAG {'succeeded' if run.ok else 'FAILED'} in {run.seconds:.0f} s "
          f"(airflow log: {run.log_path})")
    print(f"[demo] sandbox start {result.timings['sandbox_start_s']:.1f} s; clients sent "
          f"{result.client_stats.get('sent')} events ({result.client_stats.get('sent_by_source')})")
    for label, moments in (("Segment warehouse disabled", warehouse_disabled_at(result.segment_log)),
                           ("Segment webhook disabled", webhook_disabled_at(result.segment_log))):
        print(f"[demo] {label} at: {', '.join(m.isoformat() for m in moments) or 'never'}")
    print()
    print(result.report.format() if result.report else "[demo] no reconciliation (the run did not get that far)")
    print()
    if result.violations:
        print("[demo] SAFETY INVARIANT VIOLATIONS:")
        for violation in result.violations:
            print(f"  - {violation}")
    else:
        print("[demo] safety invariants held (checked from the emulators' own request logs)")
    reports = sorted((REPO / "reports" / plan.name).glob("*.md"), key=lambda p: p.stat().st_mtime)
    if reports:
        print(f"[demo] migration report: {reports[-1]}")
    print(f"[demo] total wall time {time.monotonic() - began:.0f} s")
    ok = run.ok and result.report is not None and result.report.ok and not result.violations
    print("[demo] OK: nothing lost, nothing duplicated" if ok else "[demo] FAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
