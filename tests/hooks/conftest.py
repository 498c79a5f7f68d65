"""Connections for the hook tests: Airflow reads them from AIRFLOW_CONN_<ID> (JSON), pointed at pytest-httpserver."""

from __future__ import annotations

import json
import socket
import time

import pytest

TOKEN = "tok-SECRET-0123456789"
FAST = {"max_attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.05, "timeout": 2}


@pytest.fixture
def connect(monkeypatch, httpserver):
    """``connect(conn_id, **fields)`` defines the connection (default host: the test server, password: TOKEN)."""

    def define(conn_id: str, **fields) -> str:
        conn = {"conn_type": "http", "host": httpserver.url_for("/").rstrip("/"), "password": TOKEN}
        conn.update(fields)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return define


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def wait_for_requests(httpserver):
    """``wait_for_requests(n)``: let slow handlers finish (bounded) so the server is idle; the number seen."""

    def wait(count: int, limit_s: float = 5.0) -> int:
        deadline = time.monotonic() + limit_s
        while len(httpserver.log) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(httpserver.log)

    return wait


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def fast() -> dict:
    """Retry settings small enough for tests: 3 attempts, ~10 ms backoff, 2 s timeout."""
    return dict(FAST)
