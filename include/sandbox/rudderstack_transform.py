"""RudderStack's warehouse transformer: one event -> the rows (table, values, types) rudder-server stages.

Follows rudder-server (commit f2655fbbe2260deb4e01c2a54da1a827291713bb)
`processor/internal/transformer/destination_transformer/embedded/warehouse/` (`EW/`): `events.go` (which
tables an event becomes), `set.go` (flattening, rules), `internal/rules/rules.go` (the columns RudderStack
fills itself), `transformer.go` (`eventContext`: context_source_*/context_destination_*; `getColumns`:
uuid_ts, the 1600-column limit), `options.go` (destination config flags), and `processor/processor.go`
`enhanceWithTimeFields` (timestamps, applied before the transformer). POSTGRES rules only (see
`sandbox.rudderstack_naming`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.common import isoformat_z, utcnow
from sandbox.rudderstack_naming import (
    _parse_timestamp,
    data_type_for,
    is_empty,
    safe_name,
    to_timestamp,
    transform_column_name,
    transform_table_name,
)

__all__ = ["DestinationOptions", "Row", "TransformError", "enhance_time_fields", "transform_event"]

MAX_COLUMNS_IN_EVENT = 1600  # EW/transformer.go WH_MAX_COLUMNS_IN_EVENT default
# EW/internal/utils/utils.go: track events named like these tables go to `_<name>` (rudderCreatedTables, and
# rudderIsolatedTables even when skipReservedKeywordsEscaping is set).
RUDDER_CREATED_TABLES = frozenset({"tracks", "pages", "screens", "aliases", "groups", "accounts"})
RUDDER_ISOLATED_TABLES = frozenset({"users", "identifies"})


class TransformError(ValueError):
    """The transformer refused the event (rudder-server reports it as a failed event, not loaded)."""


@dataclass(frozen=True)
class DestinationOptions:
    """EW/options.go extractDestOpts: destination config flags, read with `setOption` (a JSON boolean only;
    a missing key, or a string, leaves the flag false: there is no other default)."""

    skip_users_table: bool = False
    skip_tracks_table: bool = False
    allow_users_context_traits: bool = False
    underscore_divide_numbers: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DestinationOptions:
        flag = lambda key: config.get(key) is True  # noqa: E731 - Go's `.(bool)` type assertion
        return cls(
            skip_users_table=flag("skipUsersTable"),
            skip_tracks_table=flag("skipTracksTable"),
            allow_users_context_traits=flag("allowUsersContextTraits"),
            underscore_divide_numbers=flag("underscoreDivideNumbers"),
        )


@dataclass
class Row:
    """One staged row: its table, values and RudderStack types (int, float, string, datetime, boolean, json)."""

    table: str
    data: dict[str, Any] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def set(self, column: str, value: Any, rudder_type: str) -> None:
        self.data[column] = value
        self.types[column] = rudder_type


# ------------------------------------------------------------------------------------------ time fields


def _format_ms(moment: datetime) -> str:
    return to_timestamp(moment.isoformat())


def enhance_time_fields(event: dict[str, Any], received_at: str) -> None:
    """processor/processor.go enhanceWithTimeFields: `receivedAt` is RudderStack's receive time;
    missing/unparseable `originalTimestamp` and `sentAt` default to it; a missing `timestamp` is
    receivedAt - (sentAt - originalTimestamp) (misc.GetChronologicalTimeStamp); all in RFC3339 milliseconds."""
    received = _parse_timestamp(received_at)
    if received is None:
        raise TransformError(f"receivedAt {received_at!r} is not a timestamp")

    def parsed(name: str) -> datetime | None:
        value = event.get(name)
        return _parse_timestamp(value) if isinstance(value, str) else None

    original = parsed("originalTimestamp") or received
    sent = parsed("sentAt") or received
    timestamp = parsed("timestamp") or received - timedelta(seconds=(sent - original).total_seconds())
    event["receivedAt"] = _format_ms(received)
    event["originalTimestamp"] = _format_ms(original)
    event["sentAt"] = _format_ms(sent)
    event["timestamp"] = _format_ms(timestamp)


# ------------------------------------------------------------------------------------------ rules


def _lookup(event: Mapping[str, Any], path: str) -> Any:
    value: Any = event
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _first_valid(event: Mapping[str, Any], paths: tuple[str, ...]) -> Any:
    for path in paths:
        value = _lookup(event, path)
        if not is_empty(value):
            return value
    return None


def _static(path: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda event: _lookup(event, path)


_IP_RULES = {  # EW/internal/rules/rules.go: context_ip falls back to the gateway's request_ip
    "context_ip": lambda e: _first_valid(e, ("context.ip", "request_ip")),
    "context_request_ip": _static("request_ip"),
    "context_passed_ip": _static("context.ip"),
}
DEFAULT_RULES = {  # EW/internal/rules/rules.go DefaultRules
    "id": _static("messageId"),
    "anonymous_id": _static("anonymousId"),
    "user_id": _static("userId"),
    "sent_at": _static("sentAt"),
    "timestamp": _static("timestamp"),
    "received_at": _static("receivedAt"),
    "original_timestamp": _static("originalTimestamp"),
    "channel": _static("channel"),
    **_IP_RULES,
}
TRACK_RULES = {"event_text": _static("event")}
IDENTIFY_USERS_RULES = {  # IdentifyRulesNonDataLake
    **_IP_RULES,
    "sent_at": _static("sentAt"),
    "timestamp": _static("timestamp"),
    "original_timestamp": _static("originalTimestamp"),
}
NAME_RULES = {"name": lambda e: _first_valid(e, ("name", "properties.name"))}  # PageRules / ScreenRules
GROUP_RULES = {"group_id": _static("groupId")}
ALIAS_RULES = {"previous_id": _static("previousId")}
# rules.go rudderReservedColumns: properties/traits named like these columns are dropped.
RESERVED_COLUMNS = {
    "track": set(DEFAULT_RULES) | set(TRACK_RULES) | {"record_id"},
    "identify": set(DEFAULT_RULES),
    "page": set(DEFAULT_RULES) | set(NAME_RULES),
    "screen": set(DEFAULT_RULES) | set(NAME_RULES),
    "group": set(DEFAULT_RULES) | set(GROUP_RULES),
    "alias": set(DEFAULT_RULES) | set(ALIAS_RULES),
}


@dataclass
class _Context:
    event: dict[str, Any]
    event_type: str
    options: DestinationOptions

    def column(self, key: str) -> str:
        """EW/safe.go transformColumnName then safeColumnName."""
        return safe_name(transform_column_name(key, divide_numbers=self.options.underscore_divide_numbers))


def _add(ctx: _Context, row: Row, key: str, value: Any) -> None:
    """EW/set.go addDataAndMetadata: name the column, drop RudderStack's own columns, type the value."""
    column = ctx.column(key)
    if not column or column in RESERVED_COLUMNS[ctx.event_type]:
        return
    rudder_type = data_type_for(value)
    row.set(column, to_timestamp(value) if rudder_type == "datetime" else value, rudder_type)


