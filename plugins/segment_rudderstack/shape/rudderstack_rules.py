"""What RudderStack's warehouse loader will do to a warehouse Segment built, as pure functions (no I/O).

Every rule names the rudder-server file and function it follows (rudderlabs/rudder-server at commit
``f2655fbbe2260deb4e01c2a54da1a827291713bb``; ``EW/`` is
``processor/internal/transformer/destination_transformer/embedded/warehouse/``, the transformer every warehouse
destination goes through). The sandbox emulates the same loader independently (``include/sandbox/``); the unit
tests compare the two, and this module never imports it.

- the schema RudderStack writes: :func:`safe_namespace`, :func:`namespace_problem`;
- how it reads an existing column's type: :func:`rudder_type`;
- the type it gives a value: :func:`value_type`, and the text of a date-like string: :func:`rudder_timestamp`;
- what the existing type does to the value: :func:`predict` (an :class:`Outcome`), over a column's sample:
  :func:`predict_column` (a :class:`ColumnPrediction`);
- where a key lands: :func:`rudder_column_name` against :func:`segment_column_name`; the columns RudderStack
  fills its own way: :data:`RUDDERSTACK_OWN_COLUMNS`.

**The assumption behind a prediction.** A value read back from Segment's warehouse stands for the JSON value a
client sent: a ``timestamptz`` value (a ``datetime``) was sent as an ISO 8601 string, a ``numeric`` value (a
``Decimal``) as a JSON number, a ``text`` value as a string (so an array Segment stringified reads as a string).
The prediction is "what happens when new clients send the same values Segment received".
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

__all__ = [
    "OUTCOME_KINDS",
    "RUDDERSTACK_OWN_COLUMNS",
    "SEVERITY",
    "ColumnPrediction",
    "Outcome",
    "column_name_difference",
    "namespace_problem",
    "predict",
    "predict_column",
    "rudder_column_name",
    "rudder_timestamp",
    "rudder_type",
    "safe_namespace",
    "segment_column_name",
    "value_type",
]

_ALIASES = {"postgres": "postgres", "postgresql": "postgres", "snowflake": "snowflake"}
_MAX_NAME = 127  # warehouse/utils/utils.go ToSafeNamespace, EW/safe.go safeName: misc.TruncateStr(name, 127)
_POSTGRES_MAX_IDENTIFIER = 63  # EW/safe.go postgresMaxIdentifierLength


def _warehouse(name: str) -> str:
    try:
        return _ALIASES[str(name).strip().lower()]
    except KeyError:
        known = sorted(set(_ALIASES.values()))
        raise ValueError(f"unknown warehouse {name!r}; expected one of {known}") from None


# ------------------------------------------------------------------------------------------ reserved words
# Table and column names: EW/internal/reservedkeywords/tablescolumns.json (compared upper-cased,
# reservedkeywords.go isKeywordReserved). Namespaces: warehouse/utils/reservedkeywords.go ReservedKeywords, the
# list ToSafeNamespace uses; for POSTGRES it is the table/column list without TO, for SNOWFLAKE the same list.
_RESERVED_TABLES_COLUMNS = {
    "postgres": frozenset(
        "ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC AUTHORIZATION BETWEEN BINARY BOTH CASE CAST CHECK "
        "COLLATE COLUMN CONSTRAINT CREATE CROSS CURRENT_DATE CURRENT_ROLE CURRENT_TIME CURRENT_TIMESTAMP "
        "CURRENT_USER DEFAULT DEFERRABLE DESC DISTINCT DO ELSE END EXCEPT FALSE FOR FOREIGN FREEZE FROM FULL "
        "GRANT GROUP HAVING ILIKE IN INITIALLY INNER INTERSECT INTO IS ISNULL JOIN LEADING LEFT LIKE LIMIT "
        "LOCALTIME LOCALTIMESTAMP NATURAL NEW NOT NOTNULL NULL OFF OFFSET OLD ON ONLY OR ORDER OUTER OVERLAPS "
        "PLACING PRIMARY REFERENCES RIGHT SELECT SESSION_USER SIMILAR SOME SYMMETRIC TABLE THEN TO TRAILING TRUE "
        "UNION UNIQUE USER USING VERBOSE WHEN WHERE".split()
    ),
    "snowflake": frozenset(
        "ACCOUNT ALL ALTER AND ANY AS BETWEEN BY CASE CAST CHECK COLUMN CONNECT CONNECTION CONSTRAINT CREATE "
        "CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DATABASE DELETE DISTINCT DROP "
        "ELSE EXISTS FALSE FOLLOWING FOR FROM FULL GRANT GROUP GSCLUSTER HAVING ILIKE IN INCREMENT INNER INSERT "
        "INTERSECT INTO IS ISSUE JOIN LATERAL LEFT LIKE LOCALTIME LOCALTIMESTAMP MINUS NATURAL NOT NULL OF ON OR "
        "ORDER ORGANIZATION QUALIFY REGEXP REVOKE RIGHT RLIKE ROW ROWS SAMPLE SCHEMA SELECT SET SOME START TABLE "
        "TABLESAMPLE THEN TO TRIGGER TRUE TRY_CAST UNION UNIQUE UPDATE USING VALUES VIEW WHEN WHENEVER WHERE "
        "WITH".split()
    ),
}
_RESERVED_NAMESPACES = {
    "postgres": _RESERVED_TABLES_COLUMNS["postgres"] - {"TO"},
    "snowflake": _RESERVED_TABLES_COLUMNS["snowflake"],
}


# ------------------------------------------------------------------------------------------ namespace


def _alphanumeric_runs(name: str) -> list[str]:
    """The runs of ASCII letters and digits; every other character (``_`` and non-ASCII letters included)
    separates them (ToSafeNamespace's loop; EW/safe.go extractAlphanumericValues)."""
    return re.findall(r"[A-Za-z0-9]+", name)


def _char_class(char: str) -> str:
    if "A" <= char <= "Z":
        return "upper"
    if "a" <= char <= "z":
        return "lower"
    return "digit" if "0" <= char <= "9" else "other"


def _strcase_snake(text: str) -> str:
    """iancoleman/strcase v0.3.0 ``ToSnake`` (snake.go ToScreamingDelimited, the version rudder-server's
    go.mod pins): lower case, and a ``_`` where the character class changes between letters and digits, from
    a lower-case to an upper-case letter, and before the last capital of a run followed by lower case
    (``JSONData`` → ``json_data``); spaces, ``_``, ``-`` and ``.`` become ``_``."""
    text = text.strip()
    out: list[str] = []
    for i, char in enumerate(text):
        kind = _char_class(char)
        nxt = _char_class(text[i + 1]) if i + 1 < len(text) else "end"
        changes = (
            (kind == "upper" and nxt in ("lower", "digit"))
            or (kind == "lower" and nxt in ("upper", "digit"))
            or (kind == "digit" and nxt in ("upper", "lower"))
        )
        if changes:
            if kind == "upper" and nxt == "lower" and i > 0 and _char_class(text[i - 1]) == "upper":
                out.append("_")
            out.append(char.lower())
            if kind in ("lower", "digit") or nxt == "digit":
                out.append("_")
        else:
            out.append("_" if char in " _-." else char.lower())
    return "".join(out)


def safe_namespace(name: str, warehouse: str = "postgres", *, skip_snake_casing: bool = False) -> str:
    """The schema RudderStack writes for the destination's ``namespace`` ``name``: rudder-server
    ``warehouse/utils/utils.go`` ``ToSafeNamespace`` (called on ``config.namespace`` by
    ``warehouse/bcm/backend_config.go`` ``namespace()``), then ``ToProviderCase`` (upper case on Snowflake).

    The letter/digit runs are joined with ``_`` and snake-cased with strcase ``ToSnake`` (``web_v2`` →
    ``web_v_2``, ``k3_namespace`` → ``k_3_namespace``, ``omega v2`` → ``omega_v_2``, ``AppEvents`` →
    ``app_events``) unless the data plane sets ``Warehouse.<warehouse>.skipNamespaceSnakeCasing``
    (``skip_snake_casing``); a leading digit gets ``_`` (``9mega`` → ``_9_mega``); nothing left is
    ``stringempty``; a reserved word gets ``_`` (``group`` → ``_group``); cut at 127 characters.
    """
    wh = _warehouse(warehouse)
    namespace = "_".join(_alphanumeric_runs(name))
    if not skip_snake_casing:
        namespace = _strcase_snake(namespace)
    if namespace[:1].isdigit():
        namespace = "_" + namespace
    if not namespace:
        namespace = "stringempty"
    if namespace.upper() in _RESERVED_NAMESPACES[wh]:
        namespace = "_" + namespace
    namespace = namespace[:_MAX_NAME]
    return namespace.upper() if wh == "snowflake" else namespace


def _stored(name: str, warehouse: str) -> str:
    """The name a warehouse stores for ``name`` as the plan spells it: a simple one-case name is folded (lower
    case on PostgreSQL, upper case on Snowflake), any other kept as given (``WarehouseDialect.fold_identifier``'s
    rule)."""
    simple = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) and (name.islower() or name.isupper())
    if not simple:
        return name
    return name.upper() if warehouse == "snowflake" else name.lower()


