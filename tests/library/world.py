"""Helpers for the library tests. The operator library against the sandbox: real Segment and RudderStack emulators on 127.0.0.1, the
session's real PostgreSQL, and Airflow connections (``AIRFLOW_CONN_*``) pointing the library's hooks at them.

Each test gets a world of its own: its own emulators, its own warehouse schema and its own change-log key,
so tests sharing one PostgreSQL and one Airflow metadata database do not see each other.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx

from sandbox.rudderstack_definitions import accepted_config
from sandbox.rudderstack_emulator import RudderStackEmulator
from sandbox.segment import SegmentEmulator
from sandbox.warehouse import Warehouse
from tests.waiting import wait_until

SEGMENT_TOKEN = "sandbox-segment-token"
RUDDERSTACK_TOKEN = "sandbox-rudderstack-token"
WAREHOUSE_ID = "wh_sandbox_pg"
WEB, BACKEND = "src_web_app", "src_backend"
RS_APP, RS_BACKEND = "rs_src_app", "rs_src_backend"

# Conn ids the library's defaults use; every test points them at its own emulators.
SEGMENT_CONN = "segment_default"
RUDDERSTACK_CONN = "rudderstack_default"
DATA_PLANE_CONN = "rudderstack_data_plane_default"
WAREHOUSE_CONN = "srm_library_warehouse"
# The connection a new RudderStack destination's credentials are copied from (complete for RudderStack; the
# library's own warehouse queries use WAREHOUSE_CONN, which tests point at other logins and ports).
RS_WAREHOUSE_CONN = "srm_library_rudderstack_warehouse"
# Retries small enough for tests (the retry policy itself is tested in tests/hooks).
FAST_RETRIES = {"max_attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.05, "timeout": 5}

_n = itertools.count(1)


def context(run_id: str = "manual__test") -> dict[str, Any]:
    """The part of an Airflow task context the library reads: ``ti.run_id``."""
    return {"ti": SimpleNamespace(run_id=run_id, xcom_pull=lambda **_: None)}


#: what a new destination's config is built from, as a plan with RudderStack-managed staging gives it
DESTINATION_ARGS: dict[str, Any] = {
    "credentials_conn_id": RS_WAREHOUSE_CONN,
    "staging": {"storage": "rudderstack"},
}


def preflight_operator(world: World, **kwargs: Any):
    """The PreflightOperator of a plan on the world's Segment warehouse and schema (both sources, a destination
    still to create); ``kwargs`` override any argument."""
    from segment_rudderstack.operators.preflight import PreflightOperator

    args = dict(
        task_id="preflight",
        segment_conn_id=SEGMENT_CONN,
        warehouse_id=WAREHOUSE_ID,
        source_ids=[WEB, BACKEND],
        rudderstack_conn_id=RUDDERSTACK_CONN,
        destination_id=None,
        destination_name="Warehouse (migrated from Segment)",
        destination_type="POSTGRES",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        required_tables=["tracks"],
        change_log_key=world.change_log_key,
        **DESTINATION_ARGS,
    )
    return PreflightOperator(**{**args, **kwargs})


@dataclass
class Mark:
    segment_seq: int
    rudderstack_seq: int


@dataclass
class World:
    segment: SegmentEmulator
    segment_url: str
    rudderstack: RudderStackEmulator
    rudderstack_url: str
    warehouse: Warehouse
    schema: str
    change_log_key: str
    _threads: list[threading.Thread] = field(default_factory=list)

    # ---------------------------------------------------------------- what changed outside
    def mark(self) -> Mark:
        seg = self.segment.log.entries()
        rs = self.rudderstack.log.entries()
        return Mark(seg[-1]["seq"] if seg else 0, rs[-1]["seq"] if rs else 0)

    def segment_changes(self, since: Mark | None = None) -> list[dict[str, Any]]:
        """Mutating Public API requests Segment received (the emulator logs every change as kind "api")."""
        return self.segment.log.entries("api", since_seq=since.segment_seq if since else 0)

    def rudderstack_changes(self, since: Mark | None = None) -> list[dict[str, Any]]:
        """Control-plane changes (kind "api") and upload triggers RudderStack received."""
        seq = since.rudderstack_seq if since else 0
        return [e for e in self.rudderstack.log.entries(since_seq=seq) if e["kind"] in ("api", "trigger")]

    def changes(self, since: Mark | None = None) -> list[dict[str, Any]]:
        return self.segment_changes(since) + self.rudderstack_changes(since)

    # ---------------------------------------------------------------- state
    def segment_warehouse(self) -> dict[str, Any]:
        return next(w for w in self.segment.state()["warehouses"] if w["id"] == WAREHOUSE_ID)

    def segment_destinations(self) -> list[dict[str, Any]]:
        return self.segment.state()["destinations"]

    def segment_api(self) -> httpx.Client:
        """Segment's Public API, for set-up done outside the library (e.g. someone else's webhook)."""
        return httpx.Client(
            base_url=self.segment_url, headers={"Authorization": f"Bearer {SEGMENT_TOKEN}"}, timeout=10
        )

    def rs_api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.rudderstack_url + "/v2",
            headers={"Authorization": f"Bearer {RUDDERSTACK_TOKEN}"},
            timeout=10,
        )

    def rs_list(self, kind: str) -> list[dict[str, Any]]:
        """Every item of a paged control-plane list (the emulator pages them 2 at a time)."""
        items: list[dict[str, Any]] = []
        with self.rs_api() as api:
            page = api.get(f"/{kind}").json()
            items.extend(page[kind])
            while page["paging"].get("next"):
                page = api.get(self.rudderstack_url + page["paging"]["next"]).json()
                items.extend(page[kind])
        return items

    def rs_destinations(self) -> list[dict[str, Any]]:
        return self.rs_list("destinations")

    def rs_destination(self, destination_id: str) -> dict[str, Any]:
        with self.rs_api() as api:
            return api.get(f"/destinations/{destination_id}").json()["destination"]

    def rs_sources(self) -> list[dict[str, Any]]:
        return self.rs_list("sources")

    def rs_connections(self) -> list[dict[str, Any]]:
        return self.rs_list("connections")

    def make_rs_destination(self, namespace: str | None = None, **config: Any) -> str:
        """A RudderStack warehouse destination created out of band (set-up, not under test)."""
        body = {
            "name": "Existing warehouse",
            "type": "POSTGRES",
            "enabled": True,
            "config": accepted_config(namespace or self.schema, **config),
        }
        with self.rs_api() as api:
            response = api.post("/destinations", json=body)
            response.raise_for_status()
            return response.json()["destination"]["id"]

    def make_rs_segment_source(self, destination_id: str | None = None) -> str:
        """A RudderStack source of type Segment (the webhook source), optionally connected to a destination."""
        with self.rs_api() as api:
            response = api.post("/sources", json={"name": "Segment (old app versions)", "type": "Segment"})
            response.raise_for_status()
            source_id = response.json()["source"]["id"]
            if destination_id:
                api.post(
                    "/connections",
                    json={"sourceId": source_id, "destinationId": destination_id, "enabled": True},
                ).raise_for_status()
        return source_id

    def webhooks(self) -> list[dict[str, Any]]:
        """Segment's destinations (all are Webhooks in the sandbox) with the URLs each one posts to: classic hooks,
        or the URLs of its enabled Webhooks (Actions) mappings (``mappings``: all of them)."""
        return [
            {
                **d,
                "mappings": d.get("subscriptions", []),
                "urls": [h["hook"] for h in d["settings"].get("hooks", [])]
                + [m["settings"]["url"] for m in d.get("subscriptions", []) if m["enabled"]],
            }
            for d in self.segment_destinations()
        ]

    # ---------------------------------------------------------------- Segment loads
    def track(self, source_write_key: str = "wk_seg_web_app", count: int = 3) -> list[str]:
        """Send ``count`` track events to Segment's Tracking API; returns their message ids."""
        ids = [f"m-{uuid.uuid4()}" for _ in range(count)]
        batch = [
            {"type": "track", "event": "Order Completed", "userId": f"u{i}", "messageId": mid}
            for i, mid in enumerate(ids)
        ]
        response = httpx.post(
            self.segment_url + "/v1/batch", json={"batch": batch}, auth=(source_write_key, "")
        )
        response.raise_for_status()
        return ids

    def load(self) -> list[dict[str, Any]]:
        """One Segment warehouse load, now (blocks until it ended)."""
        return self.segment.run_load(WAREHOUSE_ID)

    def failing_load(self, message: str = "permission denied for schema (injected)") -> list[dict[str, Any]]:
        self.segment.faults.arm({"load_failure": {"count": 1, "message": message}})
        return self.load()

    @contextlib.contextmanager
    def running_load(self) -> Iterator[None]:
        """A Segment load that is running (``end`` null) for as long as the block lasts."""
        self.segment.settings.load_duration_s = 60.0
        starts = len([e for e in self.segment.log.entries("load") if e["phase"] == "start"])
        thread = threading.Thread(target=self.load, daemon=True)
        thread.start()
        try:
            wait_until(
                lambda: len([e for e in self.segment.log.entries("load") if e["phase"] == "start"]) > starts,
                what="a Segment load to start",
            )
            yield
        finally:
            # Ends the load early (the emulator's shutdown signal), then restarts its background workers.
            self.segment.stop_background()
            thread.join(10)
            self.segment.settings.load_duration_s = 0.05
            self.segment.start_background()

    def cutover(self) -> datetime:
        """An instant strictly before the next load's start (loads stamp real UTC time)."""
        moment = datetime.now(UTC)
        time.sleep(0.002)
        return moment


