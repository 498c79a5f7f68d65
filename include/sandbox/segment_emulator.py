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
Tracking API (write key as basic-auth user name, or `writeKey` in the body):
  POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias.
Control (no auth, 127.0.0.1 only): POST/DELETE /sandbox/faults, GET /sandbox/log, GET /sandbox/state,
  POST /sandbox/loads/run, GET /sandbox/events/{messageId}.

Behaviour:
- An event received on a source is queued for the warehouse when the source is connected to an enabled
  warehouse, and queued for delivery to each hook of every enabled Webhooks destination on the source.
  With neither path open it is recorded in the ledger as dropped.
- Every `load_interval_s` (and on POST /sandbox/loads/run) each enabled warehouse runs a load: it takes
  the events received before the load started, keeps a report with `end: null` for `load_duration_s`,
  then writes them with `Warehouse.load(merge=False)` into each source's schema and closes one report per
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

import base64
import binascii
import email.utils
import gzip
import hashlib
import heapq
import hmac
import itertools
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import (
    ApiError,
    FaultInjector,
    RequestLog,
    bearer_auth_dependency,
    fault_middleware,
    install_api_error_handler,
    isoformat_z,
    json_body_or_none,
    redact,
    utcnow,
)
from sandbox.ledger import Ledger
from sandbox.segment_delivery_overview import (
    DeliveryOverviewRecorder,
    discard_reason,
    install_delivery_overview,
)
from sandbox.warehouse import TABLE_BY_TYPE, Warehouse, WarehouseError

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

WEBHOOKS_METADATA_ID = "54521fdc25e721e32a72ef04"  # classic Webhooks (segment-docs catalog/webhooks/index.md)
WEBHOOKS_ACTIONS_METADATA_ID = (
    "614a3c7d791c91c41bae7599"  # Webhooks (Actions) (segment-docs destinations.yml)
)
SEND_ACTION_ID = "nFPnRozhz1mh4Gbx4MLvT5"  # its "Send" action (same catalog entry)
MAX_MAPPINGS = 5  # "You can create up to 5 mappings" (segment-docs catalog/actions-webhook/index.md)
MAX_HOOKS = 5
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
SINGLE_EVENT_PATHS = ("track", "identify", "page", "screen", "group", "alias")
LOGO = {"default": "https://cdn-devcenter.segment.com/sandbox.svg", "mark": None, "alt": None}  # LogosBeta


def _metadata_v1(
    metadata_id: str,
    slug: str,
    name: str,
    *,
    description: str,
    categories: list[str],
    options: list[dict[str, Any]],
    actions: list[dict[str, Any]],
    status: str = "PUBLIC",
    previous_names: list[str] | None = None,
) -> dict[str, Any]:
    """A complete `DestinationMetadataV1` (SDK model `destination_metadata_v1.py`: every required field present)."""
    return {
        "id": metadata_id,
        "name": name,
        "description": description,
        "slug": slug,
        "logos": dict(LOGO),
        "options": options,
        "status": status,
        "previousNames": previous_names or [name],
        "categories": categories,
        "website": f"https://segment.com/docs/connections/destinations/catalog/{slug}",
        "components": [],
        "supportedFeatures": {
            "cloudModeInstances": "MULTIPLE",
            "deviceModeInstances": "NONE",
            "replay": False,
            "browserUnbundling": False,
            "browserUnbundlingPublic": False,
        },
        "supportedMethods": {"pageview": True, "identify": True, "alias": True, "track": True, "group": True},
        "supportedPlatforms": {"browser": True, "server": True, "mobile": False, "warehouse": True},
        "actions": actions,
        "presets": [],
    }


_SHARED_SECRET_OPTION = {  # IntegrationOptionBeta; from segment-docs src/_data/catalog/destinations.yml
    "name": "sharedSecret",
    "type": "password",
    "required": False,
    "defaultValue": "",
    "label": "Shared Secret",
    "description": 'If set, Segment will sign requests with an HMAC in the "X-Signature" request header.',
}
# Classic Webhooks: segment-docs src/connections/destinations/catalog/webhooks/index.md (maintenance, private).
CLASSIC_WEBHOOKS_METADATA = _metadata_v1(
    WEBHOOKS_METADATA_ID,
    "webhooks",
    "Webhooks",
    description="Send events to up to five webhook URLs.",
    categories=["Raw Data"],
    status="PUBLIC",
    actions=[],
    options=[
        {
            "name": "hooks",
            "type": "array",
            "required": False,
            "label": "Webhooks",
            "description": "Up to 5 webhook URLs with headers",
        },
        _SHARED_SECRET_OPTION,
    ],
)


def _action_field(
    field_id: str,
    order: int,
    key: str,
    label: str,
    kind: str,
    description: str,
    *,
    required: bool = False,
    default: Any = None,
    choices: Any = None,
) -> dict[str, Any]:
    """A `DestinationMetadataActionFieldV1` (SDK model destination_metadata_action_field_v1.py)."""
    return {
        "id": field_id,
        "sortOrder": order,
        "fieldKey": key,
        "label": label,
        "type": kind,
        "description": description,
        "placeholder": "",
        "defaultValue": default,
        "required": required,
        "multiple": False,
        "choices": choices,
        "dynamic": False,
        "allowNull": False,
        "hidden": False,
    }


# Webhooks (Actions) as segment-docs src/_data/catalog/destinations.yml lists it (id 614a3c7d791c91c41bae7599):
# settings only sharedSecret; one action "Send" with fields url, method, batch_size, headers, data, enable_batching.
SEND_FIELDS = [
    _action_field(
        "chABtpe8R3Fuff394fGrRE", 0, "url", "URL", "STRING", "URL to deliver data to.", required=True
    ),
    _action_field(
        "qWdhkvZC25kbeusBhUsQqD",
        1,
        "method",
        "Method",
        "STRING",
        "HTTP method to use.",
        required=True,
        default="POST",
        choices=[{"label": m, "value": m} for m in ("POST", "PUT", "PATCH")],
    ),
    _action_field(
        "xmwgA3k9zNsGzr9GETqqrJ",
        2,
        "batch_size",
        "Batch Size",
        "NUMBER",
        "Maximum number of events to include in each batch. Actual batch sizes may be lower.",
        default=0,
    ),
    _action_field(
        "p1hvcNQBwuGqeUKzUnTPWi",
        3,
        "headers",
        "Headers",
        "OBJECT",
        "HTTP headers to send with each request. Only ASCII characters are supported.",
    ),
    _action_field(
        "aR2f2X4hcT2nedjMJt3j3e",
        4,
        "data",
        "Data",
        "OBJECT",
        "Payload to deliver to webhook URL (JSON-encoded).",
        default={"@path": "$."},
    ),
    _action_field(
        "hguDY3MfapSaUior43bzE3",
        6,
        "enable_batching",
        "Enable Batching?",
        "BOOLEAN",
        "When enabled, Segment will send events in batches.",
        default=False,
    ),
]
WEBHOOKS_ACTIONS_METADATA = _metadata_v1(
    WEBHOOKS_ACTIONS_METADATA_ID,
    "actions-webhook",
    "Webhooks (Actions)",
    description="Send events to your own HTTP endpoints through mappings.",
    categories=["Raw Data"],
    previous_names=["Webhook", "Webhooks (Actions)"],
    options=[_SHARED_SECRET_OPTION],
    actions=[
        {
            "id": SEND_ACTION_ID,
            "slug": "send",
            "name": "Send",
            "description": "Send an HTTP request.",
            "platform": "CLOUD",
            "hidden": False,
            "defaultTrigger": None,
            "fields": SEND_FIELDS,
        }
    ],
)
_FQL_TYPE_TERM = re.compile(r"""^\(?\s*type\s*=\s*(?:"([a-z]+)"|'([a-z]+)')\s*\)?$""")


