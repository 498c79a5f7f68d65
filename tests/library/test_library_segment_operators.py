"""Segment-side operators against the Segment emulator: first run changes, re-run and dry run do not."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.changelog import ChangeLog
from segment_rudderstack.operators.segment import (
    DisableSegmentWarehouseOperator,
    DisableSegmentWebhookOperator,
    EnsureSegmentWebhookOperator,
)
from tests.library.world import BACKEND, WAREHOUSE_ID, WEB, context, wait_until


def ensure_webhook(world, rs_source_id, **kwargs):
    return EnsureSegmentWebhookOperator(
        task_id="ensure_webhook", source_ids=[WEB, BACKEND], rudderstack_source_id=rs_source_id,
        change_log_key=world.change_log_key, **kwargs,
    )


def test_ensure_webhook_creates_one_enabled_webhook_per_source_that_forwards_events_to_rudderstack(world):
    rs_source = world.make_rs_segment_source()
    mark = world.mark()
    result = ensure_webhook(world, rs_source).execute(context())

    hooks = world.webhooks()
    assert sorted(h["sourceId"] for h in hooks) == [BACKEND, WEB]
    assert all(h["enabled"] for h in hooks)
    assert set(result["destinations"]) == {WEB, BACKEND}
    assert [c["method"] for c in world.segment_changes(mark)] == ["POST", "POST"]
    # The URL is RudderStack's webhook for that source: an event sent to Segment arrives there unchanged.
    [message_id] = world.track(count=1)
    wait_until(lambda: any(e.get("messageId") == message_id for e in world.rudderstack.staged_events(rs_source)),
               what="the event to reach RudderStack through Segment's webhook")

    again = world.mark()
    second = ensure_webhook(world, rs_source).execute(context())
    assert world.segment_changes(again) == []
    assert second["destinations"] == result["destinations"]
    assert len(world.webhooks()) == 2  # no duplicate destination on re-run
    # The cutover point does not move on a re-run: it is when this plan enabled the webhooks.
    assert second["cutover_at"] == result["cutover_at"]


def test_ensure_webhook_dry_run_creates_nothing(world):
    rs_source = world.make_rs_segment_source()
    mark = world.mark()
    ensure_webhook(world, rs_source, dry_run=True).execute(context())
    assert world.segment_changes(mark) == []
    assert world.webhooks() == []
    assert ChangeLog(world.change_log_key).entries() == []


def test_ensure_webhook_created_disabled_then_enabled_on_a_later_run(world):
    rs_source = world.make_rs_segment_source()
    ensure_webhook(world, rs_source, enabled=False).execute(context())
    assert [h["enabled"] for h in world.webhooks()] == [False, False]

    mark = world.mark()
    ensure_webhook(world, rs_source, enabled=True).execute(context())
    assert [h["enabled"] for h in world.webhooks()] == [True, True]
    assert [c["method"] for c in world.segment_changes(mark)] == ["PATCH", "PATCH"]


def disable_webhook(world, rs_source, **kwargs):
    return DisableSegmentWebhookOperator(
        task_id="disable_webhook", source_ids=[WEB, BACKEND], rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key, **kwargs,
    )


def test_disable_webhook_disables_ours_once_and_dry_run_does_not(world):
    rs_source = world.make_rs_segment_source()
    ensure_webhook(world, rs_source).execute(context())

    mark = world.mark()
    disable_webhook(world, rs_source, dry_run=True).execute(context())
    assert world.segment_changes(mark) == []
    assert all(h["enabled"] for h in world.webhooks())

    result = disable_webhook(world, rs_source).execute(context())
    assert not any(h["enabled"] for h in world.webhooks())
    assert sorted(result["disabled"]) == sorted(h["id"] for h in world.webhooks())

    again = world.mark()
    assert disable_webhook(world, rs_source).execute(context())["disabled"] == []
    assert world.segment_changes(again) == []


def disable_warehouse(world, cutover, **kwargs):
    return DisableSegmentWarehouseOperator(
        task_id="disable_warehouse", warehouse_id=WAREHOUSE_ID, started_after=cutover, source_ids=[WEB, BACKEND],
        change_log_key=world.change_log_key, **kwargs,
    )


def test_disable_warehouse_after_the_final_load_once(world):
    cutover = world.cutover()
    world.load()
    mark = world.mark()
    assert disable_warehouse(world, cutover).execute(context())["disabled"] is True
    assert world.segment_warehouse()["enabled"] is False
    [patch] = world.segment_changes(mark)
    assert (patch["method"], patch["before"], patch["after"]) == ("PATCH", {"enabled": True}, {"enabled": False})

    again = world.mark()
    assert disable_warehouse(world, cutover).execute(context())["disabled"] is False
    assert world.segment_changes(again) == []


def test_disable_warehouse_dry_run_changes_nothing(world):
    cutover = world.cutover()
    world.load()
    mark = world.mark()
    disable_warehouse(world, cutover, dry_run=True).execute(context())
    assert world.segment_changes(mark) == []
    assert world.segment_warehouse()["enabled"] is True


def test_disconnect_sources_instead_leaves_the_warehouse_loading_other_sources(world):
    cutover = world.cutover()
    world.load()
    operator = DisableSegmentWarehouseOperator(
        task_id="disconnect", warehouse_id=WAREHOUSE_ID, started_after=cutover, source_ids=[WEB],
        final_step="disconnect_sources", change_log_key=world.change_log_key,
    )
    mark = world.mark()
    operator.execute(context())
    warehouse = world.segment_warehouse()
    assert warehouse["enabled"] is True and warehouse["connectedSources"] == [BACKEND]
    assert [(c["method"], c["sourceId"]) for c in world.segment_changes(mark)] == [("DELETE", WEB)]

    again = world.mark()
    operator.execute(context())
    assert world.segment_changes(again) == []


def test_disable_warehouse_rejects_an_unknown_final_step():
    with pytest.raises(ValueError, match="disconnect_sources"):
        DisableSegmentWarehouseOperator(task_id="x", warehouse_id=WAREHOUSE_ID, started_after="2025-01-01T00:00:00+00:00",
                                        final_step="drop_it")


def test_disable_warehouse_fails_on_a_failed_final_load_with_segments_reason(world):
    cutover = world.cutover()
    world.failing_load("permission denied for schema app_events")
    mark = world.mark()
    with pytest.raises(AirflowFailException, match="permission denied|Failure"):
        disable_warehouse(world, cutover).execute(context())
    assert world.segment_changes(mark) == []


def test_disable_webhook_refuses_while_old_clients_still_send_through_it(world):
    from tests.library.world import WAREHOUSE_CONN, load_rudderstack_rows

    rs_source = world.make_rs_segment_source()
    ensure_webhook(world, rs_source).execute(context())
    guard = {"warehouse_conn_id": WAREHOUSE_CONN, "namespace": world.schema, "threshold": "0.05",
             "window_seconds": "3600", "min_events": 1, "library_names": []}
    load_rudderstack_rows(world, rs_source, 20)   # still arriving through Segment's webhook...
    load_rudderstack_rows(world, "rs_src_app", 80)  # ...next to the new app's events: 20 % > 5 %
    mark = world.mark()
    with pytest.raises(AirflowFailException, match="refusing to disable Segment's webhook: share through Segment 20"):
        disable_webhook(world, rs_source, adoption_guard=guard).execute(context())
    assert world.segment_changes(mark) == []
    assert all(h["enabled"] for h in world.webhooks())

    load_rudderstack_rows(world, "rs_src_app", 4000)  # the old versions are gone: 20 of 4100 < 5 %
    assert disable_webhook(world, rs_source, adoption_guard=guard).execute(context())["disabled"]
    assert not any(h["enabled"] for h in world.webhooks())