def _namespace_reasons(name: str, warehouse: str) -> list[str]:
    joined = "_".join(_alphanumeric_runs(name))
    snake = _strcase_snake(joined)
    reasons = []
    if joined != name:
        reasons.append("characters other than ASCII letters and digits go, the runs between them joined by _")
    if snake != joined.lower():
        reasons.append(
            "iancoleman/strcase ToSnake puts '_' between letters and digits (both ways) and between a lower-case "
            "and an upper-case letter"
        )
    elif warehouse == "snowflake" and joined != joined.upper():
        reasons.append("ToProviderCase upper-cases it (a quoted mixed-case schema is another one)")
    elif snake != joined:
        reasons.append("strcase ToSnake lower-cases it (a quoted mixed-case schema is another one)")
    full = "_" + snake if snake[:1].isdigit() else snake
    if full != snake:
        reasons.append("'_' goes before a leading digit")
    if not full:
        reasons.append("nothing is left, so the name is 'stringempty'")
    elif full.upper() in _RESERVED_NAMESPACES[warehouse]:
        reasons.append("'_' goes before a reserved word (warehouse/utils/reservedkeywords.go)")
        full = "_" + full
    if len(full) > _MAX_NAME:
        reasons.append("the name is cut at 127 characters")
    return reasons


def namespace_problem(schema: str, warehouse: str = "postgres") -> str | None:
    """``None`` when RudderStack, given ``schema`` as its destination's namespace, writes into the schema Segment
    loads; else what Segment's schema is, where RudderStack would write, why (the rule and its source), and what
    to do before the cutover."""
    wh = _warehouse(warehouse)
    target = safe_namespace(schema, wh)
    if _stored(schema, wh) == target:
        return None
    key = f"Warehouse.{wh}.skipNamespaceSnakeCasing"
    env = "RSERVER_WAREHOUSE_" + wh.upper() + "_SKIP_NAMESPACE_SNAKE_CASING"
    unsnaked = safe_namespace(schema, wh, skip_snake_casing=True)
    if _stored(schema, wh) == unsnaked:
        setting = (
            f"; or run the data plane yourself with {key}=true (environment {env}=true, as rudder-go-kit's "
            f"config ConfigKeyToEnv names it: it is the server's configuration, not the destination's), which "
            f"keeps {_stored(schema, wh)!r}"
        )
    else:
        setting = f" ({key} would not help: RudderStack would still write {unsnaked!r})"
    return (
        f"Segment loads the schema {schema!r}, but RudderStack would write to {target!r}: rudder-server "
        "warehouse/utils/utils.go ToSafeNamespace (applied to the destination's namespace by "
        f"warehouse/bcm/backend_config.go namespace()): {'; '.join(_namespace_reasons(schema, wh))}. "
        f"RudderStack's loads would create new tables in {target!r} and the tables Segment built would get no "
        f"new rows. Before the cutover, rename the schema to {target!r}, or to another name ToSafeNamespace "
        "keeps as it is (lower-case words and digit groups separated by '_', not starting with a digit, not a "
        f"reserved word), and point Segment's warehouse, the plan and the models that read it at the new "
        f"name{setting}"
    )


