"""Webhook delivery: a queue of requests due at a time, worked by background threads. 5xx / 429 / connection
errors are retried with exponential backoff (a 429's Retry-After honoured, capped at `webhook_max_backoff_s`) up
to `webhook_max_attempts`; other 4xx answers are given up at once. Every outcome feeds Delivery Overview."""

from __future__ import annotations

import heapq
import threading
import time
from dataclasses import dataclass, field

import httpx

from sandbox.common import FaultInjector, RequestLog, utcnow
from sandbox.segment.delivery_overview import DeliveryOverviewRecorder, discard_reason
from sandbox.segment.settings import SegmentSettings
from sandbox.segment.store import SegmentStore

__all__ = ["Delivery", "WebhookDelivery"]


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    destination_id: str = field(compare=False)
    hook_url: str = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    body: bytes = field(compare=False)
    message_id: str = field(compare=False)
    attempt: int = field(compare=False, default=0)
    method: str = field(compare=False, default="POST")


class WebhookDelivery:
    """The delivery queue and what its workers do with each request."""

    def __init__(
        self,
        settings: SegmentSettings,
        store: SegmentStore,
        faults: FaultInjector,
        log: RequestLog,
        overview: DeliveryOverviewRecorder,
        stop: threading.Event,
    ):
        self.settings = settings
        self.store = store
        self.faults = faults
        self.log = log
        self.overview = overview
        self._stop = stop
        self._deliveries: list[Delivery] = []
        self._in_flight = 0
        self._cv = threading.Condition()

    def enqueue(self, deliveries: list[Delivery]) -> None:
        with self._cv:
            for delivery in deliveries:
                heapq.heappush(self._deliveries, delivery)
            self._cv.notify_all()

    def queued(self) -> int:
        """Deliveries queued or in flight."""
        return len(self._deliveries) + self._in_flight

    def wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until no webhook delivery is queued or in flight (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while self._deliveries or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(min(remaining, 0.05))
        return True

    def work(self) -> None:
        s = self.settings
        with httpx.Client(timeout=s.webhook_timeout_s) as client:
            while not self._stop.is_set():
                with self._cv:
                    if not self._deliveries:
                        self._cv.wait(0.2)
                        continue
                    wait = self._deliveries[0].due - time.monotonic()
                    if wait > 0:
                        self._cv.wait(min(wait, 0.2))
                        continue
                    delivery = heapq.heappop(self._deliveries)
                    self._in_flight += 1
                try:
                    self._attempt(client, delivery)
                finally:
                    with self._cv:
                        self._in_flight -= 1
                        self._cv.notify_all()

    def _attempt(self, client: httpx.Client, delivery: Delivery) -> None:
        s = self.settings
        delivery.attempt += 1
        retry_after: float | None = None
        if self.faults.take("webhook_failure"):
            problem = "injected delivery failure"
        else:
            try:
                response = client.request(
                    delivery.method, delivery.hook_url, content=delivery.body, headers=delivery.headers
                )
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code < 300:
                    self._delivered(delivery)
                    return
                if response.status_code != 429 and response.status_code < 500:
                    self._give_up(delivery, f"HTTP {response.status_code} (not retried)")
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    try:
                        retry_after = float(response.headers.get("retry-after", ""))
                    except ValueError:
                        retry_after = None
        if delivery.attempt >= s.webhook_max_attempts:
            self._give_up(delivery, f"{problem} after {delivery.attempt} attempts")
            return
        backoff = min(s.webhook_max_backoff_s, s.webhook_initial_backoff_s * 2 ** (delivery.attempt - 1))
        if retry_after is not None:
            backoff = min(s.webhook_max_backoff_s, max(backoff, retry_after))
        delivery.due = time.monotonic() + backoff
        with self.store.lock:
            self.store.counters["webhook_retried"] += 1
        self.enqueue([delivery])

    def _delivered(self, delivery: Delivery) -> None:
        store = self.store
        with store.lock:
            store.counters["webhook_delivered"] += 1
            store.add_path(delivery.message_id, f"webhook:{delivery.destination_id}")
            source_id = store.destinations.get(delivery.destination_id, {}).get("sourceId")
        self.overview.delivered(source_id, delivery.destination_id, delivery.body, utcnow(), delivery.attempt)

    def _give_up(self, delivery: Delivery, why: str) -> None:
        store = self.store
        with store.lock:
            store.counters["webhook_gave_up"] += 1
            store.add_path(delivery.message_id, f"webhook_failed:{delivery.destination_id}")
            source_id = store.destinations.get(delivery.destination_id, {}).get("sourceId")
        self.overview.failed(source_id, delivery.destination_id, delivery.body, utcnow(), discard_reason(why))
        self.log.append(
            "webhook",
            outcome="gave_up",
            destinationId=delivery.destination_id,
            messageId=delivery.message_id,
            reason=why,
        )
