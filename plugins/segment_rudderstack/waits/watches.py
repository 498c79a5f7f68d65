"""Watches: what a sensor observes and which pure condition decides on it.

A watch is a frozen dataclass of plain, JSON-friendly fields (so a trigger can serialize it, see
:meth:`Watch.spec`). It observes state through the library's hooks (``observe`` in a worker, ``aobserve``
in the triggerer) and calls one function of :mod:`segment_rudderstack.waits.conditions`. Sensors (``poke``),
the trigger (``run``) and the operators that re-check a condition right before a change all go through
:meth:`Watch.check` / :meth:`Watch.acheck`: one observation, one decision, written once.

``memory`` carries what a condition needs from earlier checks (the adoption streak); it is a list of
JSON-friendly values so a trigger can serialize it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.instants import as_utc
from segment_rudderstack.waits import conditions
from segment_rudderstack.waits.conditions import AdoptionSample, Decision


@dataclass(frozen=True)
class Check:
    """One check of a watch: what was observed, what the condition decided, and the memory to carry on."""

    observation: Any
    decision: Decision
    memory: list[Any]


@dataclass(frozen=True)
class Watch:
    """Base class; subclasses declare their fields (as the sensors name them) and implement observe/decide."""

    #: what :meth:`_cached` built (hooks), kept for this watch's life; not part of its spec or its identity
    _cache: dict[str, Any] = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def spec(self) -> dict[str, Any]:
        """What a trigger needs to rebuild this watch in the triggerer (see :func:`load_watch`)."""
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", "kwargs": kwargs}

    def _cached(self, key: str, build: Any) -> Any:
        """``build()`` once per watch: a trigger (or a sensor's poke loop) keeps its hook, so the connection is
        read once and the hook's session is reused, instead of once per check."""
        cache = self._cache
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def observe(self) -> Any:
        raise NotImplementedError

    async def aobserve(self) -> Any:
        # Default: the synchronous observation in a worker thread, so the triggerer's loop never blocks.
        return await asyncio.to_thread(self.observe)

    def decide(self, observation: Any, memory: list[Any]) -> tuple[Decision, list[Any]]:
        raise NotImplementedError

    def check(self, memory: Sequence[Any] = ()) -> Check:
        """Observe now and decide (errors from the observation propagate; see :meth:`is_transient`)."""
        observation = self.observe()
        decision, kept = self.decide(observation, list(memory))
        return Check(observation, decision, kept)

    async def acheck(self, memory: Sequence[Any] = ()) -> Check:
        """:meth:`check` for the triggerer: the same decision on the asynchronous observation."""
        observation = await self.aobserve()
        decision, kept = self.decide(observation, list(memory))
        return Check(observation, decision, kept)

    def is_transient(self, exc: BaseException) -> bool:
        """An error worth another check later (the hooks already retried 5xx/429/timeouts a few times); the
        rule is :func:`segment_rudderstack.waits.transient.is_transient` (database connection errors and truncated
        2xx bodies too; 401/403/404, missing connections and privileges are permanent)."""
        from segment_rudderstack.waits.transient import is_transient

        return is_transient(exc)


#: where watch classes lived before the library moved into rooms: a trigger deferred before an upgrade stored
#: its watch's class path, and the triggerer of the upgraded deployment must still rebuild it
MOVED_WATCH_MODULES = {
    "segment_rudderstack.watches": "segment_rudderstack.waits.watches",
    "segment_rudderstack.operators.proof": "segment_rudderstack.waits.segment_metrics_watch",
}


def load_watch(spec: dict[str, Any]) -> Watch:
    module_name, _, class_name = spec["class"].rpartition(".")
    module_name = MOVED_WATCH_MODULES.get(module_name, module_name)
    if not module_name.startswith("segment_rudderstack."):
        raise ValueError(f"refusing to load watch class {spec['class']!r} from outside segment_rudderstack")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**spec["kwargs"])


# Segment's sync list allows 2 requests a minute: read one large page per check (the API allows up to 1000),
# so the watched sources are on it even when many sources share the warehouse.
SYNC_REPORTS_PER_CHECK = 500


