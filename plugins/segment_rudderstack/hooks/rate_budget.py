"""One budget of Segment sync-list calls for the whole deployment.

Segment allows a few sync-list requests per minute (2 per minute at the time of writing), counted for the
whole workspace/token. Every sensor, trigger and operator of every plan that reads the list with the same
token shares that budget, whether it runs in a worker (LocalExecutor or Celery, on any machine) or in a
triggerer. So the budget is kept where all of them can reach and where taking a turn is atomic: one row in a
PostgreSQL table (see docs/scaling.md for the choice: an Airflow Variable has no compare-and-set, a file lock
holds only on one machine, Redis exists only with Celery).

Each call takes the next *slot*: one statement moves the row's ``next_slot`` to
``max(next_slot, now) + spacing`` and returns how long the caller waits for its slot. Slots are spaced
``60 / limit`` seconds plus a margin, so no sliding minute ever holds more than ``limit`` calls even when a
call leaves a little late. The database's clock decides (no clock skew between machines). Callers queue
fairly: with N sensors waiting on one workspace, each gets one call every N slots.

The budget is configured on the Segment connection (the limit belongs to its token), in its extras:
``sync_list_budget_conn_id`` (a PostgreSQL connection, e.g. the warehouse's or Airflow's metadata database)
and ``sync_list_requests_per_minute`` (default 2). With only the limit given, each process keeps its own
budget (the limit then holds per process only); with neither, only each sensor's poke interval paces it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

DEFAULT_REQUESTS_PER_MINUTE = 2.0
TABLE = "segment_rudderstack_rate_budget"  # in the connection's default schema (search_path)
# Slots are a little wider than 60/limit: a call that leaves up to 2 x margin late still keeps every sliding
# minute at or under the limit.
MARGIN_FRACTION = 0.05
MARGIN_MIN_S = 0.5

_CREATE = """CREATE TABLE IF NOT EXISTS segment_rudderstack_rate_budget (
    budget_key text PRIMARY KEY,
    next_slot timestamptz NOT NULL,
    calls bigint NOT NULL DEFAULT 0
)"""
# One atomic statement: the row lock serializes concurrent takers; the database clock decides.
_TAKE = """INSERT INTO segment_rudderstack_rate_budget AS b (budget_key, next_slot, calls)
VALUES (%(key)s, clock_timestamp() + make_interval(secs => %(spacing)s), 1)
ON CONFLICT (budget_key) DO UPDATE
    SET next_slot = GREATEST(b.next_slot, clock_timestamp()) + make_interval(secs => %(spacing)s),
        calls = b.calls + 1
RETURNING EXTRACT(EPOCH FROM (b.next_slot - clock_timestamp()))::float8 - %(spacing)s"""


def spacing_seconds(requests_per_minute: float) -> float:
    base = 60.0 / float(requests_per_minute)
    return base + max(MARGIN_MIN_S, base * MARGIN_FRACTION)


def budget_key(base_url: str, token: str) -> str:
    """Names the workspace's budget without storing the token: a hash of base URL and token."""
    return "segment-sync-list:" + hashlib.sha256(f"{base_url}\n{token}".encode()).hexdigest()[:24]


class _MissingStore(Exception):
    pass


@dataclass
class _LocalSlots:
    next_slot: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


_LOCAL: dict[str, _LocalSlots] = {}
_LOCAL_LOCK = threading.Lock()


class SyncListBudget:
    """Hands out sync-list slots for one workspace. ``take()`` returns the seconds to wait before calling.

    :param key: which budget (see :func:`budget_key`).
    :param requests_per_minute: Segment's limit for the sync-list endpoints (2 today).
    :param conn_id: a PostgreSQL connection holding the shared table; None: this process only.
    """

    def __init__(
        self, key: str, requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE, conn_id: str | None = None
    ):
        if float(requests_per_minute) <= 0:
            raise ValueError(f"sync_list_requests_per_minute must be positive, got {requests_per_minute!r}")
        self.key = key
        self.requests_per_minute = float(requests_per_minute)
        self.spacing = spacing_seconds(self.requests_per_minute)
        self.conn_id = conn_id
        self._created = False

    @property
    def shared(self) -> bool:
        return self.conn_id is not None

    def take(self) -> float:
        """Reserve the next slot; the seconds until it (0 when it is now)."""
        if self.shared:
            try:
                return max(0.0, self._take_shared())
            except _MissingStore as missing:
                log.warning(
                    "Segment sync-list budget: connection %r (extra sync_list_budget_conn_id of the Segment "
                    "connection) is not defined (%s); this process paces its own sync-list calls only, so "
                    "parallel sensors in other processes may exceed Segment's limit. Define it (a PostgreSQL "
                    "connection every worker and triggerer can reach) to share the limit.",
                    self.conn_id,
                    missing,
                )
                self.conn_id = None
        return max(0.0, self._take_local())

    def wait(self) -> float:
        waited = self.take()
        if waited > 0:
            log.info("Segment sync-list budget: waiting %.1f s for this call's turn", waited)
            time.sleep(waited)
        return waited

    async def await_turn(self) -> float:
        waited = await asyncio.to_thread(self.take) if self.shared else self.take()
        if waited > 0:
            await asyncio.sleep(waited)
        return waited

    # ------------------------------------------------------------------ stores
    def _take_local(self) -> float:
        with _LOCAL_LOCK:
            slots = _LOCAL.setdefault(self.key, _LocalSlots())
        with slots.lock:
            now = time.monotonic()
            slot = max(slots.next_slot, now)
            slots.next_slot = slot + self.spacing
            return slot - now

    def _take_shared(self) -> float:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        hook = PostgresHook(postgres_conn_id=self.conn_id)
        try:
            hook.get_connection(self.conn_id)
        except Exception as error:  # AirflowNotFoundException (from the SDK or core)
            if type(error).__name__ != "AirflowNotFoundException":
                raise
            raise _MissingStore(type(error).__name__) from None
        conn = hook.get_conn()
        try:
            with conn.cursor() as cur:
                if not self._created:
                    try:
                        cur.execute(_CREATE)
                        conn.commit()
                    except Exception:  # created concurrently by another process: it exists now
                        conn.rollback()
                    self._created = True
                cur.execute(_TAKE, {"key": self.key, "spacing": self.spacing})
                (wait,) = cur.fetchone()
            conn.commit()
        finally:
            conn.close()
        return float(wait)
