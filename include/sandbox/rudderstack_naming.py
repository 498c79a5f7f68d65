"""RudderStack's warehouse naming and typing rules (what rudder-server writes), as pure functions.

Every rule names the rudder-server file it follows (rudderlabs/rudder-server at commit
f2655fbbe2260deb4e01c2a54da1a827291713bb). `EW/` below is
`processor/internal/transformer/destination_transformer/embedded/warehouse/`, the embedded Go transformer
that turns every event into warehouse rows at current HEAD. The sandbox loads into PostgreSQL only, so the
per-warehouse rules implemented are POSTGRES's (a SNOWFLAKE destination of the sandbox is loaded with them
too: Snowflake's upper-casing is not emulated, see docs/real-services.md).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "data_type_for",
    "lodash_snake_case",
    "safe_namespace",
    "safe_name",
    "strcase_to_snake",
    "to_timestamp",
    "transform_column_name",
    "transform_table_name",
    "valid_timestamp",
]

POSTGRES_MAX_IDENTIFIER = 63  # EW/safe.go postgresMaxIdentifierLength
MAX_IDENTIFIER = 127  # EW/safe.go safeName: misc.TruncateStr(name, 127)

# EW/internal/reservedkeywords/tablescolumns.json, key POSTGRES (compared upper-cased).
POSTGRES_RESERVED_TABLES_COLUMNS = frozenset(
    "ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC AUTHORIZATION BETWEEN BINARY BOTH CASE CAST CHECK "
    "COLLATE COLUMN CONSTRAINT CREATE CROSS CURRENT_DATE CURRENT_ROLE CURRENT_TIME CURRENT_TIMESTAMP "
    "CURRENT_USER DEFAULT DEFERRABLE DESC DISTINCT DO ELSE END EXCEPT FALSE FOR FOREIGN FREEZE FROM FULL "
    "GRANT GROUP HAVING ILIKE IN INITIALLY INNER INTERSECT INTO IS ISNULL JOIN LEADING LEFT LIKE LIMIT "
    "LOCALTIME LOCALTIMESTAMP NATURAL NEW NOT NOTNULL NULL OFF OFFSET OLD ON ONLY OR ORDER OUTER OVERLAPS "
    "PLACING PRIMARY REFERENCES RIGHT SELECT SESSION_USER SIMILAR SOME SYMMETRIC TABLE THEN TO TRAILING TRUE "
    "UNION UNIQUE USER USING VERBOSE WHEN WHERE".split()
)
# EW/internal/reservedkeywords/namespaces.json, key POSTGRES: the same list without TO and TRUE.
POSTGRES_RESERVED_NAMESPACES = POSTGRES_RESERVED_TABLES_COLUMNS - {"TO", "TRUE"}

# ------------------------------------------------------------------------------------------ lodash snake case
# EW/internal/snakecase/snakecase.go: a port of lodash's word splitting (`unicodeWords`, `asciiWords`); the
# character classes below are copied from it, as facts, in Python's regex syntax.
_BREAK = (
    "\\xac\\xb1\\xd7\\xf7"  # math operators
    "\\x00-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\xbf"  # non-characters
    "\\u2000-\\u206f"  # punctuation
    " \\t\\x0b\\f\\xa0\\ufeff\\n\\r\\u2028\\u2029\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"  # spaces
)
_LOWER = "a-z\\xdf-\\xf6\\xf8-\\xff"
_UPPER = "A-Z\\xc0-\\xd6\\xd8-\\xde"
_DINGBAT = "\\u2700-\\u27bf"
_BREAK_EXP = f"[{_BREAK}]"
_LOWER_C = f"[{_LOWER}]"
_UPPER_C = f"[{_UPPER}]"
_MISC = f"[^\\ud800-\\udfff{_BREAK}\\d{_DINGBAT}{_LOWER}{_UPPER}]"
_MISC_LOWER = f"(?:{_LOWER_C}|{_MISC})"
_MISC_UPPER = f"(?:{_UPPER_C}|{_MISC})"
_CONTR_LOWER = "(?:['\u2019](?:d|ll|m|re|s|t|ve))?"
_CONTR_UPPER = "(?:['\u2019](?:D|LL|M|RE|S|T|VE))?"
_ORD_LOWER = "\\d*(?:1st|2nd|3rd|(?![123])\\dth)(?=\\b|[A-Z_])"
_ORD_UPPER = "\\d*(?:1ST|2ND|3RD|(?![123])\\dTH)(?=\\b|[a-z_])"
_WORDS = [
    f"{_UPPER_C}?{_LOWER_C}+{_CONTR_LOWER}(?={_BREAK_EXP}|{_UPPER_C}|$)",
    f"{_MISC_UPPER}+{_CONTR_UPPER}(?={_BREAK_EXP}|{_UPPER_C}{_MISC_LOWER}|$)",
    f"{_UPPER_C}?{_MISC_LOWER}+{_CONTR_LOWER}",
    f"{_UPPER_C}+{_CONTR_UPPER}",
    _ORD_UPPER,
    _ORD_LOWER,
    "\\d+",
    f"[{_DINGBAT}]",
]
_WITH_NUMBERS = [
    f"{_UPPER_C}?{_LOWER_C}+\\d+",
    f"{_UPPER_C}+\\d+",
    f"\\d+{_UPPER_C}?{_LOWER_C}+",
    f"\\d+{_UPPER_C}+",
]
_RE_UNICODE_WORDS = re.compile("|".join(_WORDS))
_RE_UNICODE_WORDS_WITH_NUMBERS = re.compile("|".join(_WITH_NUMBERS + _WORDS))
_RE_ASCII_WORD = re.compile(r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")
_RE_HAS_UNICODE_WORD = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]|[0-9][a-zA-Z]|[a-zA-Z][0-9]|[^a-zA-Z0-9 ]")


def lodash_snake_case(value: str, *, divide_numbers: bool = False) -> str:
    """EW/internal/snakecase ToSnakeCaseWithNumbers (default) / ToSnakeCase (`underscoreDivideNumbers`):
    `XMLHttpRequest` -> `xml_http_request`, `userAgent` -> `user_agent`, `v2Name` -> `v2_name`."""
    value = value.replace("'", "").replace("\u2019", "")
    if _RE_HAS_UNICODE_WORD.search(value):
        pattern = _RE_UNICODE_WORDS if divide_numbers else _RE_UNICODE_WORDS_WITH_NUMBERS
    else:
        pattern = _RE_ASCII_WORD
    return "_".join(word.lower() for word in pattern.findall(value))


def _alphanumeric_words(value: str) -> list[str]:
    """EW/safe.go extractAlphanumericValues (and warehouse/utils/utils.go ToSafeNamespace): runs of ASCII
    letters and digits; everything else (underscores included) separates them."""
    return re.findall(r"[A-Za-z0-9]+", value)


def _transform_name(name: str, divide_numbers: bool) -> str:
    """EW/safe.go transformColumnName / transformTableName: snake-case the alphanumeric words, keep leading
    underscores of the original, prefix `_` when the result starts with a digit."""
    joined = "_".join(_alphanumeric_words(name))
    if name.startswith("_"):
        leading = re.match(r"^_*", name).group(0)
        out = leading + lodash_snake_case(joined, divide_numbers=divide_numbers)
    else:
        out = lodash_snake_case(joined, divide_numbers=divide_numbers)
    if out[:1].isdigit():
        out = "_" + out
    return out


def transform_table_name(name: str, *, divide_numbers: bool = False) -> str:
    """EW/safe.go transformTableName (the value of the `event` column of `tracks`)."""
    return _transform_name(name, divide_numbers)


def transform_column_name(name: str, *, divide_numbers: bool = False) -> str:
    """EW/safe.go transformColumnName: as transformTableName, then cut at 63 characters on POSTGRES."""
    return _transform_name(name, divide_numbers)[:POSTGRES_MAX_IDENTIFIER]


def safe_name(name: str) -> str:
    """EW/safe.go safeName for POSTGRES: cut at 63, lower case, `_` before a reserved word
    (tablescolumns.json), cut at 127."""
    name = name[:POSTGRES_MAX_IDENTIFIER].lower()
    if name.upper() in POSTGRES_RESERVED_TABLES_COLUMNS:
        name = "_" + name
    return name[:MAX_IDENTIFIER]


def strcase_to_snake(value: str) -> str:
    """iancoleman/strcase ToSnake (used by ToSafeNamespace): a `_` where the case or digit class changes,
    acronyms kept as one word (`k3_namespace` -> `k_3_namespace`, `web_v2` -> `web_v_2`)."""
    s = value.strip()
    out: list[str] = []
    for i, ch in enumerate(s):
        is_cap, is_low = "A" <= ch <= "Z", "a" <= ch <= "z"
        v = ch.lower() if is_cap else ch
        if i + 1 < len(s):
            nxt = s[i + 1]
            is_num = "0" <= v <= "9"
            next_cap, next_low, next_num = "A" <= nxt <= "Z", "a" <= nxt <= "z", "0" <= nxt <= "9"
            if (
                (is_cap and (next_low or next_num))
                or (is_low and (next_cap or next_num))
                or (is_num and (next_cap or next_low))
            ):
                if is_cap and next_low and i > 0 and "A" <= s[i - 1] <= "Z":
                    out.append("_")
                out.append(v)
                if is_low or is_num or next_num:
                    out.append("_")
                continue
        out.append("_" if v in " _-." else v)
    return "".join(out)


def safe_namespace(namespace: str) -> str:
    """warehouse/utils/utils.go ToSafeNamespace (called from warehouse/bcm/backend_config.go namespace()):
    alphanumeric words joined by `_`, strcase.ToSnake (unless the server sets
    Warehouse.<wh>.skipNamespaceSnakeCasing, which the sandbox does not), `_` before a leading digit,
    `stringempty` when nothing is left, `_` before a reserved word, cut at 127."""
    out = strcase_to_snake("_".join(_alphanumeric_words(namespace)))
    if out[:1].isdigit():
        out = "_" + out
    if not out:
        out = "stringempty"
    if out.upper() in POSTGRES_RESERVED_NAMESPACES:
        out = "_" + out
    return out[:MAX_IDENTIFIER]


# ------------------------------------------------------------------------------------------ types
# EW/internal/utils/utils.go reDateTime, copied as a fact; validTimestampFormatsMaxLength is the length of
# "2012-08-03 18:31:59.257000000 +00:00 UTC".
_RE_DATETIME = re.compile(
    r"^([+-]?\d{4})((-)((0[1-9]|1[0-2])(-([12]\d|0[1-9]|3[01])))([T\s]((([01]\d|2[0-3])((:)[0-5]\d))(:\d+)?)?"
    r"(:[0-5]\d([.]\d+)?)?([zZ]|([+-])([01]\d|2[0-3]):?([0-5]\d)?)?)?)$"
)
_MAX_TIMESTAMP_LENGTH = 40


def _parse_timestamp(value: str) -> datetime | None:
    text = value.strip().replace(" ", "T", 1)
    text = re.sub(r"[zZ]$", "+00:00", text)
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    text = re.sub(r"([+-]\d{2})$", r"\1:00", text)
    text = re.sub(r"\.(\d{6})\d+", r".\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def valid_timestamp(value: str) -> bool:
    """EW/internal/utils/utils.go ValidTimestamp: the ISO date/datetime pattern, at most 40 characters,
    parseable, between year 1 and 9999."""
    if len(value) > _MAX_TIMESTAMP_LENGTH or not _RE_DATETIME.match(value):
        return False
    return _parse_timestamp(value) is not None


def to_timestamp(value: Any) -> Any:
    """EW/internal/utils/utils.go ToTimestamp: a datetime string rewritten as UTC `YYYY-MM-DDTHH:MM:SS.sssZ`
    (misc.RFC3339Milli); unparseable values stay as they are."""
    if not isinstance(value, str):
        return value
    parsed = _parse_timestamp(value)
    if parsed is None:
        return value
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def data_type_for(value: Any) -> str:
    """EW/datatype.go dataTypeFor for POSTGRES: int; a float with a whole value is int (getFloatType, as
    JavaScript's Number.isInteger); bool; an ISO date string is datetime; everything else, arrays included,
    is string (overrideForPostgresSnowflake)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "int" if math.isfinite(value) and value.is_integer() else "float"
    if isinstance(value, str) and valid_timestamp(value):
        return "datetime"
    return "string"


def go_format(value: Any) -> str:
    """Go's fmt `%v` of a JSON-decoded value (what HandleSchemaChange and the discards row write)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def is_empty(value: Any) -> bool:
    """EW/internal/utils/utils.go IsEmptyString: nil, "", [] and [""] are blank (skipped, never a column)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    if isinstance(value, list):
        if not value:
            return True
        if len(value) == 1:
            return False if value[0] is None else is_empty(value[0])
    return False
