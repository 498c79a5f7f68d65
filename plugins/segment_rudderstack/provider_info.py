"""Provider metadata (entry point ``apache_airflow_provider``, see plugins/pyproject.toml): Airflow's
ProvidersManager reads it to offer the Segment, RudderStack and RudderStack data plane connection types in
the UI (labels, placeholders, hidden fields, the Test button) without importing the hooks first."""

from __future__ import annotations

from typing import Any

from segment_rudderstack import __version__

PACKAGE_NAME = "airflow-provider-segment-rudderstack"

_EXTRA_PLACEHOLDER = '{"max_attempts": 5, "backoff_initial": 1, "max_retry_wait": 120, "timeout": 30}'


def _api_behaviour(host: str, token_label: str, extra: str = _EXTRA_PLACEHOLDER) -> dict[str, Any]:
    return {
        "hidden-fields": ["schema", "port", "login"],
        "relabeling": {"host": "API base URL", "password": token_label},
        "placeholders": {
            "host": host,
            "password": "paste the token (stored encrypted, masked in logs)",
            "extra": extra,
        },
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE_NAME,
        "name": "Segment to RudderStack migration",
        "description": "Hooks, operators, sensors and a deferrable trigger that move warehouse destinations "
        "from Segment to RudderStack.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Segment",
                "external-doc-url": "https://docs.segmentapis.com/",
                "tags": ["service"],
            },
            {
                "integration-name": "RudderStack",
                "external-doc-url": "https://www.rudderstack.com/docs/api/",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {"integration-name": "Segment", "python-modules": ["segment_rudderstack.hooks.segment"]},
            {"integration-name": "RudderStack", "python-modules": ["segment_rudderstack.hooks.rudderstack"]},
        ],
        "connection-types": [
            {
                "connection-type": "segment",
                "hook-class-name": "segment_rudderstack.hooks.segment.SegmentHook",
                "hook-name": "Segment Public API",
                "ui-field-behaviour": _api_behaviour(
                    "https://api.segmentapis.com (EU: https://eu1.api.segmentapis.com)",
                    "Public API token",
                    '{"workspace_slug": "my-workspace", "max_attempts": 5, "timeout": 30}',
                ),
            },
            {
                "connection-type": "rudderstack",
                "hook-class-name": "segment_rudderstack.hooks.rudderstack.RudderStackHook",
                "hook-name": "RudderStack control plane",
                "ui-field-behaviour": _api_behaviour("https://api.rudderstack.com", "Service access token"),
            },
            {
                "connection-type": "rudderstack_data_plane",
                "hook-class-name": "segment_rudderstack.hooks.rudderstack.RudderStackDataPlaneHook",
                "hook-name": "RudderStack data plane",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Data plane URL",
                        "login": "User (optional)",
                        "password": "Password / write key",
                    },
                    "placeholders": {
                        "host": "https://yourdataplane.dataplane.rudderstack.com",
                        "extra": '{"warehouse_path_prefix": "/v1/warehouse"}',
                    },
                },
            },
        ],
        "extra-links": [
            "segment_rudderstack.ui.links.SegmentWarehouseLink",
            "segment_rudderstack.ui.links.SegmentDestinationsLink",
            "segment_rudderstack.ui.links.RudderStackDestinationLink",
        ],
    }
