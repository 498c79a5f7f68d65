"""The shadow load's cost estimate (shape/shadow_cost.py): a recent rate times the expected overlap."""

from __future__ import annotations

import pytest

from segment_rudderstack.shape.shadow_cost import budget_findings, estimate, row_text_bytes


def test_rows_scale_from_the_window_to_the_overlap_and_bytes_follow_each_tables_sample():
    samples = {"tracks": row_text_bytes([{"id": "abcd", "n": 12, "gone": None}] * 4), "pages": (0, 0)}
    assert samples["tracks"] == (4, 24)  # "abcd" + "12" per row; NULL counts nothing
    cost = estimate({"tracks": 720, "pages": 72}, samples, window_hours=72, overlap_hours=24)
    assert cost.by_table == {"pages": 24, "tracks": 240}
    assert cost.rows == 264 and cost.rows_per_hour == 11.0
    assert cost.bytes == 240 * 6  # pages has no sample: its bytes are not guessed
    with pytest.raises(ValueError, match="window_hours"):
        estimate({}, {}, window_hours=0, overlap_hours=24)


def test_a_limit_left_unset_is_no_limit_and_each_limit_passed_is_named():
    cost = estimate({"tracks": 1000}, {"tracks": (10, 1000)}, window_hours=1, overlap_hours=2)
    assert budget_findings(cost, "s_rs_shadow", max_rows=None, max_bytes=None, check="preflight") == []
    assert budget_findings(cost, "s_rs_shadow", max_rows=2000, max_bytes=200_000, check="preflight") == []
    (finding,) = budget_findings(cost, "s_rs_shadow", max_rows=1999, max_bytes=199_999, check="preflight")
    assert (
        "2,000 rows > max_rows 1,999" in finding.cause
        and "200,000 bytes > max_bytes 199,999" in finding.cause
    )
    assert finding.kind == "shadow_budget" and finding.table == "s_rs_shadow"