# ------------------------------------------------------------------------------------------ column names
# EW/internal/snakecase/snakecase.go (lodash's word splitting) on what transformColumnName leaves: ASCII
# letters, digits and '_' only. Within that alphabet '_' is the only "break" character and lodash's "misc"
# class matches nothing, so reUnicodeWords reduces to the alternatives below (in their order).
_WORDS = (
    r"[A-Z]?[a-z]+(?=_|[A-Z]|$)",
    r"[A-Z]+(?=_|[A-Z][a-z]|$)",
    r"[A-Z]?[a-z]+",
    r"[A-Z]+",
    r"\d*(?:1ST|2ND|3RD|(?![123])\dTH)(?=\b|[a-z_])",
    r"\d*(?:1st|2nd|3rd|(?![123])\dth)(?=\b|[A-Z_])",
    r"\d+",
)
# reUnicodeWordsWithNumbers puts these first
_WITH_NUMBERS = (r"[A-Z]?[a-z]+\d+", r"[A-Z]+\d+", r"\d+[A-Z]?[a-z]+", r"\d+[A-Z]+")
_RE_WORDS = re.compile("|".join(_WORDS), re.ASCII)
_RE_WORDS_WITH_NUMBERS = re.compile("|".join(_WITH_NUMBERS + _WORDS), re.ASCII)
_RE_HAS_UNICODE_WORD = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]|[0-9][a-zA-Z]|[a-zA-Z][0-9]|[^a-zA-Z0-9 ]")


def _lodash_snake(text: str, divide_numbers: bool) -> str:
    """snakecase.go ToSnakeCaseWithNumbers (default) / ToSnakeCase (``underscoreDivideNumbers``)."""
    if _RE_HAS_UNICODE_WORD.search(text):
        words = (_RE_WORDS if divide_numbers else _RE_WORDS_WITH_NUMBERS).findall(text)
    else:
        words = re.findall(r"[A-Za-z0-9]+", text)  # asciiWords
    return "_".join(word.lower() for word in words)


def rudder_column_name(key: str, warehouse: str = "postgres", *, divide_numbers: bool = False) -> str:
    """The column RudderStack writes a property or trait ``key`` to (a nested key as its path joined by ``_``,
    as both loaders flatten objects), ``""`` when it drops the key (no ASCII letter or digit).

    ``EW/safe.go`` ``transformColumnName``: the letter/digit runs joined by ``_``, lodash-style snake case
    (``XMLHttpRequest`` → ``xml_http_request``, ``SKUCode`` → ``sku_code``, ``v2Name`` → ``v2_name``; with
    ``underscoreDivideNumbers``: ``v_2_name``), the key's leading ``_`` kept, ``_`` before a leading digit, cut
    at 63 on PostgreSQL; then ``safeName``: lower case (upper case on Snowflake), ``_`` before a reserved word
    (``order`` → ``_order``), cut at 127. A key named like one of RudderStack's own columns (``id``,
    ``received_at``, ...) is then dropped for that event type (``EW/internal/rules/rules.go``
    ``IsRudderReservedColumn``): see :data:`RUDDERSTACK_OWN_COLUMNS`.
    """
    wh = _warehouse(warehouse)
    leading = re.match(r"_*", key).group(0)
    name = leading + _lodash_snake("_".join(_alphanumeric_runs(key)), divide_numbers)
    if name[:1].isdigit():
        name = "_" + name
    if not name:
        return ""
    name = name.upper() if wh == "snowflake" else name[:_POSTGRES_MAX_IDENTIFIER].lower()
    if name.upper() in _RESERVED_TABLES_COLUMNS[wh]:
        name = "_" + name
    return name[:_MAX_NAME]


