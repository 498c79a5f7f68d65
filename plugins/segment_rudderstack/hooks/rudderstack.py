"""RudderStack hooks: the control plane (destinations, sources, connections) and the data plane (warehouse).

``RudderStackHook`` connection: host = control plane URL (default ``https://api.rudderstack.com``; paths are
under ``/v2``), password = service access token (``Authorization: Bearer``). Responses are unwrapped:
``get_destination`` returns the object inside ``{"destination": {...}}``, ``list_sources`` the list inside
``{"sources": [...]}``. Lists are paged: every page is ``{<kind>: [...], "paging": {"total": n, "next": path}}``
and the ``list_*`` methods follow ``paging.next`` until it is empty or absent, the way RudderStack's own API
client does (rudderlabs/rudder-iac ``api/client/common.go`` ``Paging{Total, Next}``, ``api/client/service.go``
``next()`` GETs ``paging.Next`` relative to the API host, ``api/client/destinations.go`` ``GetAll``).

``RudderStackDataPlaneHook`` connection: host = data plane URL; optional login/password for basic auth
(a password alone is sent as the user name, RudderStack's write-key convention); extra
``warehouse_path_prefix`` = ``/internal/v1/warehouse`` (default, current rudder-server) or ``/v1/warehouse``
(old self-hosted servers).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from segment_rudderstack.hooks.api_hook import ApiHook
from segment_rudderstack.hooks.errors import ApiError, ResponseFormatError
from segment_rudderstack.hooks.protocol import POLICY_EXTRAS, RequestSpec, quoted_id, unwrap

# A workspace with more pages than this is far outside what a migration plan touches; stop instead of looping.
MAX_LIST_PAGES = 1000

_SECRET_KEY_PARTS = (
    "password",
    "secret",
    "privatekey",
    "private_key",
    "token",
    "credentials",
    "accesskey",
    "accountkey",
    "clientkey",
)


class RudderStackHook(ApiHook):
    """RudderStack control plane API (``/v2``). Retry settings as :class:`ApiHook`.

    :param rudderstack_conn_id: the Airflow connection of RudderStack's control plane (host:
        https://api.rudderstack.com; password: a service access token). Other keyword arguments: retry settings,
        see :class:`ApiHook`.
    """

    conn_name_attr = "rudderstack_conn_id"
    default_conn_name = "rudderstack_default"
    conn_type = "rudderstack"
    hook_name = "RudderStack control plane"
    service_name = "RudderStack API"
    default_host = "https://api.rudderstack.com"
    api_prefix = "/v2"

    def __init__(self, rudderstack_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(rudderstack_conn_id, **kwargs)
        self.rudderstack_conn_id = rudderstack_conn_id

    def _normalise_base_url(self, base_url: str) -> str:
        if base_url.endswith(self.api_prefix):  # host given as https://api.rudderstack.com/v2
            return base_url[: -len(self.api_prefix)]
        return base_url

    def _get(self, spec: RequestSpec, key: str, expect: type = dict) -> Any:
        return unwrap(self.call(spec), (key,), spec=spec, service=self.service_name, expect=expect)

    def _next_spec(self, current: RequestSpec, next_ref: Any) -> RequestSpec | None:
        """The request for ``paging.next`` (``None`` on the last page: ``next`` empty, null or absent).

        ``next`` is a path from the API host with its query (e.g. ``/v2/destinations?page=2``), as
        rudder-iac's ``service.next`` requests it. An absolute URL is followed only on the connection's own
        host (the token is never sent anywhere else)."""
        if next_ref in (None, ""):
            return None
        if not isinstance(next_ref, str):
            raise ResponseFormatError(
                endpoint=current.endpoint,
                service=self.service_name,
                message=f"expected paging.next to be a path string or empty, got {type(next_ref).__name__}",
            )
        parts = urlsplit(next_ref)
        if parts.scheme or parts.netloc:
            own = urlsplit(self.base_url)
            if (parts.scheme, parts.netloc) != (own.scheme, own.netloc):
                raise ResponseFormatError(
                    endpoint=current.endpoint,
                    service=self.service_name,
                    message=(
                        f"paging.next points to another host ({parts.netloc!r}, expected {own.netloc!r}); "
                        "refusing to send the token there"
                    ),
                )
        path = parts.path if parts.path.startswith("/") else f"/{parts.path}"
        return RequestSpec("GET", path, params=dict(parse_qsl(parts.query, keep_blank_values=True)) or None)

    def _list_all(self, kind: str) -> list[dict[str, Any]]:
        """Every item of a paged list (``kind``: ``destinations``, ``sources``, ``connections``)."""
        spec: RequestSpec | None = RequestSpec("GET", f"{self.api_prefix}/{kind}")
        items: list[dict[str, Any]] = []
        seen: set[tuple[str, tuple[tuple[str, Any], ...]]] = set()
        pages = 0
        while spec is not None:
            key = (spec.path, tuple(sorted((spec.params or {}).items())))
            if key in seen:
                raise ResponseFormatError(
                    endpoint=spec.endpoint,
                    service=self.service_name,
                    message=f"paging.next repeats a page already read ({spec.path}); the listing would never end",
                )
            seen.add(key)
            pages += 1
            if pages > MAX_LIST_PAGES:
                raise ResponseFormatError(
                    endpoint=spec.endpoint,
                    service=self.service_name,
                    message=f"expected at most {MAX_LIST_PAGES} pages of {kind}, the service kept sending more",
                )
            payload = self.call(spec)
            items.extend(unwrap(payload, (kind,), spec=spec, service=self.service_name, expect=list))
            paging = payload.get("paging") if isinstance(payload, dict) else None
            if paging is not None and not isinstance(paging, dict):
                raise ResponseFormatError(
                    endpoint=spec.endpoint,
                    service=self.service_name,
                    message=f"expected paging to be a JSON object {{total, next}}, got {type(paging).__name__}",
                )
            spec = self._next_spec(spec, (paging or {}).get("next"))
        return items

    def _mask_config(self, resource: Any) -> Any:
        """Warehouse credentials in a destination's config are registered with the secrets masker."""
        config = resource.get("config") if isinstance(resource, dict) else None
        if isinstance(config, dict):
            for key, value in config.items():
                if isinstance(value, str) and any(part in key.lower() for part in _SECRET_KEY_PARTS):
                    self.add_secret(value)
        return resource

    def _mask_source(self, source: Any) -> Any:
        """``source`` unchanged, after its ``writeKey`` is registered with the secrets masker."""
        if isinstance(source, dict) and isinstance(source.get("writeKey"), str):
            self.add_secret(source["writeKey"])
        return source

    # ------------------------------------------------------------------ destinations
    def _destination_path(self, destination_id: str) -> str:
        return f"{self.api_prefix}/destinations/{quoted_id(destination_id, 'destination_id')}"

    def get_destination(self, destination_id: str) -> dict[str, Any]:
        spec = RequestSpec("GET", self._destination_path(destination_id))
        return self._mask_config(self._get(spec, "destination"))

    def list_destinations(self) -> list[dict[str, Any]]:
        """Every destination of the workspace (all pages)."""
        return [self._mask_config(d) for d in self._list_all("destinations")]

    def create_destination(
        self, name: str, type: str, config: dict[str, Any], enabled: bool = True
    ) -> dict[str, Any]:
        """POST ``/v2/destinations``. Not retried after it may have taken effect."""
        self._mask_config({"config": config})
        spec = RequestSpec(
            "POST",
            f"{self.api_prefix}/destinations",
            json={"name": name, "type": type, "enabled": bool(enabled), "config": config},
            idempotent=False,
        )
        return self._mask_config(self._get(spec, "destination"))

    def update_destination(
        self,
        destination_id: str,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change a destination: GET it, merge, PUT the full body back; returns the updated destination.

        ``config`` is merged into the current config key by key (top level): keys not given are kept,
        a given key replaces its whole value (e.g. ``excludeWindow``). ``None`` arguments keep the current value.
        """
        current = self.get_destination(destination_id)
        self._mask_config({"config": config or {}})
        current_config = current.get("config") or {}
        if not isinstance(current_config, dict):
            raise ResponseFormatError(
                endpoint=f"GET {self._destination_path(destination_id)}",
                service=self.service_name,
                message=f"expected destination.config to be a JSON object, got {type(current_config).__name__}",
            )
        body: dict[str, Any] = {
            "name": current.get("name") if name is None else name,
            "enabled": current.get("enabled") if enabled is None else bool(enabled),
            "config": {**current_config, **(config or {})},
        }
        if current.get("type") is not None:
            body["type"] = current["type"]
        spec = RequestSpec("PUT", self._destination_path(destination_id), json=body)
        return self._mask_config(self._get(spec, "destination"))

    # ------------------------------------------------------------------ sources
    def get_source(self, source_id: str) -> dict[str, Any]:
        """The source (its ``writeKey`` is masked in logs)."""
        spec = RequestSpec("GET", f"{self.api_prefix}/sources/{quoted_id(source_id, 'source_id')}")
        return self._mask_source(self._get(spec, "source"))

    def list_sources(self) -> list[dict[str, Any]]:
        """Every source, all pages (their ``writeKey`` values are masked in logs)."""
        return [self._mask_source(s) for s in self._list_all("sources")]

    def create_source(
        self, name: str, type: str, config: dict[str, Any] | None = None, enabled: bool = True
    ) -> dict[str, Any]:
        """POST ``/v2/sources``; the new source (its ``writeKey`` is masked in logs). Not retried once sent."""
        spec = RequestSpec(
            "POST",
            f"{self.api_prefix}/sources",
            json={"name": name, "type": type, "enabled": bool(enabled), "config": config or {}},
            idempotent=False,
        )
        return self._mask_source(self._get(spec, "source"))

    # ------------------------------------------------------------------ connections
    def list_connections(self) -> list[dict[str, Any]]:
        """Every connection of the workspace (all pages)."""
        return self._list_all("connections")

    def create_connection(self, source_id: str, destination_id: str, enabled: bool = True) -> dict[str, Any]:
        """POST ``/v2/connections`` ``{sourceId, destinationId, enabled}``. Not retried once sent."""
        spec = RequestSpec(
            "POST",
            f"{self.api_prefix}/connections",
            json={"sourceId": source_id, "destinationId": destination_id, "enabled": bool(enabled)},
            idempotent=False,
        )
        return self._get(spec, "connection")

    def delete_connection(self, connection_id: str) -> None:
        """DELETE ``/v2/connections/{id}`` (RudderStack's rudder-iac client: 204, no body). A 404 raises."""
        path = f"{self.api_prefix}/connections/{quoted_id(connection_id, 'connection_id')}"
        self.call(RequestSpec("DELETE", path, decode=lambda body: None))

    def delete_destination(self, destination_id: str) -> None:
        """DELETE ``/v2/destinations/{id}`` (rudder-iac client: 204, no body). A 404 raises."""
        self.call(RequestSpec("DELETE", self._destination_path(destination_id), decode=lambda body: None))

    def _test_spec(self) -> RequestSpec:
        return RequestSpec("GET", f"{self.api_prefix}/sources")

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        behaviour = super().get_ui_field_behaviour()
        behaviour["relabeling"]["password"] = "Service access token"
        return behaviour


_PENDING_KEYS = {
    "pending_events": bool,
    "pending_staging_files": int,
    "pending_uploads": int,
    "aborted_events": bool,
}


def parse_pending_events(payload: Any, spec: RequestSpec) -> dict[str, Any]:
    """``{pending_events: bool, pending_staging_files: int, pending_uploads: int, aborted_events: bool}``."""
    if not isinstance(payload, dict):
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=RudderStackDataPlaneHook.service_name,
            message=f"expected a JSON object with {sorted(_PENDING_KEYS)}, got {type(payload).__name__}",
        )
    missing = sorted(set(_PENDING_KEYS) - set(payload))
    if missing:
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=RudderStackDataPlaneHook.service_name,
            message=f"expected keys {missing} in the pending-events answer, found only keys {sorted(payload)}",
        )
    result: dict[str, Any] = {}
    for key, kind in _PENDING_KEYS.items():
        value = payload[key]
        if kind is int and isinstance(value, (int, float)) and not isinstance(value, bool):
            result[key] = int(value)
        elif kind is bool and isinstance(value, bool):
            result[key] = value
        else:
            raise ResponseFormatError(
                endpoint=spec.endpoint,
                service=RudderStackDataPlaneHook.service_name,
                message=f"expected {key} to be a {kind.__name__}, got {value!r}",
            )
    return result


