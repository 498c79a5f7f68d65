"""The HTTP protocol every API hook speaks, written once for the sync and the async transport.

- :class:`RequestSpec` describes one call (method, path, query, JSON body, whether it is safe to repeat).
- :class:`RetryPolicy` holds the bounds (attempts, backoff, longest rate-limit wait, timeout) and builds the
  tenacity arguments both paths use.
- :func:`parse_response` turns a response (``requests`` or ``httpx``: both expose ``status_code``,
  ``headers`` and ``content``) into parsed JSON or raises :class:`ApiError` / :class:`ResponseFormatError`.
- :func:`transport_error` turns a connection error or timeout into a retryable :class:`ApiError`.

Nothing here does I/O (the transports live in :mod:`segment_rudderstack.hooks.api_hook`). Error text never
contains secrets: every message passes through :func:`~segment_rudderstack.hooks.errors.scrub`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import tenacity

from segment_rudderstack.hooks.errors import ApiError, ResponseFormatError, scrub

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BODY_SNIPPET = 200


def quoted_id(value: str, what: str) -> str:
    """``value`` (an id the caller gave) percent-encoded as one URL path segment; empty or non-str is refused."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


@dataclass(frozen=True)
class RequestSpec:
    """One API call. ``path`` is relative to the hook's base URL; ids in it are already URL-quoted."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotent: bool | None = None  # None: decided by the method
    headers: Mapping[str, str] | None = None  # per-call headers (e.g. a beta Accept), over the session's
    # Decodes a 2xx body (bytes) into the call's result; None: JSON. A ValueError means "not JSON" unless it is
    # a ResponseFormatError, which passes through (e.g. a typed decoder for large pages, see hooks/segment.py).
    decode: Callable[[bytes], Any] | None = field(default=None, compare=False)

    @property
    def endpoint(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def safe_to_repeat(self) -> bool:
        return self.method.upper() in _IDEMPOTENT_METHODS if self.idempotent is None else self.idempotent


# Connection extras the hooks read themselves (they must not become HTTP headers).
POLICY_EXTRAS = ("max_attempts", "backoff_initial", "backoff_max", "max_retry_wait", "timeout")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop.

    :param max_attempts: requests per call at most (1 = no retry).
    :param backoff_initial: first wait after a 5xx / timeout / connection error, in seconds; doubles each time.
    :param backoff_max: longest backoff wait, in seconds.
    :param max_retry_wait: longest wait a 429's ``Retry-After`` / ``X-RateLimit-Reset`` / ``msBeforeNext`` may
        ask for; a longer one fails at once with an error that says so, instead of sleeping for it.
    :param timeout: seconds to wait for a connection and for the response of one request.
    """

    max_attempts: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    max_retry_wait: float = 120.0
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("backoff_initial", "backoff_max", "max_retry_wait", "timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    @classmethod
    def from_settings(cls, overrides: Mapping[str, Any], extras: Mapping[str, Any]) -> RetryPolicy:
        """Constructor kwargs win over connection extras, which win over the defaults."""
        values: dict[str, Any] = {}
        for name in POLICY_EXTRAS:
            raw = overrides.get(name)
            if raw is None:
                raw = extras.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[name] = int(raw) if name == "max_attempts" else float(raw)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Setting {name!r} must be a number, got {raw!r}; fix the hook argument or the "
                    "connection extra"
                ) from None
        return cls(**values)

    def should_retry(self, error: BaseException) -> bool:
        if not isinstance(error, ApiError) or not error.retryable:
            return False
        if error.retry_after is not None and error.retry_after > self.max_retry_wait:
            return False
        return True

    def wait_seconds(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, ApiError) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        exponent = max(0, retry_state.attempt_number - 1)
        return min(self.backoff_max, self.backoff_initial * (2**exponent))

    def tenacity_kwargs(self, log: logging.Logger | Any, endpoint: str) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying`` and ``tenacity.AsyncRetrying`` alike."""

        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            log.warning(
                "%s failed on attempt %d of %d (%s); retrying in %.1f s",
                endpoint,
                retry_state.attempt_number,
                self.max_attempts,
                error.message if isinstance(error, ApiError) else type(error).__name__,
                retry_state.upcoming_sleep,
            )

        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "wait": self.wait_seconds,
            "retry": tenacity.retry_if_exception(self.should_retry),
            "before_sleep": before_sleep,
            "reraise": True,
        }


def finalize_error(error: ApiError, attempts: int, policy: RetryPolicy) -> ApiError:
    """Add what the retry loop did to the error that ended it."""
    error.attempts = attempts
    if error.retry_after is not None and error.retry_after > policy.max_retry_wait:
        error.hint = (
            f"The service asks to wait {error.retry_after:.0f} s, longer than max_retry_wait="
            f"{policy.max_retry_wait:.0f} s; retry later or raise max_retry_wait"
        )
    error.args = (str(error),)
    return error


_NOT_REPEATED = (
    "It was not retried automatically because {endpoint} may have taken effect: "
    "check the current state before running it again"
)


def _http_date_seconds(raw: str, now: float) -> float | None:
    """Seconds from ``now`` until an RFC 5322 / HTTP date (``Fri, 29 Nov 2026 07:45:00 GMT``); None if not one."""
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 5322 "-0000": UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _ms_before_next(body: bytes) -> float | None:
    """Seconds from Segment's 429 body ``{"errors": [{"data": {"msBeforeNext": 57647}}]}`` (largest of them)."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return None
    errors = payload.get("errors") if isinstance(payload, dict) else None
    waits = [
        float(item["data"]["msBeforeNext"]) / 1000
        for item in (errors if isinstance(errors, list) else ())
        if isinstance(item, dict)
        and isinstance(item.get("data"), dict)
        and isinstance(item["data"].get("msBeforeNext"), (int, float))
        and not isinstance(item["data"]["msBeforeNext"], bool)
    ]
    return max(0.0, max(waits)) if waits else None


