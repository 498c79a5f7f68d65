"""Segment's catalog as the emulator serves it: metadata ids, destination definitions, source and warehouse
metadata, and the catalog's limits. Data only; what the emulator does with it lives in the other modules."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CLASSIC_WEBHOOKS_METADATA",
    "LOGO",
    "MAX_HOOKS",
    "MAX_MAPPINGS",
    "SEND_ACTION_ID",
    "SEND_FIELDS",
    "WEBHOOKS_ACTIONS_METADATA",
    "WEBHOOKS_ACTIONS_METADATA_ID",
    "WEBHOOKS_METADATA_ID",
    "source_metadata",
    "warehouse_metadata",
]

WEBHOOKS_METADATA_ID = "54521fdc25e721e32a72ef04"  # classic Webhooks (segment-docs catalog/webhooks/index.md)
WEBHOOKS_ACTIONS_METADATA_ID = (
    "614a3c7d791c91c41bae7599"  # Webhooks (Actions) (segment-docs destinations.yml)
)
SEND_ACTION_ID = "nFPnRozhz1mh4Gbx4MLvT5"  # its "Send" action (same catalog entry)
MAX_MAPPINGS = 5  # "You can create up to 5 mappings" (segment-docs catalog/actions-webhook/index.md)
MAX_HOOKS = 5
LOGO = {"default": "https://cdn-devcenter.segment.com/sandbox.svg", "mark": None, "alt": None}  # LogosBeta


def _metadata_v1(
    metadata_id: str,
    slug: str,
    name: str,
    *,
    description: str,
    categories: list[str],
    options: list[dict[str, Any]],
    actions: list[dict[str, Any]],
    status: str = "PUBLIC",
    previous_names: list[str] | None = None,
) -> dict[str, Any]:
    """A complete `DestinationMetadataV1` (SDK model `destination_metadata_v1.py`: every required field present)."""
    return {
        "id": metadata_id,
        "name": name,
        "description": description,
        "slug": slug,
        "logos": dict(LOGO),
        "options": options,
        "status": status,
        "previousNames": previous_names or [name],
        "categories": categories,
        "website": f"https://segment.com/docs/connections/destinations/catalog/{slug}",
        "components": [],
        "supportedFeatures": {
            "cloudModeInstances": "MULTIPLE",
            "deviceModeInstances": "NONE",
            "replay": False,
            "browserUnbundling": False,
            "browserUnbundlingPublic": False,
        },
        "supportedMethods": {"pageview": True, "identify": True, "alias": True, "track": True, "group": True},
        "supportedPlatforms": {"browser": True, "server": True, "mobile": False, "warehouse": True},
        "actions": actions,
        "presets": [],
    }


_SHARED_SECRET_OPTION = {  # IntegrationOptionBeta; from segment-docs src/_data/catalog/destinations.yml
    "name": "sharedSecret",
    "type": "password",
    "required": False,
    "defaultValue": "",
    "label": "Shared Secret",
    "description": 'If set, Segment will sign requests with an HMAC in the "X-Signature" request header.',
}
# Classic Webhooks: segment-docs src/connections/destinations/catalog/webhooks/index.md (maintenance, private).
CLASSIC_WEBHOOKS_METADATA = _metadata_v1(
    WEBHOOKS_METADATA_ID,
    "webhooks",
    "Webhooks",
    description="Send events to up to five webhook URLs.",
    categories=["Raw Data"],
    status="PUBLIC",
    actions=[],
    options=[
        {
            "name": "hooks",
            "type": "array",
            "required": False,
            "label": "Webhooks",
            "description": "Up to 5 webhook URLs with headers",
        },
        _SHARED_SECRET_OPTION,
    ],
)


def _action_field(
    field_id: str,
    order: int,
    key: str,
    label: str,
    kind: str,
    description: str,
    *,
    required: bool = False,
    default: Any = None,
    choices: Any = None,
) -> dict[str, Any]:
    """A `DestinationMetadataActionFieldV1` (SDK model destination_metadata_action_field_v1.py)."""
    return {
        "id": field_id,
        "sortOrder": order,
        "fieldKey": key,
        "label": label,
        "type": kind,
        "description": description,
        "placeholder": "",
        "defaultValue": default,
        "required": required,
        "multiple": False,
        "choices": choices,
        "dynamic": False,
        "allowNull": False,
        "hidden": False,
    }


# Webhooks (Actions) as segment-docs src/_data/catalog/destinations.yml lists it (id 614a3c7d791c91c41bae7599):
# settings only sharedSecret; one action "Send" with fields url, method, batch_size, headers, data, enable_batching.
SEND_FIELDS = [
    _action_field(
        "chABtpe8R3Fuff394fGrRE", 0, "url", "URL", "STRING", "URL to deliver data to.", required=True
    ),
    _action_field(
        "qWdhkvZC25kbeusBhUsQqD",
        1,
        "method",
        "Method",
        "STRING",
        "HTTP method to use.",
        required=True,
        default="POST",
        choices=[{"label": m, "value": m} for m in ("POST", "PUT", "PATCH")],
    ),
    _action_field(
        "xmwgA3k9zNsGzr9GETqqrJ",
        2,
        "batch_size",
        "Batch Size",
        "NUMBER",
        "Maximum number of events to include in each batch. Actual batch sizes may be lower.",
        default=0,
    ),
    _action_field(
        "p1hvcNQBwuGqeUKzUnTPWi",
        3,
        "headers",
        "Headers",
        "OBJECT",
        "HTTP headers to send with each request. Only ASCII characters are supported.",
    ),
    _action_field(
        "aR2f2X4hcT2nedjMJt3j3e",
        4,
        "data",
        "Data",
        "OBJECT",
        "Payload to deliver to webhook URL (JSON-encoded).",
        default={"@path": "$."},
    ),
    _action_field(
        "hguDY3MfapSaUior43bzE3",
        6,
        "enable_batching",
        "Enable Batching?",
        "BOOLEAN",
        "When enabled, Segment will send events in batches.",
        default=False,
    ),
]
WEBHOOKS_ACTIONS_METADATA = _metadata_v1(
    WEBHOOKS_ACTIONS_METADATA_ID,
    "actions-webhook",
    "Webhooks (Actions)",
    description="Send events to your own HTTP endpoints through mappings.",
    categories=["Raw Data"],
    previous_names=["Webhook", "Webhooks (Actions)"],
    options=[_SHARED_SECRET_OPTION],
    actions=[
        {
            "id": SEND_ACTION_ID,
            "slug": "send",
            "name": "Send",
            "description": "Send an HTTP request.",
            "platform": "CLOUD",
            "hidden": False,
            "defaultTrigger": None,
            "fields": SEND_FIELDS,
        }
    ],
)


def source_metadata() -> dict[str, Any]:
    """A source's metadata. SourceMetadataV1 (SDK model source_metadata_v1.py): every required field."""
    return {
        "id": "IqDTy1TpoU",
        "slug": "javascript",
        "name": "Javascript",
        "description": "Analytics.js, Segment's JavaScript source",
        "logos": dict(LOGO),
        "options": [],
        "categories": ["Website"],
        "isCloudEventSource": False,
        "status": "PUBLIC",
    }


