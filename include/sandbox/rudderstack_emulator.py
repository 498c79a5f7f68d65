"""A local RudderStack: control plane, data plane and warehouse uploads, over real HTTP.

Control plane (Bearer token; the shapes RudderStack's Terraform provider and rudder-api-go speak):
  GET/POST /v2/sources, GET/PUT/DELETE /v2/sources/{id}            -> {"source": {...}} / {"sources": [...]}
  GET/POST /v2/destinations, GET/PUT/DELETE /v2/destinations/{id}  -> {"destination": {...}} / {"destinations": [...]}
  GET/POST /v2/connections, GET/PUT/DELETE /v2/connections/{id}    -> {"connection": {...}} / {"connections": [...]}
  Errors: {"error": message, "code": kind}.
  Lists are paged, `list_page_size` items a page (default 2, so every client must follow the pages):
  {"<kind>s": [...], "paging": {"total": n, "next": "/v2/<kind>s?page=k+1"}}, no `next` on the last page.
  Source of the shape: rudderlabs/rudder-iac api/client/common.go (`Paging{Total int "total"; Next string
  "next"}`, `APIPage{Paging "paging"}`), api/client/service.go (`next()` GETs `paging.Next` as a path from the
  API host; an empty `next` ends the listing), api/client/destinations.go (`DestinationsPage`, `GetAll` loops
  over `Next`); its tests show `next` values such as "/v2/accounts?page=2". The page size of the real API is
  not documented; a small one here is stricter.
Data plane (write key as the basic-auth user name, gzip bodies accepted, answers "OK" as text like the gateway):
  POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias
  POST /v1/webhook?writeKey=...  (sources of type "Segment": the raw Segment event is staged unchanged,
                                  messageId kept; only receivedAt (the time RudderStack received it) and
                                  request_ip (the caller's IP) are set, as the gateway does)
  POST /internal/v1/warehouse/pending-events {source_id, task_run_id}
       -> {pending_events, pending_staging_files, pending_uploads, aborted_events}
  POST /internal/v1/warehouse/trigger-upload {source_id, destination_id?} -> 200, empty body
       Both as rudder-server's warehouse/api/http.go (pendingEventsHandler, triggerUploadHandler), routed by the
       gateway only under /internal/v1/warehouse and only when internal endpoints are enabled
       (gateway/handle_lifecycle.go StartWebHandler; warehouse/api/http.go addMasterEndpoints). Errors are
       plain text like Go's http.Error. `warehouse_api` = "internal" (default: current servers), "legacy" (also
       /v1/warehouse/..., the routes old servers had) or "disabled" (neither: a data plane that does not expose
       them, e.g. hosted, answers 404).
Sandbox control (no auth): POST /sandbox/faults, GET /sandbox/log, GET /sandbox/state, GET /sandbox/uploads,
  GET /sandbox/pending?source_id= (the emulator's own view of what a source still has to load),
  POST /sandbox/deploy-server-side (stands in for deploying server-side services onto RudderStack).

Staging and uploads: every accepted data-plane request becomes one staging file of its source. A warehouse
destination (type POSTGRES, SNOWFLAKE, ...; all write into the sandbox PostgreSQL) loads the staging files of
every source connected to it by an enabled connection. Staging files are kept per source until each connected
warehouse destination has loaded them, so events received before a connection existed stay staged and are
loaded by the first upload after the connection is made. Uploads follow `sandbox.rudderstack_schedule`, take
`upload_duration_s`, move waiting -> exporting_data -> exported_data (failed attempts show
exporting_data_failed and are retried; after `upload_max_attempts` the upload is aborted) and load each
source's events through `Warehouse.load_rudderstack(events, source=, destination=, retried=)`: rudder-server's
loader rules (sandbox.rudderstack_loader), the destination's config as stored here deciding the namespace
(snake-cased), merge or append, `users` and context traits.
"""

from __future__ import annotations

import base64
import copy
import gzip
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sandbox.common import (
    ApiError,
    FaultInjector,
    RequestLog,
    bearer_auth_dependency,
    fault_middleware,
    install_api_error_handler,
    isoformat_z,
    redact,
    utcnow,
)
from sandbox.rudderstack_definitions import DEFINITIONS, config_errors
from sandbox.rudderstack_naming import safe_namespace
from sandbox.rudderstack_schedule import (
    ConfigError,
    is_warehouse,
    upload_decision,
    validate_warehouse_config,
)

JsonBody = Annotated[Any, Body()]
EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
WEBHOOK_SOURCE_TYPES = frozenset({"Segment", "webhook", "Webhook"})
TERMINAL_STATUSES = frozenset({"exported_data", "aborted"})


def rudderstack_error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """RudderStack control-plane error envelope (as read by rudder-api-go: `error`, `code`)."""
    return {"error": message, "code": code}


def default_sources() -> list[dict[str, Any]]:
    return [
        {"id": "rs_src_app", "name": "App (new version)", "type": "Javascript", "writeKey": "wk_rs_app"},
        {"id": "rs_src_backend", "name": "Backend services", "type": "HTTP", "writeKey": "wk_rs_backend"},
    ]


