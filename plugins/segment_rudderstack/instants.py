"""Instants, written once: every time the library reads is an aware UTC ``datetime``.

Task arguments arrive rendered as strings, Segment's API writes ``Z`` for UTC, the metadata database and Python
give naive or aware datetimes: :func:`as_utc` takes each of them (a naive instant is UTC) and refuses what is
not an instant; :func:`parse_instant` does the same for optional values and answers ``None`` where there is none.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def as_utc(value: str | datetime) -> datetime:
    """An aware instant from a datetime or an ISO-8601 string (``Z`` or an offset; naive = UTC).

    :raises ValueError: when ``value`` is not an instant.
    """
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_instant(value: Any) -> datetime | None:
    """Like :func:`as_utc`, for optional values: ``None`` for empty, missing or unparseable ones."""
    if value is None or value == "":
        return None
    if not isinstance(value, (str, datetime)):
        return None
    try:
        return as_utc(value)
    except ValueError:
        return None