def warehouse_metadata() -> dict[str, Any]:
    """A warehouse's metadata. WarehouseMetadataV1 (SDK model warehouse_metadata_v1.py): id, name, slug,
    description, logos (LogosBeta: `default` required), options (IntegrationOptionBeta list)."""
    return {
        "id": "aea3cde9-5e9f-4b2a-8fe6-0ae7cbe1e3b6",
        "slug": "postgres",
        "name": "Postgres",
        "description": "PostgreSQL warehouse (sandbox)",
        "logos": dict(LOGO),
        "options": [
            {
                "name": "hostname",
                "type": "string",
                "required": True,
                "description": "Host of the database",
                "label": "Host",
            }
        ],
    }


# Amplitude (Actions): segmentio/action-destinations packages/destination-actions/src/destinations/index.ts maps
# this metadata id to its "amplitude" destination (destination metadata name "Amplitude (Actions)"). Only read
# here (a destination that stays on Segment); the emulator forwards nothing to it.
AMPLITUDE_ACTIONS_METADATA_ID = "5f7dd6d21ad74f3842b1fc47"
AMPLITUDE_ACTIONS_METADATA = _metadata_v1(
    AMPLITUDE_ACTIONS_METADATA_ID,
    "actions-amplitude",
    "Amplitude (Actions)",
    description="Send events to Amplitude for product analytics.",
    categories=["Analytics"],
    options=[],
    actions=[],
)
