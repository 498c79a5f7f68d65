"""Many deferred sensors in one triggerer loop share one HTTP client and its connections, and each reads its
Airflow connection once (not once per check). Against the real Segment emulator over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest

from sandbox.common import ServerThread
from sandbox.segment import SegmentEmulator, SegmentSettings, WarehouseSeed
from sandbox.warehouse import Warehouse
from segment_rudderstack.triggers.condition import ConditionTrigger
from segment_rudderstack.waits.watches import SegmentLoadWatch, load_watch

TRIGGERS = 20
CHECKS = 3


class ClientPorts:
    """ASGI wrapper: the client (host, port) of every request, i.e. which TCP connection carried it."""

    def __init__(self, app):
        self.app = app
        self.ports: list[int] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].endswith("/syncs"):
            self.ports.append(scope["client"][1])
        return await self.app(scope, receive, send)


@pytest.fixture
def segment(monkeypatch):
    # one warehouse per trigger: triggers on one warehouse would share reads (test_shared_sync_pages.py)
    warehouses = [WarehouseSeed(id=f"wh_{n}") for n in range(TRIGGERS + 1)]
    settings = SegmentSettings(load_interval_s=None, sync_list_per_minute=10_000, warehouses=warehouses)
    emulator = SegmentEmulator(settings, Warehouse("postgresql://unused/never-loaded"), None)
    recorder = ClientPorts(emulator.app)
    server = ServerThread(recorder).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMENT_SHARED",
        json.dumps({"conn_type": "http", "host": server.url, "password": settings.token}),
    )
    yield recorder
    server.stop()


def test_triggers_in_one_loop_reuse_one_client_and_read_their_connection_once(segment, monkeypatch):
    import airflow.providers.common.compat.connection as compat

    reads: list[str] = []
    real_get = compat.get_async_connection

    async def counting_get(conn_id, *args, **kwargs):
        reads.append(conn_id)
        return await real_get(conn_id, *args, **kwargs)

    monkeypatch.setattr(compat, "get_async_connection", counting_get)
    interval = 0.2
    seconds = 3.0

    def watch(n: int) -> dict:
        return SegmentLoadWatch(
            segment_conn_id="segment_shared",
            warehouse_id=f"wh_{n}",
            started_after=datetime.now(UTC).isoformat(),
            source_ids=None,
            allow_partial=False,
        ).spec()

    async def run_all() -> list[dict]:
        # Warm-up: the first check of a process imports what it needs; not part of what is measured here.
        await load_watch(watch(TRIGGERS)).aobserve()
        segment.ports.clear()
        deadline = time.time() + seconds
        triggers = [
            ConditionTrigger(
                watch=watch(n),
                poke_interval=interval,
                deadline=deadline,
            )
            for n in range(TRIGGERS)
        ]

        async def first_event(trigger):
            async for event in trigger.run():
                return event.payload

        return await asyncio.gather(*(first_event(t) for t in triggers))

    events = asyncio.run(run_all())

    assert [e["status"] for e in events] == ["timeout"] * TRIGGERS  # no load after the instant: they waited
    checks = sum(e["checks"] for e in events)
    # One request per check; a check the deadline cut off mid-request has sent it but is not counted (at most
    # one per trigger).
    assert checks >= CHECKS * TRIGGERS and checks <= len(segment.ports) <= checks + TRIGGERS
    # One shared client keeps a few connections open for everyone, instead of one new connection per check.
    assert len(set(segment.ports)) <= TRIGGERS < checks
    assert reads.count("segment_shared") == 1 + TRIGGERS  # once per trigger (and the warm-up), not per check
