"""Fixtures for the RudderStack emulator, client and world tests: real servers on 127.0.0.1, real PostgreSQL."""

from __future__ import annotations

import itertools
import time

import pytest

from sandbox.common import ServerThread
from sandbox.rudderstack_emulator import RudderStackEmulator, RudderStackSettings
from sandbox.warehouse import Warehouse

_names = itertools.count(1)


@pytest.fixture
def namespace() -> str:
    """A schema name of its own for each test, so tests sharing one PostgreSQL do not see each other's rows."""
    return f"rs_test_{int(time.time() * 1000) % 10_000_000}_{next(_names)}"


@pytest.fixture
def warehouse(pg_dsn: str) -> Warehouse:
    return Warehouse(pg_dsn)


@pytest.fixture
def make_rudderstack(warehouse: Warehouse):
    """Start RudderStack emulators (not their scheduler: tests call schedule_once()) and stop them afterwards."""
    started: list[tuple[RudderStackEmulator, ServerThread]] = []

    def make(**overrides) -> tuple[RudderStackEmulator, str]:
        settings = RudderStackSettings(upload_duration_s=0.2, upload_retry_backoff_s=0.05, **overrides)
        emulator = RudderStackEmulator(settings, warehouse)
        server = ServerThread(emulator.app).start()
        started.append((emulator, server))
        return emulator, server.url

    yield make
    for emulator, server in started:
        emulator.stop_background()
        server.stop()


@pytest.fixture
def ledger_schema() -> str:
    return f"ledger_test_{int(time.time() * 1000) % 10_000_000}_{next(_names)}"


@pytest.fixture
def make_segment(warehouse: Warehouse):
    """Start Segment emulators without the load scheduler (loads only when forced) and stop them afterwards."""
    from sandbox.segment import SegmentEmulator, SegmentSettings

    started = []

    def make(ledger=None, **overrides):
        settings = SegmentSettings(load_interval_s=None, load_duration_s=0.1, **overrides)
        emulator = SegmentEmulator(settings, warehouse, ledger)
        server = ServerThread(emulator.app).start()
        emulator.start_background()
        started.append((emulator, server))
        return emulator, server.url

    yield make
    for emulator, server in started:
        emulator.stop_background()
        server.stop()
