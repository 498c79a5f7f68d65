"""Fixture ``world``: Segment and RudderStack emulators on 127.0.0.1, the session's real PostgreSQL, and the
library's default Airflow connections pointed at them (see ``tests/library/world.py``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg2 import sql

from sandbox.common import ServerThread
from sandbox.rudderstack_emulator import RudderStackEmulator, RudderStackSettings
from sandbox.segment import SegmentEmulator, SegmentSettings, SourceSeed, WarehouseSeed
from sandbox.warehouse import Warehouse
from tests.library.world import (
    BACKEND,
    DATA_PLANE_CONN,
    FAST_RETRIES,
    RS_WAREHOUSE_CONN,
    RUDDERSTACK_CONN,
    RUDDERSTACK_TOKEN,
    SEGMENT_CONN,
    SEGMENT_TOKEN,
    WAREHOUSE_CONN,
    WEB,
    World,
    next_tag,
    rudderstack_warehouse_connection,
)


@pytest.fixture
def world(pg_dsn: str, monkeypatch) -> Iterator[World]:
    tag = next_tag()
    schema = f"lib_{tag}"
    warehouse = Warehouse(pg_dsn)
    segment = SegmentEmulator(
        SegmentSettings(
            sources=[
                SourceSeed(WEB, "web_app", "Web App", "wk_seg_web_app", schema),
                SourceSeed(BACKEND, "backend", "Backend", "wk_seg_backend", schema),
            ],
            warehouses=[WarehouseSeed()],
            load_interval_s=None,
            load_duration_s=0.05,
            sync_list_per_minute=10_000,  # the 2/minute limit has tests of its own (bench, sensor floor)
            subscription_writes_per_minute=10_000,  # the 5/minute mapping limit: tests/sandbox
            webhook_initial_backoff_s=0.05,
        ),
        warehouse,
        None,
    )
    rudderstack = RudderStackEmulator(
        RudderStackSettings(upload_duration_s=0.05, upload_retry_backoff_s=0.01, upload_max_attempts=1),
        warehouse,
    )
    seg_server = ServerThread(segment.app).start()
    rs_server = ServerThread(rudderstack.app).start()
    segment.start_background()

    def conn(conn_id: str, **fields: Any) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **fields}))

    conn(SEGMENT_CONN, host=seg_server.url, password=SEGMENT_TOKEN, extra=FAST_RETRIES)
    conn(RUDDERSTACK_CONN, host=rs_server.url, password=RUDDERSTACK_TOKEN, extra=FAST_RETRIES)
    conn(DATA_PLANE_CONN, host=rs_server.url, extra=FAST_RETRIES)
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN.upper()}", pg_dsn)
    monkeypatch.setenv(f"AIRFLOW_CONN_{RS_WAREHOUSE_CONN.upper()}", rudderstack_warehouse_connection(pg_dsn))
    w = World(
        segment, seg_server.url, rudderstack, rs_server.url, warehouse, schema, f"srm_test_changes_{tag}"
    )
    try:
        yield w
    finally:
        segment.stop_background()
        rudderstack.stop_background()
        seg_server.stop()
        rs_server.stop()
        with contextlib.suppress(Exception), warehouse.connect() as c, c.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