# HTTP statuses that mean "this data plane does not serve the warehouse endpoints here": the route is not
# registered (rudder-server registers /internal/v1/warehouse/* only when internal endpoints are enabled:
# gateway/handle_lifecycle.go StartWebHandler, warehouse/api/http.go addMasterEndpoints), or a proxy in front
# of a hosted data plane refuses it.
WAREHOUSE_API_UNAVAILABLE_STATUSES = frozenset({403, 404, 405, 501})


def warehouse_api_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the data plane does not offer the warehouse endpoints (not a bad request)."""
    return isinstance(error, ApiError) and error.status in WAREHOUSE_API_UNAVAILABLE_STATUSES


def _required_id(value: Any, what: str, why: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string ({why}), got {value!r}")
    return value


class RudderStackDataPlaneHook(ApiHook):
    """RudderStack data plane: warehouse pending-events / trigger-upload, and the Segment-source webhook URL.

    The warehouse endpoints are rudder-server's ``warehouse/api/http.go`` handlers, routed by the gateway
    (``gateway/handle_lifecycle.go``) only under ``/internal/v1/warehouse/...`` and only when internal endpoints
    are enabled; the old ``/v1/warehouse/...`` routes are gone from current servers. A hosted data plane may not
    expose them at all: callers treat :func:`warehouse_api_unavailable` errors as "not offered here".

    :param warehouse_path_prefix: overrides the connection extra of the same name
        (default ``/internal/v1/warehouse``; ``/v1/warehouse`` for old self-hosted servers).
    :param rudderstack_data_plane_conn_id: the Airflow connection of the data plane (host: the data plane URL;
        login/password: basic auth of the warehouse endpoints). Other keyword arguments: retry settings, see
        :class:`ApiHook`.
    """

    conn_name_attr = "rudderstack_data_plane_conn_id"
    default_conn_name = "rudderstack_data_plane_default"
    conn_type = "rudderstack_data_plane"
    hook_name = "RudderStack data plane"
    service_name = "RudderStack data plane"
    default_host = ""
    hook_extras = (*POLICY_EXTRAS, "warehouse_path_prefix")
    default_warehouse_path_prefix = "/internal/v1/warehouse"

    def __init__(
        self,
        rudderstack_data_plane_conn_id: str = default_conn_name,
        *,
        warehouse_path_prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(rudderstack_data_plane_conn_id, **kwargs)
        self.rudderstack_data_plane_conn_id = rudderstack_data_plane_conn_id
        self._prefix_override = warehouse_path_prefix

    @staticmethod
    def _basic_token(conn: Any) -> str | None:
        if not (conn.login or conn.password):
            return None
        user, password = (conn.login, conn.password or "") if conn.login else (conn.password, "")
        return base64.b64encode(f"{user}:{password}".encode()).decode()

    def _connection_secrets(self, conn: Any) -> list[str]:
        token = self._basic_token(conn)
        return [s for s in (conn.password, token) if s]

    def _auth_headers(self, conn: Any) -> dict[str, str]:
        token = self._basic_token(conn)
        return {"Authorization": f"Basic {token}"} if token else {}

    def _configure(self, conn: Any, extras: dict[str, Any]) -> None:
        if not (conn.host or "").strip():
            raise ValueError(
                f"Connection {self.conn_id!r} has no host: set it to the RudderStack data plane URL "
                "(for example https://<your-data-plane>.dataplane.rudderstack.com)"
            )
        super()._configure(conn, extras)
        prefix = (
            self._prefix_override or extras.get("warehouse_path_prefix") or self.default_warehouse_path_prefix
        )
        self.warehouse_path_prefix = "/" + str(prefix).strip("/")

    def _warehouse_spec(self, action: str, body: dict[str, Any]) -> RequestSpec:
        return RequestSpec("POST", f"{self.warehouse_path_prefix}/{action}", json=body, idempotent=True)

    @staticmethod
    def _pending_body(source_id: str, task_run_id: str) -> dict[str, Any]:
        # rudder-server warehouse/api/http.go pendingEventsHandler: 400 "empty source or task run id" unless both.
        return {
            "source_id": _required_id(source_id, "source_id", "the RudderStack source to ask about"),
            "task_run_id": _required_id(
                task_run_id,
                "task_run_id",
                "RudderStack answers 400 without it; it counts only uploads of that source task run, which "
                "event-stream sources never have, so observe event-stream uploads in the warehouse instead",
            ),
        }

    def pending_events(self, source_id: str, task_run_id: str) -> dict[str, Any]:
        """What of one source *task run* still waits to be loaded: pending_events, pending_staging_files,
        pending_uploads, aborted_events.

        ``pending_staging_files`` counts every staging file of the source not yet in an upload; pending and
        aborted uploads count only uploads whose metadata ``source_task_run_id`` is ``task_run_id`` (rudder-server
        ``warehouse/api/http.go`` pendingEventsHandler). Event-stream sources (and a Segment-type webhook
        source) carry no task run id, so "nothing pending" does not prove their events were loaded.
        """
        self.load_connection()
        spec = self._warehouse_spec("pending-events", self._pending_body(source_id, task_run_id))
        return parse_pending_events(self.call(spec), spec)

    async def apending_events(self, source_id: str, task_run_id: str) -> dict[str, Any]:
        await self.aload_connection()
        spec = self._warehouse_spec("pending-events", self._pending_body(source_id, task_run_id))
        return parse_pending_events(await self.acall(spec), spec)

    def trigger_upload(self, source_id: str, destination_id: str | None = None) -> None:
        """Ask the data plane to upload now the warehouse(s) of ``source_id`` (narrowed to ``destination_id``).

        rudder-server ``warehouse/api/http.go`` triggerUploadHandler: the workspace is looked up from
        ``source_id`` (400 "workspace from source not found" without a valid one); with ``destination_id`` the
        destination's warehouses are triggered, else every warehouse of the source (400 "no warehouse found" when
        there is none); success is 200 with an empty body. Raises :class:`ApiError`; see
        :func:`warehouse_api_unavailable` for "this data plane does not serve the endpoint".
        """
        body: dict[str, Any] = {
            "source_id": _required_id(
                source_id, "source_id", "RudderStack looks the workspace up from it; 400 without a valid one"
            )
        }
        if destination_id is not None:
            body["destination_id"] = _required_id(
                destination_id, "destination_id", "the warehouse destination"
            )
        self.load_connection()
        self.call(self._warehouse_spec("trigger-upload", body))

    def webhook_url(self, write_key: str) -> str:
        """``<data plane>/v1/webhook?writeKey=<key>``, the URL a Segment-type RudderStack source receives on.

        The write key and the URL are registered with the secrets masker.
        """
        if not isinstance(write_key, str) or not write_key:
            raise ValueError("write_key must be a non-empty string (the RudderStack source's write key)")
        self.load_connection()
        url = f"{self.base_url}/v1/webhook?writeKey={quote(write_key, safe='')}"
        self.add_secret(write_key)
        self.add_secret(url)
        return url

    def _test_spec(self) -> RequestSpec:
        return RequestSpec("GET", "/health")

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {
                "host": "Data plane URL",
                "login": "User (optional)",
                "password": "Password / write key",
            },
            "placeholders": {"extra": '{"warehouse_path_prefix": "/internal/v1/warehouse"}'},
        }
