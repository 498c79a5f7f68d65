"""The errors every hook raises, and the scrubbing that keeps secrets out of their text.

:class:`ApiError` is what a failed call to Segment or RudderStack raises (with the status, the endpoint,
what the service said, and whether the call may succeed later); :class:`ResponseFormatError` is a 2xx whose
body is not the JSON the hook expects. :func:`scrub` removes known secrets, URL query values and
``user:password@`` parts from any text that may reach a log or an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***"
_QUERY_VALUE = re.compile(r"([?&][^=&\s?#'\"]+=)[^&\s#'\"]+")
_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secrets, URL query values and user:password@ parts of URLs."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _QUERY_VALUE.sub(rf"\g<1>{REDACTED}", text)
    return _USERINFO.sub(rf"\g<1>{REDACTED}@", text)


class ApiError(Exception):
    """A call to Segment or RudderStack failed.

    :ivar status: the HTTP status, or ``None`` when no response came (connection error, timeout).
    :ivar endpoint: ``"<METHOD> <path>"`` of the call, without query string.
    :ivar message: what the service said (Segment's ``errors[].message``) or what went wrong.
    :ivar retryable: whether the same call may succeed later (5xx, 429, timeouts, connection errors).
    :ivar retry_after: seconds the service asked to wait (429), if it said.
    :ivar attempts: how many requests were made before giving up.
    :ivar outage: whether the service was down or failing (5xx, 429, no answer, a garbled 2xx), even when this
        call is not repeated as it is (a POST that may have taken effect): a step that re-reads before it
        changes may run again once the service answers (``waits/transient.py``).
    :ivar conn_id: the Airflow connection of the call, and ``hook`` the hook's class path (set by the hook), so
        a step can wait for that service to answer again.
    """

    def __init__(
        self,
        *,
        status: int | None,
        endpoint: str,
        message: str,
        retryable: bool,
        service: str = "API",
        hint: str = "",
        retry_after: float | None = None,
        attempts: int = 1,
        request_sent: bool = True,
        outage: bool | None = None,
    ) -> None:
        self.status = status
        self.endpoint = endpoint
        self.message = message
        self.retryable = retryable
        self.service = service
        self.hint = hint
        self.retry_after = retry_after
        self.attempts = attempts
        self.request_sent = request_sent
        self.outage = (status == 429 or (status or 0) >= 500 or status is None) if outage is None else outage
        self.conn_id: str | None = None
        self.hook: str | None = None
        super().__init__(str(self))

    def __str__(self) -> str:
        outcome = f"returned HTTP {self.status}" if self.status is not None else "got no response"
        text = f"{self.service} {self.endpoint} {outcome}: {self.message}"
        if self.attempts > 1:
            text += f" (gave up after {self.attempts} attempts)"
        if self.hint:
            text += f". {self.hint}"
        return text

    def __reduce__(self):  # exceptions cross process boundaries (triggers, task runner)
        return (_rebuild, (type(self), self.__dict__.copy()))


class ResponseFormatError(ApiError):
    """The service answered 2xx but the body is not the JSON this library expects."""

    def __init__(self, *, endpoint: str, message: str, service: str = "API", status: int | None = None):
        super().__init__(
            status=status,
            endpoint=endpoint,
            message=message,
            retryable=False,
            service=service,
            outage=True,  # truncated or garbled on the way (a proxy, a reset): read again later
            hint="The service or the connection's host is not the API this hook expects; "
            "check the connection's host (base URL)",
        )

    def __str__(self) -> str:
        return f"{self.service} {self.endpoint}: unexpected response: {self.message}. {self.hint}"


def _rebuild(cls: type[ApiError], state: dict[str, Any]) -> ApiError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, str(error))
    return error
