"""What a Webhooks destination is and what it sends: its settings checked against the catalog, its mappings
(FQL triggers, `@path` directives), the HTTP requests one event becomes, and their signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from sandbox.common import ApiError
from sandbox.segment.catalog import (
    CLASSIC_WEBHOOKS_METADATA,
    MAX_HOOKS,
    SEND_FIELDS,
    WEBHOOKS_ACTIONS_METADATA,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_METADATA_ID,
)
from sandbox.warehouse import TABLE_BY_TYPE

__all__ = [
    "find_action",
    "sign_webhook_body",
    "trigger_event_types",
    "validate_destination_settings",
    "validate_send_settings",
    "webhook_requests",
    "webhooks_metadata",
]


_FQL_TYPE_TERM = re.compile(r"""^\(?\s*type\s*=\s*(?:"([a-z]+)"|'([a-z]+)')\s*\)?$""")


def trigger_event_types(trigger: Any) -> frozenset[str]:
    """The event types an FQL trigger selects. The sandbox understands only `type = "<type>"` terms joined by
    `or` (segment-docs src/api/public-api/fql.md); any other FQL is refused (stricter than Segment, noted)."""
    if not isinstance(trigger, str) or not trigger.strip():
        raise ApiError(422, "validation", "trigger must be a non-empty FQL string", field="trigger")
    kinds = set()
    for term in re.split(r"\s+or\s+", trigger.strip().removeprefix("(").removesuffix(")")):
        match = _FQL_TYPE_TERM.match(term.strip())
        kind = (match.group(1) or match.group(2)) if match else None
        if kind not in TABLE_BY_TYPE:
            raise ApiError(
                422,
                "validation",
                f"trigger {trigger!r}: the sandbox understands only FQL like "
                '`type = "track" or type = "identify"` with Segment event types',
                field="trigger",
            )
        kinds.add(kind)
    return frozenset(kinds)


def _resolve_mapping(value: Any, event: dict[str, Any]) -> Any:
    """Segment's mapping directives, the subset the sandbox speaks: `{"@path": "$.a.b"}` (`"$."`: the whole
    event); objects and lists resolved member by member; anything else is a literal."""
    if isinstance(value, dict) and set(value) == {"@path"}:
        current: Any = event
        for part in [p for p in str(value["@path"]).removeprefix("$").split(".") if p]:
            current = current.get(part) if isinstance(current, dict) else None
        return current
    if isinstance(value, dict):
        return {k: _resolve_mapping(v, event) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_mapping(v, event) for v in value]
    return value


def _check_directives(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("@") and key != "@path":
                raise ApiError(
                    422,
                    "validation",
                    f"{where}: the sandbox supports only the @path directive, not {key}",
                    field="settings",
                )
            _check_directives(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _check_directives(item, f"{where}[{n}]")


def sign_webhook_body(shared_secret: str, body: bytes) -> str:
    """The `X-Signature` a classic Webhooks destination sends: hex HMAC-SHA1 of the raw body."""
    return hmac.new(shared_secret.encode(), body, hashlib.sha1).hexdigest()


def webhook_requests(
    subscriptions: dict[str, dict[str, dict[str, Any]]],
    destination: dict[str, Any],
    event: dict[str, Any],
    body: bytes,
) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, url, headers, body) of each request an enabled Webhooks destination sends for one event.

    Classic: one POST of the event to each hook. Webhooks (Actions): one request per enabled mapping whose
    trigger selects the event's type, its body the mapping's `data` resolved against the event (a JSON array
    when `enable_batching` is on); with a sharedSecret, `X-Signature` = hex HMAC-SHA1 of the body
    (segment-docs catalog/actions-webhook/index.md)."""
    settings = destination["settings"]
    secret = settings.get("sharedSecret")
    requests: list[tuple[str, str, dict[str, str], bytes]] = []
    if destination["metadata"]["id"] == WEBHOOKS_METADATA_ID:
        for hook in settings.get("hooks", []):
            headers = {"Content-Type": "application/json", "User-Agent": "Segment.io/1.0"}
            headers.update({h["key"]: h["value"] for h in hook.get("headers") or []})
            if secret:
                headers["X-Signature"] = sign_webhook_body(secret, body)
            requests.append(("POST", hook["hook"], headers, body))
        return requests
    for mapping in subscriptions.get(destination["id"], {}).values():
        if not mapping["enabled"] or event.get("type") not in trigger_event_types(mapping["trigger"]):
            continue
        ms = mapping["settings"]
        payload = _resolve_mapping(ms.get("data", {"@path": "$."}), event)
        if ms.get("enable_batching"):
            payload = [payload]
        content = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Segment (Actions)"}
        headers.update({str(k): str(v) for k, v in (ms.get("headers") or {}).items()})
        if secret:
            headers["X-Signature"] = sign_webhook_body(secret, content)
        requests.append((ms.get("method", "POST"), ms["url"], headers, content))
    return requests


