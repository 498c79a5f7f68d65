"""Building blocks shared by the sandbox emulators.

- `ServerThread`: run an ASGI app with uvicorn in a daemon thread on 127.0.0.1 (port 0 = any free port).
- `FaultInjector` + `fault_middleware`: arm 429 storms, 5xx bursts and slow responses (and named faults the
  emulators consume themselves, e.g. a failing warehouse load) from a plain dict.
- `RequestLog`: a thread-safe, append-only record of what an emulator did, used to prove safety ordering.
- `ApiError`, `bearer_auth_dependency`, `install_api_error_handler`: Bearer auth and error envelopes.
- `utcnow`, `isoformat_z`: real UTC time, rendered the way Segment renders it.

Nothing here opens a socket or touches a database at import time.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

__all__ = [
    "ApiError",
    "FaultInjector",
    "RequestLog",
    "ServerThread",
    "bearer_auth_dependency",
    "fault_middleware",
    "install_api_error_handler",
    "isoformat_z",
    "redact",
    "segment_error_body",
    "utcnow",
]

CONTROL_PREFIX = "/sandbox"
SECRET_KEYS = frozenset(
    {"sharedsecret", "password", "token", "writekey", "secret", "authorization"}
    # RudderStack warehouse destinations' secretKeys (rudder-integrations-config db-config.json) and the TLS key
    | {"accesskeyid", "accesskey", "accountkey", "sastoken", "secretaccesskey", "credentials", "privatekey"}
    | {"privatekeypassphrase", "clientkey"}
)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def isoformat_z(moment: datetime) -> str:
    """ISO 8601 with milliseconds and a `Z` suffix, e.g. `2025-01-31T12:00:00.123Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def redact(value: Any) -> Any:
    """A deep copy of a JSON-like value with secret-looking keys replaced by `***`."""
    if isinstance(value, dict):
        return {
            k: ("***" if isinstance(k, str) and k.lower() in SECRET_KEYS else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------- server


class ServerThread:
    """Run `app` under uvicorn in a daemon thread.

    `start()` returns once the socket listens (or raises if it did not within `startup_timeout_s`);
    `url` is `http://127.0.0.1:<port>`; `stop()` asks uvicorn to exit and joins the thread.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, startup_timeout_s: float = 10.0):
        self.app = app
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("ServerThread.url is only known after start(); call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        if self._thread is not None:
            raise RuntimeError("ServerThread was already started; create a new one to serve again")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.set_inheritable(True)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"uvicorn on {self.host}:{self.port} exited during start-up; see its log")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"uvicorn on {self.host}:{self.port} did not start within {self.startup_timeout_s}s"
                )
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout_s)
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------- request log


