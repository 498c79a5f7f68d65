"""The sensors of the migration: each one a watch (what to observe, which condition decides) and arguments.

All of them can defer (``deferrable=True``, the default) and then hold no worker slot while they wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from segment_rudderstack.lineage.assets import AnnouncesCutover
from segment_rudderstack.rendered import as_list
from segment_rudderstack.sensors.base import ConditionSensor
from segment_rudderstack.ui.links import RudderStackDestinationLink, SegmentWarehouseLink
from segment_rudderstack.waits.watches import (
    AdoptionWatch,
    SegmentLoadWatch,
    SourceDrainedWatch,
    SyncGateWatch,
    UploadWatch,
)

SECONDS_PER_MINUTE = 60.0


def _iso(value: str | datetime) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class _SegmentSyncListSensor(ConditionSensor):
    """Sensors that read Segment's sync list, which allows only a few requests per minute."""

    operator_extra_links = (SegmentWarehouseLink(),)

    def __init__(self, *, sync_list_requests_per_minute: float = 2.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.sync_list_requests_per_minute = float(sync_list_requests_per_minute)
        self.min_poke_interval = SECONDS_PER_MINUTE / self.sync_list_requests_per_minute


class SegmentWarehouseLoadSensor(_SegmentSyncListSensor):
    """Done when a Segment warehouse load that started after ``started_after`` (the cutover point) finished
    successfully for every source in ``source_ids`` and no load is running. Fails on a failed load (and on a
    partial one unless ``allow_partial``). Polls no faster than Segment's sync-list rate limit allows.

    :param warehouse_id: Segment's warehouse id.
    :param started_after: the cutover point (ISO string or datetime; templated).
    :param source_ids: the sources whose load is awaited (default: any).
    :param allow_partial: accept a load that ended Partial.
    :param segment_conn_id: the Segment Public API connection. Also ``sync_list_requests_per_minute`` (default
        2): the poke interval never goes below Segment's rate limit.
    """

    template_fields = (*ConditionSensor.template_fields, "warehouse_id", "started_after", "source_ids")

    def __init__(
        self,
        *,
        warehouse_id: str,
        started_after: str | datetime,
        source_ids: Sequence[str] | None = None,
        allow_partial: bool = False,
        segment_conn_id: str = "segment_default",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.warehouse_id = warehouse_id
        self.started_after = started_after
        self.source_ids = source_ids
        self.allow_partial = allow_partial
        self.segment_conn_id = segment_conn_id

    watch_class = SegmentLoadWatch

    def build_watch(self, context):
        return self.watch_class.final_load(
            segment_conn_id=self.segment_conn_id,
            warehouse_id=self.warehouse_id,
            started_after=self.started_after,
            source_ids=self.source_ids,
            allow_partial=self.allow_partial,
        )


class RudderStackSyncGateSensor(SegmentWarehouseLoadSensor):
    """Holds RudderStack's sync until Segment's final load is done and no Segment load is running (or until
    Segment's warehouse is disabled with no load running). The release operator follows it."""

    watch_class = SyncGateWatch


class SegmentSourceDrainedSensor(_SegmentSyncListSensor):
    """A server-side source has stopped sending to Segment: its newest ``consecutive_loads`` successful loads
    after ``started_after`` loaded no events.

    :param warehouse_id: Segment's warehouse id.
    :param source_id: the server-side source.
    :param started_after: only loads that started after this count.
    :param consecutive_loads: successful empty loads in a row that prove it drained.
    :param segment_conn_id: the Segment Public API connection.
    :param selected_source_ids: the sources this run migrates; another source passes at once.
    """

    template_fields = (
        *ConditionSensor.template_fields,
        "warehouse_id",
        "source_id",
        "started_after",
        "selected_source_ids",
    )

    def __init__(
        self,
        *,
        warehouse_id: str,
        source_id: str,
        started_after: str | datetime,
        consecutive_loads: int = 2,
        segment_conn_id: str = "segment_default",
        selected_source_ids: Sequence[str] | str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.selected_source_ids = selected_source_ids
        self.warehouse_id = warehouse_id
        self.source_id = source_id
        self.started_after = started_after
        self.consecutive_loads = consecutive_loads
        self.segment_conn_id = segment_conn_id

    def execute(self, context) -> Any:
        selected = as_list(self.selected_source_ids)
        if selected is not None and self.source_id not in selected:
            self.log.info(
                "source %s is not migrated in this run (params.sources): nothing to wait for", self.source_id
            )
            return {"reason": "source not selected in this run"}
        return super().execute(context)

    def build_watch(self, context):
        return SourceDrainedWatch(
            segment_conn_id=self.segment_conn_id,
            warehouse_id=self.warehouse_id,
            source_id=self.source_id,
            started_after=_iso(self.started_after),
            consecutive_loads=int(self.consecutive_loads),
        )


class RudderStackUploadSensor(AnnouncesCutover, ConditionSensor):
    """Done when the warehouse shows, for every one of ``source_ids`` (the Segment-type source and the plan's
    RudderStack sources), rows that RudderStack destination ``destination_id`` loaded at or after
    ``loaded_after`` (the release): RudderStack's columns ``context_source_id``, ``context_destination_id``,
    ``uuid_ts`` (load time), ``received_at`` (bounds the scan to ``lookback_seconds``).

    ``task_run_id`` (optional) adds the data plane's ``pending-events`` for that source task run: aborted uploads
    fail the wait, pending ones keep it waiting. It is sent only with a task run id and ignored where the data
    plane does not serve it; it cannot prove anything about event-stream sources (they have no task run id).

    :param warehouse_conn_id: the warehouse connection (PostgreSQL or Snowflake); required.
    :param namespace: the schema RudderStack loads into; required.
    :param destination_id: the RudderStack warehouse destination; required.
    :param loaded_after: the release instant (ISO text or datetime); required.
    :param source_ids: RudderStack sources whose pending events are counted.
    :param task_run_id: narrows ``pending-events`` to one task run.
    :param rudderstack_data_plane_conn_id: the data plane connection.
    :param lookback_seconds: how far back ``received_at`` is scanned for those rows.

    With ``cutover_assets`` (see :class:`~segment_rudderstack.lineage.assets.AnnouncesCutover`), the lane's tables
    get an asset event for downstream DAGs once the first load is verified.
    """

    template_fields = (
        *ConditionSensor.template_fields,
        "source_ids",
        "destination_id",
        "loaded_after",
        "cutover_assets",
    )
    operator_extra_links = (RudderStackDestinationLink(),)

    def __init__(
        self,
        *,
        source_ids: Sequence[str],
        task_run_id: str | None = None,
        rudderstack_data_plane_conn_id: str = "rudderstack_data_plane_default",
        warehouse_conn_id: str | None = None,
        namespace: str | None = None,
        destination_id: str | None = None,
        loaded_after: str | datetime | None = None,
        lookback_seconds: float = 86400,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.source_ids = source_ids
        self.task_run_id = task_run_id
        self.rudderstack_data_plane_conn_id = rudderstack_data_plane_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.namespace = namespace
        self.destination_id = destination_id
        self.loaded_after = loaded_after
        self.lookback_seconds = lookback_seconds

    def build_watch(self, context):
        return UploadWatch(
            rudderstack_data_plane_conn_id=self.rudderstack_data_plane_conn_id,
            source_ids=[s for s in as_list(self.source_ids) or [] if s and s != "None"],
            task_run_id=self.task_run_id,
            warehouse_conn_id=self.warehouse_conn_id,
            namespace=self.namespace,
            destination_id=self.destination_id or None,
            loaded_after=_iso(self.loaded_after) if self.loaded_after else None,
            lookback_seconds=float(self.lookback_seconds),
        )


class ClientAdoptionSensor(ConditionSensor):
    """Done when the share of events still arriving through Segment's webhook (rows whose
    ``context_source_id`` is the RudderStack Segment-type source) over a trailing window is at or below
    ``threshold`` for ``consecutive_checks`` checks in a row. Each check queries only the trailing window.

    :param warehouse_conn_id: the warehouse connection.
    :param namespace: the schema RudderStack writes to.
    :param webhook_source_id: RudderStack's Segment-type source (rows through Segment's webhook carry it).
    :param threshold: the share at or below which a check counts.
    :param window_seconds: the trailing window of each check.
    :param consecutive_checks: checks in a row the share must hold.
    :param min_events: fewer events in a window prove nothing (the streak resets).
    :param library_names: client library names (e.g. the old SDK's) counted as still on Segment.
    :param tables: the tables counted (default: tracks, pages, screens, identifies).
    """

    template_fields = (
        *ConditionSensor.template_fields,
        "webhook_source_id",
        "namespace",
        "threshold",
        "window_seconds",
        "consecutive_checks",
    )

    def __init__(
        self,
        *,
        warehouse_conn_id: str,
        namespace: str,
        webhook_source_id: str,
        threshold: float = 0.01,
        window_seconds: float = 86400,
        consecutive_checks: int = 3,
        min_events: int = 1,
        library_names: Sequence[str] = (),
        tables: Sequence[str] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id
        self.namespace = namespace
        self.webhook_source_id = webhook_source_id
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.consecutive_checks = consecutive_checks
        self.min_events = min_events
        self.library_names = list(library_names)
        self.tables = list(tables) if tables else None

    def adoption_arguments(self) -> dict:
        """The warehouse side of the adoption check, as every adoption watch takes it (rendered values typed)."""
        return dict(
            warehouse_conn_id=self.warehouse_conn_id,
            namespace=self.namespace,
            webhook_source_id=self.webhook_source_id,
            window_seconds=float(self.window_seconds),
            threshold=float(self.threshold),
            consecutive_checks=int(self.consecutive_checks),
            min_events=int(self.min_events),
            library_names=self.library_names,
            tables=self.tables,
        )

    def build_watch(self, context):
        return AdoptionWatch(**self.adoption_arguments())