@dataclass(frozen=True)
class _SegmentSyncsWatch(Watch):
    segment_conn_id: str
    warehouse_id: str

    def _hook(self):
        from segment_rudderstack.hooks.segment import SegmentHook

        return self._cached("hook", lambda: SegmentHook(segment_conn_id=self.segment_conn_id))

    def _syncs(self, hook, source_id: str | None = None):
        return hook.list_warehouse_syncs(self.warehouse_id, source_id=source_id, count=SYNC_REPORTS_PER_CHECK)

    async def _asyncs(self, hook, source_id: str | None = None, since: datetime | None = None):
        """The warehouse's newest sync reports, read once for every trigger of the triggerer that watches this
        warehouse now (:meth:`SegmentHook.ashared_warehouse_syncs`). For one source, that page serves when it
        holds every report that started since ``since``; otherwise the source's own list is read."""
        page = await hook.ashared_warehouse_syncs(self.warehouse_id, count=SYNC_REPORTS_PER_CHECK)
        if source_id is None or page_covers(page, SYNC_REPORTS_PER_CHECK, since):
            return page
        return await hook.alist_warehouse_syncs(
            self.warehouse_id, source_id=source_id, count=SYNC_REPORTS_PER_CHECK
        )


def page_covers(page, count: int, since: datetime | None) -> bool:
    """A warehouse-wide page of ``count`` reports holds every report that started at or after ``since``: it is
    not full (it is the whole list), or its oldest report started before ``since``."""
    if len(page) < count:
        return True
    return since is not None and min(r.start for r in page) < since


@dataclass(frozen=True)
class SegmentLoadWatch(_SegmentSyncsWatch):
    """Segment's load that started after ``started_after`` finished successfully (and none is running).

    Build it (and :class:`SyncGateWatch`, which watches the same load) with :meth:`final_load`."""

    started_after: str
    source_ids: list[str] | None = None
    allow_partial: bool = False

    @classmethod
    def final_load(
        cls,
        *,
        segment_conn_id: str,
        warehouse_id: str,
        started_after: str | datetime,
        source_ids: Sequence[str] | str | None = None,
        allow_partial: bool = False,
    ):
        """The one constructor of the final-load gate, for the sensors and the operators that re-check it:
        templated arguments (ISO strings, rendered lists) are normalised here, once."""
        from segment_rudderstack.rendered import as_list

        return cls(
            segment_conn_id=segment_conn_id,
            warehouse_id=warehouse_id,
            started_after=as_utc(started_after).isoformat(),
            source_ids=as_list(source_ids),
            allow_partial=bool(allow_partial),
        )

    def observe(self):
        return self._syncs(self._hook())

    async def aobserve(self):
        return await self._asyncs(self._hook())

    def decide(self, observation, memory):
        return (
            conditions.segment_load_decision(
                observation,
                started_after=as_utc(self.started_after),
                source_ids=self.source_ids,
                allow_partial=self.allow_partial,
            ),
            memory,
        )


@dataclass(frozen=True)
class GateState:
    """What the sync gate observes: whether Segment's warehouse is enabled, and its sync reports."""

    warehouse_enabled: bool
    reports: list[Any]

    @property
    def last_load_end(self) -> datetime | None:
        """The end of the newest finished Segment load (of any source: the warehouse is shared)."""
        ends = [r.end for r in self.reports if r.end is not None]
        return max(ends) if ends else None


@dataclass(frozen=True)
class SyncGateWatch(SegmentLoadWatch):
    """RudderStack's held sync may be released: Segment's final load is done and no load is running."""

    def observe(self) -> GateState:
        hook = self._hook()
        return GateState(bool(hook.get_warehouse(self.warehouse_id).get("enabled")), self._syncs(hook))

    async def aobserve(self) -> GateState:
        hook = self._hook()
        warehouse = await hook.aget_warehouse(self.warehouse_id)
        return GateState(bool(warehouse.get("enabled")), await self._asyncs(hook))

    def decide(self, observation: GateState, memory):
        return (
            conditions.sync_gate_decision(
                observation.reports,
                warehouse_enabled=observation.warehouse_enabled,
                started_after=as_utc(self.started_after),
                source_ids=self.source_ids,
                allow_partial=self.allow_partial,
            ),
            memory,
        )


@dataclass(frozen=True)
class SourceDrainedWatch(_SegmentSyncsWatch):
    """A server-side source no longer sends to Segment (its newest loads carry no events)."""

    source_id: str
    started_after: str
    consecutive_loads: int = 2

    def observe(self):
        return self._syncs(self._hook(), self.source_id)

    async def aobserve(self):
        return await self._asyncs(self._hook(), self.source_id, since=as_utc(self.started_after))

    def decide(self, observation, memory):
        return (
            conditions.source_drained_decision(
                observation,
                source_id=self.source_id,
                started_after=as_utc(self.started_after),
                consecutive=int(self.consecutive_loads or 2),
            ),
            memory,
        )


