"""The Tracking API (write key as basic-auth user name, or `writeKey` in the body): POST /v1/batch, /v1/track,
/v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias; and what happens to an accepted event.

An event received on a source is queued for the warehouse when the source is connected to an enabled warehouse,
and queued for delivery to each hook of every enabled Webhooks destination on the source. With neither path open
it is recorded in the ledger as dropped."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.common import RequestLog, isoformat_z, utcnow
from sandbox.ledger import Ledger
from sandbox.segment.delivery import Delivery, WebhookDelivery
from sandbox.segment.delivery_overview import DeliveryOverviewRecorder
from sandbox.segment.store import SegmentStore
from sandbox.segment.webhooks import webhook_requests
from sandbox.warehouse import TABLE_BY_TYPE

__all__ = ["Intake", "router"]

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
SINGLE_EVENT_PATHS = ("track", "identify", "page", "screen", "group", "alias")


class Intake:
    """Where accepted events go: the warehouse queue, the webhook queue, or the ledger's dropped list."""

    def __init__(
        self,
        store: SegmentStore,
        overview: DeliveryOverviewRecorder,
        delivery: WebhookDelivery,
        ledger: Ledger | None,
    ):
        self.store = store
        self.overview = overview
        self.delivery = delivery
        self.ledger = ledger

    def receive(self, source_id: str, events: list[dict[str, Any]]) -> None:
        """Accept validated events on a source (the Tracking API calls this)."""
        dropped = []
        deliveries: list[Delivery] = []
        received_moment = utcnow()
        received_at = isoformat_z(received_moment)
        store = self.store
        with store.lock:
            open_warehouses = store.open_warehouses(source_id)
            hooks = store.enabled_webhooks(source_id)
            for event in events:
                event["receivedAt"] = received_at
                mid = event["messageId"]
                self.overview.received(source_id, event, received_moment)
                store.counters["received"] += 1
                store.add_path(mid, f"received:{source_id}")
                if open_warehouses:
                    store.pending[source_id].append((next(store.ids), event))
                    store.add_path(mid, "queued_for_warehouse")
                queued = self._queue_webhooks(hooks, event, deliveries)
                if not open_warehouses and not queued:
                    store.counters["dropped"] += 1
                    store.add_path(mid, "dropped")
                    dropped.append(
                        {
                            "message_id": mid,
                            "at": received_at,
                            "reason": f"source {source_id} reaches no enabled warehouse and no enabled webhook "
                            "(mapping) selects it",
                        }
                    )
        if deliveries:
            self.delivery.enqueue(deliveries)
        if dropped and self.ledger is not None:
            self.ledger.record_dropped_many(dropped)

    def _queue_webhooks(
        self, hooks: list[dict[str, Any]], event: dict[str, Any], deliveries: list[Delivery]
    ) -> int:
        """Add the requests the enabled Webhooks destinations send for one event; returns how many."""
        store = self.store
        mid = event["messageId"]
        body = json.dumps(event, separators=(",", ":")).encode()
        queued = 0
        for dest in hooks:
            requests = webhook_requests(store.subscriptions, dest, event, body)
            for method, url, headers, content in requests:
                deliveries.append(
                    Delivery(
                        time.monotonic(),
                        next(store.ids),
                        dest["id"],
                        url,
                        headers,
                        content,
                        mid,
                        method=method,
                    )
                )
            if requests:
                queued += len(requests)
                store.add_path(mid, f"queued_for_webhook:{dest['id']}")
        return queued


class _TrackingError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _tracking_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "message": message}, status_code=status)


def _authenticate_write_key(write_keys: dict[str, str], request: Request, body: dict[str, Any]) -> str:
    key = None
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            key = base64.b64decode(value.strip()).decode().partition(":")[0]
        except (ValueError, binascii.Error, UnicodeDecodeError):
            key = None
    key = key or body.get("writeKey")
    source_id = write_keys.get(key or "")
    if source_id is None:
        raise _TrackingError(
            401, "Invalid write key: send the source's write key as the basic-auth user name"
        )
    return source_id


def _normalise(message: Any, envelope: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise _TrackingError(400, f"Each message must be an object, got {type(message).__name__}")
    event = dict(message)
    event.pop("writeKey", None)
    event_type = str(event.get("type") or "").lower()
    if event_type not in TABLE_BY_TYPE:
        raise _TrackingError(400, f"Message type {event.get('type')!r} is not one of {sorted(TABLE_BY_TYPE)}")
    event["type"] = event_type
    if len(json.dumps(event)) > MAX_EVENT_BYTES:
        raise _TrackingError(400, f"A message is larger than {MAX_EVENT_BYTES} bytes")
    if not event.get("userId") and not event.get("anonymousId"):
        raise _TrackingError(400, "Each message needs a userId or an anonymousId")
    required = {"track": "event", "group": "groupId", "alias": "previousId"}.get(event_type)
    if required and not event.get(required):
        raise _TrackingError(400, f"A {event_type} message needs {required!r}")
    event["messageId"] = str(event.get("messageId") or f"seg-emu-{uuid.uuid4()}")
    if not event.get("sentAt") and envelope.get("sentAt"):
        event["sentAt"] = envelope["sentAt"]
    if envelope.get("context") and isinstance(envelope["context"], dict):
        event["context"] = {**envelope["context"], **(event.get("context") or {})}
    return event


def router(write_keys: dict[str, str], intake: Intake, log: RequestLog) -> APIRouter:
    """POST /v1/batch and one route per single-event type (no Bearer auth: the write key authenticates)."""
    api = APIRouter()

    async def tracking(request: Request, kind: str) -> JSONResponse:
        raw = await request.body()
        if request.headers.get("content-encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                return _tracking_error(400, "Body is marked gzip but is not valid gzip")
        if len(raw) > MAX_BATCH_BYTES:
            return _tracking_error(400, f"Batch is {len(raw)} bytes; the limit is {MAX_BATCH_BYTES}")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _tracking_error(400, "Body is not valid JSON")
        if not isinstance(body, dict):
            return _tracking_error(400, "Body must be a JSON object")
        try:
            source_id = _authenticate_write_key(write_keys, request, body)
            if kind == "batch":
                messages = body.get("batch")
                if not isinstance(messages, list):
                    raise _TrackingError(400, "Expected {'batch': [...]} with a list of messages")
            else:
                messages = [{**body, "type": kind}]
            events = [_normalise(m, body) for m in messages]
        except _TrackingError as exc:
            return _tracking_error(exc.status, exc.message)
        log.append("track", path=request.url.path, sourceId=source_id, count=len(events))
        intake.receive(source_id, events)
        return JSONResponse({"success": True})

    @api.post("/v1/batch")
    async def track_batch(request: Request):
        return await tracking(request, "batch")

    def single_event_route(kind: str):
        async def single(request: Request):
            return await tracking(request, kind)

        return single

    for kind in SINGLE_EVENT_PATHS:
        api.add_api_route(f"/v1/{kind}", single_event_route(kind), methods=["POST"], name=f"tracking_{kind}")
    return api