def _flatten_into(ctx: _Context, row: Row, value: Any, prefix: str = "") -> None:
    """EW/set.go setDataAndMetadataFromInput: keys in sorted order, blank values skipped, objects flattened
    with `_`, anything else (arrays included) one column."""
    if not isinstance(value, Mapping) or not value:
        return
    for key in sorted(value):
        inner = value[key]
        if is_empty(inner):
            continue
        if isinstance(inner, Mapping):
            _flatten_into(ctx, row, inner, f"{prefix}{key}_")
        else:
            _add(ctx, row, f"{prefix}{key}", inner)


def _apply_rules(ctx: _Context, row: Row, rules: Mapping[str, Callable]) -> None:
    """EW/set.go setDataAndMetadataFromRules: each rule column replaces what the input put there; blank,
    object and array values leave it absent."""
    for key in sorted(rules):
        column = ctx.column(key)
        row.data.pop(column, None)
        row.types.pop(column, None)
        value = rules[key](ctx.event)
        if is_empty(value) or isinstance(value, Mapping | list):
            continue
        rudder_type = data_type_for(value)
        row.set(column, to_timestamp(value) if rudder_type == "datetime" else value, rudder_type)


def _event_context(event: Mapping[str, Any], source: Mapping[str, Any], destination: Mapping[str, Any]):
    """EW/transformer.go eventContext: the context plus sourceId/sourceType/destinationId/destinationType
    (WH_POPULATE_SRC_DEST_INFO_IN_CONTEXT, on by default)."""
    context = event.get("context")
    if context is not None and not isinstance(context, Mapping):
        raise TransformError("context is not an object")  # EW/transformer.go checkValidContext
    return {
        **(context or {}),
        "sourceId": source["id"],
        "sourceType": source["type"],
        "destinationId": destination["id"],
        "destinationType": destination["type"],
    }


# ------------------------------------------------------------------------------------------ event types


def _track_rows(ctx: _Context, context: Mapping[str, Any]) -> list[Row]:
    """EW/events.go trackEvents: a `tracks` row (context, event_text, the default rules, `event` =
    transformTableName(event)) unless skipTracksTable, and a row in the event's own table (properties and
    userProperties, under the common columns), named by transformColumnName + safeTableName, `_` before a
    standard table name (excludeRudderCreatedTableNames)."""
    common = Row("")
    _flatten_into(ctx, common, context, "context_")
    _apply_rules(ctx, common, TRACK_RULES)
    _apply_rules(ctx, common, DEFAULT_RULES)
    event_name = common.data.get(ctx.column("event_text"))
    event_name = event_name if isinstance(event_name, str) else ""
    transformed = transform_table_name(event_name, divide_numbers=ctx.options.underscore_divide_numbers)
    common.set(ctx.column("event"), transformed, "string")
    rows = []
    if not ctx.options.skip_tracks_table:
        rows.append(Row(safe_name("tracks"), dict(common.data), dict(common.types)))
    if transformed.strip():
        own = Row("")
        _flatten_into(ctx, own, ctx.event.get("properties"))
        _flatten_into(ctx, own, ctx.event.get("userProperties"))
        table = safe_name(ctx.column(transformed))
        if table in RUDDER_CREATED_TABLES | RUDDER_ISOLATED_TABLES:
            table = "_" + table
        rows.append(Row(table, {**own.data, **common.data}, {**own.types, **common.types}))
    return rows


