"""``ApiHook``: one JSON API reached through an Airflow connection, sync and async.

Subclasses say which service they speak (name, default host, how they authenticate) and build
:class:`~segment_rudderstack.hooks.protocol.RequestSpec` objects; this class sends them:

- sync through the http provider's :class:`HttpHook` (its configured ``requests`` session and
  ``url_from_endpoint``), under a ``tenacity.Retrying`` loop;
- async (for deferrable triggers) through ``httpx.AsyncClient`` under ``tenacity.AsyncRetrying``.

Both paths use the same request spec, retry policy, :func:`parse_response` and :func:`transport_failure`
(one mapping of connection errors, timeouts and redirect loops for requests and httpx; redirects are
followed alike, per the connection's ``allow_redirects`` / ``max_redirects`` extras), so they raise the
same errors and return the same parsed data. An async twin is named like its sync method with an ``a``
prefix (``call``/``acall``, ``get_warehouse``/``aget_warehouse``), as Airflow names its own. Secrets from the connection are registered with Airflow's secrets
masker as soon as the connection is read, and scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import base64
import weakref
from typing import Any

import httpx
import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook
from urllib3.exceptions import NewConnectionError

from segment_rudderstack.hooks.errors import ApiError, scrub
from segment_rudderstack.hooks.protocol import (
    POLICY_EXTRAS,
    RequestSpec,
    RetryPolicy,
    finalize_error,
    parse_response,
    transport_error,
)

# Connection extras the http provider turns into request options rather than headers.
_PROVIDER_OPTIONS = frozenset(
    {
        "stream",
        "cert",
        "proxies",
        "proxy",
        "timeout",
        "verify",
        "verify_ssl",
        "allow_redirects",
        "max_redirects",
        "trust_env",
        "check_response",
        "srv_lookup",
    }
)


def _chain(error: BaseException):
    """The error and its causes/contexts (each once)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        reason = getattr(current.args[0], "reason", None) if current.args else None
        if isinstance(reason, BaseException):  # urllib3's MaxRetryError carries the cause as .reason
            yield reason
        current = current.__cause__ or current.__context__


def _refused(error: BaseException) -> bool:
    """Whether the connection was refused (nothing listens)."""
    return any(isinstance(e, ConnectionRefusedError) for e in _chain(error))


def _never_connected(error: BaseException) -> bool:
    """Whether no connection was made (refused, unresolvable host): the request was certainly not sent."""
    if isinstance(error, httpx.ConnectError):
        return True
    return any(isinstance(e, (ConnectionRefusedError, NewConnectionError)) for e in _chain(error))


#: what the sync (requests) and the async (httpx) transports raise, by what it means for the request
_CONNECT_TIMEOUTS = (requests.exceptions.ConnectTimeout, httpx.ConnectTimeout)
_TIMEOUTS = (requests.exceptions.Timeout, httpx.TimeoutException)
_REDIRECT_LOOPS = (requests.exceptions.TooManyRedirects, httpx.TooManyRedirects)
_CONNECTION_ERRORS = (requests.exceptions.ConnectionError, httpx.TransportError)
TRANSPORT_ERRORS = (*_TIMEOUTS, *_REDIRECT_LOOPS, *_CONNECTION_ERRORS)


def transport_failure(error: BaseException, timeout: float) -> tuple[str, str, bool]:
    """``(kind, detail, request_sent)`` of a failure of either transport (one of :data:`TRANSPORT_ERRORS`).

    One mapping for both, so the same failure reads and retries the same in a worker and in the triggerer:
    a connect timeout or no connection at all (refused, unresolvable host) was not sent (safe to repeat);
    a read timeout or a connection dropped after connecting may have reached the service (repeated only
    when the call is idempotent); a redirect loop (more than ``max_redirects``) is not repeated.
    """
    if isinstance(error, _CONNECT_TIMEOUTS):
        return "timeout", f"connect timeout after {timeout} s", False
    if isinstance(error, _TIMEOUTS):
        return "timeout", f"read timeout after {timeout} s", True
    if isinstance(error, _REDIRECT_LOOPS):
        return "redirect", "too many redirects", True
    if _refused(error):
        return "connect", "connection refused", False
    return "connect", type(error).__name__, not _never_connected(error)