def rudderstack_warehouse_connection(dsn: str) -> str:
    """The session's PostgreSQL as the Airflow connection a RudderStack destination's credentials come from:
    every field RudderStack requires (host, port, database, user, a password, libpq's ``sslmode``). The server
    trusts local connections, so the password is never checked."""
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(dsn)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": params.get("host") or "127.0.0.1",
            "port": int(params.get("port") or 5432),
            "schema": params.get("dbname") or "postgres",
            "login": params.get("user") or "postgres",
            "password": params.get("password") or "trusted-local",
            "extra": {"sslmode": "disable"},
        }
    )


def next_tag() -> str:
    return f"{int(time.time() * 1000) % 10_000_000}_{next(_n)}"


def load_rudderstack_rows(world: World, source_id: str, count: int) -> None:
    """``count`` track rows in the world's schema as RudderStack loads them (``context_source_id`` set)."""
    events = [
        {
            "type": "track",
            "event": "Order Completed",
            "userId": f"u{i}",
            "messageId": f"r-{uuid.uuid4()}",
            "receivedAt": datetime.now(UTC).isoformat(),
        }
        for i in range(count)
    ]
    world.warehouse.load(
        world.schema,
        events,
        merge=True,
        extra_columns={"context_source_id": source_id, "context_source_type": "test"},
    )


def rudderstack_event(
    world: World, write_key: str = "wk_rs_app", context: dict[str, Any] | None = None
) -> None:
    """One event sent to RudderStack's data plane HTTP API (staged until an upload takes it)."""
    batch = [
        {
            "type": "track",
            "event": "Signed Up",
            "userId": "u1",
            "messageId": f"rs-{uuid.uuid4()}",
            **({"context": context} if context else {}),
        }
    ]
    httpx.post(
        world.rudderstack_url + "/v1/batch", json={"batch": batch}, auth=(write_key, "")
    ).raise_for_status()
