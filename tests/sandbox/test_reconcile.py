"""Reconciliation of the ledger against the warehouse: it passes a clean run and fails a broken one."""

from __future__ import annotations

import itertools
import pathlib
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest

from sandbox.ledger import Ledger
from sandbox.reconcile import main, reconcile
from sandbox.warehouse import Warehouse

_n = itertools.count(1)
INCLUDE = pathlib.Path(__file__).resolve().parents[2] / "include"
AT = "2025-03-01T10:00:00.000Z"


@pytest.fixture
def names() -> tuple[str, str]:
    tag = f"{int(time.time() * 1000) % 10_000_000}_{next(_n)}"
    return f"rec_test_{tag}", f"ledger_rec_{tag}"


def send(ledger: Ledger, mid: str, event_type: str = "track") -> dict:
    ledger.record_sent(
        mid, event_type=event_type, sdk="segment", sender="app-1", source="src_web_app", sent_at=AT
    )
    event = {"messageId": mid, "type": event_type, "userId": "u1", "receivedAt": AT}
    if event_type == "track":
        event["event"] = "Order Completed"
    return event


def delete_row(wh: Warehouse, schema: str, table: str, mid: str) -> None:
    conn = wh.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f'DELETE FROM "{schema}"."{table}" WHERE id = %s', (mid,))  # noqa: S608 - test-made names
    finally:
        conn.close()


@pytest.fixture
def loaded(pg_dsn, names):
    """Five tracks and two pages sent and loaded once each."""
    schema, ledger_schema = names
    ledger = Ledger(pg_dsn, schema=ledger_schema)
    events = [send(ledger, f"t{i}") for i in range(5)] + [send(ledger, f"p{i}", "page") for i in range(2)]
    wh = Warehouse(pg_dsn)
    wh.load(schema, events, merge=False)
    yield wh, ledger, schema, ledger_schema, events
    ledger.close()


def test_clean_run_is_ok(pg_dsn, loaded):
    _, _, schema, ledger_schema, _ = loaded
    report = reconcile(pg_dsn, schema, ledger_schema=ledger_schema)

    assert report.ok
    assert (report.table("tracks").sent, report.table("tracks").loaded) == (5, 5)
    assert (report.table("pages").sent, report.table("pages").loaded) == (2, 2)
    assert "OK" in report.format()


def test_a_deleted_row_is_missing_and_a_repeated_load_is_duplicated(pg_dsn, loaded):
    wh, _, schema, ledger_schema, events = loaded
    delete_row(wh, schema, "tracks", "t3")
    wh.load(schema, [events[5]], merge=False)  # p0 appended a second time

    report = reconcile(pg_dsn, schema, ledger_schema=ledger_schema)

    assert not report.ok
    assert (report.table("tracks").missing, report.table("tracks").missing_ids) == (1, ["t3"])
    assert (report.table("pages").duplicated, report.table("pages").duplicated_ids) == (1, ["p0"])
    text = report.format()
    assert "FAILED" in text and "t3" in text and "p0" in text


def test_events_dropped_after_the_migrations_own_switch_off_are_the_accepted_tail(pg_dsn, loaded):
    wh, ledger, schema, ledger_schema, _ = loaded
    send(ledger, "late-1")
    ledger.record_dropped("late-1", reason="warehouse disabled, webhook disabled", at=AT)

    report = reconcile(
        pg_dsn, schema, ledger_schema=ledger_schema, accepted_after=_at() - timedelta(seconds=1)
    )

    assert report.ok
    tracks = report.table("tracks")
    assert (
        tracks.sent,
        tracks.loaded,
        tracks.missing,
        tracks.dropped_after_close,
        tracks.lost_after_close,
    ) == (6, 5, 0, 1, 0)


