"""Watches: what a sensor observes and which pure condition decides on it.

A watch is built from plain keyword arguments (so a trigger can serialize it), observes state through
the library's hooks (``observe`` for a sensor's ``poke``, ``aobserve`` for a trigger) and calls one
function of :mod:`segment_rudderstack.conditions`. Sensor and trigger therefore share the observation
*and* the decision; only the waiting differs.

``memory`` carries what a condition needs from earlier checks (the adoption streak); it is a list of
JSON-friendly values so a trigger can serialize it.
"""

from __future__ import annotations

import asyncio
import importlib
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from segment_rudderstack import conditions
from segment_rudderstack.conditions import AdoptionSample, Decision, as_utc


class Watch:
    """Base class; subclasses set ``fields`` (their keyword arguments) and implement observe/decide."""

    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any):
        unknown = set(kwargs) - set(self.fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown arguments {sorted(unknown)}")
        self.kwargs = kwargs
        for name in self.fields:
            setattr(self, name, kwargs.get(name))

    def spec(self) -> dict[str, Any]:
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", "kwargs": self.kwargs}

    def observe(self) -> Any:
        raise NotImplementedError

    async def aobserve(self) -> Any:
        # Default: the synchronous observation in a worker thread, so the triggerer's loop never blocks.
        return await asyncio.to_thread(self.observe)

    def decide(self, observation: Any, memory: list[Any]) -> tuple[Decision, list[Any]]:
        raise NotImplementedError

    def is_transient(self, exc: BaseException) -> bool:
        """An error worth another check later (the hooks already retried 5xx/429/timeouts a few times); the
        rule is :func:`segment_rudderstack.transient.is_transient` (database connection errors and truncated
        2xx bodies too; 401/403/404, missing connections and privileges are permanent)."""
        from segment_rudderstack.transient import is_transient

        return is_transient(exc)


def load_watch(spec: dict[str, Any]) -> Watch:
    module_name, _, class_name = spec["class"].rpartition(".")
    if not module_name.startswith("segment_rudderstack."):
        raise ValueError(f"refusing to load watch class {spec['class']!r} from outside segment_rudderstack")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**spec["kwargs"])


# Segment's sync list allows 2 requests a minute: read one large page per check (the API allows up to 1000),
# so the watched sources are on it even when many sources share the warehouse.
SYNC_REPORTS_PER_CHECK = 500


class _SegmentSyncsWatch(Watch):
    def _hook(self):
        from segment_rudderstack.hooks.segment import SegmentHook

        return SegmentHook(segment_conn_id=self.segment_conn_id)

    def _syncs(self, hook, source_id: str | None = None):
        return hook.list_warehouse_syncs(self.warehouse_id, source_id=source_id, count=SYNC_REPORTS_PER_CHECK)

    async def _async_syncs(self, hook, source_id: str | None = None):
        return await hook.async_list_warehouse_syncs(
            self.warehouse_id, source_id=source_id, count=SYNC_REPORTS_PER_CHECK
        )


class SegmentLoadWatch(_SegmentSyncsWatch):
    """Segment's load that started after ``started_after`` finished successfully (and none is running)."""

    fields = ("segment_conn_id", "warehouse_id", "started_after", "source_ids", "allow_partial")

    def observe(self):
        return self._syncs(self._hook())

    async def aobserve(self):
        return await self._async_syncs(self._hook())

    def decide(self, observation, memory):
        return (
            conditions.segment_load_decision(
                observation,
                started_after=as_utc(self.started_after),
                source_ids=self.source_ids,
                allow_partial=bool(self.allow_partial),
            ),
            memory,
        )


class SyncGateWatch(_SegmentSyncsWatch):
    """RudderStack's held sync may be released: Segment's final load is done and no load is running."""

    fields = SegmentLoadWatch.fields

    def observe(self):
        hook = self._hook()
        return hook.get_warehouse(self.warehouse_id), self._syncs(hook)

    async def aobserve(self):
        hook = self._hook()
        warehouse = await hook.async_get_warehouse(self.warehouse_id)
        return warehouse, await self._async_syncs(hook)

    def decide(self, observation, memory):
        warehouse, reports = observation
        return (
            conditions.sync_gate_decision(
                reports,
                warehouse_enabled=bool(warehouse.get("enabled")),
                started_after=as_utc(self.started_after),
                source_ids=self.source_ids,
                allow_partial=bool(self.allow_partial),
            ),
            memory,
        )


