"""Segment-side operators against the Segment emulator: first run changes, re-run and dry run do not."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.operators.segment import (
    DisableSegmentWarehouseOperator,
    DisableSegmentWebhookOperator,
    EnsureSegmentWebhookOperator,
)
from segment_rudderstack.safety.changelog import ChangeLog
from segment_rudderstack.vocabulary import (
    ALL_EVENT_TYPES_TRIGGER,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_ACTIONS_SEND_ACTION_ID,
    WEBHOOKS_METADATA_ID,
)
from tests.library.world import BACKEND, WAREHOUSE_ID, WEB, context, wait_until


def ensure_webhook(world, rs_source_id, **kwargs):
    return EnsureSegmentWebhookOperator(
        task_id="ensure_webhook",
        source_ids=[WEB, BACKEND],
        rudderstack_source_id=rs_source_id,
        change_log_key=world.change_log_key,
        **kwargs,
    )


def test_ensure_webhook_creates_one_enabled_webhook_per_source_that_forwards_events_to_rudderstack(world):
    rs_source = world.make_rs_segment_source()
    mark = world.mark()
    result = ensure_webhook(world, rs_source).execute(context())

    hooks = world.webhooks()
    assert sorted(h["sourceId"] for h in hooks) == [BACKEND, WEB]
    assert all(h["enabled"] for h in hooks)
    assert set(result["destinations"]) == {WEB, BACKEND}
    # Webhooks (Actions) by default: per source the destination (created off, settings without any URL), its
    # "Send" mapping to RudderStack, then the destination switched on, nothing sent before the mapping exists.
    calls = [(c["method"], c["path"]) for c in world.segment_changes(mark)]
    for destination_id in result["destinations"].values():
        assert ("POST", f"/destinations/{destination_id}/subscriptions") in calls
        assert calls.index(("POST", f"/destinations/{destination_id}/subscriptions")) < calls.index(
            ("PATCH", f"/destinations/{destination_id}")
        )
    assert sorted(m for m, _ in calls) == ["PATCH", "PATCH", "POST", "POST", "POST", "POST"]
    for hook in hooks:
        assert hook["metadata"]["id"] == WEBHOOKS_ACTIONS_METADATA_ID and hook["settings"] == {}
        [mapping] = hook["mappings"]
        assert mapping["enabled"] and mapping["actionId"] == WEBHOOKS_ACTIONS_SEND_ACTION_ID
        assert mapping["trigger"] == ALL_EVENT_TYPES_TRIGGER
        assert mapping["settings"] == {
            "url": hook["urls"][0],
            "method": "POST",
            "headers": {},
            "data": {"@path": "$."},
            "enable_batching": False,
        }
        assert "/v1/webhook?writeKey=" in hook["urls"][0]
    # The URL is RudderStack's webhook for that source: an event sent to Segment arrives there unchanged.
    [message_id] = world.track(count=1)
    wait_until(
        lambda: any(e.get("messageId") == message_id for e in world.rudderstack.staged_events(rs_source)),
        what="the event to reach RudderStack through Segment's webhook",
    )

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
    # Switching on: the mapping, then the destination, for each source.
    calls = [(c["method"], c["path"].count("/subscriptions/")) for c in world.segment_changes(mark)]
    assert calls == [("PATCH", 1), ("PATCH", 0)] * 2
    assert all(m["enabled"] for h in world.webhooks() for m in h["mappings"])


def test_ensure_webhook_classic_kind_creates_a_classic_webhook_where_the_workspace_has_it(world):
    world.segment.settings.classic_webhooks_available = True
    rs_source = world.make_rs_segment_source()
    ensure_webhook(world, rs_source, webhook_kind="classic").execute(context())

    hooks = world.webhooks()
    assert {h["metadata"]["id"] for h in hooks} == {WEBHOOKS_METADATA_ID}
    assert all(h["enabled"] and len(h["urls"]) == 1 and h["mappings"] == [] for h in hooks)


def test_ensure_webhook_classic_kind_fails_clearly_where_the_workspace_lacks_it(world):
    rs_source = world.make_rs_segment_source()
    with pytest.raises(
        AirflowFailException, match="not available in this workspace.*use Webhooks \\(Actions\\)"
    ):
        ensure_webhook(world, rs_source, webhook_kind="classic").execute(context())
    assert world.webhooks() == []


def test_webhooks_this_plan_did_not_create_are_never_touched(world):
    rs_source = world.make_rs_segment_source()
    ensure_webhook(world, rs_source).execute(context())
    url = world.webhooks()[0]["urls"][0]
    # Someone else's Webhooks (Actions) destination posting to the same URL, under another name.
    theirs = (
        world.segment_api()
        .post(
            "/destinations",
            json={
                "sourceId": WEB,
                "metadataId": WEBHOOKS_ACTIONS_METADATA_ID,
                "name": "Team webhook",
                "enabled": True,
                "settings": {},
            },
        )
        .json()["data"]["destination"]
    )
    world.segment_api().post(
        f"/destinations/{theirs['id']}/subscriptions",
        json={
            "name": "Team mapping",
            "actionId": WEBHOOKS_ACTIONS_SEND_ACTION_ID,
            "trigger": ALL_EVENT_TYPES_TRIGGER,
            "enabled": True,
            "settings": {"url": url, "method": "POST"},
        },
    ).raise_for_status()
    mark = world.mark()
    ensure_webhook(world, rs_source).execute(context())
    assert world.segment_changes(mark) == []  # theirs is neither adopted nor changed

    disable_webhook(world, rs_source).execute(context())

    changed = {c["path"] for c in world.segment_changes(mark)}
    assert changed and not any(theirs["id"] in path for path in changed)
    theirs_now = next(h for h in world.webhooks() if h["id"] == theirs["id"])
    assert theirs_now["enabled"] and all(m["enabled"] for m in theirs_now["mappings"])


def disable_webhook(world, rs_source, **kwargs):
    return DisableSegmentWebhookOperator(
        task_id="disable_webhook",
        source_ids=[WEB, BACKEND],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
        **kwargs,
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
        task_id="disable_warehouse",
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB, BACKEND],
        change_log_key=world.change_log_key,
        **kwargs,
    )


def test_disable_warehouse_after_the_final_load_once(world):
    cutover = world.cutover()
    world.load()
    mark = world.mark()
    assert disable_warehouse(world, cutover).execute(context())["disabled"] is True
    assert world.segment_warehouse()["enabled"] is False
    [patch] = world.segment_changes(mark)
    assert (patch["method"], patch["before"], patch["after"]) == (
        "PATCH",
        {"enabled": True},
        {"enabled": False},
    )

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
        task_id="disconnect",
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB],
        final_step="disconnect_sources",
        change_log_key=world.change_log_key,
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
        DisableSegmentWarehouseOperator(
            task_id="x",
            warehouse_id=WAREHOUSE_ID,
            started_after="2025-01-01T00:00:00+00:00",
            final_step="drop_it",
        )


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
    guard = {
        "warehouse_conn_id": WAREHOUSE_CONN,
        "namespace": world.schema,
        "threshold": "0.05",
        "window_seconds": "3600",
        "min_events": 1,
        "library_names": [],
    }
    load_rudderstack_rows(world, rs_source, 20)  # still arriving through Segment's webhook...
    load_rudderstack_rows(world, "rs_src_app", 80)  # ...next to the new app's events: 20 % > 5 %
    mark = world.mark()
    with pytest.raises(
        AirflowFailException, match="refusing to disable Segment's webhook: share through Segment 20"
    ):
        disable_webhook(world, rs_source, adoption_guard=guard).execute(context())
    assert world.segment_changes(mark) == []
    assert all(h["enabled"] for h in world.webhooks())

    load_rudderstack_rows(world, "rs_src_app", 4000)  # the old versions are gone: 20 of 4100 < 5 %
    assert disable_webhook(world, rs_source, adoption_guard=guard).execute(context())["disabled"]
    assert not any(h["enabled"] for h in world.webhooks())


def test_segment_warehouse_stays_on_while_the_send_mapping_is_off_even_if_its_destination_is_on(world):
    from tests.faults.test_preflight_and_switch_off import switch_off

    rs_source = world.make_rs_segment_source(world.make_rs_destination())
    cutover = EnsureSegmentWebhookOperator(
        task_id="ensure_webhooks",
        source_ids=[WEB],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
    ).execute(context())["cutover_at"]
    [hook] = world.webhooks()
    with world.segment_api() as api:  # someone switches the mapping off in Segment's app
        api.patch(
            f"/destinations/{hook['id']}/subscriptions/{hook['mappings'][0]['id']}",
            json={"input": {"enabled": False}},
        ).raise_for_status()
    world.load()
    with pytest.raises(AirflowFailException, match="no enabled Segment webhook to RudderStack"):
        switch_off(world, cutover, rs_source).execute(context())
    assert world.segment_warehouse()["enabled"] is True


def test_a_send_mapping_created_by_a_task_that_died_before_recording_it_is_switched_off_by_the_rollback(
    world,
):
    import signal

    from segment_rudderstack.operators.rollback import RollbackOperator
    from segment_rudderstack.safety.changelog import ChangeLog
    from tests.faults.killed import run_killed_after_call
    from tests.library.world import RUDDERSTACK_CONN, SEGMENT_CONN

    rs_source = world.make_rs_segment_source(world.make_rs_destination())
    operator = EnsureSegmentWebhookOperator(
        task_id="ensure_webhooks",
        source_ids=[WEB],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
    )
    code = run_killed_after_call(
        lambda: operator.execute(context()), target="segment.destination.subscription", field="exists"
    )
    assert code == -signal.SIGKILL
    [webhook] = world.webhooks()
    assert (
        webhook["enabled"] is False and webhook["mappings"][0]["enabled"] is True
    )  # died before the switch-on
    [intent] = ChangeLog(world.change_log_key).open_intents()
    assert intent.target_id == f"{webhook['id']}/RudderStack (migration): Send"

    undone = RollbackOperator(
        task_id="rollback",
        plan_name="p",
        segment_conn_id=SEGMENT_CONN,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        change_log_key=world.change_log_key,
    ).execute(context())["undone"]

    assert undone == [f"disabled Segment webhook mapping {webhook['id']}/{webhook['mappings'][0]['id']}"]
    assert not any(m["enabled"] for m in world.webhooks()[0]["mappings"])
    assert ChangeLog(world.change_log_key).open_intents() == []