def test_events_dropped_before_the_migrations_switch_off_or_without_one_are_lost(pg_dsn, loaded):
    """Issue 10, finding 1: a rollback switched the webhook off, the migration then switched Segment's warehouse
    off; Segment dropped old clients' events. They were counted apart and the reconciliation said OK."""
    wh, ledger, schema, ledger_schema, _ = loaded
    send(ledger, "late-1")
    ledger.record_dropped("late-1", reason="warehouse disabled, webhook disabled", at=AT)

    for accepted_after in (None, _at() + timedelta(seconds=1)):
        report = reconcile(pg_dsn, schema, ledger_schema=ledger_schema, accepted_after=accepted_after)
        assert not report.ok
        tracks = report.table("tracks")
        assert (tracks.dropped_after_close, tracks.lost_after_close) == (0, 1)
        assert "lost_after_close" in report.format()


def _at():
    return datetime.fromisoformat(AT.replace("Z", "+00:00"))


def test_a_merge_load_over_segment_rows_reconciles_clean(pg_dsn, loaded):
    wh, _, schema, ledger_schema, events = loaded
    wh.load(schema, events[:3], merge=True, extra_columns={"context_source_id": "rs_src_app"})

    assert reconcile(pg_dsn, schema, ledger_schema=ledger_schema).ok


