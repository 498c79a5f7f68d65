"""Finding 6 of issue 10: bad configuration found only after irreversible steps. Now every connection, Segment
source id and warehouse privilege is checked before the first change, and Segment's warehouse is switched off
only while the webhook path that replaces it works."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from psycopg2 import sql

from segment_rudderstack.operators.segment import (
    DisableSegmentWarehouseOperator,
    EnsureSegmentWebhookOperator,
)
from tests.library.world import (
    BACKEND,
    DATA_PLANE_CONN,
    FAST_RETRIES,
    RUDDERSTACK_CONN,
    WAREHOUSE_CONN,
    WAREHOUSE_ID,
    WEB,
    context,
)
from tests.library.world import preflight_operator as preflight


def test_an_unknown_segment_source_id_stops_the_preflight_before_any_change(world):
    world.track(count=2)
    world.load()
    mark = world.mark()
    with pytest.raises(
        AirflowFailException, match="src_typo' .* does not exist in the workspace \\(HTTP 404\\)"
    ):
        preflight(world, source_ids=[WEB, "src_typo"]).execute(context())
    assert world.changes(mark) == []


def test_a_typo_in_the_data_plane_url_stops_the_preflight(world, monkeypatch):
    world.track(count=2)
    world.load()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{DATA_PLANE_CONN.upper()}",
        json.dumps(
            {"conn_type": "http", "host": "http://127.0.0.1:9", "extra": {**FAST_RETRIES, "timeout": 1}}
        ),
    )
    with pytest.raises(AirflowFailException, match="RudderStack data plane .* does not answer"):
        preflight(world, rudderstack_data_plane_conn_id=DATA_PLANE_CONN).execute(context())


def test_a_warehouse_user_without_privileges_is_told_no_privilege_not_does_not_exist(
    world, pg_dsn, monkeypatch
):
    world.track(count=2)
    world.load()
    role = f"nopriv_{world.schema}"
    with world.warehouse.connect() as c, c.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{WAREHOUSE_CONN.upper()}", pg_dsn.replace("postgres:@", f"{role}:@")
        )
        with pytest.raises(AirflowFailException) as raised:
            preflight(world).execute(context())
        text = str(raised.value)
        assert f"no privilege USAGE and CREATE on schema '{world.schema}' (the schema exists)" in text
        assert "does not exist" not in text
    finally:
        with world.warehouse.connect() as c, c.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def switch_off(world, cutover, rs_source, **kwargs):
    return DisableSegmentWarehouseOperator(
        task_id="disable_segment_warehouse",
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB, BACKEND],
        change_log_key=world.change_log_key,
        client_source_ids=[WEB],
        rudderstack_source_id=rs_source,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        rudderstack_data_plane_conn_id=DATA_PLANE_CONN,
        namespace=world.schema,
        **kwargs,
    )


def test_segment_warehouse_is_not_switched_off_while_a_client_sources_webhook_is_off(world):
    rs_source = world.make_rs_segment_source(world.make_rs_destination())
    webhook = EnsureSegmentWebhookOperator(
        task_id="ensure_webhooks",
        source_ids=[WEB],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
    )
    cutover = webhook.execute(context())["cutover_at"]
    EnsureSegmentWebhookOperator(
        task_id="ensure_webhooks",
        source_ids=[WEB],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
        enabled=False,
    ).execute(context())
    world.load()
    mark = world.mark()
    with pytest.raises(AirflowFailException, match="no enabled Segment webhook to RudderStack"):
        switch_off(world, cutover, rs_source).execute(context())
    assert world.segment_changes(mark) == [] and world.segment_warehouse()["enabled"] is True
    # With the webhook back on, the same step goes ahead.
    webhook.execute(context())
    world.load()
    assert switch_off(world, cutover, rs_source).execute(context())["disabled"] is True


def test_segment_warehouse_is_not_switched_off_while_segment_delivers_nothing_through_the_webhook(world):
    """Old clients send, Segment receives, but RudderStack's data plane refuses the webhook's requests: the
    replacement path is not working now, so Segment's warehouse stays on until deliveries go through."""
    rs_source = world.make_rs_segment_source(world.make_rs_destination())
    cutover = EnsureSegmentWebhookOperator(
        task_id="ensure_webhooks",
        source_ids=[WEB],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
    ).execute(context())["cutover_at"]
    world.rudderstack.faults.arm({"server_error": {"count": -1, "status": 503}, "path_prefix": "/v1/webhook"})
    world.track(count=6)
    world.load()
    mark = world.mark()
    with pytest.raises(AirflowFailException, match="no event delivered through the webhook of source"):
        switch_off(world, cutover, rs_source).execute(context())
    assert world.segment_changes(mark) == [] and world.segment_warehouse()["enabled"] is True
    world.rudderstack.faults.clear()  # the data plane accepts again; Segment's retries deliver
    world.segment.wait_webhooks_idle(timeout_s=30)
    world.load()
    assert switch_off(world, cutover, rs_source).execute(context())["disabled"] is True