@dataclass
class RudderStackSettings:
    """What the emulator starts with and how fast its clock runs."""

    token: str = "sandbox-rudderstack-token"
    sources: list[dict[str, Any]] = field(default_factory=default_sources)
    destinations: list[dict[str, Any]] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    time_compression: float = 60.0  # RudderStack minutes -> real seconds: 60 means 1 minute lasts 1 second
    upload_duration_s: float = 1.0
    upload_max_attempts: int = 3
    upload_retry_backoff_s: float = 0.5
    scheduler_tick_s: float = 0.1
    warehouse_dsn: str | None = None  # informational; the emulator writes through the Warehouse it is given
    workspace_id: str = "ws_sandbox"
    list_page_size: int = 2  # control-plane list pages (small on purpose: pagination is always exercised)
    warehouse_api: str = "internal"  # "internal" | "legacy" (also /v1/warehouse) | "disabled" (neither)


@dataclass
class StagingFile:
    id: int
    source_id: str
    events: list[dict[str, Any]]
    created_at: str
    # rudder-server gateway/handle.go takes `context.sources.task_run_id` of a request's events into the job's
    # `source_task_run_id`; event-stream SDKs and Segment's webhook never set it, so it is None for them.
    task_run_id: str | None = None
    claimed_by: set[str] = field(default_factory=set)  # destination ids whose upload took this file
    loaded_into: set[str] = field(default_factory=set)
    aborted_for: set[str] = field(default_factory=set)


@dataclass
class Upload:
    id: int
    destination_id: str
    destination_type: str
    namespace: str
    source_ids: list[str]
    staging_file_ids: list[int]
    event_count: int
    triggered: bool
    reason: str
    config: dict[str, Any]
    status: str = "waiting"
    attempts: int = 0
    error: str | None = None
    created_at: str = ""
    updated_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    rows_by_table: dict[str, int] = field(default_factory=dict)
    created_dt: datetime | None = None
    # warehouse/router/router.go: an upload's SourceTaskRunID is "populated by staging files".
    source_task_run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "destinationId": self.destination_id,
            "destinationType": self.destination_type,
            "namespace": self.namespace,
            "sourceIds": list(self.source_ids),
            "stagingFileIds": list(self.staging_file_ids),
            "eventCount": self.event_count,
            "triggered": self.triggered,
            "reason": self.reason,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "rowsByTable": dict(self.rows_by_table),
            "config": copy.deepcopy(self.config),
            "sourceTaskRunId": self.source_task_run_id,
        }


def _new_id() -> str:
    return secrets.token_hex(13)[:26]


def _now_iso() -> str:
    return isoformat_z(utcnow())


def _client_ip(request: Request) -> str | None:
    """The request's IP as rudder-server's gateway takes it (gateway/handle.go: rudder-go-kit's
    httputil.GetRequestIP, stamped on every event as `request_ip`; the warehouse transformer's context_ip
    falls back to it). Reading X-Forwarded-For first is an assumption about GetRequestIP, not checked."""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[0].strip()
    return request.client.host if request.client else None


def _basic_auth_user(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip()).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise _DataPlaneError(
                400, f"Content-Encoding is gzip but the body is not valid gzip ({exc})"
            ) from exc
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise _DataPlaneError(400, "Invalid JSON in request body; expected a JSON object") from exc


