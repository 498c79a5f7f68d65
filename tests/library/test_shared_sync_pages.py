"""Triggers of one triggerer that watch the same Segment warehouse share one sync-list read, against the real
Segment emulator (which logs every sync-list request): a plan's final-load sensor, sync gate and drain sensors
cost the workspace one call per budget turn, not one each; a drain sensor whose source is not on the shared
page reads the source's own list; a failed read is not handed out again.

The clock is compressed: the Segment connection allows 20 sync-list calls a minute (a turn every 3.15 s), and
the triggers ask to check every 0.2 s.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.common import isoformat_z
from segment_rudderstack.hooks.rate_budget import spacing_seconds
from segment_rudderstack.hooks.shared_reads import shared_read
from segment_rudderstack.waits.watches import SYNC_REPORTS_PER_CHECK, SourceDrainedWatch, page_covers
from tests.library.budget_takers import CONN_ID, plan_watches, run_triggers, segment_emulator

WAREHOUSE = "wh_sandbox_pg"
PER_MINUTE = 20


@pytest.fixture
def segment(pg_dsn, monkeypatch):
    # the budget under test paces the calls, not the emulator's own limit
    with segment_emulator(pg_dsn, [WAREHOUSE], sync_list_per_minute=1000) as (emulator, url):
        conn = {
            "conn_type": "http",
            "host": url,
            "password": emulator.settings.token,
            "extra": {"sync_list_requests_per_minute": PER_MINUTE, "max_attempts": 1},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        yield emulator


def test_a_plans_seven_segment_triggers_cost_one_call_per_budget_turn(segment):
    seconds = 8.0
    result = run_triggers(plan_watches(WAREHOUSE, datetime.now(UTC).isoformat()), seconds)

    calls = segment.log.entries("sync_list")
    turns = seconds / spacing_seconds(PER_MINUTE)
    assert result["errors"] == []
    # Every trigger kept checking (about every 0.2 s, each on the shared page)...
    assert result["checks"] >= 7 * 10, result
    # ...while the workspace saw one warehouse-wide read per turn of its budget (7 per turn unshared).
    assert 1 <= len(calls) <= int(turns) + 2, [c["at"] for c in calls]
    assert {c["path"] for c in calls} == {f"/warehouses/{WAREHOUSE}/syncs"}


def _report(source_id: str, start: datetime, count: int) -> dict:
    return {
        "sourceId": source_id,
        "start": isoformat_z(start),
        "end": isoformat_z(start + timedelta(seconds=1)),
        "status": "Success",
        "duration": 1,
        "humanDuration": "1s",
        "count": count,
        "notices": [],
    }


def test_a_drain_sensor_whose_source_is_off_the_shared_page_reads_its_own_list(segment):
    since = datetime.now(UTC) - timedelta(hours=2)
    # src_a's two empty loads after `since`, then more loads of src_b than one page holds: the warehouse-wide
    # page is full and does not reach back to src_a's loads.
    history = [_report("src_a", since + timedelta(minutes=1 + n), 0) for n in range(2)]
    history += [
        _report("src_b", since + timedelta(minutes=5, seconds=n), 10)
        for n in range(SYNC_REPORTS_PER_CHECK + 20)
    ]
    # Segment's stored history (oldest first), as loads append it
    segment.store.reports[WAREHOUSE].extend(history)
    watch = SourceDrainedWatch(
        segment_conn_id=CONN_ID, warehouse_id=WAREHOUSE, source_id="src_a", started_after=since.isoformat()
    )

    check = asyncio.run(watch.acheck())

    assert check.decision.outcome.value == "done", check.decision.reason
    paths = [c["path"] for c in segment.log.entries("sync_list")]
    assert paths == [
        f"/warehouses/{WAREHOUSE}/syncs",
        f"/warehouses/{WAREHOUSE}/connected-sources/src_a/syncs",
    ]


def test_the_shared_page_serves_a_source_when_it_reaches_back_past_the_window(segment):
    since = datetime.now(UTC) - timedelta(hours=2)
    history = [
        _report("src_b", since - timedelta(minutes=10), 5)
    ]  # older than the window: the page covers it
    history += [_report("src_a", since + timedelta(minutes=1 + n), 0) for n in range(2)]
    segment.store.reports[WAREHOUSE].extend(history)
    watch = SourceDrainedWatch(
        segment_conn_id=CONN_ID, warehouse_id=WAREHOUSE, source_id="src_a", started_after=since.isoformat()
    )

    assert asyncio.run(watch.acheck()).decision.outcome.value == "done"
    assert [c["path"] for c in segment.log.entries("sync_list")] == [f"/warehouses/{WAREHOUSE}/syncs"]


def test_page_covers_a_window_only_when_the_page_is_whole_or_reaches_back_before_it():
    class R:
        def __init__(self, minutes: int):
            self.start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)

    since = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    assert page_covers([R(40), R(50)], 3, since)  # not full: the whole list
    assert page_covers([R(20), R(40), R(50)], 3, since)  # full, oldest before the window
    assert not page_covers([R(35), R(40), R(50)], 3, since)  # full, all inside: older ones may be missing
    assert not page_covers([R(35), R(40), R(50)], 3, None)


def test_reads_in_flight_are_joined_failures_are_not_kept_and_a_cancelled_waiter_leaves_the_read():
    reads: list[str] = []

    async def read(value: str, delay: float = 0.05, fail: bool = False):
        reads.append(value)
        await asyncio.sleep(delay)
        if fail:
            raise RuntimeError(f"read {value} failed")
        return value

    async def main():
        # Three checks at once: one read, three answers.
        joined = await asyncio.gather(*(shared_read("k", lambda: read("first"), 0.0) for _ in range(3)))
        assert joined == ["first"] * 3 and reads == ["first"]
        # max_age 0: a check after the read finished reads anew.
        assert await shared_read("k", lambda: read("second"), 0.0) == "second"
        # A failed read gives its error to every waiter, and the next check reads again.
        failing = [shared_read("f", lambda: read("bad", fail=True), 10.0) for _ in range(2)]
        errors = await asyncio.gather(*failing, return_exceptions=True)
        assert all(isinstance(e, RuntimeError) for e in errors)
        assert await shared_read("f", lambda: read("good"), 10.0) == "good"
        # Within max_age the finished read is handed out without a request.
        assert await shared_read("f", lambda: read("unused"), 10.0) == "good"
        # The check that started a read is cancelled (its sensor timed out): the other waiter still gets it.
        first = asyncio.ensure_future(shared_read("c", lambda: read("slow", delay=0.2), 0.0))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(shared_read("c", lambda: read("not-called"), 0.0))
        await asyncio.sleep(0.01)
        first.cancel()
        assert await second == "slow"

    asyncio.run(main())
    assert reads == ["first", "second", "bad", "good", "slow"]