def _ascii(char: str, kind: str) -> bool:
    return _char_class(char) == kind


def _segment_word(text: str, i: int, out: list[str]) -> int:
    """go-snakecase: one word from ``i``: its upper-case/digit run lower-cased, then its lower-case/digit run."""
    while i < len(text) and _char_class(text[i]) in ("upper", "digit"):
        out.append(text[i].lower())
        i += 1
    while i < len(text) and _char_class(text[i]) in ("lower", "digit"):
        out.append(text[i])
        i += 1
    return i


def segment_column_name(key: str) -> str:
    """The column Segment writes ``key`` to: segmentio/go-snakecase ``Snakecase`` (commit ``6f94919``), as
    segment-docs ``src/connections/storage/warehouses/schema.md`` describes and
    ``include/sandbox/segment_loader.py`` emulates: an upper-case run stays one word with its lower-case tail
    (``SKUCode`` → ``skucode``, ``XMLHttpRequest`` → ``xmlhttp_request``, ``CStringRef`` → ``cstring_ref``),
    ``sampleText`` → ``sample_text``; other characters separate words; leading ``_`` go, a leading digit stays
    (``_5TEst`` → ``5test``)."""
    i, has_lower, has_underscore, lower_since_underscore = 0, False, False, False
    # the prefix that needs no change: lower case, digits, '_' before lower case or a digit
    while i < len(key):
        char = key[i]
        if _ascii(char, "lower"):
            has_lower, lower_since_underscore = True, lower_since_underscore or has_underscore
        elif _ascii(char, "digit"):
            pass
        elif char == "_" and 0 < i < len(key) - 1 and _char_class(key[i + 1]) in ("lower", "digit"):
            has_underscore, lower_since_underscore = True, False
        else:
            break
        i += 1
    if i == len(key):
        return key
    out = list(key[:i])
    if _ascii(key[i], "upper") and (not has_lower or (has_underscore and not lower_since_underscore)):
        i = _segment_word(key, i, out)
    while i < len(key):
        if _char_class(key[i]) == "other":
            i += 1
            continue
        if out:
            out.append("_")
        i = _segment_word(key, i, out)
    return "".join(out)


def column_name_difference(key: str, warehouse: str = "postgres") -> str | None:
    """``None`` when Segment and RudderStack write ``key`` to the same column (names compared as the warehouse
    folds them); else where each writes it and what to do."""
    wh = _warehouse(warehouse)
    rudder = rudder_column_name(key, wh)
    segment = segment_column_name(key)
    if wh == "postgres":
        segment = segment[:_POSTGRES_MAX_IDENTIFIER]
    if rudder.lower() == segment.lower():
        return None
    where = f"in {rudder!r}" if rudder else "nowhere (it has no ASCII letter or digit)"
    return (
        f"the key {key!r} lands in {segment!r} with Segment (segmentio/go-snakecase) but {where} with RudderStack "
        "(rudder-server EW/safe.go transformColumnName and safeName: lodash-style words, '_' before a leading "
        f"digit or a reserved word): models reading {segment!r} get NULL for the new clients' rows; rename the "
        "key in the new clients, or make the models read both columns (coalesce) before the cutover"
    )


#: the columns RudderStack adds or fills its own way, whatever a client sends, and why (lower-case names)
RUDDERSTACK_OWN_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "received_at": "RudderStack's receive time, set by its gateway; a client's value is replaced "
        "(EW/internal/rules/rules.go DefaultRules receivedAtFromEvent; processor/processor.go enhanceWithTimeFields)",
        "sent_at": "the client's sentAt, or RudderStack's receive time when missing, in milliseconds "
        "(processor.go enhanceWithTimeFields)",
        "original_timestamp": "the client's originalTimestamp, or RudderStack's receive time when missing, in "
        "milliseconds (processor.go enhanceWithTimeFields)",
        "timestamp": "the client's timestamp, else receivedAt - (sentAt - originalTimestamp) with RudderStack's "
        "receive time, in milliseconds (processor.go enhanceWithTimeFields)",
        "channel": "the message's channel as RudderStack's SDKs set it (rules.go DefaultRules)",
        "context_ip": "context.ip, else the IP of the request RudderStack received (on the webhook path: "
        "Segment's egress IP) (rules.go DefaultRules)",
        "context_request_ip": "the IP of the request RudderStack received (rules.go DefaultRules)",
        "context_passed_ip": "context.ip as the client passed it (rules.go DefaultRules)",
        "context_source_id": "the id of the RudderStack source (EW/transformer.go eventContext)",
        "context_source_type": "the type of the RudderStack source (EW/transformer.go eventContext)",
        "context_destination_id": "the id of the RudderStack destination (EW/transformer.go eventContext)",
        "context_destination_type": "the RudderStack destination's type, e.g. POSTGRES (EW/transformer.go "
        "eventContext)",
        "uuid_ts": "the time of RudderStack's load (EW/transformer.go getColumns; filled by the warehouse worker)",
        "event": "in tracks: the event name in RudderStack's snake case (EW/safe.go transformTableName), which "
        "can differ from Segment's (go-snakecase)",
        "record_id": "in tracks from cloud sources: the source's record id (rules.go TrackTableRules)",
    }
)