def trigger_event_types(trigger: Any) -> frozenset[str]:
    """The event types an FQL trigger selects. The sandbox understands only `type = "<type>"` terms joined by
    `or` (segment-docs src/api/public-api/fql.md); any other FQL is refused (stricter than Segment, noted)."""
    if not isinstance(trigger, str) or not trigger.strip():
        raise ApiError(422, "validation", "trigger must be a non-empty FQL string", field="trigger")
    kinds = set()
    for term in re.split(r"\s+or\s+", trigger.strip().removeprefix("(").removesuffix(")")):
        match = _FQL_TYPE_TERM.match(term.strip())
        kind = (match.group(1) or match.group(2)) if match else None
        if kind not in TABLE_BY_TYPE:
            raise ApiError(
                422,
                "validation",
                f"trigger {trigger!r}: the sandbox understands only FQL like "
                '`type = "track" or type = "identify"` with Segment event types',
                field="trigger",
            )
        kinds.add(kind)
    return frozenset(kinds)


def _resolve_mapping(value: Any, event: dict[str, Any]) -> Any:
    """Segment's mapping directives, the subset the sandbox speaks: `{"@path": "$.a.b"}` (`"$."`: the whole
    event); objects and lists resolved member by member; anything else is a literal."""
    if isinstance(value, dict) and set(value) == {"@path"}:
        current: Any = event
        for part in [p for p in str(value["@path"]).removeprefix("$").split(".") if p]:
            current = current.get(part) if isinstance(current, dict) else None
        return current
    if isinstance(value, dict):
        return {k: _resolve_mapping(v, event) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_mapping(v, event) for v in value]
    return value