def _mask(secret: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


async def _amask(secret: str) -> None:
    from airflow.sdk.log import amask_secret

    await amask_secret(secret)


# One httpx client per event loop and connection settings, shared by every hook of the process (the triggerer
# runs hundreds of triggers in one loop). Building a client builds a TLS context (~23 ms in
# load_verify_locations): built once, in a worker thread so the loop never blocks, then reused with its pool.
_ASYNC_CLIENTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, ...], httpx.AsyncClient]
] = weakref.WeakKeyDictionary()
# Connections kept open to one service by the shared client (many triggers, one host). An idle one is dropped
# after 4 s, before servers commonly close theirs (5 s in uvicorn, nginx keeps 75 s), so a reused connection
# is rarely one the server has just closed.
ASYNC_POOL_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=4.0)


def _build_async_client(settings: tuple[Any, ...]) -> httpx.AsyncClient:
    _conn_id, headers, timeout, verify, follow_redirects, max_redirects = settings
    return httpx.AsyncClient(
        headers=dict(headers),
        timeout=httpx.Timeout(timeout),
        verify=verify,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        limits=ASYNC_POOL_LIMITS,
    )


async def shared_async_client(settings: tuple[Any, ...]) -> httpx.AsyncClient:
    """The client for ``settings`` (connection id, headers, timeout, verify, redirects) on the running loop;
    built once."""
    loop = asyncio.get_running_loop()
    clients = _ASYNC_CLIENTS.setdefault(loop, {})
    client = clients.get(settings)
    if client is None or client.is_closed:
        built = await asyncio.to_thread(_build_async_client, settings)
        client = clients.get(settings)
        if client is None or client.is_closed:
            clients[settings] = client = built
        else:  # another check built it meanwhile
            await built.aclose()
    return client