def _retry_after_seconds(
    headers: Mapping[str, str], body: bytes = b"", now: float | None = None
) -> float | None:
    """Seconds to wait before repeating a rate-limited (429) or unavailable (503) request; None if not said.

    Every signal the answer carries counts, and the longest wins (waiting too little only earns another 429):

    - ``Retry-After``: seconds or an HTTP date (RFC 9110);
    - ``X-RateLimit-Reset``: when the window resets, an RFC 5322 date (Segment Public API, "Rate Limits":
      https://docs.segmentapis.com/tag/Rate-Limits). A number there is not Segment's format and is ignored;
    - ``errors[].data.msBeforeNext`` in the body: milliseconds before the limit is lifted (same page).
    """
    now = time.time() if now is None else now
    waits: list[float] = []
    raw = headers.get("Retry-After")
    if raw:
        try:
            waits.append(max(0.0, float(raw.strip())))
        except ValueError:
            seconds = _http_date_seconds(raw, now)
            if seconds is not None:
                waits.append(seconds)
    raw = headers.get("X-RateLimit-Reset")
    if raw:
        seconds = _http_date_seconds(raw, now)
        if seconds is not None:
            waits.append(seconds)
    seconds = _ms_before_next(body)
    if seconds is not None:
        waits.append(seconds)
    return max(waits) if waits else None


