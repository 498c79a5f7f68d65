"""Which errors a wait may ride out (transient) and which end it at once (permanent), and for how long.

A sensor or trigger that cannot observe state asks :func:`is_transient`:

- transient: the hooks gave up on a 5xx / 429 / timeout / connection error (``ApiError.retryable``, or
  ``ApiError.outage`` for a call the hook does not repeat as it is: a step re-reads before it changes); a 2xx
  whose body is truncated or garbled (``ResponseFormatError``); a warehouse connection refused, reset or
  closed (DB-API ``OperationalError`` / ``InterfaceError`` that is not about credentials, a missing database
  or privileges); an ``OSError`` of the network kind.
- permanent: 401, 403, 404 of a configured id and any other 4xx, a missing Airflow connection, bad
  credentials, no privilege, and everything else (a bug is not fixed by waiting).

:class:`TransientBudget` bounds how long transient errors in a row are ridden out (by time and by count);
once spent, the wait fails with the last error and how long it lasted. Only the first error of a streak is
logged as a warning, naming the service (:func:`service_of`); the following ones are counted, so a long outage
does not flood the log. The same rule serves the steps that change things (``operators/outages.py``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

#: default: ride out transient errors for 15 minutes in a row (the sensor's own timeout still applies)
DEFAULT_TRANSIENT_BUDGET_SECONDS = 900.0
#: default: at most this many failed checks in a row
DEFAULT_TRANSIENT_MAX_ERRORS = 1000

# Messages of DB-API connection errors that no wait will fix (PostgreSQL, Snowflake).
PERMANENT_DB_MESSAGES = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    'role "',  # role "x" does not exist
    'database "',  # database "x" does not exist
    "permission denied",
    "no pg_hba.conf entry",
    "incorrect username or password",
    "does not exist or not authorized",
)
_DB_TRANSIENT_CLASSES = ("OperationalError", "InterfaceError")
_DB_MODULES = ("psycopg", "psycopg2", "snowflake", "sqlalchemy", "pg8000")


def is_db_connection_error(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        module = (cls.__module__ or "").split(".")[0]
        if cls.__name__ in _DB_TRANSIENT_CLASSES and module in _DB_MODULES:
            text = str(exc).lower()
            return not any(marker in text for marker in PERMANENT_DB_MESSAGES)
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether the same observation may succeed later without anybody changing the configuration."""
    from segment_rudderstack.hooks.errors import ApiError, ResponseFormatError

    if isinstance(exc, ResponseFormatError):
        # A 2xx with a body that is not the expected JSON: truncated or garbled on the way (a proxy, a reset).
        return True
    if isinstance(exc, ApiError):
        return bool(exc.retryable or getattr(exc, "outage", False))
    if is_db_connection_error(exc):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, OSError) and not isinstance(
        exc, (FileNotFoundError, PermissionError, IsADirectoryError)
    ):
        return True
    return False


def describe(exc: BaseException) -> str:
    """One line naming the error's kind and text (hooks' errors are already scrubbed of secrets)."""
    from segment_rudderstack.hooks.errors import scrub

    return f"{type(exc).__name__}: {scrub(str(exc))}"


#: the hooks' service names, as a person reads them in a warning or a report
SERVICE_LABELS = {
    "Segment API": "Segment's Public API",
    "RudderStack API": "RudderStack's control plane",
    "RudderStack data plane": "RudderStack's data plane",
}
WAREHOUSE = "the warehouse"


def service_of(exc: BaseException) -> str:
    """Which outside service an error came from: a hook's service, the warehouse, or a service unnamed."""
    from segment_rudderstack.hooks.errors import ApiError

    if isinstance(exc, ApiError):
        return SERVICE_LABELS.get(exc.service, exc.service)
    if is_db_connection_error(exc) or type(exc).__module__.split(".")[0] in _DB_MODULES:
        return WAREHOUSE
    return "an outside service"


def utc_minute(epoch: float) -> str:
    """``HH:MM UTC`` of an instant (epoch seconds)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC")


def span(seconds: float) -> str:
    """A duration as a person says it: ``45 s``, ``3 min``, ``1 h 05 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass
class TransientBudget:
    """Counts transient errors in a row; :meth:`spent` says when to stop riding them out.

    The state is plain numbers so a trigger can serialize it (:meth:`to_dict` / :meth:`from_dict`)."""

    seconds: float = DEFAULT_TRANSIENT_BUDGET_SECONDS
    max_errors: int = DEFAULT_TRANSIENT_MAX_ERRORS
    since: float | None = None  # epoch seconds of the first error of the current streak
    errors: int = 0

    def ok(self) -> None:
        """An observation succeeded: the streak ends."""
        self.since = None
        self.errors = 0

    def failed(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if self.since is None:
            self.since = now
        self.errors += 1

    def spent(self, now: float | None = None) -> bool:
        if self.since is None:
            return False
        now = time.time() if now is None else now
        return self.errors >= self.max_errors or (now - self.since) >= self.seconds

    def elapsed(self, now: float | None = None) -> float:
        return 0.0 if self.since is None else (time.time() if now is None else now) - self.since

    def log_failure(self, log: logging.Logger | Any, exc: BaseException, what: str = "check") -> None:
        """Warn once per streak; later errors of the streak at INFO with their count (no flood)."""
        if self.errors <= 1:
            log.warning(
                "%s could not observe state: %s does not answer (%s); treated as an outage: checking again for "
                "up to %s",
                what,
                service_of(exc),
                describe(exc),
                span(self.seconds),
            )
        else:
            log.info(
                "%s: still failing (%d errors in a row over %.0f s): %s",
                what,
                self.errors,
                self.elapsed(),
                describe(exc),
            )

    def failure_message(self, exc: BaseException) -> str:
        since = f"since {utc_minute(self.since)}, " if self.since is not None else ""
        return (
            f"{service_of(exc)} did not answer: could not observe state for {span(self.elapsed())} ({since}"
            f"{self.errors} failed checks in a row; budget {span(self.seconds)} / {self.max_errors} checks); last "
            f"error: {describe(exc)}. Expected it to answer again within the budget; check that it is up and "
            "reachable from the workers and the triggerer, then clear this task (or raise the plan's "
            "waits.transient_budget_minutes)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "max_errors": self.max_errors,
            "since": self.since,
            "errors": self.errors,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TransientBudget:
        return cls(**data) if data else cls()


def permanent_message(exc: BaseException) -> str:
    """Text for an error no wait will fix."""
    return (
        f"{describe(exc)}. This is a configuration error (credentials, permissions, an id or a connection that "
        "does not exist), not an outage: it fails at once without retrying; fix the connection or the plan, then "
        "clear this task"
    )
