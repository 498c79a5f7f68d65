"""Finding 1, the proof's side: after a rollback switched the webhook off during the migration and the migration
then switched Segment's warehouse off, the safety invariants reported nothing. Now they say so, from the
Segment emulator's own request log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from sandbox import invariants
from tests.library.world import SEGMENT_TOKEN, WAREHOUSE_ID, WEB


def segment_api(world) -> httpx.Client:
    return httpx.Client(
        base_url=world.segment_url, headers={"Authorization": f"Bearer {SEGMENT_TOKEN}"}, timeout=10
    )


def make_webhook(world, api) -> str:
    body = {
        "sourceId": WEB,
        "metadataId": "54521fdc25e721e32a72ef04",
        "name": "RudderStack (migration)",
        "enabled": True,
        "settings": {"hooks": [{"hook": f"{world.rudderstack_url}/v1/webhook?writeKey=wk", "headers": []}]},
    }
    response = api.post("/destinations", json=body)
    if (
        response.status_code >= 400
    ):  # a workspace without classic Webhooks: the test's point is the order anyway
        world.segment.settings.classic_webhooks_available = True
        response = api.post("/destinations", json=body)
    response.raise_for_status()
    return response.json()["data"]["destination"]["id"]


def test_warehouse_switched_off_after_the_webhook_was_switched_off_is_a_violation(world):
    with segment_api(world) as api:
        webhook = make_webhook(world, api)
        api.patch(f"/destinations/{webhook}", json={"enabled": False}).raise_for_status()  # the rollback
        api.patch(f"/warehouses/{WAREHOUSE_ID}", json={"enabled": False, "settings": {}}).raise_for_status()
    violations = invariants.check_webhook_path(world.segment.log.entries())
    assert (
        len(violations) == 1 and f"webhook of migrated client source(s) {WEB} was disabled" in violations[0]
    )


def test_the_webhook_switched_off_by_anything_but_the_migrations_own_step_is_a_violation(world):
    with segment_api(world) as api:
        webhook = make_webhook(world, api)
        api.patch(f"/destinations/{webhook}", json={"enabled": False}).raise_for_status()
    off = invariants.webhook_disabled_at(world.segment.log.entries())[0]
    ours = [off + timedelta(seconds=1)]  # the migration's switch-off task recorded it right after its call
    assert invariants.check_webhook_path(world.segment.log.entries(), migration_webhook_off=ours) == []
    assert invariants.check_webhook_path(
        world.segment.log.entries(), migration_webhook_off=ours, adoption_held_at=off + timedelta(minutes=1)
    )[0].startswith("Segment webhook disabled at")  # before adoption held
    elsewhere = invariants.check_webhook_path(
        world.segment.log.entries(), migration_webhook_off=[datetime.now(UTC) + timedelta(hours=1)]
    )
    assert elsewhere == [
        f"Segment webhook disabled at {off.isoformat()}, not by the migration's own switch-off"
    ]


def test_the_safe_order_has_no_violation(world):
    with segment_api(world) as api:
        webhook = make_webhook(world, api)
        api.patch(f"/warehouses/{WAREHOUSE_ID}", json={"enabled": False, "settings": {}}).raise_for_status()
        api.patch(f"/destinations/{webhook}", json={"enabled": False}).raise_for_status()
    assert invariants.check_webhook_path(world.segment.log.entries()) == []


def test_a_rudderstack_upload_into_a_schema_segment_is_loading_is_a_violation_and_into_another_it_is_not():
    """Rule 2 is about two loaders writing the same tables at once: judged by the schemas the running Segment
    load writes (its log entry names them), so the shape check's scratch schema, whatever the plan names it,
    is not judged by it, and a schema Segment loads always is."""
    start = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    def at(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    segment_log = [
        {"kind": "load", "phase": "start", "warehouseId": "wh", "start": at(0), "schemas": ["app_events"]},
        {"kind": "load", "phase": "end", "warehouseId": "wh", "end": at(10), "statuses": {"web": "Success"}},
    ]

    def upload(namespace: str, seconds: float) -> dict:
        return {
            "kind": "upload",
            "event": "start",
            "at": at(seconds),
            "namespace": namespace,
            "event_count": 3,
            "upload_id": f"up-{namespace}",
        }

    during = [upload("app_events", 5), upload("app_events_scratch", 5), upload("mobile_events", 5)]
    violations = invariants.check(segment_log, during)
    assert violations == [f"RudderStack upload up-app_events started at {at(5)} during a Segment load"]
    assert invariants.check(segment_log, [upload("app_events", 12)]) == []  # after the load ended
    # a load whose log does not say what it writes is taken to write every schema (the stricter reading)
    unnamed = [{k: v for k, v in e.items() if k != "schemas"} for e in segment_log]
    assert len(invariants.check(unnamed, [upload("app_events_scratch", 5)])) == 1
