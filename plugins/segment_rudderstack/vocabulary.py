"""Names the whole library shares, each written once: Segment's event tables, the id of Segment's Webhooks
destination type, and what a change is made to.

Nothing here does I/O or imports anything heavy: DAG files, hooks, operators and conditions all import it.
"""

from __future__ import annotations

import enum

#: The tables Segment (and RudderStack, writing the same schema) fill with one row per call, one table per
#: call type of the Segment Spec. Track calls also get one table per event name (not listed: they vary).
EVENT_TABLES: tuple[str, ...] = ("tracks", "pages", "screens", "identifies", "groups", "aliases")

#: The call types client apps send all the time, read by the adoption share and the duplicate count by default
#: (group and alias calls are rare: a window of them proves nothing about adoption).
CLIENT_EVENT_TABLES: tuple[str, ...] = EVENT_TABLES[:4]

#: Segment's catalog id of the classic Webhooks destination (``metadataId`` when creating one; ``metadata.id``
#: of a destination). Source: Segment Public API catalog, destination "Webhooks".
WEBHOOKS_METADATA_ID = "54521fdc25e721e32a72ef04"

#: Segment's catalog id of Webhooks (Actions): the destination's settings hold only ``sharedSecret``; URL,
#: method and payload live in its mappings (destination subscriptions). Source: segmentio/segment-docs
#: ``src/_data/catalog/destinations.yml`` (classic Webhooks is "maintenance" and "private" there:
#: ``src/connections/destinations/catalog/webhooks/index.md``; new workspaces may not be able to create it).
WEBHOOKS_ACTIONS_METADATA_ID = "614a3c7d791c91c41bae7599"

#: The "Send" action (slug ``send``) of Webhooks (Actions), same catalog entry: fields url, method, batch_size,
#: headers, data, enable_batching.
WEBHOOKS_ACTIONS_SEND_ACTION_ID = "nFPnRozhz1mh4Gbx4MLvT5"

#: The name of the Webhooks destination the migration creates on each client source (what it forwards to
#: RudderStack); every other destination of a migrated source stays on Segment.
MIGRATION_WEBHOOK_NAME = "RudderStack (migration)"

#: ``segment.webhook_kind`` of a plan: which Segment destination forwards events to RudderStack.
WEBHOOK_KINDS: tuple[str, ...] = ("actions", "classic")

#: An FQL trigger (segment-docs ``src/api/public-api/fql.md``) that selects every Segment call type.
ALL_EVENT_TYPES_TRIGGER = " or ".join(
    f'type = "{kind}"' for kind in ("track", "identify", "page", "screen", "group", "alias")
)


def send_mapping_settings(url: str) -> dict:
    """Settings of the "Send" mapping that forwards each event unchanged to ``url``: one POST per event
    (batching off: RudderStack's Segment-type source expects one event per request), the whole event as body."""
    return {"url": url, "method": "POST", "headers": {}, "data": {"@path": "$."}, "enable_batching": False}


class ChangeTarget(enum.StrEnum):
    """What an outside change is made to: the ``target`` of every change-log entry.

    The operators record changes under these names and the rollback dispatches on them, so a new kind of
    change is one new member here, one operator that records it and, beside it, its undo step (or why it is
    not undone) registered in ``operators/undo.py``.
    """

    SEGMENT_WAREHOUSE = "segment.warehouse"  # field "enabled"
    SEGMENT_WAREHOUSE_SOURCE = "segment.warehouse.source"  # field "connected"; id "<warehouse>:<source>"
    SEGMENT_DESTINATION = "segment.destination"  # fields "exists", "enabled"
    # a Webhooks (Actions) mapping: fields "exists", "enabled"; id "<destination>/<mapping>"
    SEGMENT_DESTINATION_SUBSCRIPTION = "segment.destination.subscription"
    RUDDERSTACK_DESTINATION = "rudderstack.destination"  # fields "exists", "config.<key>"
    RUDDERSTACK_SOURCE = "rudderstack.source"  # field "exists"
    RUDDERSTACK_CONNECTION = "rudderstack.connection"  # field "enabled"; id "<source>-><destination>"
    # field "triggered"; id "<source>-><destination>". Not undone (an upload cannot be taken back): recorded so a
    # retried release knows which sources it already triggered after the release.
    RUDDERSTACK_UPLOAD_TRIGGER = "rudderstack.upload_trigger"
    # field "exists"; id "<warehouse conn id>|<schema>|<table>": the received_at index (operators/indexes.py)
    WAREHOUSE_INDEX = "warehouse.index"
    # the shape check's shadow load (operators/shape.py): field "exists", id the shadow destination's name;
    # undone by deleting it (with its connections)
    RUDDERSTACK_SHADOW_DESTINATION = "rudderstack.shadow_destination"
    # field "exists"; id "<warehouse conn id>|<schema>": the shadow load's scratch schema, dropped by the undo
    WAREHOUSE_SCRATCH_SCHEMA = "warehouse.scratch_schema"
    WAREHOUSE_ROWS = (
        "warehouse.rows"  # field "duplicates_removed" (not undone: removed copies were duplicates)
    )
    MIGRATION = "migration"  # field "status" of a plan's migration (complete, partial, rolled back)