class SourceDrainedWatch(_SegmentSyncsWatch):
    """A server-side source no longer sends to Segment (its newest loads carry no events)."""

    fields = ("segment_conn_id", "warehouse_id", "source_id", "started_after", "consecutive")

    def observe(self):
        return self._syncs(self._hook(), self.source_id)

    async def aobserve(self):
        return await self._async_syncs(self._hook(), self.source_id)

    def decide(self, observation, memory):
        return (
            conditions.source_drained_decision(
                observation,
                source_id=self.source_id,
                started_after=as_utc(self.started_after),
                consecutive=int(self.consecutive or 2),
            ),
            memory,
        )


class UploadWatch(Watch):
    """RudderStack has uploaded to the warehouse everything pending for the given sources, or (when a
    warehouse is given) the warehouse shows rows the destination loaded after ``loaded_after``."""

    fields = (
        "data_plane_conn_id",
        "source_ids",
        "task_run_id",
        "warehouse_conn_id",
        "namespace",
        "destination_id",
        "loaded_after",
        "lookback_seconds",
    )

    def _loaded_rows(self) -> int | None:
        if not (self.warehouse_conn_id and self.destination_id and self.loaded_after):
            return None
        from segment_rudderstack.dialects import dialect_for_conn_id

        loaded_after = as_utc(self.loaded_after)
        return dialect_for_conn_id(self.warehouse_conn_id).rows_loaded_by_destination(
            self.namespace,
            destination_id=self.destination_id,
            loaded_after=loaded_after,
            received_after=loaded_after - timedelta(seconds=float(self.lookback_seconds or 86400)),
        )

    def _hook(self):
        from segment_rudderstack.hooks.rudderstack import RudderStackDataPlaneHook

        return RudderStackDataPlaneHook(rudderstack_data_plane_conn_id=self.data_plane_conn_id)

    @staticmethod
    def _sum(answers: list[dict[str, Any]]) -> dict[str, int]:
        keys = ("pending_events", "pending_staging_files", "pending_uploads", "aborted_events")
        return {k: sum(int(a.get(k) or 0) for a in answers) for k in keys}

    def observe(self):
        hook = self._hook()
        pending = self._sum([hook.pending_events(s, task_run_id=self.task_run_id) for s in self.source_ids])
        return pending, self._loaded_rows()

    async def aobserve(self):
        hook = self._hook()
        answers = [await hook.async_pending_events(s, task_run_id=self.task_run_id) for s in self.source_ids]
        loaded = await asyncio.to_thread(self._loaded_rows)
        return self._sum(answers), loaded

    def decide(self, observation, memory):
        pending, loaded_rows = observation
        return conditions.upload_decision(pending, loaded_rows), memory


MAX_ADOPTION_HISTORY = 500


class AdoptionWatch(Watch):
    """Share of events still arriving through Segment's webhook over a trailing window, sustained."""

    fields = (
        "warehouse_conn_id",
        "namespace",
        "webhook_source_id",
        "window_seconds",
        "threshold",
        "consecutive",
        "min_events",
        "library_names",
        "tables",
    )

    def observe(self) -> AdoptionSample:
        from segment_rudderstack.dialects import dialect_for_conn_id

        until = datetime.now(UTC)
        since = until - timedelta(seconds=float(self.window_seconds))
        kwargs: dict[str, Any] = {"webhook_source_id": self.webhook_source_id, "since": since, "until": until}
        if self.tables:
            kwargs["tables"] = tuple(self.tables)
        if self.library_names:
            kwargs["library_names"] = list(self.library_names)
        sample = dialect_for_conn_id(self.warehouse_conn_id).adoption_share(self.namespace, **kwargs)
        # With library names (e.g. the old SDK's), rows from those libraries count as "still on Segment".
        via = sample.via_library if self.library_names else sample.via_segment
        return AdoptionSample(at=until, total=int(sample.total), via_segment=int(via or 0))

    def decide(self, observation: AdoptionSample, memory):
        keep = max(int(self.consecutive), 1)
        # Keep a bounded history: the streak needs the last `keep` checks, the report charts the rest.
        history = [AdoptionSample.from_dict(m) for m in memory][-(MAX_ADOPTION_HISTORY - 1) :]
        history.append(observation)
        decision = conditions.adoption_decision(
            history,
            threshold=float(self.threshold),
            consecutive=keep,
            min_events=int(1 if self.min_events is None else self.min_events),
        )
        return decision, [s.to_dict() for s in history]