# ------------------------------------------------------------------------------------------ column types
# How RudderStack reads information_schema.columns.data_type (FetchSchema); a type not in its map is left out of
# the schema it works with. PostgreSQL: warehouse/integrations/postgres/postgres.go postgresDataTypesMapToRudder
# (exact keys: information_schema reports "character varying" and "timestamp without time zone", which are not
# among them). Snowflake: warehouse/integrations/snowflake/datatype_mapper.go dataTypesMapToRudder and
# CalculateDataType (an int type with numeric_scale > 0 is float).
_TO_RUDDER = {
    "postgres": {
        "integer": "int",
        "smallint": "int",
        "bigint": "int",
        "double precision": "float",
        "numeric": "float",
        "real": "float",
        "text": "string",
        "varchar": "string",
        "char": "string",
        "timestamptz": "datetime",
        "timestamp with time zone": "datetime",
        "timestamp": "datetime",
        "boolean": "boolean",
        "jsonb": "json",
    },
    "snowflake": {
        **dict.fromkeys(("NUMBER", "DECIMAL", "NUMERIC", "INT", "INTEGER", "BIGINT", "SMALLINT"), "int"),
        **dict.fromkeys(("FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "REAL", "DOUBLE PRECISION"), "float"),
        "BOOLEAN": "boolean",
        **dict.fromkeys(("TEXT", "VARCHAR", "CHAR", "CHARACTER", "STRING", "BINARY", "VARBINARY"), "string"),
        **dict.fromkeys(
            ("TIMESTAMP_NTZ", "DATE", "DATETIME", "TIME", "TIMESTAMP", "TIMESTAMP_LTZ", "TIMESTAMP_TZ"),
            "datetime",
        ),
        "VARIANT": "json",
    },
}


def rudder_type(warehouse: str, data_type: str | None, numeric_scale: int | None = None) -> str | None:
    """The RudderStack type (int, float, string, datetime, boolean, json) of an existing column whose
    ``information_schema.columns.data_type`` is ``data_type``; ``None`` when the type is invisible to
    RudderStack (not in its map: PostgreSQL ``character varying``, ``timestamp without time zone``, ``json``,
    ``uuid``, ``date``, ``ARRAY``; Snowflake ``ARRAY``, ``OBJECT``, ...). A Snowflake ``NUMBER`` with a scale
    (``numeric_scale``, or written ``NUMBER(38,2)``) is float."""
    if data_type is None:
        return None
    wh = _warehouse(warehouse)
    base = re.sub(r"\s+", " ", re.sub(r"\(.*\)", "", data_type)).strip()
    if numeric_scale is None and (params := re.search(r"\(\s*\d+\s*,\s*(\d+)\s*\)", data_type)):
        numeric_scale = int(params.group(1))
    found = _TO_RUDDER[wh].get(base.upper() if wh == "snowflake" else base.lower())
    if found == "int" and wh == "snowflake" and (numeric_scale or 0) > 0:
        return "float"
    return found


# ------------------------------------------------------------------------------------------ values
# EW/internal/utils/utils.go reDateTime (a fact copied from the source) and validTimestampFormatsMaxLength (the
# length of "2012-08-03 18:31:59.257000000 +00:00 UTC").
_RE_DATETIME = re.compile(
    r"^([+-]?\d{4})((-)((0[1-9]|1[0-2])(-([12]\d|0[1-9]|3[01])))([T\s]((([01]\d|2[0-3])((:)[0-5]\d))(:\d+)?)?"
    r"(:[0-5]\d([.]\d+)?)?([zZ]|([+-])([01]\d|2[0-3]):?([0-5]\d)?)?)?)$"
)
_MAX_TIMESTAMP_LENGTH = 40
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)  # utils.go maxTimeInMs
_RE_TIME = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([zZ]|[+-]\d{2}(?::?\d{2})?)?")


def _rolled_over_date(text: str) -> datetime | None:
    """utils.go parseTimestamp's fallback: a day past the month's end ("day out of range") rolls over, at
    midnight UTC (``1988-04-31`` → ``1988-05-01``)."""
    year, month, day = (int(part) for part in text[:10].split("-"))
    if day <= calendar.monthrange(year, month)[1]:
        return None
    return datetime(year, month, 1, tzinfo=UTC) + timedelta(days=day - 1)


def _parse_timestamp(text: str) -> datetime | None:
    """dateparse.ParseAny (utils.go parseTimestamp) on the forms reDateTime admits; a value without a zone is
    read as UTC (dateparse reads it in the server's zone, UTC on RudderStack's data planes: not confirmed)."""
    if text[:1] in "+-":
        return None  # dateparse refuses a signed year (utils_test.go TestValidTimestamp)
    day, rest = text[:10], text[11:]
    zone = ""
    if len(text) > 10:
        found = _RE_TIME.fullmatch(rest)
        if not found:
            return None
        clock, zone = found.group(1), found.group(2) or ""
        clock = re.sub(r"\.(\d{6})\d+", r".\1", clock)
        zone = "+00:00" if zone in ("z", "Z") else zone
        if len(zone) == 5 and ":" not in zone:
            zone = zone[:3] + ":" + zone[3:]
        elif len(zone) == 3:
            zone += ":00"
        day = f"{day}T{clock}"
    try:
        parsed = datetime.fromisoformat(day + zone)
    except ValueError:
        return _rolled_over_date(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rudder_timestamp(text: str) -> str | None:
    """The text RudderStack writes for a date-like string, ``None`` when it does not take ``text`` for one.

    ``EW/internal/utils/utils.go`` ``ValidTimestamp`` (at most 40 characters, ``reDateTime``, parseable, between
    year 1 and 9999) and ``ToTimestamp``: UTC, ``YYYY-MM-DDTHH:MM:SS.sssZ`` (``misc.RFC3339Milli``; digits past
    the millisecond are cut): ``2025-04-02 01:09:03.000+0530`` → ``2025-04-01T19:39:03.000Z``.
    """
    if not isinstance(text, str) or len(text) > _MAX_TIMESTAMP_LENGTH or not _RE_DATETIME.match(text):
        return None
    parsed = _parse_timestamp(text)
    if parsed is None:
        return None
    try:
        moment = parsed.astimezone(UTC)
    except OverflowError:
        return None
    if moment > _LATEST:
        return None
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def _as_sent(value: Any) -> Any:
    """The JSON value a client sent for a value read back from the warehouse (see the module docstring)."""
    if isinstance(value, datetime):
        text = value.isoformat(timespec="milliseconds" if value.microsecond % 1000 == 0 else "microseconds")
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def value_type(value: Any) -> str:
    """The type RudderStack's transformer gives a value (``EW/datatype.go`` ``dataTypeFor``, POSTGRES and
    SNOWFLAKE): ``int`` for integers and whole-valued floats (``getFloatType``: ``42.0`` is int), ``float`` for
    other numbers, ``boolean``, ``datetime`` for a string :func:`rudder_timestamp` accepts, else ``string``
    (arrays too: ``overrideForPostgresSnowflake``; the worker writes them as JSON text). Values read from the
    warehouse count as what the client sent (``datetime`` → its ISO string, ``Decimal`` → a number). An object
    is no column value (``EW/set.go`` flattens it into ``<key>_<inner key>`` columns): ``TypeError``."""
    if isinstance(value, Mapping):
        raise TypeError("an object is flattened into one column per key, it has no type of its own")
    value = _as_sent(value)
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "int" if math.isfinite(value) and value.is_integer() else "float"
    if isinstance(value, str) and rudder_timestamp(value) is not None:
        return "datetime"
    return "string"


def _go_float(number: float) -> str:
    """Go's ``%v`` of a float64: the shortest digits, in exponent form below 1e-4 and from 1e+06."""
    if math.isnan(number) or math.isinf(number):
        return "NaN" if math.isnan(number) else ("+Inf" if number > 0 else "-Inf")
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    shortest = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, shortest.digits))
    point = len(digits) + shortest.exponent
    sign = "-" if number < 0 else ""
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _go_text(value: Any) -> str:
    """The text ``fmt.Sprintf("%v", value)`` gives a JSON-decoded value as the warehouse worker holds it (an
    int-typed number already ``int(float64)``: ``warehouse/slave/worker.go`` ``processSingleStagingFile``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, int | float) and value_type(value) == "int":
        return str(int(float(value)))
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, list):
        return "[" + " ".join(_go_text(item) for item in value) + "]"
    return str(value)


# ------------------------------------------------------------------------------------------ outcomes

#: the outcome kinds, worst first
OUTCOME_KINDS = ("discarded", "truncated", "invisible", "format_change", "stringified", "cast", "same")
#: how bad each outcome is for a model reading the column (higher is worse)
SEVERITY: Mapping[str, int] = MappingProxyType(
    {kind: len(OUTCOME_KINDS) - 1 - i for i, kind in enumerate(OUTCOME_KINDS)}
)
_NUMBER_COLUMNS = ("int", "float", "string", "json")


@dataclass(frozen=True)
class Outcome:
    """What RudderStack does to one value sent into a column of an existing type.

    ``kind``: ``same`` (the value keeps its type and format), ``stringified`` (into a string column a number or
    boolean becomes its text), ``format_change`` (the value is rewritten: a date-like string to
    ``YYYY-MM-DDTHH:MM:SS.sssZ``, digits past the millisecond cut, an integer past 2^53 rounded, a blank string
    not loaded), ``truncated`` (a float into an int column loses its fraction), ``cast`` (an int into a float
    column), ``discarded`` (NULL, and a ``rudder_discards`` row keeps the value), ``invisible`` (RudderStack
    cannot read the column's type). ``detail``: what happens, with an example and the rule's source.
    """

    kind: str
    detail: str


def _shown(value: Any, limit: int = 60) -> str:
    """A value as a person reads it, cut to ``limit`` characters."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, list | tuple | Mapping):
        text = json.dumps(value, default=str, separators=(",", ":"))
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _discarded(existing: str, inferred: str, sent: Any) -> Outcome:
    return Outcome(
        "discarded",
        f"RudderStack cannot convert {_a(inferred)} value to the column's {existing} (warehouse/slave/worker.go "
        f"HandleSchemaChange: 'incompatible schema conversion from {existing} to {inferred}'): the new row has "
        f"NULL here and rudder_discards keeps the value (column_value {_shown(_go_text(sent))}); the row itself "
        "loads (worker.go processSingleStagingFile, worker_job.go handleDiscardTypes)",
    )


def _invisible(inferred: str, sent: Any) -> Outcome:
    if inferred == "datetime":
        lands = rudder_timestamp(sent)
    elif isinstance(sent, list):
        lands = json.dumps(sent, separators=(",", ":"), ensure_ascii=False)
    else:
        lands = _go_text(sent)
    return Outcome(
        "invisible",
        "RudderStack's type map has no entry for the column's type, so the schema it reads has no such column "
        "(FetchSchema): it treats the column as new (warehouse/schema/schema.go tableSchemaDiff), 'adds' it with "
        "ADD COLUMN IF NOT EXISTS, which leaves it as it is, and records the value's type for it until it reads "
        "the warehouse's schema again (warehouse/router/state_export_data.go updateSchema); it loads the value as "
        f"{_a(inferred)} without conversion or discard ({_shown(lands)}), the warehouse casts it on load, and a "
        "value the column cannot take fails the table's load (the whole upload is retried) instead of a discard",
    )


def _datetime_outcome(sent: str, *, into: str) -> Outcome:
    """A date-like string, rewritten by the transformer (EW/datatype.go convertValIfDateTime)."""
    lands = rudder_timestamp(sent)
    if into == "datetime":
        if _parse_timestamp(sent) == _parse_timestamp(lands):
            return Outcome("same", "the instant is kept")
        return Outcome(
            "format_change",
            f"RudderStack keeps milliseconds only (EW/internal/utils ToTimestamp, misc.RFC3339Milli): {_shown(sent)} "
            f"lands as {lands}",
        )
    if lands == sent:
        return Outcome("same", "the text is already in RudderStack's timestamp format")
    return Outcome(
        "format_change",
        f"a date-like string is rewritten before it lands in this {into} column (EW/datatype.go "
        f"convertValIfDateTime, EW/internal/utils ToTimestamp: UTC, milliseconds): {_shown(sent)} lands as "
        f"{lands!r}",
    )


def _into_string(inferred: str, sent: Any) -> Outcome:
    if inferred == "datetime":
        return _datetime_outcome(sent, into="string")
    if inferred in ("int", "float", "boolean"):
        return Outcome(
            "stringified",
            f"into a string column RudderStack writes the value's text, Go's %v (warehouse/slave/worker.go "
            f"HandleSchemaChange): {_shown(sent)} lands as {_go_text(sent)!r}",
        )
    if isinstance(sent, list):
        text = json.dumps(sent, separators=(",", ":"), ensure_ascii=False)
        return Outcome(
            "stringified",
            f"an array lands as its JSON text (worker.go processSingleStagingFile): {_shown(text)}",
        )
    return Outcome("same", "a string into a string column is kept")


def _into_json(inferred: str, sent: Any) -> Outcome:
    if inferred in ("int", "float", "boolean"):
        return Outcome(
            "stringified",
            "into a json column RudderStack writes the value's text, Go's %v (worker.go HandleSchemaChange): "
            f"{_shown(sent)} lands as {_go_text(sent)!r}, which PostgreSQL's jsonb reads as the same scalar",
        )
    if inferred == "datetime":
        return _datetime_outcome(sent, into="json")
    return Outcome("same", "written as a JSON string (an array as itself): worker.go HandleSchemaChange")


def _clash(existing: str, inferred: str, sent: Any) -> Outcome:
    """worker.go HandleSchemaChange, called when the value's type is not the column's (the column's wins)."""
    if existing == "json":
        return _into_json(inferred, sent)
    if existing == "float" and inferred == "int":
        return Outcome(
            "cast",
            f"into a float column an integer is cast to float64 (HandleSchemaChange): {_shown(sent)} lands as "
            f"the number {_go_text(sent)}",
        )
    if existing == "int" and inferred == "float":
        return Outcome(
            "truncated",
            f"into an integer column a float loses its fraction (HandleSchemaChange: int(value)): {_shown(sent)} "
            f"lands as {int(sent)}",
        )
    return _discarded(existing, inferred, sent)


def _lost_digits(value: Any, sent: Any) -> str | None:
    """JSON numbers reach the warehouse worker as float64 (worker.go processSingleStagingFile asserts float64):
    an integer past 2^53, or a decimal with more digits than a float64 holds, lands rounded."""
    if isinstance(sent, bool) or not isinstance(sent, int | float):
        return None
    if isinstance(sent, int) and abs(sent) > 2**53 and int(float(sent)) != sent:
        return f"{sent} lands as {int(float(sent))}"
    if isinstance(value, Decimal) and value.is_finite() and Decimal(repr(float(value))) != value:
        return f"{value} lands as {_go_float(float(value))}"
    return None


def _blank(sent: Any, warehouse: str) -> Outcome | None:
    if sent == "" or sent == [] or (isinstance(sent, list) and len(sent) == 1 and sent[0] == ""):
        return Outcome(
            "format_change",
            f"an empty value ({_shown(sent)}) is not loaded (EW/internal/utils IsEmptyString): the column is NULL",
        )
    if warehouse == "postgres" and isinstance(sent, str) and not sent.strip():
        return Outcome(
            "format_change",
            f"a blank string ({_shown(sent)}) is loaded as NULL on PostgreSQL (warehouse/integrations/postgres/"
            "load.go loadDataIntoStagingTable)",
        )
    return None


def predict(existing_type: str | None, value: Any, *, warehouse: str = "postgres") -> Outcome:
    """What RudderStack does to ``value`` sent into an existing column whose RudderStack type (see
    :func:`rudder_type`) is ``existing_type`` (``None``: invisible to it).

    The existing type wins (``warehouse/schema/schema.go`` ``consolidateWarehouseSchema``: the warehouse's type
    overwrites the type the upload's values gave the column); when the value's type differs,
    ``warehouse/slave/worker.go`` ``HandleSchemaChange`` converts it or the value is discarded. ``warehouse``
    matters only for blank strings (NULL on PostgreSQL).
    """
    if value is None:
        return Outcome("same", "no value: the column stays NULL")
    if isinstance(value, Mapping):
        return Outcome(
            "format_change",
            "an object is no column value: RudderStack flattens it into one column per key, '<column>_<key>' "
            "(EW/set.go setDataAndMetadataFromInput), and this column gets nothing",
        )
    sent = _as_sent(value)
    if blank := _blank(sent, _warehouse(warehouse)):
        return blank
    inferred = value_type(sent)
    if existing_type is None:
        return _invisible(inferred, sent)
    existing = {"text": "string", "bigint": "int"}.get(existing_type.lower(), existing_type.lower())
    if inferred == "datetime" and existing == "datetime":
        outcome = _datetime_outcome(sent, into="datetime")
    elif existing == "string":
        outcome = _into_string(inferred, sent)
    elif inferred == existing:
        outcome = Outcome("same", f"{_a(inferred)} into {_a(existing)} column is kept")
    else:
        outcome = _clash(existing, inferred, sent)
    lost = _lost_digits(value, sent) if existing in _NUMBER_COLUMNS else None
    if lost and SEVERITY[outcome.kind] < SEVERITY["format_change"]:
        return Outcome(
            "format_change",
            "RudderStack's warehouse worker reads every JSON number as a float64 (warehouse/slave/worker.go "
            f"processSingleStagingFile): {lost}",
        )
    return outcome


@dataclass(frozen=True)
class ColumnPrediction:
    """What RudderStack would do to a bounded sample of the values Segment loaded into one column.

    :param warehouse: ``postgres`` or ``snowflake``.
    :param data_type: the column's ``information_schema`` type.
    :param rudder_type: how RudderStack reads that type (``None``: invisible to it).
    :param counts: values per outcome kind (kinds seen only; NULLs are not counted).
    :param examples: per kind, the first value of that kind, shown (at most 60 characters).
    :param details: per kind, what happens to that example and why (:attr:`Outcome.detail`).
    :param worst: the most severe kind seen (:data:`SEVERITY`): ``invisible`` for an invisible type whatever the
        sample holds, ``same`` when the sample held no value.
    """

    warehouse: str
    data_type: str
    rudder_type: str | None
    counts: Mapping[str, int]
    examples: Mapping[str, str]
    details: Mapping[str, str]
    worst: str

    @property
    def sampled(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        reads = self.rudder_type or "nothing (the type is invisible to it)"
        parts = [f"{self.counts[k]} {k}" for k in OUTCOME_KINDS if self.counts.get(k)]
        text = f"column type {self.data_type} (RudderStack reads {reads}): {self.sampled} sampled values"
        if parts:
            text += ": " + ", ".join(parts)
        if self.worst != "same" and self.worst in self.details:
            text += f"; e.g. {self.examples[self.worst]}: {self.details[self.worst]}"
        return text


def predict_column(
    warehouse: str, data_type: str, values: Iterable[Any], *, numeric_scale: int | None = None
) -> ColumnPrediction:
    """Summarise :func:`predict` over ``values`` (a bounded sample of one column, as a DB-API driver returns
    them; ``None`` is skipped) for a column of ``data_type`` on ``warehouse``."""
    wh = _warehouse(warehouse)
    existing = rudder_type(wh, data_type, numeric_scale)
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    details: dict[str, str] = {}
    for value in values:
        if value is None:
            continue
        outcome = predict(existing, value, warehouse=wh)
        counts[outcome.kind] += 1
        if outcome.kind not in examples:
            examples[outcome.kind] = _shown(value)
            details[outcome.kind] = outcome.detail
    if existing is None:
        worst = "invisible"
    else:
        worst = max(counts, key=SEVERITY.__getitem__, default="same")
    return ColumnPrediction(
        warehouse=wh,
        data_type=data_type,
        rudder_type=existing,
        counts=dict(counts),
        examples=examples,
        details=details,
        worst=worst,
    )
