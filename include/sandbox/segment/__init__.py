"""A local Segment: Public API subset, Tracking API, scheduled warehouse loads, Webhooks (Actions) and classic Webhooks.

Speaks the contracts in docs/design.md section 3 over real HTTP (FastAPI; run it with `ServerThread`):

Public API (Bearer token; `{"data": ...}`; errors `{"errors": [{"type", "message", "field"?, "data"?}]}` (SDK model
RequestErrorEnvelope), invalid input 422 and unknown ids 404 (the status codes the SDK's *_api.py response maps
declare); X-RateLimit-Consumed/-Remaining/-Reset (an RFC 5322 date) on every answer, 429 with Retry-After and
`errors[0].data.msBeforeNext` (https://docs.segmentapis.com/tag/Rate-Limits)). Answers are shaped as the SDK's
models (segmentio/public-api-sdk-python, segment_public_api/models/*.py; tests/contract checks them):
  GET/PATCH /warehouses/{id}, GET /warehouses/{id}/syncs, GET /warehouses/{id}/connected-sources/{sid}/syncs
  (limited to `sync_list_per_minute`, 429 + Retry-After), GET /warehouses/{id}/advanced-sync-schedule,
  POST/DELETE /warehouses/{id}/connected-sources/{sid}, GET /sources/{id}, /sources/{id}/connected-destinations,
  /sources/{id}/connected-warehouses, POST /destinations, GET/PATCH/DELETE /destinations/{id},
  POST/GET /destinations/{id}/subscriptions, GET/PATCH/DELETE /destinations/{id}/subscriptions/{sid} (mappings;
  writes limited to `subscription_writes_per_minute`, 5 as Segment's DestinationsApi docs say).
  GET /functions?resourceType=, GET /tracking-plans, GET /tracking-plans/{id}/sources (what stays on Segment;
  the workspace seeds in settings.py).
Tracking API (write key as basic-auth user name, or `writeKey` in the body):
  POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias.
Control (no auth, 127.0.0.1 only): POST/DELETE /sandbox/faults, GET /sandbox/log, GET /sandbox/state,
  POST /sandbox/loads/run, GET /sandbox/events/{messageId}.

One module per resource, each a FastAPI router over the narrow `SegmentStore` (store.py) it is handed:
workspace.py, warehouses.py (with syncs and the advanced sync schedule), sources.py, destinations.py, functions.py,
tracking_plans.py,
subscriptions.py, tracking.py, delivery_overview.py, control.py. Behind them: api.py (auth, rate limits,
pagination, the change record), webhooks.py (what a Webhooks destination is and sends), loads.py (scheduled
warehouse loads), delivery.py (webhook delivery with retries); catalog.py holds the catalog data and settings.py
the seeds and settings; emulator.py puts them together.

Behaviour:
- An event received on a source is queued for the warehouse when the source is connected to an enabled
  warehouse, and queued for delivery to each hook of every enabled Webhooks destination on the source.
  With neither path open it is recorded in the ledger as dropped.
- Every `load_interval_s` (and on POST /sandbox/loads/run) each enabled warehouse runs a load: it takes
  the events received before the load started, keeps a report with `end: null` for `load_duration_s`,
  then writes them with `Warehouse.load_segment` (Segment's documented rules) into each source's schema and closes one report per
  source (Success / Partial / Failure). Faults "load_failure" (nothing written, events stay queued) and
  "load_partial" (half written, the rest waits for the next load) apply to the next load.
- Disabling the warehouse (or disconnecting a source) stops loads; events still queued for it are not
  loaded by Segment. A load already running finishes.
- Webhooks destinations: Webhooks (Actions) (settings: only sharedSecret) sends one request per event for
  each enabled mapping whose FQL trigger selects the event's type: method and URL from the mapping, body =
  its `data` resolved against the event (`{"@path": "$."}`: the whole event; a JSON array when
  `enable_batching` is on). Classic Webhooks (refused unless `classic_webhooks_available`: it is maintenance
  and private in Segment's catalog) POSTs the event to each hook. `X-Signature` = hex HMAC-SHA1(sharedSecret,
  body); 5xx / 429 / connection errors retried with exponential backoff up to `webhook_max_attempts`.
  Disabling a destination or mapping stops delivery of events received afterwards; queued ones are still
  delivered.
- `.log` records every mutating API call (with before/after), every load start/end, warehouse queue
  discards and webhook give-ups, so tests can check the order of switches from the emulator's own record.
"""

from __future__ import annotations

from sandbox.segment.catalog import SEND_ACTION_ID, WEBHOOKS_ACTIONS_METADATA_ID, WEBHOOKS_METADATA_ID
from sandbox.segment.emulator import SegmentEmulator
from sandbox.segment.settings import SegmentSettings, SourceSeed, WarehouseSeed
from sandbox.segment.webhooks import sign_webhook_body

__all__ = [
    "SEND_ACTION_ID",
    "WEBHOOKS_ACTIONS_METADATA_ID",
    "WEBHOOKS_METADATA_ID",
    "SegmentEmulator",
    "SegmentSettings",
    "SourceSeed",
    "WarehouseSeed",
    "sign_webhook_body",
]