class _DataPlaneError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class RudderStackEmulator:
    """The emulator: `.app` (FastAPI), `.start_background()` / `.stop_background()`, `.faults`, `.log`."""

    def __init__(self, settings: RudderStackSettings, warehouse: Any):
        if settings.warehouse_api not in ("internal", "legacy", "disabled"):
            raise ValueError(
                f"warehouse_api must be 'internal', 'legacy' or 'disabled', got {settings.warehouse_api!r}"
            )
        self.settings = settings
        self.warehouse = warehouse
        self.faults = FaultInjector()
        self.log = RequestLog()
        self._lock = threading.RLock()
        self._sources: dict[str, dict[str, Any]] = {}
        self._destinations: dict[str, dict[str, Any]] = {}
        self._connections: dict[str, dict[str, Any]] = {}
        self._staging: list[StagingFile] = []
        self._staging_seq = itertools.count(1)
        self._uploads: list[Upload] = []
        self._upload_seq = itertools.count(1)
        self._triggered: set[str] = set()
        self._running_uploads: dict[str, threading.Thread] = {}
        self._received: dict[str, int] = {}
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self.server_side_deployed_at: str | None = None
        self._deploy_callbacks: list[Callable[[], None]] = []
        self.extra_state: dict[
            str, Callable[[], Any]
        ] = {}  # e.g. {"clients": fleet.stats}, shown in /sandbox/state
        self._seed()
        self.app = self._build_app()

    # ------------------------------------------------------------------------------------------ seeds

    def _seed(self) -> None:
        now = _now_iso()
        for seed in self.settings.sources:
            source = {
                "id": seed["id"],
                "name": seed.get("name", seed["id"]),
                "type": seed.get("type", "HTTP"),
                "writeKey": seed.get("writeKey") or _new_id(),
                "enabled": seed.get("enabled", True),
                "config": copy.deepcopy(seed.get("config", {})),
                "createdAt": now,
                "updatedAt": now,
            }
            self._sources[source["id"]] = source
        for seed in self.settings.destinations:
            dest = self._make_destination(seed, now)
            dest["id"] = seed.get("id", dest["id"])
            self._destinations[dest["id"]] = dest
        for seed in self.settings.connections:
            conn = self._make_connection(seed, now)
            conn["id"] = seed.get("id", conn["id"])
            self._connections[conn["id"]] = conn

    # ------------------------------------------------------------------------------------------ model

    def _make_destination(self, body: dict[str, Any], now: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "validation_error", "Expected a JSON object {name, type, enabled, config}")
        name, dtype, config = body.get("name"), body.get("type"), body.get("config", {})
        if not name or not isinstance(name, str):
            raise ApiError(400, "validation_error", "Field 'name' is required (a non-empty string)")
        if not dtype or not isinstance(dtype, str):
            raise ApiError(400, "validation_error", "Field 'type' is required, e.g. 'POSTGRES' or 'WEBHOOK'")
        if not isinstance(config, dict):
            raise ApiError(400, "validation_error", "Field 'config' must be an object")
        if is_warehouse(dtype):
            self._validate_definition(dtype, config)
            try:
                validate_warehouse_config(config)
            except ConfigError as exc:
                raise ApiError(400, "validation_error", str(exc)) from exc
        return {
            "id": _new_id(),
            "name": name,
            "type": dtype,
            "enabled": bool(body.get("enabled", True)),
            "config": copy.deepcopy(config),
            "createdAt": now,
            "updatedAt": now,
        }

    @staticmethod
    def _validate_definition(dtype: str, config: dict[str, Any]) -> None:
        """The destination definition's schema.json, as RudderStack's control plane checks a create or an update
        (sandbox.rudderstack_definitions: rudder-integrations-config schema.json; refusals in the shape rudder-iac's
        APIError parses, 400 with ``details``). A warehouse type the sandbox has no definition for is refused:
        stricter than RudderStack, which knows them all."""
        details = config_errors(dtype, config)
        if details is None:
            raise ApiError(
                400,
                "validation_error",
                f"Destination type {dtype!r}: the sandbox has the definitions of {sorted(DEFINITIONS)} only",
            )
        if details:
            raise ApiError(400, "validation_error", "request validation failed", data=details)

    def _make_connection(self, body: dict[str, Any], now: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(
                400, "validation_error", "Expected a JSON object {sourceId, destinationId, enabled}"
            )
        source_id, destination_id = body.get("sourceId"), body.get("destinationId")
        if source_id not in self._sources:
            raise ApiError(
                400, "validation_error", f"sourceId {source_id!r} does not name an existing source"
            )
        if destination_id not in self._destinations:
            raise ApiError(
                400,
                "validation_error",
                f"destinationId {destination_id!r} does not name an existing destination",
            )
        for other in self._connections.values():
            if other["sourceId"] == source_id and other["destinationId"] == destination_id:
                raise ApiError(
                    409,
                    "conflict",
                    f"Source {source_id} is already connected to destination {destination_id} "
                    f"(connection {other['id']}); update that connection instead",
                )
        return {
            "id": _new_id(),
            "sourceId": source_id,
            "destinationId": destination_id,
            "enabled": bool(body.get("enabled", True)),
            "createdAt": now,
            "updatedAt": now,
        }

    def _connected_warehouse_destinations(self, source_id: str) -> list[dict[str, Any]]:
        out = []
        for conn in self._connections.values():
            if conn["sourceId"] != source_id or not conn["enabled"]:
                continue
            dest = self._destinations.get(conn["destinationId"])
            if dest and dest["enabled"] and is_warehouse(dest["type"]):
                out.append(dest)
        return out

    def _connected_sources(self, destination_id: str) -> list[dict[str, Any]]:
        out = []
        for conn in self._connections.values():
            if (
                conn["destinationId"] == destination_id
                and conn["enabled"]
                and conn["sourceId"] in self._sources
            ):
                out.append(self._sources[conn["sourceId"]])
        return out

    def warehouse_destinations_for_source(self, source_id: str) -> list[dict[str, Any]]:
        """Enabled warehouse destinations connected (enabled connection) to `source_id` (copies)."""
        with self._lock:
            return copy.deepcopy(self._connected_warehouse_destinations(source_id))

    def _audit(self, request: Request | None, action: str, before: Any, after: Any) -> None:
        self.log.append(
            "api",
            action=action,
            method=request.method if request else None,
            path=request.url.path if request else None,
            before=redact(copy.deepcopy(before)),
            after=redact(copy.deepcopy(after)),
        )

    # ------------------------------------------------------------------------------------------ data plane

    def _source_for_write_key(self, write_key: str | None) -> dict[str, Any]:
        if not write_key:
            raise _DataPlaneError(
                401, "Failed to read writeKey from header; send it as the basic-auth user name"
            )
        for source in self._sources.values():
            if secrets.compare_digest(source["writeKey"], write_key):
                if not source["enabled"]:
                    raise _DataPlaneError(
                        404, "Source is disabled; enable it in the control plane to send events"
                    )
                return source
        raise _DataPlaneError(401, "Invalid write key: no source has this write key")

    def staged_events(self, source_id: str | None = None) -> list[dict[str, Any]]:
        """Copies of every event received (per source when given), in arrival order."""
        with self._lock:
            return [
                copy.deepcopy(e)
                for f in self._staging
                if source_id is None or f.source_id == source_id
                for e in f.events
            ]

    def stage(
        self,
        source_id: str,
        events: list[dict[str, Any]],
        *,
        path: str,
        gzipped: bool = False,
        request_ip: str | None = None,
    ) -> StagingFile:
        received_at = _now_iso()
        prepared = []
        for event in events:
            if not isinstance(event, dict):
                raise _DataPlaneError(400, "Each event must be a JSON object")
            etype = event.get("type")
            if etype not in EVENT_TYPES:
                raise _DataPlaneError(
                    400, f"Invalid message type {etype!r}; expected one of {', '.join(EVENT_TYPES)}"
                )
            staged = dict(event)
            staged.setdefault("messageId", _new_id())
            staged["receivedAt"] = received_at
            if request_ip is not None:  # gateway/handle.go: request_ip kept when the event has one
                staged.setdefault("request_ip", request_ip)
            prepared.append(staged)
        run_ids = {
            ((e.get("context") or {}).get("sources") or {}).get("task_run_id")
            for e in prepared
            if isinstance(e.get("context"), dict)
        }
        task_run_id = next(iter(run_ids)) if len(run_ids) == 1 else None
        with self._lock:
            staging = StagingFile(
                next(self._staging_seq),
                source_id,
                prepared,
                received_at,
                task_run_id=task_run_id if isinstance(task_run_id, str) and task_run_id else None,
            )
            self._staging.append(staging)
            self._received[source_id] = self._received.get(source_id, 0) + len(prepared)
        self.log.append(
            "ingest",
            path=path,
            source_id=source_id,
            count=len(prepared),
            staging_file_id=staging.id,
            gzip=gzipped,
        )
        return staging

    async def _ingest(self, request: Request, forced_type: str | None) -> Response:
        try:
            body = await _read_json(request)
            write_key = _basic_auth_user(request) or (
                body.get("writeKey") if isinstance(body, dict) else None
            )
            with self._lock:
                source = self._source_for_write_key(write_key)
            if forced_type is None:
                if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
                    raise _DataPlaneError(400, 'Expected {"batch": [events...]} for /v1/batch')
                events = body["batch"]
            else:
                if not isinstance(body, dict):
                    raise _DataPlaneError(400, f"Expected one {forced_type} event as a JSON object")
                events = [{**body, "type": forced_type}]
            gzipped = request.headers.get("content-encoding", "").lower() == "gzip"
            self.stage(
                source["id"], events, path=request.url.path, gzipped=gzipped, request_ip=_client_ip(request)
            )
        except _DataPlaneError as exc:
            return PlainTextResponse(exc.message, status_code=exc.status)
        return PlainTextResponse("OK")

    async def _webhook(self, request: Request) -> Response:
        try:
            body = await _read_json(request)
            write_key = request.query_params.get("writeKey") or _basic_auth_user(request)
            with self._lock:
                source = self._source_for_write_key(write_key)
            if source["type"] not in WEBHOOK_SOURCE_TYPES:
                raise _DataPlaneError(
                    400,
                    f"Source {source['id']} has type {source['type']!r}; /v1/webhook only accepts webhook sources "
                    "(create a source of type 'Segment')",
                )
            if not isinstance(body, dict):
                raise _DataPlaneError(400, "Expected one Segment event as a JSON object")
            self.stage(source["id"], [body], path=request.url.path, request_ip=_client_ip(request))
        except _DataPlaneError as exc:
            return PlainTextResponse(exc.message, status_code=exc.status)
        return PlainTextResponse("OK")

    def pending_events(self, source_id: str, task_run_id: str | None = None) -> dict[str, Any]:
        """What ``source_id`` still has to load, as rudder-server's pendingEventsHandler counts it:
        staging files of the source not yet in an upload (all of them, whatever their task run), and uploads
        of the source that are not exported/aborted — only those whose ``source_task_run_id`` is ``task_run_id``.

        ``task_run_id=None`` is the sandbox's own view (every upload of the source counts) for the sandbox's
        tools and tests; the HTTP endpoint always passes one, as the real server requires."""
        with self._lock:
            if source_id not in self._sources:
                raise _DataPlaneError(400, "workspace from source not found")
            dests = self._connected_warehouse_destinations(source_id)
            files = [f for f in self._staging if f.source_id == source_id]
            if dests:
                pending_files = [f for f in files if any(d["id"] not in f.claimed_by for d in dests)]
            else:
                pending_files = files
            uploads = [
                u
                for u in self._uploads
                if source_id in u.source_ids and (task_run_id is None or u.source_task_run_id == task_run_id)
            ]
            pending_uploads = [u for u in uploads if u.status not in TERMINAL_STATUSES]
            aborted = any(u.status == "aborted" for u in uploads)
            return {
                "pending_events": bool(pending_files or pending_uploads),
                "pending_staging_files": len(pending_files),
                "pending_uploads": len(pending_uploads),
                "aborted_events": aborted,
            }

    def trigger_upload(self, *, source_id: str | None, destination_id: str | None) -> list[str]:
        """Mark warehouse destinations for an upload now (sandbox callers may name only a destination; the
        HTTP endpoint requires ``source_id`` like rudder-server's triggerUploadHandler)."""
        with self._lock:
            if source_id is not None and source_id not in self._sources:
                raise _DataPlaneError(400, "workspace from source not found")
            if destination_id:
                dest = self._destinations.get(destination_id)
                # WarehousesByDestID: the destination's (enabled) warehouse connections.
                has_warehouse = (
                    dest is not None
                    and dest["enabled"]
                    and is_warehouse(dest["type"])
                    and bool(self._connected_sources(destination_id))
                )
                targets = [destination_id] if has_warehouse else []
            elif source_id:
                targets = [d["id"] for d in self._connected_warehouse_destinations(source_id)]
            else:
                raise _DataPlaneError(400, "workspace from source not found")
            if not targets:
                raise _DataPlaneError(400, "no warehouse found")
            self._triggered.update(targets)
        self.log.append("trigger", source_id=source_id, destination_id=destination_id, destinations=targets)
        return targets

    # ------------------------------------------------------------------------------------------ uploads

    def _pending_files_for(self, dest_id: str) -> dict[str, list[StagingFile]]:
        by_source: dict[str, list[StagingFile]] = {}
        sources = {s["id"] for s in self._connected_sources(dest_id)}
        for staging in self._staging:
            if staging.source_id in sources and dest_id not in staging.claimed_by:
                by_source.setdefault(staging.source_id, []).append(staging)
        return by_source

    def _last_upload_created(self, dest_id: str):
        for upload in reversed(self._uploads):
            if upload.destination_id == dest_id:
                return upload.created_dt
        return None

    def schedule_once(self) -> list[Upload]:
        """One scheduler pass: create (and start) every upload the rules allow now. Returns the new uploads."""
        created: list[Upload] = []
        now = utcnow()
        with self._lock:
            for dest in list(self._destinations.values()):
                if (
                    not dest["enabled"]
                    or not is_warehouse(dest["type"])
                    or dest["id"] in self._running_uploads
                ):
                    continue
                pending = self._pending_files_for(dest["id"])
                if not pending:
                    continue
                allowed, reason = upload_decision(
                    dest["config"],
                    now=now,
                    last_upload_created_at=self._last_upload_created(dest["id"]),
                    triggered=dest["id"] in self._triggered,
                    time_compression=self.settings.time_compression,
                )
                if not allowed:
                    continue
                files = [f for fs in pending.values() for f in fs]
                for staging in files:
                    staging.claimed_by.add(dest["id"])
                stamp = isoformat_z(now)
                upload = Upload(
                    id=next(self._upload_seq),
                    destination_id=dest["id"],
                    destination_type=dest["type"],
                    # warehouse/bcm/backend_config.go namespace(): ToSafeNamespace of config.namespace
                    namespace=safe_namespace(dest["config"]["namespace"]),
                    source_ids=sorted(pending),
                    staging_file_ids=[f.id for f in files],
                    event_count=sum(len(f.events) for f in files),
                    triggered=dest["id"] in self._triggered,
                    reason=reason,
                    config=copy.deepcopy(dest["config"]),
                    created_at=stamp,
                    updated_at=stamp,
                    created_dt=now,
                )
                run_ids = {f.task_run_id for f in files}
                upload.source_task_run_id = files[0].task_run_id if len(run_ids) == 1 else None
                self._triggered.discard(dest["id"])
                self._uploads.append(upload)
                worker = threading.Thread(
                    target=self._run_upload,
                    args=(upload, dest, files),
                    name=f"rs-upload-{upload.id}",
                    daemon=True,
                )
                self._running_uploads[dest["id"]] = worker
                created.append(upload)
                worker.start()
        return created

    def _set_status(self, upload: Upload, status: str, error: str | None = None) -> None:
        with self._lock:
            upload.status = status
            upload.error = error
            upload.updated_at = _now_iso()

    def _run_upload(self, upload: Upload, dest: dict[str, Any], files: list[StagingFile]) -> None:
        settings = self.settings
        began = time.monotonic()
        try:
            with self._lock:
                upload.started_at = _now_iso()
            self.log.append(
                "upload",
                event="start",
                upload_id=upload.id,
                destination_id=upload.destination_id,
                namespace=upload.namespace,
                source_ids=upload.source_ids,
                event_count=upload.event_count,
                triggered=upload.triggered,
                reason=upload.reason,
                config=redact(copy.deepcopy(upload.config)),
            )
            if self._stop.wait(settings.upload_duration_s * 0.2):
                return
            while upload.status not in TERMINAL_STATUSES:
                with self._lock:
                    upload.attempts += 1
                self._set_status(upload, "exporting_data")
                try:
                    fault = self.faults.take("upload_failure")
                    if fault:
                        if fault.get("abort"):
                            raise _AbortUpload("injected upload abort")
                        raise RuntimeError("injected upload failure")
                    rows = self._load_sources(upload, dest, files)
                    remaining = settings.upload_duration_s - (time.monotonic() - began)
                    if remaining > 0 and self._stop.wait(remaining):
                        return
                    with self._lock:
                        upload.rows_by_table = rows
                        for staging in files:
                            staging.loaded_into.add(dest["id"])
                    self._set_status(upload, "exported_data")
                except _AbortUpload as exc:
                    self._abort(upload, dest, files, str(exc))
                except Exception as exc:  # a failed attempt: retried, like rudder-server does
                    if self._attempt_failed(upload, dest, files, exc):
                        return
        finally:
            with self._lock:
                upload.finished_at = _now_iso() if upload.status in TERMINAL_STATUSES else None
                self._running_uploads.pop(dest["id"], None)
            self.log.append(
                "upload",
                event="end",
                upload_id=upload.id,
                destination_id=upload.destination_id,
                status=upload.status,
                error=upload.error,
                attempts=upload.attempts,
                event_count=upload.event_count,
                rows_by_table=dict(upload.rows_by_table),
                config=redact(copy.deepcopy(upload.config)),
            )

    def _attempt_failed(self, upload: Upload, dest: dict[str, Any], files: list[StagingFile], exc) -> bool:
        """Record a failed attempt: abort after `upload_max_attempts`, else back off. True when stopping."""
        message = f"{type(exc).__name__}: {exc}"
        if upload.attempts >= self.settings.upload_max_attempts:
            self._abort(upload, dest, files, f"gave up after {upload.attempts} attempts; last: {message}")
            return False
        self._set_status(upload, "exporting_data_failed", message)
        self.log.append("upload", event="attempt_failed", upload_id=upload.id, error=message)
        return self._stop.wait(self.settings.upload_retry_backoff_s * upload.attempts)

    def _load_sources(self, upload: Upload, dest: dict[str, Any], files: list[StagingFile]) -> dict[str, int]:
        """One attempt's loads, one per source (rudder-server uploads per source and destination), through
        rudder-server's loader rules (sandbox.rudderstack_loader): the destination's config as stored decides
        the namespace, merge or append, `users` and context traits; a retried upload always merges
        (warehouse/router/upload.go CanAppend). Returns rows per table."""
        rows: dict[str, int] = {}
        for source_id in upload.source_ids:
            source = self._sources.get(source_id) or {"id": source_id, "type": "unknown"}
            events = [e for f in files if f.source_id == source_id for e in f.events]
            result = self.warehouse.load_rudderstack(
                events,
                source={"id": source_id, "type": source["type"]},
                destination={"id": dest["id"], "type": dest["type"], "config": upload.config},
                retried=upload.attempts > 1,
            )
            for table, count in result.rows_by_table.items():
                rows[table] = rows.get(table, 0) + count
        return rows

    def _abort(self, upload: Upload, dest: dict[str, Any], files: list[StagingFile], why: str) -> None:
        with self._lock:
            for staging in files:
                staging.aborted_for.add(dest["id"])
        self._set_status(upload, "aborted", why)

    def uploads(
        self, *, destination_id: str | None = None, source_id: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            return [
                u.as_dict()
                for u in self._uploads
                if (destination_id is None or u.destination_id == destination_id)
                and (source_id is None or source_id in u.source_ids)
            ]

    def _scheduler_loop(self) -> None:
        while not self._stop.wait(self.settings.scheduler_tick_s):
            try:
                self.schedule_once()
            except Exception as exc:  # keep scheduling; the log says what went wrong
                self.log.append("scheduler_error", error=f"{type(exc).__name__}: {exc}")

    def start_background(self) -> None:
        if self._scheduler is not None:
            return
        self._stop.clear()
        self._scheduler = threading.Thread(
            target=self._scheduler_loop, name="rs-upload-scheduler", daemon=True
        )
        self._scheduler.start()

    def stop_background(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout_s)
            self._scheduler = None
        with self._lock:
            workers = list(self._running_uploads.values())
        for worker in workers:
            worker.join(timeout_s)

    # ------------------------------------------------------------------------------------------ deploy

    def on_server_side_deploy(self, callback: Callable[[], None]) -> None:
        """Register a callable run when POST /sandbox/deploy-server-side is called (the world wires clients)."""
        self._deploy_callbacks.append(callback)

    def deploy_server_side(self) -> dict[str, Any]:
        with self._lock:
            first = self.server_side_deployed_at is None
            if first:
                self.server_side_deployed_at = _now_iso()
        if first:
            for callback in list(self._deploy_callbacks):
                callback()
        self.log.append("deploy", target="server-side", first=first)
        return {"server_side_deployed": True, "deployed_at": self.server_side_deployed_at}

    # ------------------------------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        with self._lock:
            sources = []
            for source in self._sources.values():
                redacted = redact(copy.deepcopy(source))
                redacted["receivedEvents"] = self._received.get(source["id"], 0)
                redacted["stagingFiles"] = sum(1 for f in self._staging if f.source_id == source["id"])
                sources.append(redacted)
            return {
                "sources": sources,
                "destinations": [redact(copy.deepcopy(d)) for d in self._destinations.values()],
                "connections": copy.deepcopy(list(self._connections.values())),
                "uploads": {
                    "total": len(self._uploads),
                    "running": sorted(self._running_uploads),
                    "last": self._uploads[-1].as_dict() if self._uploads else None,
                },
                "triggered": sorted(self._triggered),
                "server_side_deployed_at": self.server_side_deployed_at,
                "faults": self.faults.state(),
                "time_compression": self.settings.time_compression,
                **{name: provider() for name, provider in self.extra_state.items()},
            }

    # ------------------------------------------------------------------------------------------ app

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="RudderStack emulator (sandbox)", docs_url=None, redoc_url=None, openapi_url=None)
        install_api_error_handler(app, rudderstack_error_body)
        app.middleware("http")(fault_middleware(self.faults, rudderstack_error_body))
        app.include_router(self._control_plane_router(), prefix="/v2")
        app.include_router(self._data_plane_router())
        app.include_router(self._sandbox_router(), prefix="/sandbox")
        return app

    def _list_page(self, store: dict[str, dict[str, Any]], plural: str, page: str) -> dict[str, Any]:
        # Paged like RudderStack's API (rudder-iac api/client/common.go, service.go; see the module doc).
        try:
            number = int(page)
        except ValueError:
            number = 0
        if number < 1:
            raise ApiError(
                400,
                "validation_error",
                f"Query parameter 'page' must be a positive integer, got {page!r}",
            )
        size = max(1, int(self.settings.list_page_size))
        with self._lock:
            everything = list(store.values())
            items = [copy.deepcopy(x) for x in everything[(number - 1) * size : number * size]]
        paging: dict[str, Any] = {"total": len(everything)}
        if number * size < len(everything):
            paging["next"] = f"/v2/{plural}?page={number + 1}"
        self.log.append("list", items=plural, page=number, count=len(items))
        return {plural: items, "paging": paging}

    def _crud(self, router: APIRouter, kind: str, store: dict[str, dict[str, Any]], make, update) -> None:
        plural = kind + "s"

        @router.get(f"/{plural}")
        def list_page(page: str = "1") -> dict[str, Any]:
            return self._list_page(store, plural, page)

        @router.post(f"/{plural}")
        def create(request: Request, body: JsonBody = None) -> JSONResponse:
            with self._lock:
                item = make(body, _now_iso())
                store[item["id"]] = item
                created = copy.deepcopy(item)
            self._audit(request, f"create_{kind}", None, created)
            # 200, as RudderStack's API client tests record a create (rudder-iac api/client/destinations_test.go,
            # sources_test.go: ResponseStatus 200); its client accepts any 2xx (api/client/client.go Do).
            return JSONResponse({kind: created}, status_code=200)

        @router.get(f"/{plural}/{{item_id}}")
        def get_one(item_id: str) -> dict[str, Any]:
            with self._lock:
                item = store.get(item_id)
                if item is None:
                    raise ApiError(404, "not_found", f"No {kind} with id {item_id!r}")
                return {kind: copy.deepcopy(item)}

        @router.put(f"/{plural}/{{item_id}}")
        def replace(item_id: str, request: Request, body: JsonBody = None) -> dict[str, Any]:
            with self._lock:
                item = store.get(item_id)
                if item is None:
                    raise ApiError(404, "not_found", f"No {kind} with id {item_id!r}")
                before = copy.deepcopy(item)
                after = update(item, body)
                after["updatedAt"] = _now_iso()
                store[item_id] = after
                result = copy.deepcopy(after)
            self._audit(request, f"update_{kind}", before, result)
            return {kind: result}

        @router.delete(f"/{plural}/{{item_id}}", status_code=204)
        def delete(item_id: str, request: Request) -> Response:
            with self._lock:
                item = store.pop(item_id, None)
                if item is None:
                    raise ApiError(404, "not_found", f"No {kind} with id {item_id!r}")
                if kind != "connection":
                    key = "sourceId" if kind == "source" else "destinationId"
                    for conn_id in [c["id"] for c in self._connections.values() if c[key] == item_id]:
                        self._connections.pop(conn_id)
            self._audit(request, f"delete_{kind}", item, None)
            return Response(status_code=204)

    def _update_destination(self, item: dict[str, Any], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "validation_error", "Expected a JSON object {name, type, enabled, config}")
        merged = {
            "name": item["name"],
            "type": item["type"],
            "enabled": item["enabled"],
            "config": item["config"],
        }
        merged.update({k: body[k] for k in ("name", "type", "enabled", "config") if k in body})
        if merged["type"] != item["type"]:
            raise ApiError(
                400,
                "validation_error",
                f"A destination's type cannot change ({item['type']} -> {merged['type']})",
            )
        fresh = self._make_destination(merged, item["createdAt"])
        fresh["id"], fresh["createdAt"] = item["id"], item["createdAt"]
        return fresh

    def _make_source(self, body: Any, now: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "validation_error", "Expected a JSON object {name, type, enabled, config}")
        name, stype = body.get("name"), body.get("type")
        if not name or not isinstance(name, str):
            raise ApiError(400, "validation_error", "Field 'name' is required (a non-empty string)")
        if not stype or not isinstance(stype, str):
            raise ApiError(400, "validation_error", "Field 'type' is required, e.g. 'HTTP' or 'Segment'")
        return {
            "id": _new_id(),
            "name": name,
            "type": stype,
            "writeKey": _new_id(),
            "enabled": bool(body.get("enabled", True)),
            "config": copy.deepcopy(body.get("config") or {}),
            "createdAt": now,
            "updatedAt": now,
        }

    def _update_source(self, item: dict[str, Any], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "validation_error", "Expected a JSON object {name, enabled, config}")
        if "type" in body and body["type"] != item["type"]:
            raise ApiError(
                400, "validation_error", f"A source's type cannot change ({item['type']} -> {body['type']})"
            )
        fresh = dict(item)
        for key in ("name", "enabled", "config"):
            if key in body:
                fresh[key] = bool(body[key]) if key == "enabled" else copy.deepcopy(body[key])
        return fresh

    def _update_connection(self, item: dict[str, Any], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(
                400, "validation_error", "Expected a JSON object {sourceId, destinationId, enabled}"
            )
        for key in ("sourceId", "destinationId"):
            if key in body and body[key] != item[key]:
                raise ApiError(
                    400,
                    "validation_error",
                    f"A connection's {key} cannot change; delete it and create a new one",
                )
        fresh = dict(item)
        if "enabled" in body:
            fresh["enabled"] = bool(body["enabled"])
        return fresh

    def _control_plane_router(self) -> APIRouter:
        router = APIRouter(dependencies=[Depends(bearer_auth_dependency(self.settings.token))])
        self._crud(router, "source", self._sources, self._make_source, self._update_source)
        self._crud(
            router,
            "destination",
            self._destinations,
            lambda body, now: self._make_destination(body, now),
            self._update_destination,
        )
        self._crud(
            router,
            "connection",
            self._connections,
            lambda body, now: self._make_connection(body, now),
            self._update_connection,
        )
        return router

    def _data_plane_router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/health")
        def health() -> dict[str, str]:
            return {"appType": "EMBEDDED", "server": "UP", "db": "UP"}

        @router.post("/v1/batch")
        async def batch(request: Request) -> Response:
            return await self._ingest(request, None)

        for event_type in EVENT_TYPES:

            async def single(request: Request, _type: str = event_type) -> Response:
                return await self._ingest(request, _type)

            router.add_api_route(f"/v1/{event_type}", single, methods=["POST"])

        @router.post("/v1/webhook")
        async def webhook(request: Request) -> Response:
            return await self._webhook(request)

        self._add_warehouse_api_routes(router)
        return router

    def _add_warehouse_api_routes(self, router: APIRouter) -> None:
        """pending-events and trigger-upload (warehouse/api/http.go), under both path prefixes."""

        def warehouse_api_served(request: Request) -> None:
            # Current rudder-server routes these only under /internal/v1/warehouse and only with internal
            # endpoints enabled (gateway/handle_lifecycle.go); the /v1/warehouse routes of old servers are gone.
            # Unrouted paths answer 404 like chi's router does.
            mode = self.settings.warehouse_api
            internal = request.url.path.startswith("/internal/")
            if mode == "disabled" or (not internal and mode != "legacy"):
                raise _DataPlaneError(404, "404 page not found")

        async def warehouse_body(request: Request) -> dict[str, Any]:
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                # warehouse/internal/errors: ErrInvalidJSONRequestBody
                raise _DataPlaneError(400, "invalid JSON in request body")
            return body

        for prefix in ("/v1/warehouse", "/internal/v1/warehouse"):

            @router.post(f"{prefix}/pending-events")
            async def pending_events(request: Request) -> Response:
                # warehouse/api/http.go pendingEventsHandler
                try:
                    warehouse_api_served(request)
                    body = await warehouse_body(request)
                    source_id, task_run_id = body.get("source_id"), body.get("task_run_id")
                    if not (
                        isinstance(source_id, str)
                        and source_id
                        and isinstance(task_run_id, str)
                        and task_run_id
                    ):
                        raise _DataPlaneError(400, "empty source or task run id")
                    result = self.pending_events(source_id, task_run_id)
                    trigger = request.query_params.get("triggerUpload", "").lower() in ("true", "1", "t")
                    if trigger and result["pending_events"]:
                        self.trigger_upload(source_id=source_id, destination_id=None)
                except _DataPlaneError as exc:
                    return PlainTextResponse(exc.message + "\n", status_code=exc.status)
                self.log.append("pending_events", source_id=source_id, task_run_id=task_run_id, result=result)
                return JSONResponse(result)

            @router.post(f"{prefix}/trigger-upload")
            async def trigger(request: Request) -> Response:
                # warehouse/api/http.go triggerUploadHandler: the workspace comes from source_id (400
                # "workspace from source not found" without a valid one); destination_id narrows to that
                # destination's warehouses; 400 "no warehouse found" when there is none; 200 with an empty body.
                try:
                    warehouse_api_served(request)
                    body = await warehouse_body(request)
                    source_id, destination_id = body.get("source_id"), body.get("destination_id")
                    if not isinstance(source_id, str) or not source_id:
                        raise _DataPlaneError(400, "workspace from source not found")
                    if destination_id is not None and not isinstance(destination_id, str):
                        raise _DataPlaneError(400, "invalid JSON in request body")
                    self.trigger_upload(source_id=source_id, destination_id=destination_id or None)
                except _DataPlaneError as exc:
                    return PlainTextResponse(exc.message + "\n", status_code=exc.status)
                return Response(status_code=200)

    def _sandbox_router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/faults")
        def faults(body: JsonBody = None) -> dict[str, Any]:
            if isinstance(body, dict) and body.get("clear"):
                self.faults.clear()
            try:
                state = self.faults.arm(body or {})
            except ValueError as exc:
                raise ApiError(400, "validation_error", str(exc)) from exc
            self.log.append("faults", spec=body)
            return state

        @router.get("/log")
        def log(kind: str | None = None, since_seq: int = 0) -> dict[str, Any]:
            return {"entries": self.log.entries(kind, since_seq=since_seq)}

        @router.get("/state")
        def state() -> dict[str, Any]:
            return self.state()

        @router.get("/uploads")
        def uploads(destination_id: str | None = None, source_id: str | None = None) -> dict[str, Any]:
            return {"uploads": self.uploads(destination_id=destination_id, source_id=source_id)}

        @router.get("/pending")
        def pending(source_id: str) -> dict[str, Any]:
            try:
                return self.pending_events(source_id)
            except _DataPlaneError as exc:
                raise ApiError(exc.status, "validation_error", exc.message) from exc

        @router.post("/deploy-server-side")
        def deploy() -> dict[str, Any]:
            return self.deploy_server_side()

        return router


class _AbortUpload(Exception):
    pass