def test_cli_exit_codes(pg_dsn, loaded, capsys):
    wh, _, schema, ledger_schema, _ = loaded
    args = ["--dsn", pg_dsn, "--schema", schema, "--ledger-schema", ledger_schema]
    assert main(args) == 0
    assert "tracks" in capsys.readouterr().out

    delete_row(wh, schema, "pages", "p1")
    assert main(args) == 1

    completed = subprocess.run(
        [sys.executable, "-m", "sandbox.reconcile", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=INCLUDE,
    )
    assert completed.returncode == 1 and '"missing": 1' in completed.stdout


def test_an_event_in_the_schema_of_another_source_is_misplaced_and_fails_both_schemas(pg_dsn, names):
    """Two schemas (two lanes): a web event that landed in the mobile schema is misplaced there and missing
    from its own schema; the per-schema reconciliation fails even though every id is in the warehouse once."""
    from sandbox.reconcile import reconcile_schemas

    web, ledger_schema = names
    mobile = web + "_m"
    ledger = Ledger(pg_dsn, schema=ledger_schema)
    try:

        def sent(mid: str, schema: str) -> dict:
            ledger.record_sent(
                mid, event_type="track", sdk="segment", sender="app-1", source="s", sent_at=AT, schema=schema
            )
            return {"messageId": mid, "type": "track", "event": "Signed In", "userId": "u1", "receivedAt": AT}

        wh = Warehouse(pg_dsn)
        wh.load(web, [sent("w1", web), sent("w2", web)], merge=False)
        wh.load(mobile, [sent("m1", mobile), sent("w3", web)], merge=False)  # w3 belongs to the web schema
        both = reconcile_schemas(pg_dsn, [web, mobile], ledger_schema=ledger_schema)
        by_schema = both.by_schema()
        assert (by_schema[mobile].misplaced, by_schema[mobile].totals().unexpected) == (1, 0)
        assert by_schema[mobile].table("tracks").misplaced_ids == ["w3"]
        assert by_schema[web].missing == 1 and by_schema[web].misplaced == 0
        assert not both.ok and both.misplaced == 1
        assert "misplaced (sent for another schema) e.g. w3" in both.format()
        wh.load(
            web,
            [{"messageId": "w3", "type": "track", "event": "Signed In", "userId": "u1", "receivedAt": AT}],
            merge=False,
        )
        assert not reconcile_schemas(pg_dsn, [web, mobile], ledger_schema=ledger_schema).ok  # still misplaced
    finally:
        ledger.close()


def test_the_value_check_is_reported_apart_from_the_ids(pg_dsn, names, capsys):
    """A key RudderStack names differently: every id is loaded once (ok), the value moved (the value check
    says where). The CLI prints both and its exit code stays the ids'."""
    schema, ledger_schema = names
    ledger = Ledger(pg_dsn, schema=ledger_schema)
    try:
        wh = Warehouse(pg_dsn)
        for mid, via in (("v1", "segment"), ("v2", "rudderstack")):
            values = {
                "type": "track",
                "event": "Product Viewed",
                "properties": {"product_id": "p-1", "SKUCode": "P-1"},
                "userId": "u1",
            }
            ledger.record_sent(
                mid, event_type="track", sdk=via, sender="app-1", source="s", sent_at=AT, values=values
            )
            event = {"messageId": mid, **values, "receivedAt": AT}
            if via == "segment":
                wh.load_segment(schema, [event])
            else:
                wh.load(schema, [event], merge=True, extra_columns={"context_source_id": "rs_src_app"})

        report = reconcile(pg_dsn, schema, ledger_schema=ledger_schema)

        assert report.ok and report.values is not None and not report.values.ok
        assert report.values.kinds("product_viewed", "skucode") == {"kept": 1, "moved": 1}
        moved = report.values.finding("product_viewed", "skucode", "moved")
        assert (moved.example_id, moved.detail) == ("v2", "to sku_code")
        assert (report.values.rows, report.values.values) == (2, 8)  # event_text, user_id, 2 properties each
        assert reconcile(pg_dsn, schema, ledger_schema=ledger_schema, values=False).values is None
        assert report.to_dict()["values"]["totals"] == {"kept": 7, "changed": 0, "moved": 1, "lost": 0}

        args = ["--dsn", pg_dsn, "--schema", schema, "--ledger-schema", ledger_schema]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "Value check: 8 values in 2 rows: 7 kept, 0 changed, 1 moved, 0 lost" in out
        assert "  product_viewed.skucode: 1 moved (to sku_code), e.g. v2" in out
        assert main([*args, "--no-values"]) == 0
        assert "Value check" not in capsys.readouterr().out
    finally:
        ledger.close()


def test_a_ledger_without_recorded_values_reports_no_value_check(pg_dsn, loaded):
    _, _, schema, ledger_schema, _ = loaded
    report = reconcile(pg_dsn, schema, ledger_schema=ledger_schema)
    assert report.values is None and "Value check" not in report.format() and "values" not in report.to_dict()


def test_a_ledger_from_before_recorded_values_gains_the_column_and_still_reconciles(pg_dsn, names):
    schema, ledger_schema = names
    conn = Warehouse(pg_dsn).connect()
    try:
        with conn, conn.cursor() as cur:  # the sent table as ledgers created it before sent_values existed
            cur.execute(f'CREATE SCHEMA "{ledger_schema}"')
            cur.execute(
                f'CREATE TABLE "{ledger_schema}".sent (seq bigserial PRIMARY KEY, message_id text NOT NULL, '
                "event_type text NOT NULL, table_name text NOT NULL, sdk text NOT NULL, sender text NOT NULL, "
                "source text NOT NULL, schema_name text, sent_at timestamptz NOT NULL, "
                "recorded_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute(
                f'INSERT INTO "{ledger_schema}".sent (message_id, event_type, table_name, sdk, sender, source, '  # noqa: S608
                "sent_at) VALUES ('old-1', 'track', 'tracks', 'segment', 'app-1', 's', now())"
            )
    finally:
        conn.close()
    ledger = Ledger(pg_dsn, schema=ledger_schema)
    try:
        ledger.record_sent(
            "new-1",
            event_type="track",
            sdk="segment",
            sender="app-1",
            source="s",
            sent_at=AT,
            values={"type": "track", "event": "Signed In", "userId": "u1"},
        )
        assert ledger.sent_values() == {"new-1": {"type": "track", "event": "Signed In", "userId": "u1"}}
        assert sorted(r["message_id"] for r in ledger.sent()) == ["new-1", "old-1"]
    finally:
        ledger.close()
    Warehouse(pg_dsn).load_segment(
        schema,
        [{"messageId": m, "type": "track", "event": "Signed In", "userId": "u1"} for m in ("old-1", "new-1")],
    )
    report = reconcile(pg_dsn, schema, ledger_schema=ledger_schema)
    assert report.ok and report.values.ok and (report.values.rows, report.values.unrecorded) == (1, 1)
    assert "(1 sent events have no values in the ledger: not compared)" in report.format()
