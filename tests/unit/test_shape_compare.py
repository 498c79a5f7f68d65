"""The shape comparisons (pure): what a data engineer reads in a finding, and the grading and verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from segment_rudderstack.plan.model import DEFAULT_SHAPE_GRADES, ShapeSettings
from segment_rudderstack.shape.compare import (
    Fill,
    compare_fill,
    compare_same_ids,
    compare_types,
    discard_findings,
    predicted_values,
    table_findings,
)
from segment_rudderstack.shape.findings import (
    DIFFERS,
    NEEDS_APPROVAL,
    SAME_SHAPE,
    Finding,
    ShapeResult,
    graded,
)
from segment_rudderstack.shape.values import same_value


def _kinds(findings):
    return {(f.column, f.kind) for f in findings}


def test_values_compare_as_a_model_reads_them():
    at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    assert same_value(at, "2026-12-03T10:00:00.000Z")
    assert same_value(Decimal("3"), 3) and same_value(3, "3")
    assert not same_value("email", "web")
    assert not same_value(None, "x")


def test_a_value_in_another_column_is_moved_and_an_overwritten_one_changed():
    segment = {"m1": {"id": "m1", "skucode": "AB-1", "channel": "email", "items": 3}}
    shadow = {"m1": {"id": "m1", "sku_code": "AB-1", "channel": "web", "items": 3}}
    found = compare_same_ids(
        "cart_viewed",
        real_columns=["id", "skucode", "channel", "items"],
        segment_rows=segment,
        shadow_rows=shadow,
    )
    assert _kinds(found) == {("skucode", "moved"), ("channel", "changed")}
    moved = next(f for f in found if f.kind == "moved")
    assert "cart_viewed.sku_code" in moved.cause
    changed = next(f for f in found if f.kind == "changed")
    assert "'email' -> 'web'" in changed.examples[0]


def test_a_discarded_value_is_not_reported_as_moved():
    segment = {"m1": {"items": 3, "quantity": 3}}
    shadow = {"m1": {"items": None, "quantity": 3}}
    found = compare_same_ids(
        "cart_viewed",
        real_columns=["items", "quantity"],
        segment_rows=segment,
        shadow_rows=shadow,
        discarded_ids=[("m1", "items")],
    )
    assert _kinds(found) == {("items", "stopped_filling")}


def test_the_real_columns_type_decides_what_happens_to_a_value():
    rows = [{"items": "3 items"}, {"items": 4}, {"price": 2.5}]
    found = predicted_values(
        "cart_viewed",
        warehouse="postgres",
        real_types={"items": "bigint", "price": "bigint"},
        rows=rows,
        check="shadow",
    )
    assert _kinds(found) == {("items", "discarded"), ("price", "truncated")}
    assert "bigint" in next(f for f in found if f.column == "items").cause


def test_fill_that_drops_or_appears_is_found_and_small_windows_are_not_judged():
    before = Fill(40, {"skucode": 40, "items": 40})
    after = Fill(30, {"items": 30, "sku_code": 30, "context_destination_id": 30})
    found = compare_fill(
        "cart_viewed", before=before, after=after, min_rows=20, fill_drop=0.5, check="continuity"
    )
    assert _kinds(found) == {
        ("skucode", "stopped_filling"),
        ("sku_code", "new_column"),
        ("context_destination_id", "own_column"),
    }
    assert "100% of 40 rows before, 0% of 30 after" in next(f for f in found if f.column == "skucode").detail
    assert compare_fill("t", before=before, after=Fill(5, {}), min_rows=20, fill_drop=0.5, check="c") == []


def test_types_and_tables_against_the_before_snapshot():
    before = {"cart_viewed": {"items": "bigint"}, "tracks": {"id": "text"}}
    now = {"cart_viewed": {"items": "text", "sku_code": "text"}, "tracks": {"id": "text"}}
    assert _kinds(compare_types(before, now, check="continuity")) == {
        ("items", "type_change"),
        ("sku_code", "new_column"),
    }
    stopped = table_findings(
        {"tracks": Fill(50), "pages": Fill(50)}, {"tracks": Fill(10)}, min_rows=20, check="continuity"
    )
    assert [(f.table, f.kind) for f in stopped] == [("pages", "table_stopped")]


def test_discards_name_table_column_reason_and_examples():
    found = discard_findings(
        [
            {
                "table_name": "cart_viewed",
                "column_name": "items",
                "reason": "incompatible schema conversion from int to string",
                "count": 7,
                "examples": [{"row_id": "m1", "column_value": "3 items"}],
            }
        ],
        check="discards",
    )
    (finding,) = found
    assert finding.where == "cart_viewed.items" and finding.count == 7
    assert "row m1: '3 items'" in finding.examples[0]
    assert "rudder_discards" in finding.describe()


def test_the_plan_grades_each_kind_and_the_worst_grade_is_the_verdict():
    findings = [
        Finding("new_column", "t", "a", "x", "continuity"),
        Finding("changed", "t", "b", "x", "continuity"),
    ]
    settings = ShapeSettings()
    assert settings.grade_of("discarded") == "stop" == DEFAULT_SHAPE_GRADES["discarded"]
    result = ShapeResult("continuity", graded(findings, settings.all_grades()))
    assert result.verdict == NEEDS_APPROVAL
    relaxed = ShapeSettings(grades={"changed": "note"})
    assert ShapeResult("c", graded(findings, relaxed.all_grades())).verdict == SAME_SHAPE
    strict = graded([Finding("namespace", "web_v2", None, "x", "preflight")], {"namespace": "note"})
    assert ShapeResult("p", strict).verdict == DIFFERS  # a namespace difference always stops
    assert ShapeResult.from_dict(result.to_dict()).findings == result.findings


def test_rudderstacks_own_times_for_the_same_event_are_a_note_but_an_overwritten_channel_is_not():
    segment = {"m1": {"original_timestamp": "2026-12-03T11:52:02.637Z", "channel": "newsletter"}}
    shadow = {"m1": {"original_timestamp": "2026-12-03T11:52:02.815Z", "channel": "server"}}
    found = compare_same_ids(
        "order_completed",
        real_columns=["original_timestamp", "channel"],
        segment_rows=segment,
        shadow_rows=shadow,
    )
    assert _kinds(found) == {("original_timestamp", "own_column"), ("channel", "changed")}


def test_a_column_only_some_senders_fill_is_shown_but_not_judged():
    # the back end fills context_service_name in 17% of Segment's rows; the first RudderStack rows are app rows
    before = Fill(54, {"context_service_name": 9, "event": 54})
    after = Fill(44, {"event": 44})
    assert (
        compare_fill("tracks", before=before, after=after, min_rows=20, fill_drop=0.5, check="shadow") == []
    )