def webhooks_metadata(metadata_id: str, classic_webhooks_available: bool) -> dict[str, Any]:
    """The catalog entry for a destination the sandbox can create: Webhooks (Actions), or classic Webhooks
    when the workspace has it (`classic_webhooks_available`)."""
    if metadata_id == WEBHOOKS_ACTIONS_METADATA_ID:
        return WEBHOOKS_ACTIONS_METADATA
    if metadata_id == WEBHOOKS_METADATA_ID and classic_webhooks_available:
        return CLASSIC_WEBHOOKS_METADATA
    if metadata_id == WEBHOOKS_METADATA_ID:
        # Classic Webhooks is maintenance + private in Segment's catalog. The exact error Segment answers
        # for a workspace without it is not documented: a 422 validation error on metadataId (noted).
        raise ApiError(
            422,
            "validation",
            f"Destination Webhooks ({WEBHOOKS_METADATA_ID}) is not available in "
            f"this workspace; use Webhooks (Actions) ({WEBHOOKS_ACTIONS_METADATA_ID})",
            field="metadataId",
        )
    raise ApiError(
        422,
        "validation",
        f"metadataId {metadata_id!r} is not supported by the sandbox; only "
        f"Webhooks (Actions) ({WEBHOOKS_ACTIONS_METADATA_ID}) and classic Webhooks "
        f"({WEBHOOKS_METADATA_ID})",
        field="metadataId",
    )


def validate_destination_settings(metadata_id: str, settings: Any) -> dict[str, Any]:
    if metadata_id == WEBHOOKS_METADATA_ID:
        return _validate_webhook_settings(settings)
    # Webhooks (Actions): the catalog lists one setting, sharedSecret; URL/method/payload belong to mappings.
    if not isinstance(settings, dict):
        raise ApiError(
            422, "validation", "settings must be an object like {'sharedSecret': ...}", field="settings"
        )
    unknown = sorted(set(settings) - {"sharedSecret"})
    if unknown:
        raise ApiError(
            422,
            "validation",
            f"settings.{unknown[0]} is not a setting of Webhooks (Actions) (it "
            "has only sharedSecret; URL, method and payload belong to a mapping)",
            field="settings",
        )
    if not isinstance(settings.get("sharedSecret", ""), str):
        raise ApiError(422, "validation", "settings.sharedSecret must be a string", field="settings")
    return dict(settings)


def find_action(destination: dict[str, Any], action_id: str) -> dict[str, Any]:
    for action in destination["metadata"].get("actions") or []:
        if action["id"] == action_id:
            return action
    raise ApiError(
        422,
        "validation",
        f"actionId {action_id!r} is not an action of {destination['metadata']['name']}"
        f" (its actions: {[a['id'] for a in destination['metadata'].get('actions') or []]})",
        field="actionId",
    )


def validate_send_settings(settings: Any) -> dict[str, Any]:
    """Settings of a "Send" mapping checked against the action's fields (catalog types; unknown keys refused)."""
    if not isinstance(settings, dict):
        raise ApiError(422, "validation", "settings must be an object", field="settings")
    fields = {f["fieldKey"]: f for f in SEND_FIELDS}
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise ApiError(
            422,
            "validation",
            f"settings.{unknown[0]} is not a field of the Send action (fields: {sorted(fields)})",
            field="settings",
        )
    missing = [k for k, f in fields.items() if f["required"] and k not in settings]
    if missing:
        raise ApiError(422, "validation", f"settings.{missing[0]} is required", field="settings")
    url = settings["url"]
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ApiError(422, "validation", "settings.url must be an http(s) URL", field="settings")
    if settings["method"] not in ("POST", "PUT", "PATCH"):
        raise ApiError(422, "validation", "settings.method must be POST, PUT or PATCH", field="settings")
    for key, kind in (
        ("headers", dict),
        ("data", dict),
        ("enable_batching", bool),
        ("batch_size", (int, float)),
    ):
        if key in settings and not isinstance(settings[key], kind):
            raise ApiError(422, "validation", f"settings.{key} has the wrong type", field="settings")
    _check_directives(settings.get("data"), "settings.data")
    return dict(settings)


def _validate_webhook_settings(settings: Any) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise ApiError(
            422, "validation", "settings must be an object like {'hooks': [...], 'sharedSecret': ...}"
        )
    hooks = settings.get("hooks", [])
    if not isinstance(hooks, list) or len(hooks) > MAX_HOOKS:
        raise ApiError(422, "validation", f"settings.hooks must be a list of at most {MAX_HOOKS} hooks")
    for n, hook in enumerate(hooks):
        url = hook.get("hook") if isinstance(hook, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(422, "validation", f"settings.hooks[{n}].hook must be an http(s) URL")
        for header in hook.get("headers") or []:
            if not isinstance(header, dict) or not header.get("key"):
                raise ApiError(422, "validation", f"settings.hooks[{n}].headers entries need key and value")
    return settings
