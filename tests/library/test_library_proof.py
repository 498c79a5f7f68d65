"""Proof from Segment's metrics against the real emulators: events sent through the real Segment SDK, delivered by
Segment's webhook to RudderStack's Segment-type source, loaded into PostgreSQL by a RudderStack upload, then the
verification step compares Segment's Delivery Overview counts with the warehouse, bucket by bucket."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException
from psycopg2 import sql
from segment.analytics import Client

from segment_rudderstack.evidence.proof import SECTION_TITLE, proof_section
from segment_rudderstack.evidence.proof_buckets import compare_buckets
from segment_rudderstack.operators.proof import VerifyWebhookPathOperator
from segment_rudderstack.operators.segment import EnsureSegmentWebhookOperator
from segment_rudderstack.waits.segment_metrics_watch import SegmentAdoptionWatch
from tests.library.world import WAREHOUSE_CONN, WEB, context
from tests.waiting import wait_until


def routed(world):
    """A RudderStack destination on the world's schema, its Segment-type source, and Segment's webhook to it."""
    destination = world.make_rs_destination(manualSync=True)
    rs_source = world.make_rs_segment_source(destination)
    webhooks = EnsureSegmentWebhookOperator(
        task_id="ensure_webhooks",
        source_ids=[WEB],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
    ).execute(context())
    return destination, rs_source, webhooks


def send(world, versions: dict[str, int]) -> list[str]:
    """Track events from app installs on the given versions, through the real Segment SDK."""
    client = Client("wk_seg_web_app", host=world.segment_url, sync_mode=True)
    ids = []
    for version, count in versions.items():
        for n in range(count):
            message_id = f"p-{uuid.uuid4()}"
            client.track(
                f"user-{n}",
                "Order Completed",
                {"n": n},
                message_id=message_id,
                context={"app": {"name": "Shop", "version": version}},
            )
            ids.append(message_id)
    return ids


def upload(world, destination: str) -> None:
    """RudderStack loads what its Segment-type source staged."""
    before = len(world.rudderstack.uploads(destination_id=destination))
    world.rudderstack.trigger_upload(source_id=None, destination_id=destination)
    world.rudderstack.schedule_once()
    wait_until(
        lambda: (
            len(world.rudderstack.uploads(destination_id=destination)) > before
            and all(
                u["status"] == "exported_data" for u in world.rudderstack.uploads(destination_id=destination)
            )
        ),
        what="RudderStack's upload",
    )


def verify(world, rs_source, webhooks, **kwargs) -> VerifyWebhookPathOperator:
    return VerifyWebhookPathOperator(
        task_id="verify_webhook_path",
        segment_conn_id="segment_default",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        webhooks=webhooks,
        rudderstack_source_id=rs_source,
        source_ids=[WEB],
        granularity="MINUTE",
        settle_seconds=0,
        tolerance_events=1,
        tolerance_share=0.0,
        adoption_window_seconds=60,
        change_log_key=world.change_log_key,
        **kwargs,
    )


def test_a_clean_webhook_path_matches_bucket_by_bucket_and_shows_app_versions(world):
    destination, rs_source, webhooks = routed(world)
    send(world, {"1.9.4": 6, "1.8.2": 3})
    assert world.segment.wait_webhooks_idle(10)
    upload(world, destination)

    result = verify(world, rs_source, webhooks).execute(context())

    path = result["webhook_path"]
    assert path["ok"] and not result["gap"], path
    assert path["delivered"] == path["loaded"] == 9
    assert path["failed_deliveries"] == 0 and path["differing_buckets"] == []
    assert result["adoption"]["sources"][WEB]["app_versions"] == {"1.9.4": 6, "1.8.2": 3}
    report = "\n".join(proof_section(result))
    assert SECTION_TITLE in report and "Webhook path: matches" in report
    assert "| src_web_app | 1.9.4 | 6 | 6 |" in report and "| src_web_app | 1.8.2 | 3 | 3 |" in report


def test_deliveries_segment_gave_up_on_stop_the_run_naming_the_bucket(world):
    destination, rs_source, webhooks = routed(world)
    world.segment.settings.webhook_max_attempts = 2
    world.segment.faults.arm({"webhook_failure": {"count": -1}})  # every attempt fails: these 3 are given up
    send(world, {"1.9.4": 3})
    assert world.segment.wait_webhooks_idle(10)
    world.segment.faults.clear()
    send(world, {"1.9.4": 5})
    assert world.segment.wait_webhooks_idle(10)
    upload(world, destination)
    bucket = datetime.now(UTC).replace(second=0, microsecond=0)

    with pytest.raises(AirflowFailException) as stopped:
        verify(world, rs_source, webhooks).execute(context())

    message = str(stopped.value)
    assert "Segment gave up on 3 deliveries" in message and "NOT switched off" in message
    assert "delivered 5, loaded 5" in message or "loaded 5" in message
    # the bucket of the give-ups is named (the previous minute when the test straddles a minute boundary)
    named = {
        bucket.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (bucket - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert any(b in message for b in named), message


def test_events_lost_after_segment_delivered_them_stop_the_run_or_wait_for_approval(world):
    destination, rs_source, webhooks = routed(world)
    ids = send(world, {"1.9.4": 10})
    assert world.segment.wait_webhooks_idle(10)
    upload(world, destination)
    # RudderStack accepted the webhook requests but 4 of the events never reached the warehouse.
    with world.warehouse.connect() as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL("DELETE FROM {}.tracks WHERE id = ANY(%s)").format(sql.Identifier(world.schema)),
            (ids[:4],),
        )

    # (tolerance 1: the last event counted by Segment when it got RudderStack's answer may fall after the
    # comparison's end, the latest received_at loaded)
    with pytest.raises(AirflowFailException, match="[34] fewer in the warehouse than Segment counted"):
        verify(world, rs_source, webhooks).execute(context())
    # With on_gap=approve the step passes the gap on to the approval gate instead.
    result = verify(world, rs_source, webhooks, on_gap="approve").execute(context())
    assert result["gap"] is True and result["webhook_path"]["loaded"] == 6
    assert "DIFFERS" in "\n".join(proof_section(result))


def test_unavailable_metrics_are_said_once_and_do_not_stop_the_run(world):
    _, rs_source, webhooks = routed(world)
    world.segment.faults.arm({"delivery_overview_unavailable": {"count": -1}})  # a workspace without the beta
    result = verify(world, rs_source, webhooks).execute(context())
    assert result == {"available": False, "reason": result["reason"], "gap": False}
    assert "warehouse signals alone" in result["reason"]
    assert "Not available" in "\n".join(proof_section(result))


def test_segment_adoption_signal_counts_what_still_arrives_at_segment(world):
    _, rs_source, webhooks = routed(world)
    send(world, {"1.9.4": 4})
    watch = SegmentAdoptionWatch(
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        webhook_source_id=rs_source,
        window_seconds=600,  # whole MINUTE buckets, even when the sends straddle a minute boundary
        threshold=0.5,
        consecutive_checks=1,
        min_events=1,
        library_names=[],
        tables=None,
        segment_conn_id="segment_default",
        source_ids=[WEB],
        granularity="MINUTE",
        baseline={WEB: 8},
        signal="segment_metrics",
    )
    sample = watch.observe()
    assert (sample.total, sample.via_segment) == (8, 4)
    decision, _ = watch.decide(sample, [])
    assert decision.outcome.value == "done"  # 50 % still arriving, at the threshold
    # Without traffic before the cutover Segment's ingress is a share of nothing: the warehouse share decides.
    no_baseline = dataclasses.replace(watch, baseline={WEB: 0}).observe()
    assert no_baseline.via_segment == 0 and no_baseline.total == 0  # no rows in the warehouse window here


def test_a_bucket_boundary_shift_is_not_a_loss_but_a_missing_event_is():
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=1)
    shifted = compare_buckets({t0: 10, t1: 10}, {t0: 9, t1: 11}, tolerance_events=1)
    assert not any(r.differs for r in shifted)
    lost = compare_buckets({t0: 10, t1: 10}, {t0: 10, t1: 8}, tolerance_events=1)
    assert [r.differs for r in lost] == [False, True] and "2 fewer" in lost[1].why


def test_preflight_says_once_whether_segments_metrics_answer(world):
    from tests.library.world import preflight_operator as preflight

    world.track(count=2)
    world.load()
    summary = preflight(world, delivery_overview_granularity="HOUR").execute(context())
    assert summary["delivery_overview"] == {"available": True, "reason": ""}

    world.segment.faults.arm({"delivery_overview_unavailable": {"count": -1}})
    summary = preflight(world, delivery_overview_granularity="HOUR").execute(context())
    assert summary["delivery_overview"]["available"] is False  # a note, not a problem: preflight passed
    assert "warehouse signals alone" in summary["delivery_overview"]["reason"]


def test_a_rudderstack_outage_shows_as_failed_deliveries_with_segments_discard_reason(world):
    destination, rs_source, webhooks = routed(world)
    world.segment.settings.webhook_max_attempts = 2
    world.rudderstack.faults.arm({"server_error": {"count": -1, "status": 503, "path_prefix": "/v1/webhook"}})
    send(world, {"1.9.4": 3})  # RudderStack is down: Segment retries, then gives up
    assert world.segment.wait_webhooks_idle(10)
    world.rudderstack.faults.clear()
    send(world, {"1.9.4": 4})
    assert world.segment.wait_webhooks_idle(10)
    upload(world, destination)

    result = verify(world, rs_source, webhooks, on_gap="approve").execute(context())

    path = result["webhook_path"]
    assert result["gap"] and path["differing_buckets"], path
    assert path["failed"] == [
        {"sourceId": WEB, "destinationId": webhooks["destinations"][WEB], "discardReason": "503", "count": 3}
    ]
    assert path["delivered"] == path["loaded"] == 4
    assert "| 503 | 3 |" in "\n".join(proof_section(result))
