"""Comparing warehouse values as a downstream model sees them: timestamps as instants, numbers as numbers,
JSON text as its data, everything else as text."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$")


def _instant(value: Any) -> datetime | None:
    """The value as a UTC instant at millisecond precision: RudderStack writes timestamps in milliseconds
    (rudder-server EW/datatype.go, `YYYY-MM-DDTHH:MM:SS.sssZ`), Segment keeps what the client sent; a finer
    fraction is a format difference, not another instant."""
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and _ISO.match(value.strip()):
        try:
            return _instant(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        try:
            return Decimal(str(value)).normalize()
        except InvalidOperation:
            return None
    return None


def normalised(value: Any) -> Any:
    """The value as a model compares it: ``None`` for NULL; an instant; a number; a bool; JSON data; text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    number = _number(value)
    if number is not None:
        return number
    moment = _instant(value)
    if moment is not None:
        return moment
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    text = str(value)
    if text[:1] in "[{":
        try:
            return json.dumps(json.loads(text), sort_keys=True, default=str)
        except ValueError:
            return text
    return text


def same_value(a: Any, b: Any) -> bool:
    """Whether two warehouse values hold the same data (a number and its text count as the same data; the
    type difference is the type check's business)."""
    na, nb = normalised(a), normalised(b)
    if na == nb:
        return True
    if na is None or nb is None:
        return False
    return str(na) == str(nb) or _loose_number(na) == _loose_number(nb) is not None


def _loose_number(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value)).normalize()
    except InvalidOperation:
        return None


def same_text(a: Any, b: Any) -> bool:
    """Whether two values print alike (a timestamp rewritten to another format does not)."""
    return str(a) == str(b)


def shown(value: Any, width: int = 40) -> str:
    text = value.isoformat() if isinstance(value, (datetime, date)) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