def _check_directives(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("@") and key != "@path":
                raise ApiError(
                    422,
                    "validation",
                    f"{where}: the sandbox supports only the @path directive, not {key}",
                    field="settings",
                )
            _check_directives(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _check_directives(item, f"{where}[{n}]")


_URL_KEY = re.compile(r"((?:writeKey|write_key|key|token)=)[^&\s\"']+", re.IGNORECASE)


def _mask_url_keys(value: Any) -> Any:
    """A copy with credentials in URL query strings (`?writeKey=...`) replaced by `***` (for the emulator's log)."""
    if isinstance(value, str):
        return _URL_KEY.sub(r"\1***", value)
    if isinstance(value, dict):
        return {k: _mask_url_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_url_keys(v) for v in value]
    return value


def sign_webhook_body(shared_secret: str, body: bytes) -> str:
    """The `X-Signature` a classic Webhooks destination sends: hex HMAC-SHA1 of the raw body."""
    return hmac.new(shared_secret.encode(), body, hashlib.sha1).hexdigest()


@dataclass
class SourceSeed:
    id: str
    slug: str
    name: str
    write_key: str
    schema: str


@dataclass
class WarehouseSeed:
    id: str = "wh_sandbox_pg"
    enabled: bool = True
    name: str = "Postgres"
    connected_sources: list[str] = field(default_factory=lambda: ["src_web_app", "src_backend"])


def _default_sources() -> list[SourceSeed]:
    return [
        SourceSeed("src_web_app", "web_app", "Web App", "wk_seg_web_app", "app_events"),
        SourceSeed("src_backend", "backend", "Backend", "wk_seg_backend", "app_events"),
    ]


@dataclass
class SegmentSettings:
    token: str = "sandbox-segment-token"
    workspace_id: str = "ws_sandbox"
    warehouses: list[WarehouseSeed] = field(default_factory=lambda: [WarehouseSeed()])
    sources: list[SourceSeed] = field(default_factory=_default_sources)
    load_interval_s: float | None = 5.0  # None or 0: loads run only when forced (POST /sandbox/loads/run)
    load_duration_s: float = 1.5
    sync_list_per_minute: int = 2
    api_requests_per_minute: int = 6000
    rate_window_s: float = 60.0
    page_size: int = 200
    webhook_max_attempts: int = 8
    webhook_initial_backoff_s: float = 0.5
    webhook_max_backoff_s: float = 30.0
    webhook_timeout_s: float = 5.0
    webhook_workers: int = 2
    advanced_sync_schedule: dict[str, Any] | None = None
    # Classic Webhooks is "maintenance" and "private" in Segment's catalog: new workspaces may not be able to
    # create it. False (the stricter default) refuses it like a workspace without it; Webhooks (Actions) works.
    classic_webhooks_available: bool = False
    # Destination subscription create/update/remove: "The rate limit for this endpoint is 5 requests per minute"
    # (segmentio/public-api-sdk-python docs/DestinationsApi.md).
    subscription_writes_per_minute: int = 5


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    destination_id: str = field(compare=False)
    hook_url: str = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    body: bytes = field(compare=False)
    message_id: str = field(compare=False)
    attempt: int = field(compare=False, default=0)
    method: str = field(compare=False, default="POST")


def _human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs}s"


def _notice(level: str, message: str) -> dict[str, Any]:
    """A `SyncNoticeV1` (SDK model sync_notice_v1.py): {level, message, createdAt}. Segment does not document
    the level values; the sandbox uses ERROR and WARNING."""
    return {"level": level, "message": message, "createdAt": isoformat_z(utcnow())}


def _render_report(report: dict[str, Any]) -> dict[str, Any]:
    """A copy of a sync report as the API answers it: a running sync's partial duration counted up to now."""
    rendered = dict(report, notices=[dict(n) for n in report["notices"]])
    if rendered["end"] is None:
        seconds = max(0.0, (utcnow() - datetime.fromisoformat(rendered["start"])).total_seconds())
        rendered.update(duration=round(seconds, 3), humanDuration=_human_duration(seconds))
    return rendered


def _rfc5322(moment: datetime) -> str:
    """`X-RateLimit-Reset` as Segment sends it: an RFC 5322 date (https://docs.segmentapis.com/tag/Rate-Limits)."""
    return email.utils.format_datetime(moment, usegmt=True)


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        offset = int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        offset = -1
    if offset < 0:
        raise ApiError(422, "validation", f"pagination.cursor {cursor!r} is not a cursor this API returned")
    return offset


class SegmentEmulator:
    """The Segment emulator; see the module docstring. `warehouse`/`ledger` may be shared with others."""

    def __init__(self, settings: SegmentSettings, warehouse: Warehouse, ledger: Ledger | None):
        self.settings = settings
        self.warehouse = warehouse
        self.ledger = ledger
        self.faults = FaultInjector()
        self.log = RequestLog()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._sources: dict[str, dict[str, Any]] = {}
        self._write_keys: dict[str, str] = {}
        self._warehouses: dict[str, dict[str, Any]] = {}
        self._connections: dict[str, set[str]] = {}
        self._destinations: dict[str, dict[str, Any]] = {}
        self._subscriptions: dict[
            str, dict[str, dict[str, Any]]
        ] = {}  # destination id -> mapping id -> mapping
        self._pending: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._reports: dict[str, list[dict[str, Any]]] = {}
        self._running: dict[str, dict[str, Any]] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._paths: dict[str, list[str]] = {}
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "received",
                "loaded",
                "dropped",
                "not_loaded",
                "webhook_delivered",
                "webhook_retried",
                "webhook_gave_up",
                "loads",
            ),
            0,
        )
        self._rate: dict[str, deque[float]] = {}
        self._deliveries: list[_Delivery] = []
        self._in_flight = 0
        self._delivery_cv = threading.Condition()
        self._stop = threading.Event()
        self._wake_loads = threading.Event()
        self._threads: list[threading.Thread] = []
        self.delivery_overview = DeliveryOverviewRecorder()  # Delivery Overview metrics (beta Public API)
        self._seed()
        self.app = self._build_app()

    # ============================================================================== seeds & state

    def _seed(self) -> None:
        s = self.settings
        for seed in s.sources:
            self._sources[seed.id] = {
                "id": seed.id,
                "slug": seed.slug,
                "name": seed.name,
                "workspaceId": s.workspace_id,
                "enabled": True,
                "writeKeys": [seed.write_key],
                "labels": [],
                # SourceMetadataV1 (SDK model source_metadata_v1.py): every required field.
                "metadata": {
                    "id": "IqDTy1TpoU",
                    "slug": "javascript",
                    "name": "Javascript",
                    "description": "Analytics.js, Segment's JavaScript source",
                    "logos": dict(LOGO),
                    "options": [],
                    "categories": ["Website"],
                    "isCloudEventSource": False,
                    "status": "PUBLIC",
                },
                "settings": {},
                "schema": seed.schema,
            }
            self._write_keys[seed.write_key] = seed.id
            self._pending[seed.id] = []
        for seed in s.warehouses:
            self._warehouses[seed.id] = {
                "id": seed.id,
                "workspaceId": s.workspace_id,
                "enabled": seed.enabled,
                # WarehouseMetadataV1 (SDK model warehouse_metadata_v1.py): id, name, slug, description,
                # logos (LogosBeta: `default` required), options (IntegrationOptionBeta list).
                "metadata": {
                    "id": "aea3cde9-5e9f-4b2a-8fe6-0ae7cbe1e3b6",
                    "slug": "postgres",
                    "name": "Postgres",
                    "description": "PostgreSQL warehouse (sandbox)",
                    "logos": dict(LOGO),
                    "options": [
                        {
                            "name": "hostname",
                            "type": "string",
                            "required": True,
                            "description": "Host of the database",
                            "label": "Host",
                        }
                    ],
                },
                "settings": {"name": seed.name, "database": "postgres"},
            }
            unknown = [sid for sid in seed.connected_sources if sid not in self._sources]
            if unknown:
                raise ValueError(
                    f"warehouse seed {seed.id!r} connects unknown sources {unknown}; "
                    f"known sources are {sorted(self._sources)}"
                )
            self._connections[seed.id] = set(seed.connected_sources)
            self._reports[seed.id] = []
            self._load_locks[seed.id] = threading.Lock()

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}{uuid.uuid4().hex[:8]}"

    def _open_warehouses(self, source_id: str) -> list[str]:
        return [
            wid
            for wid, srcs in self._connections.items()
            if source_id in srcs and self._warehouses[wid]["enabled"]
        ]

    def _enabled_webhooks(self, source_id: str) -> list[dict[str, Any]]:
        kinds = (WEBHOOKS_METADATA_ID, WEBHOOKS_ACTIONS_METADATA_ID)
        return [
            d
            for d in self._destinations.values()
            if d["sourceId"] == source_id and d["enabled"] and d["metadata"]["id"] in kinds
        ]

    def _webhook_requests(
        self, destination: dict[str, Any], event: dict[str, Any], body: bytes
    ) -> list[tuple[str, str, dict[str, str], bytes]]:
        """(method, url, headers, body) of each request an enabled Webhooks destination sends for one event.

        Classic: one POST of the event to each hook. Webhooks (Actions): one request per enabled mapping whose
        trigger selects the event's type, its body the mapping's `data` resolved against the event (a JSON array
        when `enable_batching` is on); with a sharedSecret, `X-Signature` = hex HMAC-SHA1 of the body
        (segment-docs catalog/actions-webhook/index.md)."""
        settings = destination["settings"]
        secret = settings.get("sharedSecret")
        requests: list[tuple[str, str, dict[str, str], bytes]] = []
        if destination["metadata"]["id"] == WEBHOOKS_METADATA_ID:
            for hook in settings.get("hooks", []):
                headers = {"Content-Type": "application/json", "User-Agent": "Segment.io/1.0"}
                headers.update({h["key"]: h["value"] for h in hook.get("headers") or []})
                if secret:
                    headers["X-Signature"] = sign_webhook_body(secret, body)
                requests.append(("POST", hook["hook"], headers, body))
            return requests
        for mapping in self._subscriptions.get(destination["id"], {}).values():
            if not mapping["enabled"] or event.get("type") not in trigger_event_types(mapping["trigger"]):
                continue
            ms = mapping["settings"]
            payload = _resolve_mapping(ms.get("data", {"@path": "$."}), event)
            if ms.get("enable_batching"):
                payload = [payload]
            content = json.dumps(payload, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", "User-Agent": "Segment (Actions)"}
            headers.update({str(k): str(v) for k, v in (ms.get("headers") or {}).items()})
            if secret:
                headers["X-Signature"] = sign_webhook_body(secret, content)
            requests.append((ms.get("method", "POST"), ms["url"], headers, content))
        return requests

    def _add_path(self, message_id: str, path: str) -> None:
        self._paths.setdefault(message_id, []).append(path)

    def paths(self, message_id: str) -> list[str]:
        """The paths one event took, in order: received, queued_for_warehouse, loaded:<wh>, webhook:<dest>, ..."""
        with self._lock:
            return list(self._paths.get(message_id, []))

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "warehouses": [
                    {
                        **redact(w),
                        "connectedSources": sorted(self._connections[w["id"]]),
                        "running": self._running.get(w["id"]),
                    }
                    for w in self._warehouses.values()
                ],
                "sources": [
                    {
                        "id": s["id"],
                        "slug": s["slug"],
                        "schema": s["schema"],
                        "pending": len(self._pending[s["id"]]),
                    }
                    for s in self._sources.values()
                ],
                "destinations": [
                    {
                        **redact(d),
                        "subscriptions": [dict(m) for m in self._subscriptions.get(d["id"], {}).values()],
                    }
                    for d in self._destinations.values()
                ],
                "counters": dict(self._counters),
                "webhookQueue": len(self._deliveries) + self._in_flight,
                "faults": self.faults.state(),
            }

    # ============================================================================== background

    def start_background(self) -> None:
        """Start the load scheduler (when `load_interval_s` is set) and the webhook delivery workers."""
        if self._threads:
            return
        self._stop.clear()
        if self.settings.load_interval_s:
            self._threads.append(
                threading.Thread(target=self._schedule_loads, name="segment-loads", daemon=True)
            )
        for n in range(max(1, self.settings.webhook_workers)):
            self._threads.append(
                threading.Thread(target=self._deliver_webhooks, name=f"segment-webhook-{n}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop_background(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake_loads.set()
        with self._delivery_cv:
            self._delivery_cv.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def wait_webhooks_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until no webhook delivery is queued or in flight (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout_s
        with self._delivery_cv:
            while self._deliveries or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._delivery_cv.wait(min(remaining, 0.05))
        return True

    def _schedule_loads(self) -> None:
        interval = float(self.settings.load_interval_s or 0)
        while not self._stop.is_set():
            self._wake_loads.wait(interval)
            self._wake_loads.clear()
            if self._stop.is_set():
                return
            for warehouse_id in list(self._warehouses):
                try:
                    self.run_load(warehouse_id)
                except Exception as exc:  # a broken load must not kill the scheduler
                    self.log.append(
                        "load", phase="error", warehouseId=warehouse_id, error=f"{type(exc).__name__}: {exc}"
                    )

    # ============================================================================== loads

    def run_load(self, warehouse_id: str | None = None) -> list[dict[str, Any]]:
        """Run one load now for `warehouse_id` (default: every warehouse); returns the closed reports.

        Returns [] for a disabled warehouse. Blocks while another load of the same warehouse runs.
        """
        if warehouse_id is None:
            return [r for wid in list(self._warehouses) for r in self.run_load(wid)]
        if warehouse_id not in self._warehouses:
            raise KeyError(f"unknown warehouse {warehouse_id!r}; known: {sorted(self._warehouses)}")
        with self._load_locks[warehouse_id]:
            return self._run_load_locked(warehouse_id)

    def _run_load_locked(self, warehouse_id: str) -> list[dict[str, Any]]:
        with self._lock:
            if not self._warehouses[warehouse_id]["enabled"]:
                return []
            started = utcnow()
            taken: dict[str, list[tuple[int, dict[str, Any]]]] = {
                sid: list(self._pending[sid]) for sid in sorted(self._connections[warehouse_id])
            }
            reports = {}
            for sid in taken:
                # SyncV1 (SDK model sync_v1.py): duration (seconds) and humanDuration are required also while
                # the sync runs ("Returns the partial duration if the sync has not finished yet"); rendered live
                # by `_render_report`. The status enum is not documented: the sandbox says Running / Success /
                # Partial / Failure (the UI shows Success / Partial / Failure).
                report = {
                    "sourceId": sid,
                    "start": isoformat_z(started),
                    "end": None,
                    "status": "Running",
                    "duration": 0,
                    "humanDuration": _human_duration(0),
                    "count": 0,
                    "notices": [],
                }
                self._reports[warehouse_id].append(report)
                reports[sid] = report
            failure = self.faults.take("load_failure")
            partial = self.faults.take("load_partial")
            self._running[warehouse_id] = {"start": isoformat_z(started), "sources": sorted(taken)}
            self._counters["loads"] += 1
            self.log.append(
                "load",
                phase="start",
                warehouseId=warehouse_id,
                start=isoformat_z(started),
                sources=sorted(taken),
                events=sum(len(v) for v in taken.values()),
            )
        began = time.monotonic()
        self._stop.wait(self.settings.load_duration_s)  # the load "runs"; ends early only on shutdown

        outcome: dict[str, tuple[str, int, list[str], list[tuple[int, dict[str, Any]]]]] = {}
        for sid, items in taken.items():
            if failure:
                note = failure.get("message", "Injected failure: the warehouse rejected the load")
                outcome[sid] = ("Failure", 0, [_notice("ERROR", note)], [])
                continue
            chosen = items[: len(items) // 2] if partial and items else items
            notices = []
            if partial and items:
                notices.append(
                    _notice(
                        "WARNING",
                        f"Partial load: {len(items) - len(chosen)} of {len(items)} "
                        "events deferred to the next load (injected fault)",
                    )
                )
            try:
                result = self.warehouse.load(
                    self._sources[sid]["schema"], [e for _, e in chosen], merge=False
                )
            except WarehouseError as exc:
                outcome[sid] = ("Failure", 0, [_notice("ERROR", str(exc))], [])
                continue
            notices += [
                _notice("WARNING", f"rejected {r['messageId']}: {r['reason']}") for r in result.rejected
            ]
            status = "Partial" if (partial and items) or result.rejected else "Success"
            outcome[sid] = (status, result.events_loaded, notices, chosen)

        with self._lock:
            ended = utcnow()
            seconds = time.monotonic() - began
            for sid, (status, count, notices, chosen) in outcome.items():
                if chosen:
                    last = chosen[-1][0]
                    self._pending[sid] = [p for p in self._pending[sid] if p[0] > last]
                    for _, event in chosen:
                        self._add_path(event["messageId"], f"loaded:{warehouse_id}")
                self._counters["loaded"] += count
                reports[sid].update(
                    end=isoformat_z(ended),
                    status=status,
                    duration=round(seconds, 3),
                    humanDuration=_human_duration(seconds),
                    count=count,
                    notices=notices,
                )
            self._running.pop(warehouse_id, None)
            self.log.append(
                "load",
                phase="end",
                warehouseId=warehouse_id,
                end=isoformat_z(ended),
                statuses={sid: o[0] for sid, o in outcome.items()},
                counts={sid: o[1] for sid, o in outcome.items()},
            )
            return [_render_report(r) for r in reports.values()]

    def _discard_unreachable_pending(self, reason: str) -> None:
        """Events queued for sources that no longer reach an enabled warehouse are not loaded by Segment."""
        for sid, items in self._pending.items():
            if items and not self._open_warehouses(sid):
                for _, event in items:
                    self._add_path(event["messageId"], "not_loaded")
                self._counters["not_loaded"] += len(items)
                self.log.append("warehouse_queue", sourceId=sid, discarded=len(items), reason=reason)
                self._pending[sid] = []

    # ============================================================================== tracking

    def receive(self, source_id: str, events: list[dict[str, Any]]) -> None:
        """Accept validated events on a source (the Tracking API calls this)."""
        dropped = []
        deliveries = []
        received_moment = utcnow()
        received_at = isoformat_z(received_moment)
        with self._lock:
            open_warehouses = self._open_warehouses(source_id)
            hooks = self._enabled_webhooks(source_id)
            for event in events:
                event["receivedAt"] = received_at
                mid = event["messageId"]
                self.delivery_overview.received(source_id, event, received_moment)
                self._counters["received"] += 1
                self._add_path(mid, f"received:{source_id}")
                if open_warehouses:
                    self._pending[source_id].append((next(self._ids), event))
                    self._add_path(mid, "queued_for_warehouse")
                body = json.dumps(event, separators=(",", ":")).encode()
                queued = 0
                for dest in hooks:
                    requests = self._webhook_requests(dest, event, body)
                    for method, url, headers, content in requests:
                        deliveries.append(
                            _Delivery(
                                time.monotonic(),
                                next(self._ids),
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
                        self._add_path(mid, f"queued_for_webhook:{dest['id']}")
                if not open_warehouses and not queued:
                    self._counters["dropped"] += 1
                    self._add_path(mid, "dropped")
                    dropped.append(
                        {
                            "message_id": mid,
                            "at": received_at,
                            "reason": f"source {source_id} reaches no enabled warehouse and no enabled webhook "
                            "(mapping) selects it",
                        }
                    )
        if deliveries:
            with self._delivery_cv:
                for delivery in deliveries:
                    heapq.heappush(self._deliveries, delivery)
                self._delivery_cv.notify_all()
        if dropped and self.ledger is not None:
            self.ledger.record_dropped_many(dropped)

    def _authenticate_write_key(self, request: Request, body: dict[str, Any]) -> str:
        key = None
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and value:
            try:
                key = base64.b64decode(value.strip()).decode().partition(":")[0]
            except (ValueError, binascii.Error, UnicodeDecodeError):
                key = None
        key = key or body.get("writeKey")
        source_id = self._write_keys.get(key or "")
        if source_id is None:
            raise _TrackingError(
                401, "Invalid write key: send the source's write key as the basic-auth user name"
            )
        return source_id

    async def _tracking(self, request: Request, kind: str) -> JSONResponse:
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
            source_id = self._authenticate_write_key(request, body)
            if kind == "batch":
                messages = body.get("batch")
                if not isinstance(messages, list):
                    raise _TrackingError(400, "Expected {'batch': [...]} with a list of messages")
            else:
                messages = [{**body, "type": kind}]
            events = [self._normalise(m, body) for m in messages]
        except _TrackingError as exc:
            return _tracking_error(exc.status, exc.message)
        self.log.append("track", path=request.url.path, sourceId=source_id, count=len(events))
        self.receive(source_id, events)
        return JSONResponse({"success": True})

    @staticmethod
    def _normalise(message: Any, envelope: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(message, dict):
            raise _TrackingError(400, f"Each message must be an object, got {type(message).__name__}")
        event = dict(message)
        event.pop("writeKey", None)
        event_type = str(event.get("type") or "").lower()
        if event_type not in TABLE_BY_TYPE:
            raise _TrackingError(
                400, f"Message type {event.get('type')!r} is not one of {sorted(TABLE_BY_TYPE)}"
            )
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

    # ============================================================================== webhooks

    def _deliver_webhooks(self) -> None:
        s = self.settings
        with httpx.Client(timeout=s.webhook_timeout_s) as client:
            while not self._stop.is_set():
                with self._delivery_cv:
                    if not self._deliveries:
                        self._delivery_cv.wait(0.2)
                        continue
                    wait = self._deliveries[0].due - time.monotonic()
                    if wait > 0:
                        self._delivery_cv.wait(min(wait, 0.2))
                        continue
                    delivery = heapq.heappop(self._deliveries)
                    self._in_flight += 1
                try:
                    self._attempt(client, delivery)
                finally:
                    with self._delivery_cv:
                        self._in_flight -= 1
                        self._delivery_cv.notify_all()

    def _attempt(self, client: httpx.Client, delivery: _Delivery) -> None:
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
                    with self._lock:
                        self._counters["webhook_delivered"] += 1
                        self._add_path(delivery.message_id, f"webhook:{delivery.destination_id}")
                        source_id = self._destinations.get(delivery.destination_id, {}).get("sourceId")
                    self.delivery_overview.delivered(
                        source_id, delivery.destination_id, delivery.body, utcnow(), delivery.attempt
                    )
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
        with self._lock:
            self._counters["webhook_retried"] += 1
        with self._delivery_cv:
            heapq.heappush(self._deliveries, delivery)
            self._delivery_cv.notify_all()

    def _give_up(self, delivery: _Delivery, why: str) -> None:
        with self._lock:
            self._counters["webhook_gave_up"] += 1
            self._add_path(delivery.message_id, f"webhook_failed:{delivery.destination_id}")
            source_id = self._destinations.get(delivery.destination_id, {}).get("sourceId")
        self.delivery_overview.failed(
            source_id, delivery.destination_id, delivery.body, utcnow(), discard_reason(why)
        )
        self.log.append(
            "webhook",
            outcome="gave_up",
            destinationId=delivery.destination_id,
            messageId=delivery.message_id,
            reason=why,
        )

    # ============================================================================== public API helpers

    def _rate_limit(self, response: Response, key: str, limit: int) -> None:
        """Segment's rate limiting (https://docs.segmentapis.com/tag/Rate-Limits): every answer carries
        X-RateLimit-Consumed / -Remaining / -Reset (Reset: an RFC 5322 date, when the window resets); over the
        limit a 429 with `Retry-After` and a body whose error `data` holds msBeforeNext, remainingPoints and
        consumedPoints (see `_too_many_requests`)."""
        window = self.settings.rate_window_s
        now = time.monotonic()
        with self._lock:
            hits = self._rate.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            reset_in = (hits[0] + window - now) if hits else window
            if len(hits) >= limit:
                raise self._too_many_requests(reset_in, consumed=len(hits))
            hits.append(now)
            response.headers["X-RateLimit-Consumed"] = str(len(hits))
            response.headers["X-RateLimit-Remaining"] = str(limit - len(hits))
            response.headers["X-RateLimit-Reset"] = _rfc5322(self._reset_moment(reset_in))

    @staticmethod
    def _reset_moment(reset_in: float) -> datetime:
        # An RFC 5322 date has whole seconds: round up, so a client waiting until then is never early.
        return datetime.fromtimestamp(math.ceil(time.time() + reset_in), tz=utcnow().tzinfo)

    def _too_many_requests(self, reset_in: float, consumed: int) -> ApiError:
        """A 429 shaped as Segment's (Rate-Limits page): `{"errors": [{"type", "message": "Too many requests",
        "data": {"remainingPoints", "msBeforeNext", "consumedPoints"}}]}` plus Retry-After and X-RateLimit-*."""
        reset_in = max(0.0, reset_in)
        return ApiError(
            429,
            "RequestError",
            "Too many requests",
            headers={
                "Retry-After": str(max(1, math.ceil(reset_in))),
                "X-RateLimit-Consumed": str(consumed),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": _rfc5322(self._reset_moment(reset_in)),
            },
            data={
                "remainingPoints": 0,
                "msBeforeNext": int(math.ceil(reset_in * 1000)),
                "consumedPoints": consumed,
            },
        )

    def _injected_rate_limit(self, retry_after: int) -> JSONResponse:
        """An injected 429 fault, rendered exactly as a real Segment 429 (see `_too_many_requests`)."""
        error = self._too_many_requests(float(retry_after), consumed=0)
        body = {"errors": [{"type": error.error_type, "message": error.message, "data": error.data}]}
        return JSONResponse(body, status_code=429, headers=error.headers)

    def _page(self, request: Request, items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        raw_count = request.query_params.get("pagination.count", str(self.settings.page_size))
        try:
            count = int(raw_count)
        except ValueError:
            count = 0
        if not 1 <= count <= 1000:
            raise ApiError(
                422, "validation", f"pagination.count must be an integer 1-1000, got {raw_count!r}"
            )
        cursor = request.query_params.get("pagination.cursor")
        offset = _decode_cursor(cursor) if cursor else 0
        page = items[offset : offset + count]
        pagination: dict[str, Any] = {"current": _encode_cursor(offset), "totalEntries": len(items)}
        if offset + count < len(items):
            pagination["next"] = _encode_cursor(offset + count)
        if offset > 0:
            pagination["previous"] = _encode_cursor(max(0, offset - count))
        return page, pagination

    def _get_warehouse(self, warehouse_id: str) -> dict[str, Any]:
        warehouse = self._warehouses.get(warehouse_id)
        if warehouse is None:
            raise ApiError(404, "not-found", f"Warehouse {warehouse_id!r} not found in this workspace")
        return warehouse

    def _get_source(self, source_id: str) -> dict[str, Any]:
        source = self._sources.get(source_id)
        if source is None:
            raise ApiError(404, "not-found", f"Source {source_id!r} not found in this workspace")
        return source

    def _get_destination(self, destination_id: str) -> dict[str, Any]:
        destination = self._destinations.get(destination_id)
        if destination is None:
            raise ApiError(404, "not-found", f"Destination {destination_id!r} not found in this workspace")
        return destination

    @staticmethod
    def _public_source(source: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in source.items() if k != "schema"}

    def _webhooks_metadata(self, metadata_id: str) -> dict[str, Any]:
        """The catalog entry for a destination the sandbox can create: Webhooks (Actions), or classic Webhooks
        when the workspace has it (`classic_webhooks_available`)."""
        if metadata_id == WEBHOOKS_ACTIONS_METADATA_ID:
            return WEBHOOKS_ACTIONS_METADATA
        if metadata_id == WEBHOOKS_METADATA_ID and self.settings.classic_webhooks_available:
            return CLASSIC_WEBHOOKS_METADATA
        if metadata_id == WEBHOOKS_METADATA_ID:
            # Classic Webhooks is maintenance + private in Segment's catalog. The exact error Segment answers
            # for a workspace without it is not documented: a 422 validation error on metadataId (noted).
            raise ApiError(
                422,
                "validation",
                f"Destination Webhooks ({WEBHOOKS_METADATA_ID}) is not available in "
                f"this workspace; use Webhooks (Actions) ({WEBHOOKS_ACTIONS_METADATA_ID})",
                field="metadataId",
            )
        raise ApiError(
            422,
            "validation",
            f"metadataId {metadata_id!r} is not supported by the sandbox; only "
            f"Webhooks (Actions) ({WEBHOOKS_ACTIONS_METADATA_ID}) and classic Webhooks "
            f"({WEBHOOKS_METADATA_ID})",
            field="metadataId",
        )

    def _validate_destination_settings(self, metadata_id: str, settings: Any) -> dict[str, Any]:
        if metadata_id == WEBHOOKS_METADATA_ID:
            return self._validate_webhook_settings(settings)
        # Webhooks (Actions): the catalog lists one setting, sharedSecret; URL/method/payload belong to mappings.
        if not isinstance(settings, dict):
            raise ApiError(
                422, "validation", "settings must be an object like {'sharedSecret': ...}", field="settings"
            )
        unknown = sorted(set(settings) - {"sharedSecret"})
        if unknown:
            raise ApiError(
                422,
                "validation",
                f"settings.{unknown[0]} is not a setting of Webhooks (Actions) (it "
                "has only sharedSecret; URL, method and payload belong to a mapping)",
                field="settings",
            )
        if not isinstance(settings.get("sharedSecret", ""), str):
            raise ApiError(422, "validation", "settings.sharedSecret must be a string", field="settings")
        return dict(settings)

    @staticmethod
    def _action(destination: dict[str, Any], action_id: str) -> dict[str, Any]:
        for action in destination["metadata"].get("actions") or []:
            if action["id"] == action_id:
                return action
        raise ApiError(
            422,
            "validation",
            f"actionId {action_id!r} is not an action of {destination['metadata']['name']}"
            f" (its actions: {[a['id'] for a in destination['metadata'].get('actions') or []]})",
            field="actionId",
        )

    @staticmethod
    def _validate_send_settings(settings: Any) -> dict[str, Any]:
        """Settings of a "Send" mapping checked against the action's fields (catalog types; unknown keys refused)."""
        if not isinstance(settings, dict):
            raise ApiError(422, "validation", "settings must be an object", field="settings")
        fields = {f["fieldKey"]: f for f in SEND_FIELDS}
        unknown = sorted(set(settings) - set(fields))
        if unknown:
            raise ApiError(
                422,
                "validation",
                f"settings.{unknown[0]} is not a field of the Send action (fields: {sorted(fields)})",
                field="settings",
            )
        missing = [k for k, f in fields.items() if f["required"] and k not in settings]
        if missing:
            raise ApiError(422, "validation", f"settings.{missing[0]} is required", field="settings")
        url = settings["url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(422, "validation", "settings.url must be an http(s) URL", field="settings")
        if settings["method"] not in ("POST", "PUT", "PATCH"):
            raise ApiError(422, "validation", "settings.method must be POST, PUT or PATCH", field="settings")
        for key, kind in (
            ("headers", dict),
            ("data", dict),
            ("enable_batching", bool),
            ("batch_size", (int, float)),
        ):
            if key in settings and not isinstance(settings[key], kind):
                raise ApiError(422, "validation", f"settings.{key} has the wrong type", field="settings")
        _check_directives(settings.get("data"), "settings.data")
        return dict(settings)

    def _get_subscription(self, destination_id: str, subscription_id: str) -> dict[str, Any]:
        self._get_destination(destination_id)
        mapping = self._subscriptions.get(destination_id, {}).get(subscription_id)
        if mapping is None:
            raise ApiError(
                404,
                "not-found",
                f"Subscription {subscription_id!r} not found on destination {destination_id!r}",
            )
        return mapping

    @staticmethod
    def _validate_webhook_settings(settings: Any) -> dict[str, Any]:
        if not isinstance(settings, dict):
            raise ApiError(
                422, "validation", "settings must be an object like {'hooks': [...], 'sharedSecret': ...}"
            )
        hooks = settings.get("hooks", [])
        if not isinstance(hooks, list) or len(hooks) > MAX_HOOKS:
            raise ApiError(422, "validation", f"settings.hooks must be a list of at most {MAX_HOOKS} hooks")
        for n, hook in enumerate(hooks):
            url = hook.get("hook") if isinstance(hook, dict) else None
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ApiError(422, "validation", f"settings.hooks[{n}].hook must be an http(s) URL")
            for header in hook.get("headers") or []:
                if not isinstance(header, dict) or not header.get("key"):
                    raise ApiError(
                        422, "validation", f"settings.hooks[{n}].headers entries need key and value"
                    )
        return settings

    def _record_change(self, request: Request, body: Any, status: int, **fields: Any) -> None:
        self.log.append(
            "api",
            method=request.method,
            path=request.url.path,
            status=status,
            body=_mask_url_keys(redact(body)),
            **fields,
        )

    # ============================================================================== app

    def _build_app(self) -> FastAPI:  # noqa: C901 - one place that lists every route
        app = FastAPI(title="Segment emulator (sandbox)", docs_url=None, redoc_url=None, openapi_url=None)
        install_api_error_handler(app)
        app.middleware("http")(fault_middleware(self.faults, rate_limited=self._injected_rate_limit))
        auth = Depends(bearer_auth_dependency(self.settings.token))
        s = self.settings

        def general(response: Response) -> None:
            self._rate_limit(response, "api", s.api_requests_per_minute)

        limited = Depends(general)
        install_delivery_overview(
            app,
            self.delivery_overview,
            dependencies=[auth, limited],
            source_exists=lambda sid: sid in self._sources,
            destination_source=lambda did: self._destinations.get(did, {}).get("sourceId"),
            faults=self.faults,
        )

        # -- workspace ("Get Workspace": what a connection test reads) -------------------------------
        @app.get("/", dependencies=[auth, limited])
        def get_workspace():
            return {
                "data": {"workspace": {"id": "ws_sandbox", "slug": "sandbox", "name": "Sandbox workspace"}}
            }

        # -- warehouses ---------------------------------------------------------------------------
        @app.get("/warehouses/{warehouse_id}", dependencies=[auth, limited])
        def get_warehouse(warehouse_id: str):
            with self._lock:
                return {"data": {"warehouse": redact(self._get_warehouse(warehouse_id))}}

        @app.patch("/warehouses/{warehouse_id}", dependencies=[auth, limited])
        async def patch_warehouse(warehouse_id: str, request: Request):
            body = json_body_or_none(await request.body())
            if not isinstance(body, dict) or not isinstance(body.get("settings"), dict):
                raise ApiError(
                    422, "validation", "settings is required (an object; {} keeps the current ones)"
                )
            if "enabled" in body and not isinstance(body["enabled"], bool):
                raise ApiError(422, "validation", "enabled must be true or false")
            with self._lock:
                warehouse = self._get_warehouse(warehouse_id)
                before = warehouse["enabled"]
                if "enabled" in body:
                    warehouse["enabled"] = body["enabled"]
                warehouse["settings"].update(body["settings"])
                if body.get("name"):
                    warehouse["settings"]["name"] = body["name"]
                self._record_change(
                    request,
                    body,
                    200,
                    warehouseId=warehouse_id,
                    before={"enabled": before},
                    after={"enabled": warehouse["enabled"]},
                    loadRunning=warehouse_id in self._running,
                )
                if before and not warehouse["enabled"]:
                    self._discard_unreachable_pending(f"warehouse {warehouse_id} disabled")
                return {"data": {"warehouse": redact(warehouse)}}

        def list_syncs(
            request: Request, response: Response, warehouse_id: str, source_id: str | None, key: str
        ):
            # Every sync-list request is logged with whether the rate limit admitted it, so a run can be checked
            # afterwards for 429s and calls per minute (log kind "sync_list").
            try:
                self._rate_limit(response, key, s.sync_list_per_minute)
            except ApiError:
                self.log.append("sync_list", path=request.url.path, limit=key, status=429)
                raise
            self.log.append("sync_list", path=request.url.path, limit=key, status=200)
            with self._lock:
                self._get_warehouse(warehouse_id)
                if source_id is not None:
                    self._get_source(source_id)
                reports = [
                    _render_report(r)
                    for r in reversed(self._reports[warehouse_id])
                    if source_id is None or r["sourceId"] == source_id
                ]
            page, pagination = self._page(request, reports)
            return {"data": {"reports": page, "pagination": pagination}}

        @app.get("/warehouses/{warehouse_id}/syncs", dependencies=[auth])
        def warehouse_syncs(warehouse_id: str, request: Request, response: Response):
            return list_syncs(request, response, warehouse_id, None, "syncs:warehouse")

        @app.get("/warehouses/{warehouse_id}/connected-sources/{source_id}/syncs", dependencies=[auth])
        def source_syncs(warehouse_id: str, source_id: str, request: Request, response: Response):
            return list_syncs(request, response, warehouse_id, source_id, "syncs:source")

        @app.get("/warehouses/{warehouse_id}/advanced-sync-schedule", dependencies=[auth, limited])
        def advanced_sync_schedule(warehouse_id: str):
            with self._lock:
                self._get_warehouse(warehouse_id)
            schedule = s.advanced_sync_schedule or {"enabled": False}
            return {"data": schedule}

        @app.post("/warehouses/{warehouse_id}/connected-sources/{source_id}", dependencies=[auth, limited])
        def connect_source(warehouse_id: str, source_id: str, request: Request):
            with self._lock:
                self._get_warehouse(warehouse_id)
                self._get_source(source_id)
                before = source_id in self._connections[warehouse_id]
                self._connections[warehouse_id].add(source_id)
                self._record_change(
                    request,
                    None,
                    201,
                    warehouseId=warehouse_id,
                    sourceId=source_id,
                    before={"connected": before},
                    after={"connected": True},
                )
            # AddConnectionFromSourceToWarehouseV1Output (SDK): status CONNECTED | NOT_CONNECTED; the SDK's
            # WarehousesApi.add_connection_from_source_to_warehouse maps a 201 answer.
            return JSONResponse({"data": {"status": "CONNECTED"}}, status_code=201)

        @app.delete("/warehouses/{warehouse_id}/connected-sources/{source_id}", dependencies=[auth, limited])
        def disconnect_source(warehouse_id: str, source_id: str, request: Request):
            with self._lock:
                self._get_warehouse(warehouse_id)
                self._get_source(source_id)
                before = source_id in self._connections[warehouse_id]
                self._connections[warehouse_id].discard(source_id)
                self._record_change(
                    request,
                    None,
                    200,
                    warehouseId=warehouse_id,
                    sourceId=source_id,
                    before={"connected": before},
                    after={"connected": False},
                    loadRunning=warehouse_id in self._running,
                )
                self._discard_unreachable_pending(f"source {source_id} disconnected from {warehouse_id}")
            return {"data": {"status": "SUCCESS"}}

        # -- sources ------------------------------------------------------------------------------
        @app.get("/sources/{source_id}", dependencies=[auth, limited])
        def get_source(source_id: str):
            with self._lock:
                # GetSourceV1Output (SDK): `source` and `trackingPlanId` (required, null without a tracking plan).
                return {
                    "data": {
                        "source": self._public_source(self._get_source(source_id)),
                        "trackingPlanId": None,
                    }
                }

        @app.get("/sources/{source_id}/connected-destinations", dependencies=[auth, limited])
        def connected_destinations(source_id: str, request: Request):
            with self._lock:
                self._get_source(source_id)
                items = [redact(d) for d in self._destinations.values() if d["sourceId"] == source_id]
            page, pagination = self._page(request, items)
            return {"data": {"destinations": page, "pagination": pagination}}

        @app.get("/sources/{source_id}/connected-warehouses", dependencies=[auth, limited])
        def connected_warehouses(source_id: str, request: Request):
            with self._lock:
                self._get_source(source_id)
                items = [
                    redact(self._warehouses[wid])
                    for wid, srcs in self._connections.items()
                    if source_id in srcs
                ]
            page, pagination = self._page(request, items)
            return {"data": {"warehouses": page, "pagination": pagination}}

        # -- destinations -------------------------------------------------------------------------
        @app.post("/destinations", dependencies=[auth, limited])
        async def create_destination(request: Request):
            # DestinationsApi.create_destination (SDK): body CreateDestinationV1Input {sourceId, metadataId,
            # enabled?, name?, settings}; answer 200 CreateDestination200Response {"data": {"destination"}}.
            body = json_body_or_none(await request.body())
            if not isinstance(body, dict):
                raise ApiError(
                    422,
                    "validation",
                    "Expected a JSON object {sourceId, metadataId, name, enabled, settings}",
                )
            for name in ("sourceId", "metadataId"):
                if not isinstance(body.get(name), str):
                    raise ApiError(422, "validation", f"{name} is required", field=name)
            if not isinstance(body.get("settings"), dict):
                raise ApiError(422, "validation", "settings is required (an object)", field="settings")
            metadata = self._webhooks_metadata(body["metadataId"])
            settings = self._validate_destination_settings(metadata["id"], body["settings"])
            with self._lock:
                self._get_source(body["sourceId"])
                destination = {
                    "id": self._next_id("dst"),
                    "name": body.get("name") or metadata["name"],
                    "enabled": bool(body.get("enabled", False)),
                    "metadata": metadata,
                    "sourceId": body["sourceId"],
                    "settings": settings,
                }
                self._destinations[destination["id"]] = destination
                self._subscriptions[destination["id"]] = {}
                self._record_change(
                    request,
                    body,
                    200,
                    destinationId=destination["id"],
                    before=None,
                    after={"enabled": destination["enabled"]},
                )
                return {"data": {"destination": redact(destination)}}

        @app.get("/destinations/{destination_id}", dependencies=[auth, limited])
        def get_destination(destination_id: str):
            with self._lock:
                return {"data": {"destination": redact(self._get_destination(destination_id))}}

        @app.patch("/destinations/{destination_id}", dependencies=[auth, limited])
        async def patch_destination(destination_id: str, request: Request):
            # DestinationsApi.update_destination: UpdateDestinationV1Input {name?, enabled?, settings?}.
            body = json_body_or_none(await request.body())
            if not isinstance(body, dict):
                raise ApiError(422, "validation", "Expected a JSON object like {'enabled': false}")
            if "enabled" in body and not isinstance(body["enabled"], bool):
                raise ApiError(422, "validation", "enabled must be true or false", field="enabled")
            with self._lock:
                destination = self._get_destination(destination_id)
                settings = (
                    self._validate_destination_settings(destination["metadata"]["id"], body["settings"])
                    if "settings" in body
                    else None
                )
                before = destination["enabled"]
                if "enabled" in body:
                    destination["enabled"] = body["enabled"]
                if body.get("name"):
                    destination["name"] = body["name"]
                if settings is not None:
                    destination["settings"] = settings
                self._record_change(
                    request,
                    body,
                    200,
                    destinationId=destination_id,
                    before={"enabled": before},
                    after={"enabled": destination["enabled"]},
                )
                return {"data": {"destination": redact(destination)}}

        @app.delete("/destinations/{destination_id}", dependencies=[auth, limited])
        def delete_destination(destination_id: str, request: Request):
            with self._lock:
                destination = self._get_destination(destination_id)
                del self._destinations[destination_id]
                self._subscriptions.pop(destination_id, None)
                self._record_change(
                    request,
                    None,
                    200,
                    destinationId=destination_id,
                    before={"enabled": destination["enabled"]},
                    after=None,
                )
            return {"data": {"status": "SUCCESS"}}

        # -- destination subscriptions (Webhooks (Actions) mappings) -------------------------------
        # DestinationsApi (SDK docs/DestinationsApi.md): create/list/get/update/remove subscription; alpha;
        # create, update and remove limited to 5 requests a minute (`subscription_writes_per_minute`).
        def subscription_writes(key: str):
            def limit(response: Response) -> None:
                self._rate_limit(response, f"subscriptions:{key}", s.subscription_writes_per_minute)

            return Depends(limit)

        @app.post(
            "/destinations/{destination_id}/subscriptions", dependencies=[auth, subscription_writes("create")]
        )
        async def create_subscription(destination_id: str, request: Request):
            # CreateDestinationSubscriptionAlphaInput {name, actionId, trigger, enabled, settings?, modelId?};
            # answer CreateDestinationSubscription200Response {"data": {"destinationSubscription"}}.
            body = json_body_or_none(await request.body())
            if not isinstance(body, dict):
                raise ApiError(
                    422, "validation", "Expected a JSON object {name, actionId, trigger, enabled, settings}"
                )
            unknown = sorted(set(body) - {"name", "actionId", "trigger", "enabled", "settings", "modelId"})
            if unknown:
                raise ApiError(422, "validation", f"unknown fields {unknown}", field=unknown[0])
            for name, kind in (("name", str), ("actionId", str), ("trigger", str), ("enabled", bool)):
                if not isinstance(body.get(name), kind):
                    raise ApiError(422, "validation", f"{name} is required ({kind.__name__})", field=name)
            trigger_event_types(body["trigger"])
            with self._lock:
                destination = self._get_destination(destination_id)
                action = self._action(destination, body["actionId"])
                settings = self._validate_send_settings(body.get("settings") or {})
                mappings = self._subscriptions[destination_id]
                if len(mappings) >= MAX_MAPPINGS:
                    raise ApiError(
                        422,
                        "validation",
                        f"a Webhooks (Actions) destination holds at most "
                        f"{MAX_MAPPINGS} mappings; {destination_id} has {len(mappings)}",
                    )
                mapping = {
                    "id": self._next_id("sub"),
                    "name": body["name"],
                    "actionId": action["id"],
                    "actionSlug": action["slug"],
                    "destinationId": destination_id,
                    "enabled": body["enabled"],
                    "settings": settings,
                    "trigger": body["trigger"],
                }
                mappings[mapping["id"]] = mapping
                self._record_change(
                    request,
                    body,
                    200,
                    destinationId=destination_id,
                    subscriptionId=mapping["id"],
                    before=None,
                    after={"enabled": mapping["enabled"]},
                )
                return {"data": {"destinationSubscription": dict(mapping)}}

        @app.get("/destinations/{destination_id}/subscriptions", dependencies=[auth, limited])
        def list_subscriptions(destination_id: str, request: Request):
            # ListSubscriptionsFromDestinationAlphaOutput {subscriptions, pagination}.
            with self._lock:
                self._get_destination(destination_id)
                items = [dict(m) for m in self._subscriptions.get(destination_id, {}).values()]
            page, pagination = self._page(request, items)
            return {"data": {"subscriptions": page, "pagination": pagination}}

        @app.get(
            "/destinations/{destination_id}/subscriptions/{subscription_id}", dependencies=[auth, limited]
        )
        def get_subscription(destination_id: str, subscription_id: str):
            # GetSubscriptionFromDestinationAlphaOutput {subscription}.
            with self._lock:
                return {
                    "data": {"subscription": dict(self._get_subscription(destination_id, subscription_id))}
                }

        @app.patch(
            "/destinations/{destination_id}/subscriptions/{subscription_id}",
            dependencies=[auth, subscription_writes("update")],
        )
        async def update_subscription(destination_id: str, subscription_id: str, request: Request):
            # UpdateSubscriptionForDestinationAlphaInput {"input": DestinationSubscriptionUpdateInput {name?,
            # trigger?, enabled?, settings?, ...}}; answer UpdateSubscriptionForDestinationAlphaOutput {subscription}.
            body = json_body_or_none(await request.body())
            update = body.get("input") if isinstance(body, dict) else None
            if not isinstance(update, dict) or set(body) != {"input"}:
                raise ApiError(
                    422,
                    "validation",
                    "Expected {'input': {...}} (UpdateSubscriptionForDestinationAlphaInput)",
                    field="input",
                )
            unknown = sorted(set(update) - {"name", "trigger", "enabled", "settings"})
            if unknown:
                raise ApiError(
                    422, "validation", f"unknown fields input.{unknown[0]}", field=f"input.{unknown[0]}"
                )
            if "enabled" in update and not isinstance(update["enabled"], bool):
                raise ApiError(
                    422, "validation", "input.enabled must be true or false", field="input.enabled"
                )
            if "trigger" in update:
                trigger_event_types(update["trigger"])
            settings = self._validate_send_settings(update["settings"]) if "settings" in update else None
            with self._lock:
                mapping = self._get_subscription(destination_id, subscription_id)
                before = mapping["enabled"]
                for key in ("name", "trigger", "enabled"):
                    if key in update:
                        mapping[key] = update[key]
                if settings is not None:
                    mapping["settings"] = settings
                self._record_change(
                    request,
                    body,
                    200,
                    destinationId=destination_id,
                    subscriptionId=subscription_id,
                    before={"enabled": before},
                    after={"enabled": mapping["enabled"]},
                )
                return {"data": {"subscription": dict(mapping)}}

        @app.delete(
            "/destinations/{destination_id}/subscriptions/{subscription_id}",
            dependencies=[auth, subscription_writes("remove")],
        )
        def remove_subscription(destination_id: str, subscription_id: str, request: Request):
            # RemoveSubscriptionFromDestinationAlphaOutput {status: SUCCESS}.
            with self._lock:
                mapping = self._get_subscription(destination_id, subscription_id)
                del self._subscriptions[destination_id][subscription_id]
                self._record_change(
                    request,
                    None,
                    200,
                    destinationId=destination_id,
                    subscriptionId=subscription_id,
                    before={"enabled": mapping["enabled"]},
                    after=None,
                )
            return {"data": {"status": "SUCCESS"}}

        # -- tracking API -------------------------------------------------------------------------
        @app.post("/v1/batch")
        async def track_batch(request: Request):
            return await self._tracking(request, "batch")

        def single_event_route(kind: str):
            async def single(request: Request):
                return await self._tracking(request, kind)

            return single

        for kind in SINGLE_EVENT_PATHS:
            app.add_api_route(
                f"/v1/{kind}", single_event_route(kind), methods=["POST"], name=f"tracking_{kind}"
            )

        # -- sandbox control ----------------------------------------------------------------------
        @app.post("/sandbox/faults")
        async def arm_faults(request: Request):
            body = json_body_or_none(await request.body())
            if isinstance(body, dict) and body.get("clear"):
                self.faults.clear()
            try:
                state = self.faults.arm(body if isinstance(body, dict) else {})
            except ValueError as exc:
                raise ApiError(422, "validation", str(exc)) from exc
            self.log.append("control", action="faults", body=body)
            return {"data": state}

        @app.delete("/sandbox/faults")
        def clear_faults():
            self.faults.clear()
            return {"data": self.faults.state()}

        @app.get("/sandbox/log")
        def get_log(kind: str | None = None, since: int = 0):
            return {"data": {"entries": self.log.entries(kind, since_seq=since)}}

        @app.get("/sandbox/state")
        def get_state():
            return {"data": self.state()}

        @app.post("/sandbox/loads/run")
        def force_load(warehouse_id: str | None = None, wait: bool = True):
            if warehouse_id is not None and warehouse_id not in self._warehouses:
                raise ApiError(404, "not-found", f"Warehouse {warehouse_id!r} not found")
            if not wait:
                threading.Thread(target=self.run_load, args=(warehouse_id,), daemon=True).start()
                return {"data": {"started": True}}
            return {"data": {"reports": self.run_load(warehouse_id)}}

        @app.get("/sandbox/events/{message_id}")
        def event_paths(message_id: str):
            return {"data": {"messageId": message_id, "paths": self.paths(message_id)}}

        return app


class _TrackingError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _tracking_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "message": message}, status_code=status)