def _error_message(body: bytes, secrets: Iterable[str]) -> str:
    """Segment's ``errors[].message`` (or RudderStack's ``error`` / ``message``), else a body snippet."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    messages: list[str] = []
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if isinstance(errors, list):
            for item in errors:
                if isinstance(item, dict) and item.get("message"):
                    extra = f" (field {item['field']})" if item.get("field") else ""
                    messages.append(f"{item['message']}{extra}")
                elif isinstance(item, str):
                    messages.append(item)
        for key in ("error", "message", "detail"):
            value = payload.get(key)
            if not messages and isinstance(value, str) and value:
                messages.append(value)
        details = payload.get("details")
        if messages and isinstance(details, dict) and details:
            # RudderStack's {"field": "why"} details, sorted by field, as its own client shows them (rudder-iac
            # api/client/common.go formatDetails)
            messages[-1] += " (" + ", ".join(f"{k}: {details[k]}" for k in sorted(details)) + ")"
    if not messages:
        text = body.decode("utf-8", errors="replace").strip()
        messages.append(text[:_BODY_SNIPPET] if text else "(empty body)")
    return scrub("; ".join(messages), secrets)


def _status_hint(status: int, conn_id: str) -> str:
    if status in (401, 403):
        return (
            f"Check the token (password) of connection {conn_id!r}: it must be valid and allowed to "
            "read and change this resource"
        )
    if status == 404:
        return "Check the id in the call and that it belongs to the workspace of the connection's token"
    if status == 429:
        return "The service is rate limiting; the call will succeed later"
    if status >= 500:
        return "The service is failing; retry later"
    return "Fix the request as the message says"


def parse_response(
    spec: RequestSpec, response: Any, *, service: str, conn_id: str, secrets: Iterable[str] = ()
) -> Any:
    """Parsed JSON of a 2xx response (``None`` for an empty body); raise :class:`ApiError` otherwise."""
    status = int(response.status_code)
    body: bytes = response.content or b""
    if 200 <= status < 300:
        if not body.strip():
            return None
        try:
            return (spec.decode or json.loads)(body)
        except ResponseFormatError:
            raise
        except ValueError:
            content_type = response.headers.get("Content-Type", "unknown content type")
            snippet = scrub(body[:80].decode("utf-8", errors="replace"), secrets)
            raise ResponseFormatError(
                endpoint=spec.endpoint,
                service=service,
                status=status,
                message=f"expected a JSON body, got {content_type!r} starting with {snippet!r}",
            ) from None
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "unknown status"
    retryable_status = status == 429 or status >= 500
    retry_after = _retry_after_seconds(response.headers, body) if status in (429, 503) else None
    # 429: the request was not processed, always safe to repeat. 5xx: only for idempotent calls.
    retryable = status == 429 or (retryable_status and spec.safe_to_repeat)
    hint = _status_hint(status, conn_id)
    if retryable_status and not retryable:
        hint = _NOT_REPEATED.format(endpoint=spec.endpoint)
    raise ApiError(
        status=status,
        endpoint=spec.endpoint,
        message=f"{phrase}: {_error_message(body, secrets)}",
        retryable=retryable,
        service=service,
        hint=hint,
        retry_after=retry_after,
    )


def transport_error(
    spec: RequestSpec,
    *,
    kind: str,
    detail: str,
    sent: bool,
    base_url: str,
    service: str,
    conn_id: str,
    secrets: Iterable[str] = (),
) -> ApiError:
    """An error for a request that got no usable response (``kind``: ``connect``, ``timeout`` or ``redirect``).

    Retryable when the request was not sent or is safe to repeat; a redirect loop never is."""
    where = scrub(base_url, secrets)
    if kind == "connect":
        message = f"could not connect to {where} ({scrub(detail, secrets)})"
        hint = f"Check the host of connection {conn_id!r} and that the service is reachable"
    elif kind == "redirect":
        message = f"{where} redirected in a loop ({scrub(detail, secrets)})"
        hint = (
            f"Set the host of connection {conn_id!r} to the API's base URL (not a page that redirects), or "
            "raise its extra 'max_redirects'"
        )
    else:
        message = f"no response from {where} in time ({scrub(detail, secrets)})"
        hint = f"The service is slow; raise the timeout (extra 'timeout' of connection {conn_id!r}) or retry later"
    retryable = kind != "redirect" and ((not sent) or spec.safe_to_repeat)
    if not retryable and kind != "redirect":
        hint = _NOT_REPEATED.format(endpoint=spec.endpoint)
    return ApiError(
        status=None,
        endpoint=spec.endpoint,
        message=message,
        retryable=retryable,
        service=service,
        hint=hint,
        request_sent=sent,
        outage=kind != "redirect",  # a redirect loop is the connection's host, not an outage
    )


def unwrap(payload: Any, keys: Iterable[str], *, spec: RequestSpec, service: str, expect: type = dict) -> Any:
    """``payload[k1][k2]...`` checked at every step; a :class:`ResponseFormatError` names what is missing."""
    path = "body"
    current = payload
    for key in keys:
        if not isinstance(current, dict):
            raise ResponseFormatError(
                endpoint=spec.endpoint,
                service=service,
                message=f"expected {path} to be a JSON object with {key!r}, got {type(current).__name__}",
            )
        if key not in current:
            raise ResponseFormatError(
                endpoint=spec.endpoint,
                service=service,
                message=f"expected {path}.{key}, found only keys {sorted(current)}",
            )
        current = current[key]
        path = f"{path}.{key}"
    if not isinstance(current, expect):
        raise ResponseFormatError(
            endpoint=spec.endpoint,
            service=service,
            message=f"expected {path} to be a JSON {expect.__name__}, got {type(current).__name__}",
        )
    return current
