"""The Public API's plumbing shared by its routers: Bearer auth, rate limits (headers, 429s), cursor pagination
and the record of every mutating call in the emulator's log."""

from __future__ import annotations

import base64
import binascii
import email.utils
import math
import re
import threading
import time
from collections import deque
from datetime import datetime
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import ApiError, RequestLog, bearer_auth_dependency, redact, utcnow
from sandbox.segment.settings import SegmentSettings

__all__ = ["PublicApi"]

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


class PublicApi:
    """Auth and limits as route dependencies (`auth`, `limited`), plus the helpers routers answer with."""

    def __init__(self, settings: SegmentSettings, log: RequestLog, lock: threading.RLock):
        self.settings = settings
        self.log = log
        self._lock = lock
        self._rate: dict[str, deque[float]] = {}
        self.auth = Depends(bearer_auth_dependency(settings.token))
        self.limited = Depends(self._general)

    def _general(self, response: Response) -> None:
        self.rate_limit(response, "api", self.settings.api_requests_per_minute)

    def rate_limit(self, response: Response, key: str, limit: int) -> None:
        """Segment's rate limiting (https://docs.segmentapis.com/tag/Rate-Limits): every answer carries
        X-RateLimit-Consumed / -Remaining / -Reset (Reset: an RFC 5322 date, when the window resets); over the
        limit a 429 with `Retry-After` and a body whose error `data` holds msBeforeNext, remainingPoints and
        consumedPoints (see `too_many_requests`)."""
        window = self.settings.rate_window_s
        now = time.monotonic()
        with self._lock:
            hits = self._rate.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            reset_in = (hits[0] + window - now) if hits else window
            if len(hits) >= limit:
                raise self.too_many_requests(reset_in, consumed=len(hits))
            hits.append(now)
            response.headers["X-RateLimit-Consumed"] = str(len(hits))
            response.headers["X-RateLimit-Remaining"] = str(limit - len(hits))
            response.headers["X-RateLimit-Reset"] = _rfc5322(self._reset_moment(reset_in))

    @staticmethod
    def _reset_moment(reset_in: float) -> datetime:
        # An RFC 5322 date has whole seconds: round up, so a client waiting until then is never early.
        return datetime.fromtimestamp(math.ceil(time.time() + reset_in), tz=utcnow().tzinfo)

    def too_many_requests(self, reset_in: float, consumed: int) -> ApiError:
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

    def injected_rate_limit(self, retry_after: int) -> JSONResponse:
        """An injected 429 fault, rendered exactly as a real Segment 429 (see `too_many_requests`)."""
        error = self.too_many_requests(float(retry_after), consumed=0)
        body = {"errors": [{"type": error.error_type, "message": error.message, "data": error.data}]}
        return JSONResponse(body, status_code=429, headers=error.headers)

    def page(self, request: Request, items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
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

    def record_change(self, request: Request, body: Any, status: int, **fields: Any) -> None:
        self.log.append(
            "api",
            method=request.method,
            path=request.url.path,
            status=status,
            body=_mask_url_keys(redact(body)),
            **fields,
        )