class RequestLog:
    """Thread-safe append-only list of dict entries.

    Every entry has `seq` (strictly increasing), `at` (ISO UTC) and `kind` ("api", "load", "webhook", ...),
    plus whatever fields the caller gives (method, path, body, status, ...).
    """

    def __init__(self, max_entries: int = 100_000):
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._seq = itertools.count(1)
        self.max_entries = max_entries

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            entry = {"seq": next(self._seq), "at": isoformat_z(utcnow()), "kind": kind, **fields}
            self._entries.append(entry)
            if len(self._entries) > self.max_entries:
                del self._entries[: len(self._entries) - self.max_entries]
            return copy.deepcopy(entry)

    def entries(self, kind: str | None = None, *, since_seq: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            chosen = [
                e for e in self._entries if (kind is None or e["kind"] == kind) and e["seq"] > since_seq
            ]
            return copy.deepcopy(chosen)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# --------------------------------------------------------------------------------------------- faults


class FaultInjector:
    """Faults armed from a dict, consumed one occurrence at a time (thread-safe).

    ``arm({"rate_limit": {"count": 3, "retry_after": 2}, "server_error": {"count": 2, "status": 503},
    "slow": {"count": 1, "seconds": 0.5}, "path_prefix": "/warehouses"})``

    `path_prefix` (top level, or inside one fault) limits the HTTP faults to matching paths, and `method` (inside
    one fault) to one HTTP method; control paths under /sandbox are never faulted. `server_error` with
    `"html": true` answers the load balancer's HTML error page instead of the API's JSON (see
    `gateway_error_page`); `answer_lost` lets the request through (it takes effect) and answers that page.
    Any other name (e.g. "load_failure", "load_partial",
    "webhook_failure") is stored the same way and consumed by the emulator with `take(name)`.
    A count of -1 means "until cleared".
    """

    HTTP_KINDS = ("slow", "rate_limit", "server_error", "answer_lost")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, dict[str, Any]] = {}
        self._fired: dict[str, int] = {}

    def arm(self, spec: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise ValueError(
                f"expected a fault spec object like {{'server_error': {{'count': 2}}}}, got {spec!r}"
            )
        prefix = spec.get("path_prefix")
        with self._lock:
            for name, params in spec.items():
                if name in ("path_prefix", "clear"):
                    continue
                if params is None:
                    self._armed.pop(name, None)
                    continue
                if not isinstance(params, dict):
                    raise ValueError(f"fault {name!r}: expected an object with 'count', got {params!r}")
                entry = dict(params)
                count = int(entry.get("count", 1))
                if count == 0 or count < -1:
                    raise ValueError(f"fault {name!r}: count must be >= 1 or -1 (until cleared), got {count}")
                entry["count"] = count
                if prefix is not None and "path_prefix" not in entry:
                    entry["path_prefix"] = prefix
                self._armed[name] = entry
            return self._state_locked()

    def clear(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._armed.clear()
            else:
                self._armed.pop(name, None)

    def take(self, name: str, path: str | None = None, method: str | None = None) -> dict[str, Any] | None:
        """If fault `name` is armed (and matches `path` and, when it names one, `method`), consume one
        occurrence and return its params."""
        with self._lock:
            entry = self._armed.get(name)
            if entry is None:
                return None
            prefix = entry.get("path_prefix")
            if path is not None and prefix and not path.startswith(prefix):
                return None
            wanted = entry.get("method")
            if method is not None and wanted and str(wanted).upper() != method.upper():
                return None
            if entry["count"] > 0:
                entry["count"] -= 1
                if entry["count"] == 0:
                    del self._armed[name]
            self._fired[name] = self._fired.get(name, 0) + 1
            return dict(entry)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> dict[str, Any]:
        return {"armed": copy.deepcopy(self._armed), "fired": dict(self._fired)}


def segment_error_body(status: int, error_type: str, message: str) -> dict[str, Any]:
    """Segment Public API error envelope."""
    return {"errors": [{"type": error_type, "message": message}]}


ErrorBody = Callable[[int, str, str], dict[str, Any]]


def gateway_error_page(status: int) -> HTMLResponse:
    """What a client gets from the load balancer in front of an API when the service behind it fails or drops
    the connection: an HTML page, not the API's JSON envelope. AWS Elastic Load Balancing documents 502 for a
    target that closed the connection while a request was outstanding (so the request may have been processed)
    and 503/504 for no healthy target or a target that did not answer in time ("Troubleshoot your Application
    Load Balancers", https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html);
    the page is the one nginx and ELB render ("<center><h1>502 Bad Gateway</h1></center>")."""
    phrase = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}.get(
        status, "Error"
    )
    body = (
        f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {phrase}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return HTMLResponse(body, status_code=status)


def fault_middleware(
    injector: FaultInjector,
    error_body: ErrorBody = segment_error_body,
    rate_limited: Callable[[int], JSONResponse] | None = None,
):
    """An `@app.middleware("http")` function applying the injector's HTTP faults to non-control paths.

    `rate_limited(retry_after_s)` renders an injected 429 the way the emulated service renders its own
    (default: `error_body` with a `Retry-After` header)."""

    async def middleware(request: Request, call_next):
        path = request.url.path
        if path.startswith(CONTROL_PREFIX):
            return await call_next(request)
        slow = injector.take("slow", path)
        if slow:
            await asyncio.sleep(float(slow.get("seconds", 1.0)))
        limited = injector.take("rate_limit", path)
        if limited:
            retry_after = int(limited.get("retry_after", 1))
            if rate_limited is not None:
                return rate_limited(retry_after)
            return JSONResponse(
                error_body(429, "too-many-requests", "Too many requests (injected fault); retry later"),
                status_code=429,
                headers={"Retry-After": str(retry_after)},
            )
        failed = injector.take("server_error", path, request.method)
        if failed:
            status = int(failed.get("status", 503))
            if failed.get("html"):
                return gateway_error_page(status)
            return JSONResponse(
                error_body(status, "server-error", f"Injected server error {status}; retry later"),
                status_code=status,
            )
        lost = injector.take("answer_lost", path, request.method)
        if lost:
            # The request reaches the service and takes effect; the answer is lost on the way back (see
            # gateway_error_page): the client sees only the gateway's error page.
            await call_next(request)
            return gateway_error_page(int(lost.get("status", 502)))
        return await call_next(request)

    return middleware


# --------------------------------------------------------------------------------------------- auth & errors


class ApiError(HTTPException):
    """An HTTP error with a machine-readable `error_type`.

    Without a custom handler FastAPI renders it as {"detail": message}; `install_api_error_handler`
    renders it in the emulator's own envelope.
    """

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        data: dict[str, Any] | None = None,
        field: str | None = None,
    ):
        super().__init__(status_code=status, detail=message, headers=headers)
        self.error_type = error_type
        self.message = message
        self.data = data  # Segment's RequestError.data (e.g. msBeforeNext of a 429)
        self.field = field  # Segment's RequestError.field (the input field at fault)


def install_api_error_handler(app: FastAPI, error_body: ErrorBody = segment_error_body) -> None:
    """Render `ApiError` (and FastAPI's validation errors) with `error_body`."""
    from fastapi.exceptions import RequestValidationError

    async def on_api_error(request: Request, exc: ApiError):
        body = error_body(exc.status_code, exc.error_type, exc.message)
        errors = body.get("errors") if isinstance(body, dict) else None
        if (
            isinstance(errors, list) and errors and isinstance(errors[0], dict)
        ):  # Segment's RequestError extras
            if exc.field is not None:
                errors[0]["field"] = exc.field
            if exc.data is not None:
                errors[0]["data"] = exc.data
        elif isinstance(body, dict) and exc.data is not None:
            # RudderStack's API: {"error", "message", "code", "details": {"<field>": "<why>"}} (rudder-iac
            # api/client/common.go APIError; "message" repeats "error" as in column_metadata_test.go)
            body.update(message=body.get("error"), details=exc.data)
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_validation_error(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}")
        return JSONResponse(
            error_body(400, "validation", "; ".join(parts) or "invalid request"), status_code=400
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


def bearer_auth_dependency(token: str):
    """A FastAPI dependency that accepts only `Authorization: Bearer <token>` (constant-time compare)."""

    def require_bearer(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(
                401, "unauthorized", "Missing Authorization header; expected 'Authorization: Bearer <token>'"
            )
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "unauthorized", "The Bearer token is not valid for this workspace")

    return require_bearer


def json_body_or_none(raw: bytes) -> Any:
    """Parse JSON request bytes for logging; None when the body is empty or not JSON."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