class ApiHook(HttpHook):
    """Base of the Segment and RudderStack hooks (not used directly).

    :param conn_id: the Airflow connection to read (host = base URL, password = token).
    :param max_attempts: requests per call at most (default 5; connection extra ``max_attempts``).
    :param backoff_initial: first backoff wait in seconds, doubling (default 1; extra ``backoff_initial``).
    :param backoff_max: longest backoff wait in seconds (default 30; extra ``backoff_max``).
    :param max_retry_wait: longest ``Retry-After`` honoured, in seconds (default 120; extra ``max_retry_wait``).
    :param timeout: seconds per request (default 30; extra ``timeout``).
    """

    service_name = "API"
    default_host = ""
    # Extras read by the hook itself: never sent as HTTP headers.
    hook_extras: tuple[str, ...] = POLICY_EXTRAS

    def __init__(
        self,
        conn_id: str,
        *,
        max_attempts: int | None = None,
        backoff_initial: float | None = None,
        backoff_max: float | None = None,
        max_retry_wait: float | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(method="GET", http_conn_id=conn_id)
        self._policy_overrides = {
            "max_attempts": max_attempts,
            "backoff_initial": backoff_initial,
            "backoff_max": backoff_max,
            "max_retry_wait": max_retry_wait,
            "timeout": timeout,
        }
        RetryPolicy.from_settings(self._policy_overrides, {})  # reject bad arguments early
        self._secrets: set[str] = set()
        self._policy: RetryPolicy | None = None
        self._extras: dict[str, Any] = {}
        self._auth: dict[str, str] = {}
        self._session: requests.Session | None = None

    # ------------------------------------------------------------------ connection
    @property
    def conn_id(self) -> str:
        return self.http_conn_id

    def _connection_secrets(self, conn: Any) -> list[str]:
        secrets = [conn.password or ""]
        if conn.password and conn.login:
            secrets.append(base64.b64encode(f"{conn.login}:{conn.password}".encode()).decode())
        return [s for s in secrets if s]

    def _auth_headers(self, conn: Any) -> dict[str, str]:
        """Bearer token from the password field (overridden by hooks that use basic auth)."""
        if not conn.password:
            raise ValueError(
                f"Connection {self.conn_id!r} has no token: put the {self.service_name} token in its "
                "password field"
            )
        return {"Authorization": f"Bearer {conn.password}"}

    def _configure(self, conn: Any, extras: dict[str, Any]) -> None:
        """Everything derived from the connection; no I/O. Call after the secrets are masked."""
        self._extras = dict(extras)
        self._policy = RetryPolicy.from_settings(self._policy_overrides, extras)
        self._set_base_url(conn)
        self._auth = self._auth_headers(conn)

    def _set_base_url(self, connection: Any) -> None:
        # HttpHook.get_conn calls this again for every session: normalise here, not after it.
        super()._set_base_url(connection)
        self.base_url = self._normalise_base_url(self.base_url.rstrip("/"))

    def _normalise_base_url(self, base_url: str) -> str:
        return base_url

    def _not_found(self, error: Exception) -> ValueError:
        return ValueError(
            f"Connection {self.conn_id!r} for {self.service_name} could not be read "
            f"({type(error).__name__}). Define it (for example AIRFLOW_CONN_{self.conn_id.upper()}) with "
            f"host = base URL (default {self.default_host or 'none'}) and password = token"
        )

    def load_connection(self) -> None:
        """Read the connection once, register its secrets with the masker, derive settings."""
        if self._policy is not None:
            return
        try:
            conn = self.get_connection(self.conn_id)
        except Exception as error:  # AirflowNotFoundException and friends
            raise self._not_found(error) from None
        for secret in self._connection_secrets(conn):
            self._secrets.add(secret)
            _mask(secret)
        self._configure(conn, conn.extra_dejson)

    async def aload_connection(self) -> None:
        if self._policy is not None:
            return
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        try:
            conn = await get_async_connection(self.conn_id, hook=self)
        except Exception as error:
            raise self._not_found(error) from None
        for secret in self._connection_secrets(conn):
            self._secrets.add(secret)
            await _amask(secret)
        self._configure(conn, await get_async_extra_dejson(conn))

    def add_secret(self, secret: str) -> None:
        """Register one more value (e.g. a write key) to mask in logs and scrub from errors."""
        if secret and secret not in self._secrets:
            self._secrets.add(secret)
            _mask(secret)

    @property
    def policy(self) -> RetryPolicy:
        if self._policy is None:
            raise RuntimeError("load_connection() has not run yet")
        return self._policy

    def _header_extras(self) -> dict[str, str]:
        skip = _PROVIDER_OPTIONS | set(self.hook_extras)
        return {k: v for k, v in self._extras.items() if k not in skip and isinstance(v, str)}

    # ------------------------------------------------------------------ sync path (HttpHook)
    def _extract_auth(self, connection: Any) -> Any | None:
        return None  # authentication is the header built by _auth_headers, the same on both paths

    def _configure_session_from_extra(self, session, connection, extra_options):
        session = super()._configure_session_from_extra(session, connection, extra_options)
        for key in list(session.headers):
            if key in self.hook_extras or not isinstance(session.headers[key], (str, bytes)):
                del session.headers[key]
        return session

    def _redirects(self) -> tuple[bool, int]:
        """Whether to follow redirects and how many at most: the same for both transports (connection extras
        ``allow_redirects``, default true, and ``max_redirects``, default requests' 30)."""
        follow = self._extras.get("allow_redirects", True)
        if isinstance(follow, str):
            follow = follow.strip().lower() not in ("false", "0", "no")
        return bool(follow), int(self._extras.get("max_redirects", requests.models.DEFAULT_REDIRECT_LIMIT))

    def _requests_session(self) -> requests.Session:
        if self._session is None:
            self.load_connection()
            self._session = self.get_conn(headers={"Accept": "application/json", **self._auth})
            self._session.max_redirects = self._redirects()[1]
        return self._session

    def _send(self, spec: RequestSpec) -> Any:
        session = self._requests_session()
        request = requests.Request(
            spec.method.upper(),
            self.url_from_endpoint(spec.path),
            params=dict(spec.params) if spec.params else None,
            json=spec.json,
            headers=dict(spec.headers) if spec.headers else None,
        )
        prepared = session.prepare_request(request)
        # Like HttpHook.run_and_check, minus its warning that would log the raw exception (URL and query).
        settings = session.merge_environment_settings(
            prepared.url,
            proxies=session.proxies,
            stream=session.stream,
            verify=session.verify,
            cert=session.cert,
        )
        follow, _ = self._redirects()
        try:
            return session.send(prepared, timeout=self.policy.timeout, allow_redirects=follow, **settings)
        except TRANSPORT_ERRORS as error:
            failure = self._transport(spec, *transport_failure(error, self.policy.timeout))
        raise failure from None

    def _transport(self, spec: RequestSpec, kind: str, detail: str, sent: bool) -> ApiError:
        return transport_error(
            spec,
            kind=kind,
            detail=detail,
            sent=sent,
            base_url=self.base_url,
            service=self.service_name,
            conn_id=self.conn_id,
            secrets=self._secrets,
        )

    def _parse(self, spec: RequestSpec, response: Any) -> Any:
        return parse_response(
            spec, response, service=self.service_name, conn_id=self.conn_id, secrets=self._secrets
        )

    def call(self, spec: RequestSpec) -> Any:
        """Send ``spec`` with retries; the parsed JSON body (``None`` when empty)."""
        self._requests_session()
        policy = self.policy
        attempts = 0
        try:
            for attempt in tenacity.Retrying(**policy.tenacity_kwargs(self.log, spec.endpoint)):
                with attempt:
                    attempts += 1
                    result = self._parse(spec, self._send(spec))
        except ApiError as error:
            raise self._identify(finalize_error(error, attempts, policy)) from None
        return result

    def _identify(self, error: ApiError) -> ApiError:
        """Name the connection and the hook on the error, so a step can wait for this service to answer."""
        error.conn_id = error.conn_id or self.conn_id
        error.hook = error.hook or f"{type(self).__module__}.{type(self).__qualname__}"
        return error

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # ------------------------------------------------------------------ async path (httpx)
    async def _asend(self, client: httpx.AsyncClient, spec: RequestSpec) -> httpx.Response:
        try:
            return await client.request(
                spec.method.upper(),
                self.url_from_endpoint(spec.path),
                params=dict(spec.params) if spec.params else None,
                json=spec.json,
                headers=dict(spec.headers) if spec.headers else None,
            )
        except TRANSPORT_ERRORS as error:
            failure = self._transport(spec, *transport_failure(error, self.policy.timeout))
        raise failure from None

    def _async_client_settings(self) -> tuple[Any, ...]:
        verify = self._extras.get("verify", self._extras.get("verify_ssl", True))
        headers = {"Accept": "application/json", **self._header_extras(), **self._auth}
        return (
            self.conn_id,
            tuple(sorted(headers.items())),
            float(self.policy.timeout),
            verify if isinstance(verify, (bool, str)) else True,
            *self._redirects(),
        )

    async def _async_client(self) -> httpx.AsyncClient:
        """The process's client for this connection's settings on the running loop (see :func:`shared_async_client`)."""
        return await shared_async_client(self._async_client_settings())

    async def acall(self, spec: RequestSpec) -> Any:
        """Async twin of :meth:`call`: same spec, same retries, same parsing, same errors."""
        await self.aload_connection()
        policy = self.policy
        attempts = 0
        client = await self._async_client()
        try:
            async for attempt in tenacity.AsyncRetrying(**policy.tenacity_kwargs(self.log, spec.endpoint)):
                with attempt:
                    attempts += 1
                    result = self._parse(spec, await self._asend(client, spec))
        except ApiError as error:
            raise self._identify(finalize_error(error, attempts, policy)) from None
        return result

    # ------------------------------------------------------------------ Airflow UI
    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap authenticated read; ``(ok, message)`` without secrets."""
        try:
            self.call(self._test_spec())
        except Exception as error:
            return False, scrub(str(error), self._secrets)
        return True, f"Connection to {self.service_name} works"

    def ping(self) -> None:
        """The cheap authenticated read of :meth:`test_connection`, raising what it raises (an outage, a 401)."""
        self.call(self._test_spec())

    def _test_spec(self) -> RequestSpec:
        raise NotImplementedError

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"host": "API base URL", "password": "Token"},
            "placeholders": {
                "host": cls.default_host,
                "extra": '{"max_attempts": 5, "backoff_initial": 1, "max_retry_wait": 120, "timeout": 30}',
            },
        }