def _identify_rows(ctx: _Context, context: Mapping[str, Any]) -> list[Row]:
    """EW/events.go identifyEvents: traits (and context.traits only with allowUsersContextTraits) as plain
    columns, the context as context_* (so context.traits land in context_traits_*); a `users` row only with a
    userId and skipUsersTable off (usersResponse, shouldSkipUsersTable)."""
    common = Row("")
    _flatten_into(ctx, common, ctx.event.get("userProperties"))
    if ctx.options.allow_users_context_traits:
        _flatten_into(ctx, common, _lookup(ctx.event, "context.traits"))
    _flatten_into(ctx, common, ctx.event.get("traits"))
    _flatten_into(ctx, common, context, "context_")
    user_id_column = ctx.column("user_id")
    if common.data.get(user_id_column) is not None:  # identifyCommonProps: a user_id trait moves to _user_id
        common.set("_" + user_id_column, common.data.pop(user_id_column), common.types.pop(user_id_column))
    identifies = Row(safe_name("identifies"), dict(common.data), dict(common.types))
    _apply_rules(ctx, identifies, DEFAULT_RULES)
    rows = [identifies]
    user_id = ctx.event.get("userId")
    if not is_empty(user_id) and str(user_id).strip() and not ctx.options.skip_users_table:
        users = Row(safe_name("users"), dict(common.data), dict(common.types))
        _apply_rules(ctx, users, IDENTIFY_USERS_RULES)
        id_type = data_type_for(user_id)
        users.set(ctx.column("id"), to_timestamp(user_id) if id_type == "datetime" else user_id, id_type)
        users.set(ctx.column("received_at"), to_timestamp(ctx.event["receivedAt"]), "datetime")
        rows.append(users)
    return rows


_SIMPLE = {  # EW/events.go pageEvents, screenEvents, groupEvents, aliasEvents: (table, input key, rules)
    "page": ("pages", "properties", NAME_RULES),
    "screen": ("screens", "properties", NAME_RULES),
    "group": ("groups", "traits", GROUP_RULES),
    "alias": ("aliases", "traits", ALIAS_RULES),
}


def _simple_rows(ctx: _Context, context: Mapping[str, Any]) -> list[Row]:
    table, input_key, rules = _SIMPLE[ctx.event_type]
    row = Row(safe_name(table))
    _flatten_into(ctx, row, ctx.event.get(input_key))
    _flatten_into(ctx, row, context, "context_")
    _apply_rules(ctx, row, DEFAULT_RULES)
    _apply_rules(ctx, row, rules)
    return [row]


def transform_event(
    event: Mapping[str, Any],
    *,
    source: Mapping[str, Any],
    destination: Mapping[str, Any],
) -> list[Row]:
    """The rows one staged event becomes (EW/transformer.go handleEvent). `event` carries `receivedAt` and
    `request_ip` as the gateway staged them; raises TransformError for an event rudder-server fails."""
    staged = dict(event)
    if is_empty(staged.get("messageId")):  # EW/internal/utils/utils.go ExtractMessageID
        staged["messageId"] = f"auto-{uuid.uuid4()}"
    # EW/internal/utils/utils.go ExtractReceivedAt: the receive time, else now
    enhance_time_fields(staged, str(staged.get("receivedAt") or isoformat_z(utcnow())))
    event_type = str(staged.get("type") or "").lower()
    options = DestinationOptions.from_config(destination.get("config") or {})
    ctx = _Context(staged, event_type, options)
    context = _event_context(staged, source, destination)
    if event_type == "track":
        rows = _track_rows(ctx, context)
    elif event_type == "identify":
        rows = _identify_rows(ctx, context)
    elif event_type in _SIMPLE:
        rows = _simple_rows(ctx, context)
    else:
        raise TransformError(f"Unknown event type: {event_type!r}")
    for row in rows:  # EW/transformer.go getColumns: uuid_ts in every table, at most 1600 columns
        row.types[ctx.column("uuid_ts")] = "datetime"
        if len(row.types) > MAX_COLUMNS_IN_EVENT:
            raise TransformError("postgres transformer: Too many columns outputted from the event")
    return rows