@dataclass(frozen=True)
class UploadWatch(Watch):
    """RudderStack's upload after the release, observed in the warehouse: rows destination ``destination_id``
    loaded (``uuid_ts``) at or after ``loaded_after`` for each of ``source_ids`` (``context_source_id``).

    With a ``task_run_id``, the data plane's ``pending-events`` of each source is asked too (an extra signal for
    sources that run tasks, e.g. cloud/rETL sources): where the data plane does not serve it (404/403/405/501)
    it is left out. Without a ``task_run_id`` it is never sent: rudder-server answers 400 "empty source or task
    run id" (``warehouse/api/http.go``)."""

    rudderstack_data_plane_conn_id: str
    source_ids: list[str]
    task_run_id: str | None = None
    warehouse_conn_id: str | None = None
    namespace: str | None = None
    destination_id: str | None = None
    loaded_after: str | None = None
    lookback_seconds: float = 86400

    def _check_arguments(self) -> None:
        # Checked when observing (not when built), so a dry run before the destination exists says so and goes on.
        names = ("warehouse_conn_id", "namespace", "destination_id", "loaded_after")
        missing = [n for n in names if not getattr(self, n) or getattr(self, n) == "None"]
        if missing:
            raise ValueError(
                f"UploadWatch needs {missing}: RudderStack's upload is observed in the warehouse (rows the "
                "destination loaded after the release), so name the warehouse connection, the namespace, the "
                "destination id and the release time"
            )
        if not self.source_ids:
            raise ValueError(
                "UploadWatch needs source_ids: the RudderStack sources connected to the destination"
            )

    def _rows(self) -> dict[str, int]:
        from segment_rudderstack.dialects import dialect_for_conn_id

        self._check_arguments()
        loaded_after = as_utc(self.loaded_after)
        return dialect_for_conn_id(self.warehouse_conn_id).rows_loaded_per_source(
            self.namespace,
            destination_id=self.destination_id,
            source_ids=list(self.source_ids),
            loaded_after=loaded_after,
            received_after=loaded_after - timedelta(seconds=float(self.lookback_seconds or 86400)),
        )

    def _hook(self):
        from segment_rudderstack.hooks.rudderstack import RudderStackDataPlaneHook

        return self._cached(
            "hook",
            lambda: RudderStackDataPlaneHook(
                rudderstack_data_plane_conn_id=self.rudderstack_data_plane_conn_id
            ),
        )

    @staticmethod
    def _sum(answers: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "pending_events": any(a["pending_events"] for a in answers),
            "pending_staging_files": sum(int(a["pending_staging_files"]) for a in answers),
            "pending_uploads": sum(int(a["pending_uploads"]) for a in answers),
            "aborted_events": any(a["aborted_events"] for a in answers),
        }

    def _pending(self) -> dict[str, Any] | None:
        if not self.task_run_id:
            return None
        from segment_rudderstack.hooks.rudderstack import warehouse_api_unavailable

        hook = self._hook()
        try:
            return self._sum([hook.pending_events(s, self.task_run_id) for s in self.source_ids])
        except Exception as error:
            if warehouse_api_unavailable(error):
                return None  # not served here: the warehouse rows decide alone
            raise

    async def _apending(self) -> dict[str, Any] | None:
        if not self.task_run_id:
            return None
        from segment_rudderstack.hooks.rudderstack import warehouse_api_unavailable

        hook = self._hook()
        try:
            return self._sum([await hook.apending_events(s, self.task_run_id) for s in self.source_ids])
        except Exception as error:
            if warehouse_api_unavailable(error):
                return None
            raise

    def observe(self):
        return self._rows(), self._pending()

    async def aobserve(self):
        rows = await asyncio.to_thread(self._rows)
        return rows, await self._apending()

    def decide(self, observation, memory):
        rows, pending = observation
        decision = conditions.upload_decision(
            rows, destination_id=self.destination_id, loaded_after=str(self.loaded_after), pending=pending
        )
        return decision, memory


MAX_ADOPTION_HISTORY = 500


@dataclass(frozen=True)
class AdoptionWatch(Watch):
    """Share of events still arriving through Segment's webhook over a trailing window, sustained."""

    warehouse_conn_id: str
    namespace: str
    webhook_source_id: str
    window_seconds: float
    threshold: float
    consecutive_checks: int = 3
    min_events: int | None = 1
    library_names: list[str] | None = None
    tables: list[str] | None = None

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
        if self.library_names:
            # With library names (e.g. the old SDK's), rows from those libraries count as "still on Segment".
            sample = dataclasses.replace(sample, via_segment=int(sample.via_library or 0))
        return sample

    def decide(self, observation: AdoptionSample, memory):
        keep = max(int(self.consecutive_checks), 1)
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
