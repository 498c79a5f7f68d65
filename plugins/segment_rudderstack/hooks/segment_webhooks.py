"""Segment's webhook model: which Webhooks destinations (classic, or Actions with a "Send" mapping) forward a
source's events to a URL, and the ids the change log records them by. Reads through a :class:`SegmentHook`;
never changes anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segment_rudderstack.vocabulary import (
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_ACTIONS_SEND_ACTION_ID,
    WEBHOOKS_METADATA_ID,
)


def hook_urls(destination: dict[str, Any]) -> list[str]:
    hooks = (destination.get("settings") or {}).get("hooks") or []
    return [h.get("hook") for h in hooks if isinstance(h, dict) and h.get("hook")]


def is_webhook_to(destination: dict[str, Any], url: str) -> bool:
    """A classic Webhooks destination posting to ``url``."""
    metadata = destination.get("metadata") or {}
    return metadata.get("id") == WEBHOOKS_METADATA_ID and url in hook_urls(destination)


def webhooks_forwarding_to(hook, source_id: str, url: str) -> list[tuple[dict[str, Any], bool]]:
    """Every Webhooks destination of ``source_id`` that would send events to ``url``, with whether it does now:
    classic (enabled, ``url`` among its hooks) or Webhooks (Actions) (enabled, with an enabled "Send" mapping to
    ``url``). Any name: this reads, it never changes them."""
    found: list[tuple[dict[str, Any], bool]] = []
    for destination in hook.list_connected_destinations(source_id):
        metadata_id = (destination.get("metadata") or {}).get("id")
        if is_webhook_to(destination, url):
            found.append((destination, bool(destination.get("enabled"))))
        elif metadata_id == WEBHOOKS_ACTIONS_METADATA_ID:
            mappings = [
                m
                for m in hook.list_destination_subscriptions(destination["id"])
                if m.get("actionId") == WEBHOOKS_ACTIONS_SEND_ACTION_ID
                and (m.get("settings") or {}).get("url") == url
            ]
            if mappings:
                on = bool(destination.get("enabled")) and any(m.get("enabled") for m in mappings)
                found.append((destination, on))
    return found


def is_connected(hook, warehouse_id: str, source_id: str) -> bool:
    """Whether Segment's warehouse loads the source (read from the source's connected warehouses)."""
    return warehouse_id in {w.get("id") for w in hook.list_connected_warehouses(source_id)}


def subscription_target_id(destination_id: str, subscription_id: str) -> str:
    return f"{destination_id}/{subscription_id}"


@dataclass(frozen=True)
class WebhookRoute:
    """One path from a Segment source to RudderStack: a Webhooks destination and, for Webhooks (Actions), its
    "Send" mapping (``None``: classic, or an Actions destination whose mapping is still missing)."""

    source_id: str
    destination: dict[str, Any]
    mapping: dict[str, Any] | None = None

    @property
    def destination_id(self) -> str:
        return self.destination["id"]
