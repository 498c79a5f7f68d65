"""`make demo` is not silent: a progress line while the DAG runs (elapsed, phase, adoption share), and every
reconciliation column explained."""

from __future__ import annotations

import os
import pathlib
import stat
import sys
from datetime import timedelta

from sandbox import rehearsal
from sandbox.reconcile import Report, SchemasReport, TableReport
from sandbox.value_check import KINDS, ColumnFinding, ValueReport
from scripts.demo import COLUMNS, VALUE_KINDS, explain_columns, progress_line, value_check_lines
from tests.evidence.test_report import T0, facts


def test_the_progress_line_names_the_phase_its_time_and_the_adoption_share():
    f = facts(
        states={
            "client_adoption.wait_client_adoption": "deferred",
            "client_adoption.disable_segment_webhook": "none",
        }
    )
    f.tasks["client_adoption.wait_client_adoption"].start = T0
    f.generated_at = T0 + timedelta(seconds=75)
    line = progress_line(f, 95.0, "17.2% still through Segment")
    assert line == (
        "[demo]   1 min 35 s | Client adoption, Segment's webhook off (running, 1 min 15 s in it) | "
        "adoption: 17.2% still through Segment"
    )


def test_run_dag_reports_progress_while_the_command_runs(tmp_path, monkeypatch):
    fake = tmp_path / "airflow"  # stands in for `airflow dags test`: a real process that runs for ~1.5 s
    fake.write_text(
        f"#!{sys.executable}\nimport time\ntime.sleep(1.5)\nprint('DagRun Finished state=success')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(rehearsal, "airflow_bin", lambda: str(fake))
    seen: list[float] = []
    result = rehearsal.run_dag(
        "d",
        env=dict(os.environ),
        conf=None,
        log_dir=tmp_path,
        timeout_s=30,
        progress=seen.append,
        progress_interval_s=0.4,
    )
    assert result.ok
    assert len(seen) >= 2 and seen == sorted(seen)


def test_every_reconciliation_column_is_explained(capsys):
    header = Report(schema="s", tables=[TableReport(table="tracks")]).format().splitlines()[1].split()
    assert header[1:] == list(COLUMNS)
    explain_columns()
    out = capsys.readouterr().out
    for column in header[1:]:
        assert f"  {column} " in out


def test_before_rudderstacks_first_load_the_share_is_not_applicable_and_the_eta_is_on_the_line():
    from scripts.demo import Progress
    from segment_rudderstack.plan.model import load_plan

    plan = load_plan(pathlib.Path(__file__).resolve().parents[2] / "include" / "plans" / "sandbox.yaml")
    f = facts(states={"release_rudderstack.wait_upload": "deferred"})
    f.results.update(segment_source="rs_segment", webhooks={"cutover_at": T0.isoformat()}, upload=None)
    # every row in the warehouse is still Segment's own load: "0.0% still through Segment" would be a lie
    assert Progress(plan)._lane_share(f, "app_events", "") == "n/a until RudderStack's first load"
    line = progress_line(
        f, 30.0, "n/a until RudderStack's first load", "RudderStack's next upload slot: about 12:30"
    )
    assert line.endswith(
        "| adoption: n/a until RudderStack's first load | ETA RudderStack's next upload slot: about 12:30"
    )


def test_the_value_check_is_printed_with_the_reconciliation_and_each_class_explained():
    moved = ColumnFinding("product_viewed", "skucode", "moved", 8, "m-1", "to sku_code")
    drift = ValueReport(
        schema="s", rows=200, totals={"kept": 1525, "changed": 0, "moved": 8, "lost": 0}, columns=[moved]
    )
    report = Report(schema="s", tables=[TableReport(table="tracks")], values=drift)
    text = report.format()
    assert report.ok  # the ids' verdict does not depend on the values
    assert "Value check: 1,533 values in 200 rows: 1,525 kept, 0 changed, 8 moved, 0 lost" in text
    assert "  product_viewed.skucode: 8 moved (to sku_code), e.g. m-1" in text
    lines = value_check_lines(report)
    assert list(VALUE_KINDS) == list(KINDS) and all(any(f"  {k} " in line for line in lines) for k in KINDS)
    assert lines[-1].startswith("[demo] value check: 0 changed, 8 moved, 0 lost of 1,533 values")
    clean = ValueReport(schema="s", rows=2, totals={"kept": 9, "changed": 0, "moved": 0, "lost": 0})
    both = SchemasReport([Report("a", [], values=clean), Report("b", [], values=clean)])
    assert value_check_lines(both)[-1] == "[demo] value check: OK, all 18 values kept in their columns"
    assert value_check_lines(Report("s", [])) == [
        "[demo] value check: not run (the ledger recorded no values)"
    ]
