"""Configuration errors fail a task at once, without Airflow's retry.

A missing connection, a 401/403, a 404 of a configured id or a bad warehouse login will not be fixed by
waiting ``retry_delay`` and trying again; the retry only delays the message (and, in ``airflow dags test``,
prints a "No tasks to run" warning every second while it waits). Every migration operator's ``execute`` is
wrapped (:class:`~segment_rudderstack.operators.base.MigrationOperator` does it for its subclasses): such an
error becomes an :class:`AirflowFailException` that says it is a configuration error and what to do.
Outages (5xx, 429, timeouts, refused connections, a garbled 2xx body) are not configuration errors, even for a
call the hook does not repeat as it is (a POST answered 502): the step rides them out
(``operators/outages.py``) and runs again from its first read once the service answers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.waits.transient import (
    PERMANENT_DB_MESSAGES,
    is_db_connection_error,
    is_transient,
    permanent_message,
)

_MISSING_CONNECTION = ("AirflowNotFoundException",)


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying the same task cannot help: the configuration must change first."""
    from segment_rudderstack.hooks.errors import ApiError

    if isinstance(exc, ApiError):
        return not is_transient(exc)  # 401, 403, 404 and the other 4xx; a redirect loop
    if any(cls.__name__ in _MISSING_CONNECTION for cls in type(exc).__mro__):
        return True
    if isinstance(exc, (ValueError, LookupError)):
        return True  # a missing connection (as the hooks report it), a bad id, a wrong value
    if not is_db_connection_error(exc) and type(exc).__name__ in ("OperationalError", "InterfaceError"):
        text = str(exc).lower()
        return any(marker in text for marker in PERMANENT_DB_MESSAGES)  # bad login, no privilege
    return False


def fail_fast(execute: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an ``execute`` so that a permanent error fails the task without retry."""
    if getattr(execute, "__fail_fast__", False):
        return execute

    @functools.wraps(execute)
    def wrapper(self: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, context, *args, **kwargs)
        except AirflowFailException:
            raise
        except Exception as exc:
            if is_permanent(exc):
                raise AirflowFailException(permanent_message(exc)) from exc
            raise

    wrapper.__fail_fast__ = True  # type: ignore[attr-defined]
    return wrapper
