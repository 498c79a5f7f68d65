"""RudderStack side of the runbook: the warehouse destination, the Segment-type source, holding and
releasing the warehouse sync."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.dialects.identifiers import same_namespace
from segment_rudderstack.evidence.dry_run_plan import WAIT
from segment_rudderstack.instants import as_utc
from segment_rudderstack.lineage.openlineage import WriterChangeLineage
from segment_rudderstack.operators.base import MigrationOperator
from segment_rudderstack.operators.hold import HoldHonouring
from segment_rudderstack.operators.undo import CONFIG_PREFIX, Undo, not_undone, undoes
from segment_rudderstack.rendered import as_bool, as_list
from segment_rudderstack.ui.links import RudderStackDestinationLink, SegmentWarehouseLink
from segment_rudderstack.vocabulary import ChangeTarget


class _RudderStackOperator(MigrationOperator):
    operator_extra_links = (RudderStackDestinationLink(),)

    def __init__(self, *, rudderstack_conn_id: str = "rudderstack_default", **kwargs: Any):
        super().__init__(**kwargs)
        self.rudderstack_conn_id = rudderstack_conn_id

    def rudderstack(self):
        from segment_rudderstack.hooks.rudderstack import RudderStackHook

        return RudderStackHook(rudderstack_conn_id=self.rudderstack_conn_id)


class EnsureRudderStackDestinationOperator(_RudderStackOperator):
    """Create the RudderStack warehouse destination whose namespace is Segment's schema, or verify an
    existing one. A new destination is created with the whole config RudderStack requires (the warehouse
    connection's credentials and ``sslMode``, the staging storage, merge mode, the users-table settings) and with
    ``manualSync`` on, so nothing loads before Segment's final load; a config RudderStack would refuse stops the
    task before the call, naming each field and where to set it. An existing destination whose namespace differs
    is never changed: the task fails. An existing destination whose ``skipUsersTable`` or
    ``allowUsersContextTraits`` differ from the plan's is changed, each key a recorded change the rollback undoes.

    Returns the destination id (``None`` in a dry run that would create it).

    :param namespace: the schema Segment writes to: the destination's namespace.
    :param destination_type: RudderStack's destination type (``POSTGRES``, ``SNOWFLAKE``).
    :param destination_name: the destination's name (how an existing one is found).
    :param destination_id: an existing destination to verify instead of looking it up by name.
    :param config: further destination config (never the namespace nor credentials).
    :param sync_frequency_minutes: RudderStack's ``syncFrequency`` (30, 60, 180, 360, 720 or 1440).
    :param credentials_conn_id: an Airflow warehouse connection whose host, port, database, user, password and
        ``sslmode`` (Snowflake: account, warehouse, password or key pair) fill the config.
    :param staging: where RudderStack stages events (the plan's ``rudderstack.destination.staging`` as a dict:
        ``{"storage": "rudderstack"}`` or a bucket with its provider and connection).
    :param users_table: the warehouse keeps a ``users`` table (``skipUsersTable`` off); ``False``: skipped.
    :param allow_users_context_traits: ``allowUsersContextTraits`` (identify traits in ``context.traits`` also fill
        the trait columns of identifies/users).
    """

    template_fields = (*MigrationOperator.template_fields, "destination_id", "namespace")

    def __init__(
        self,
        *,
        namespace: str,
        destination_type: str = "POSTGRES",
        destination_name: str = "Warehouse (migrated from Segment)",
        destination_id: str | None = None,
        config: dict[str, Any] | None = None,
        sync_frequency_minutes: int = 30,
        credentials_conn_id: str | None = None,
        staging: Mapping[str, Any] | None = None,
        users_table: bool = True,
        allow_users_context_traits: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.namespace = namespace
        self.destination_type = destination_type
        self.destination_name = destination_name
        self.destination_id = destination_id
        self.config = dict(config or {})
        self.sync_frequency_minutes = sync_frequency_minutes
        self.credentials_conn_id = credentials_conn_id
        self.staging = dict(staging) if staging else None
        self.users_table = users_table
        self.allow_users_context_traits = allow_users_context_traits

    def _find(self, hook) -> dict[str, Any] | None:
        if self.destination_id:
            return hook.get_destination(self.destination_id)
        matches = [
            d
            for d in hook.list_destinations()
            if d.get("name") == self.destination_name
            and str(d.get("type", "")).upper() == self.destination_type
        ]
        if len(matches) > 1:
            raise AirflowFailException(
                f"expected at most one RudderStack destination named {self.destination_name!r} of type "
                f"{self.destination_type}, found {len(matches)} ({[m.get('id') for m in matches]}); "
                "set rudderstack.destination.id in the plan to pick one"
            )
        return matches[0] if matches else None

    def _pin(self, context: Any, hook: Any, existing: dict[str, Any]) -> None:
        """The settings the cutover depends on, on a destination the plan reuses (recorded, undoable)."""
        from segment_rudderstack.connections.rudderstack_destination import pinned_settings

        config = existing.get("config") or {}
        wanted = pinned_settings(
            users_table=self.users_table, allow_users_context_traits=self.allow_users_context_traits
        )
        for key, value in wanted.items():
            self.set_destination_config(context, hook, existing["id"], key, config.get(key), value)

    def new_config(self) -> dict[str, Any]:
        """The config a new destination is created with; refuses (nothing changed) what RudderStack would."""
        from segment_rudderstack.connections.rudderstack_destination import (
            CredentialsError,
            checked_destination_config,
        )

        try:
            config, problems = checked_destination_config(self, self.config)
        except CredentialsError as exc:
            raise AirflowFailException(f"{exc}. Nothing was changed.") from None
        if problems:
            raise AirflowFailException(
                f"RudderStack would refuse the destination {self.destination_name!r}; nothing was changed:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
        return config

    def execute(self, context: Any) -> str | None:
        hook = self.rudderstack()
        existing = self._find(hook)
        if existing is not None:
            found = (existing.get("config") or {}).get("namespace")
            if not same_namespace(found, self.namespace):
                raise AirflowFailException(
                    f"RudderStack destination {existing.get('id')} writes to namespace {found!r}, expected "
                    f"{self.namespace!r} (the schema Segment writes to). Nothing was changed. Point the plan at "
                    "the right destination, or fix the destination's namespace in RudderStack."
                )
            self.log.info("RudderStack destination %s exists with namespace %r", existing.get("id"), found)
            if self.destination_name:
                self.adopt_existing(
                    ChangeTarget.RUDDERSTACK_DESTINATION, self.destination_name, existing.get("id")
                )
            self._pin(context, hook, existing)
            return existing.get("id")
        config = self.new_config()
        created = self.create_missing(
            context,
            target=ChangeTarget.RUDDERSTACK_DESTINATION,
            target_id=self.destination_name,
            make=lambda: hook.create_destination(
                name=self.destination_name, type=self.destination_type, config=config, enabled=True
            ),
        )
        if created is None:
            return None
        self.log.info(
            "created RudderStack destination %s (namespace %r, sync held)", created.get("id"), self.namespace
        )
        return created.get("id")


class EnsureRudderStackSegmentSourceOperator(_RudderStackOperator):
    """Ensure a source of type Segment (a webhook source) exists and that it, and the RudderStack sources the
    new clients send to, are connected to the warehouse destination. Returns the Segment-type source id;
    its webhook URL carries the write key and is never returned or logged.

    :param destination_id: the warehouse destination (from the upstream task; empty only in a dry run).
    :param source_name: the Segment-type source's name (how an existing one is found).
    :param connect_source_ids: RudderStack sources the new clients send to, connected to the destination as
        well.
    """

    template_fields = (*MigrationOperator.template_fields, "destination_id")

    def __init__(
        self,
        *,
        destination_id: str | None,
        source_name: str = "Segment (old app versions)",
        connect_source_ids: Sequence[str] = (),
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.destination_id = destination_id
        self.source_name = source_name
        self.connect_source_ids = list(connect_source_ids)

    def execute(self, context: Any) -> str | None:
        hook = self.rudderstack()
        sources = hook.list_sources()
        matches = [
            s
            for s in sources
            if s.get("name") == self.source_name and str(s.get("type", "")).lower() == "segment"
        ]
        if len(matches) > 1:
            raise AirflowFailException(
                f"expected one RudderStack source of type Segment named {self.source_name!r}, found {len(matches)}"
            )
        known = {s.get("id") for s in sources}
        missing = [s for s in self.connect_source_ids if s not in known]
        if missing:
            raise AirflowFailException(
                f"RudderStack sources {missing} (plan: sources[].rudderstack_source_id) do not exist in the "
                "workspace; create them or fix the plan"
            )
        source = matches[0] if matches else None
        if source is not None:
            self.adopt_existing(ChangeTarget.RUDDERSTACK_SOURCE, self.source_name, source.get("id"))
        else:
            source = self.create_missing(
                context,
                target=ChangeTarget.RUDDERSTACK_SOURCE,
                target_id=self.source_name,
                make=lambda: hook.create_source(name=self.source_name, type="Segment"),
            )
        source_id = source.get("id") if source else None
        if not self.require_upstream(self.destination_id, "destination_id"):
            self.dry_run_note(context, "no destination yet: the connections would be made once it is created")
            return source_id
        connected = {
            (c.get("sourceId"), c.get("destinationId")): c
            for c in hook.list_connections()
            if c.get("destinationId") == self.destination_id
        }
        for sid in [source_id, *self.connect_source_ids]:
            if sid is None:
                continue
            existing = connected.get((sid, self.destination_id))
            if existing is not None and existing.get("enabled") is False:
                raise AirflowFailException(
                    f"RudderStack connection {sid} -> {self.destination_id} exists but is disabled; expected it "
                    "enabled. Someone switched it off on purpose? Enable it in RudderStack (or remove the source "
                    "from the plan) and re-run this task."
                )
            before = bool(existing and existing.get("enabled", True))
            self.apply_change(
                context,
                target=ChangeTarget.RUDDERSTACK_CONNECTION,
                target_id=f"{sid}->{self.destination_id}",
                field="enabled",
                before=before if existing else None,
                after=True,
                apply=lambda sid=sid: hook.create_connection(
                    source_id=sid, destination_id=self.destination_id
                ),
            )
        return source_id


#: the release's outage budget by default: it follows the point of no return, so it outlasts real outages
DEFAULT_RELEASE_RETRY_MINUTES = 45.0


def sync_start_at(last_segment_load_end: datetime | None, margin: timedelta, now: datetime) -> str:
    """``syncStartAt`` ("HH:MM" UTC) for RudderStack: after Segment's last load finished plus a margin."""
    base = max(last_segment_load_end or now, now)
    start = base + margin
    minute = start.minute + (1 if start.second or start.microsecond else 0)
    start = start.replace(second=0, microsecond=0) + timedelta(minutes=minute - start.minute)
    return start.astimezone(UTC).strftime("%H:%M")


class _MergeModeMixin:
    """The overlap runs in merge mode (:mod:`segment_rudderstack.safety.merge_mode`): ``preferAppend`` off, or a refusal."""

    allow_merge_mode_change: bool | str

    def ensure_merge_mode(self, context: Any, hook: Any, destination_id: str, config: dict[str, Any]) -> bool:
        """Switch ``preferAppend`` off (recorded) when it is on and the plan allows it; refuse otherwise.
        Returns whether the destination loads in merge mode now (or would, in a dry run)."""
        from segment_rudderstack.safety.merge_mode import PREFER_APPEND, merge_mode_findings

        findings = merge_mode_findings(
            destination_id, config, allow_change=as_bool(self.allow_merge_mode_change)
        )
        for warning in findings.warnings:
            self.log.warning("%s", warning)
        if findings.problems:
            raise AirflowFailException(" ".join(findings.problems) + ". Nothing was changed by this task.")
        if findings.prefer_append:
            self.set_destination_config(
                context, hook, destination_id, PREFER_APPEND, config.get(PREFER_APPEND), False
            )
        return True


class HoldRudderStackSyncOperator(_MergeModeMixin, _RudderStackOperator):
    """Hold RudderStack's warehouse sync: ``manualSync`` on (automatic uploads stop), and make its loads
    deduplicate: ``preferAppend`` off (merge mode) before anything loads, or refuse when the plan forbids it.

    :param allow_merge_mode_change: whether this plan may switch ``preferAppend`` off (plan field
        ``rudderstack.destination.allow_merge_mode_change``); when not, a destination in append mode fails the
        task before any change.
    :param destination_id: the warehouse destination (from the upstream task; empty only in a dry run).
    """

    template_fields = (*MigrationOperator.template_fields, "destination_id")

    def __init__(
        self, *, destination_id: str | None, allow_merge_mode_change: bool | str = True, **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.destination_id = destination_id
        self.allow_merge_mode_change = allow_merge_mode_change

    def execute(self, context: Any) -> bool:
        if not self.require_upstream(self.destination_id, "destination_id"):
            self.dry_run_note(
                context, "the destination does not exist yet: it would be created with its sync held"
            )
            return True
        hook = self.rudderstack()
        destination = hook.get_destination(self.destination_id)
        config = destination.get("config") or {}
        from segment_rudderstack.safety.merge_mode import merge_mode_findings

        if merge_mode_findings(
            self.destination_id, config, allow_change=as_bool(self.allow_merge_mode_change)
        ).problems:
            self.ensure_merge_mode(context, hook, self.destination_id, config)  # refuses before holding
        before = bool(config.get("manualSync", False))
        self.set_destination_config(context, hook, self.destination_id, "manualSync", before, True)
        self.ensure_merge_mode(context, hook, self.destination_id, config)
        return True


class RestoreAppendModeOperator(_RudderStackOperator):
    """After the overlap was loaded and checked for duplicates, give the destination back the append mode
    (``preferAppend`` on) this migration switched off. Does nothing when the migration did not switch it
    (plan option ``rudderstack.destination.restore_append_after_duplicate_check``).

    :param destination_id: the warehouse destination (from the upstream task; empty only in a dry run).
    """

    template_fields = (*MigrationOperator.template_fields, "destination_id")

    def __init__(self, *, destination_id: str | None, **kwargs: Any):
        super().__init__(**kwargs)
        self.destination_id = destination_id

    def execute(self, context: Any) -> dict[str, Any]:
        from segment_rudderstack.safety.changelog import DONE
        from segment_rudderstack.safety.merge_mode import PREFER_APPEND

        if not self.require_upstream(self.destination_id, "destination_id"):
            return {"restored": False}
        switched = [
            c
            for c in self.change_log.entries()
            if c.target == ChangeTarget.RUDDERSTACK_DESTINATION
            and c.target_id == self.destination_id
            and c.field == f"config.{PREFER_APPEND}"
            and c.status == DONE
            and c.after is False
        ]
        if not switched:
            self.log.info(
                "this migration did not switch preferAppend off on %s: nothing to restore",
                self.destination_id,
            )
            return {"restored": False}
        original = switched[0].before
        hook = self.rudderstack()
        current = (hook.get_destination(self.destination_id).get("config") or {}).get(PREFER_APPEND)
        changed = self.set_destination_config(
            context, hook, self.destination_id, PREFER_APPEND, current, original
        )
        return {"restored": changed, PREFER_APPEND: original}


UPLOAD_TRIGGER = ChangeTarget.RUDDERSTACK_UPLOAD_TRIGGER


def trigger_target(source_id: str, destination_id: str) -> str:
    return f"{source_id}->{destination_id}"


class ReleaseRudderStackSyncOperator(
    HoldHonouring, WriterChangeLineage, _MergeModeMixin, _RudderStackOperator
):
    """Release RudderStack's sync once Segment's final load is over: ``syncStartAt`` = Segment's last load end
    plus a margin, ``manualSync`` off, then ``trigger-upload`` for every source the plan connects to the
    destination (``{source_id, destination_id}``, as rudder-server requires). Refuses while a Segment load is
    running.

    It cannot half-happen: each trigger is recorded in the change log, and a re-run (or retry) triggers every
    source not triggered since the latest release, even when ``manualSync`` was already switched off. Where the
    data plane does not serve the warehouse endpoints (404/403/405/501: internal endpoints disabled, a hosted
    data plane), the release still succeeds: RudderStack uploads on its own schedule, and the task logs when.

    :param trigger_source_ids: RudderStack source ids to trigger (the Segment-type source and the plan's
        RudderStack sources); ``None``/empty entries are skipped (e.g. a dry run before the source exists).
    :param destination_id: the warehouse destination (from the upstream task; empty only in a dry run).
    :param segment_conn_id: the Segment Public API connection (the gate is re-checked).
    :param warehouse_id: Segment's warehouse id.
    :param started_after: the cutover point: Segment's final load is one that started after it.
    :param source_ids: the Segment sources whose final load is awaited.
    :param allow_partial: accept a final load that ended Partial.
    :param margin_minutes: ``syncStartAt`` is Segment's last load end plus this margin.
    :param rudderstack_data_plane_conn_id: the data plane connection (upload trigger).
    :param trigger_upload: trigger an upload right after the release.
    :param retry_budget_minutes: how long this step waits out an outage (the plan's ``waits.release_retry_minutes``;
        it follows the point of no return, so an outage must not end the run; the outage's warning says where the
        world stands and what a person could do).
    :param allow_merge_mode_change: whether ``preferAppend`` may be switched off before the release (merge mode
        deduplicates the overlap).
    """

    operator_extra_links = (RudderStackDestinationLink(), SegmentWarehouseLink())

    template_fields = (
        *MigrationOperator.template_fields,
        "destination_id",
        "started_after",
        "source_ids",
        "trigger_source_ids",
        "writer_change",
    )

    def __init__(
        self,
        *,
        destination_id: str | None,
        segment_conn_id: str = "segment_default",
        warehouse_id: str,
        started_after: str | datetime,
        source_ids: Sequence[str] | None = None,
        trigger_source_ids: Sequence[str] | str | None = None,
        allow_partial: bool = False,
        margin_minutes: float = 30,
        rudderstack_data_plane_conn_id: str = "rudderstack_data_plane_default",
        trigger_upload: bool = True,
        allow_merge_mode_change: bool | str = True,
        retry_budget_minutes: float = DEFAULT_RELEASE_RETRY_MINUTES,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.allow_merge_mode_change = allow_merge_mode_change
        # After the point of no return (Segment's warehouse is off) an outage must not end the run: the release
        # waits out an outage for ``retry_budget_minutes`` (over the plan's shorter budget of the other steps).
        self.retry_budget_minutes = float(retry_budget_minutes)
        self.transient_budget_seconds = self.retry_budget_minutes * 60
        self.destination_id = destination_id
        self.segment_conn_id = segment_conn_id
        self.warehouse_id = warehouse_id
        self.started_after = started_after
        self.source_ids = source_ids
        self.trigger_source_ids = trigger_source_ids
        self.allow_partial = allow_partial
        self.margin_minutes = margin_minutes
        self.rudderstack_data_plane_conn_id = rudderstack_data_plane_conn_id
        self.trigger_upload = trigger_upload

    def _sources_to_trigger(self) -> list[str]:
        wanted: list[str] = []
        for source_id in as_list(self.trigger_source_ids) or []:
            if source_id and source_id != "None" and source_id not in wanted:
                wanted.append(source_id)
        return wanted

    def _triggered_since(self, sources: list[str], released_at: datetime) -> set[str]:
        """Sources whose trigger into this destination is recorded (done) at or after the release."""
        from segment_rudderstack.safety.changelog import DONE

        done: set[str] = set()
        for source_id in sources:
            change = self.change_log.last(
                UPLOAD_TRIGGER, trigger_target(source_id, self.destination_id), "triggered"
            )
            if (
                change is not None
                and change.status == DONE
                and change.after is True
                and as_utc(change.at) >= released_at
            ):
                done.add(source_id)
        return done

    def _note_trigger_unavailable(
        self, error: Any, source_id: str, config: dict[str, Any], now: datetime, result: dict[str, Any]
    ) -> None:
        """A refused trigger: re-raise an outage (the step waits it out), fail on a permanent one; where the data plane does not
        serve the trigger endpoint, note RudderStack's own upload schedule in ``result``."""
        from segment_rudderstack.hooks.rudderstack import warehouse_api_unavailable
        from segment_rudderstack.waits.rudderstack_schedule import upload_schedule
        from segment_rudderstack.waits.transient import is_transient

        if not warehouse_api_unavailable(error):
            if is_transient(error):  # an outage (also a 502 to the POST): waited out, then tried again
                raise error
            raise AirflowFailException(
                f"RudderStack refused to trigger an upload of source {source_id} into destination "
                f"{self.destination_id}: {error}. Expected the source to be connected (enabled) to that "
                "warehouse destination; fix the connection or the plan's source ids and re-run this task "
                "(the sync is already released, so the upload also runs on RudderStack's schedule)."
            ) from error
        schedule = upload_schedule(config, now)
        self.log.warning(
            "the RudderStack data plane does not serve the warehouse trigger endpoint (%s); the sync is "
            "released and RudderStack uploads on its own schedule: %s. To trigger uploads, enable the "
            "internal endpoints or set warehouse_path_prefix on connection %r.",
            error.message,
            schedule.explanation,
            self.rudderstack_data_plane_conn_id,
        )
        result.update(
            trigger_unavailable=f"HTTP {error.status}: {error.message}",
            next_upload_slot=schedule.next_slot.isoformat() if schedule.next_slot else None,
            latest_upload_slot=schedule.latest_slot.isoformat() if schedule.latest_slot else None,
            schedule=schedule.explanation,
        )

    def _trigger(
        self, context: Any, sources: list[str], released_at: datetime, config: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        from segment_rudderstack.hooks.errors import ApiError
        from segment_rudderstack.hooks.rudderstack import RudderStackDataPlaneHook

        already = self._triggered_since(sources, released_at) if not self.is_dry_run else set()
        todo = [s for s in sources if s not in already]
        if already:
            self.log.info(
                "already triggered after the release at %s for sources %s",
                released_at.isoformat(),
                sorted(already),
            )
        result: dict[str, Any] = {"triggered_sources": sorted(already), "upload_triggered": bool(already)}
        if not todo:
            return result
        if self.is_dry_run:
            self.dry_run_note(
                context, f"trigger uploads of sources {todo} into destination {self.destination_id}"
            )
            return {**result, "would_trigger": todo}
        data_plane = RudderStackDataPlaneHook(
            rudderstack_data_plane_conn_id=self.rudderstack_data_plane_conn_id
        )
        for source_id in todo:
            try:
                self.apply_change(
                    context,
                    target=UPLOAD_TRIGGER,
                    target_id=trigger_target(source_id, self.destination_id),
                    field="triggered",
                    before=False,
                    after=True,
                    apply=lambda s=source_id: data_plane.trigger_upload(s, self.destination_id),
                )
            except ApiError as error:
                self._note_trigger_unavailable(error, source_id, config, now, result)
                return result
            result["triggered_sources"] = sorted({*result["triggered_sources"], source_id})
            result["upload_triggered"] = True
            self.log.info(
                "triggered an upload of source %s into destination %s", source_id, self.destination_id
            )
        return result

    def execute(self, context: Any) -> dict[str, Any]:
        from segment_rudderstack.waits.transient import describe, is_transient

        self.wait_while_held(context)  # the plan's hold (safety/hold.py): deferred until it is released
        try:
            return self._release(context)
        except Exception as exc:
            if not is_transient(
                exc
            ):  # an outage is waited out, its warning says the same (outage_world_state)
                self.log.error(
                    "release of RudderStack's sync failed: %s. %s",
                    describe(exc),
                    self.outage_world_state(context),
                )
            raise

    def outage_world_state(self, context: Any) -> str:
        """While the release waits (an outage) or after it failed: where the world stands, what a person can do."""
        switched_off = self.change_log.last(ChangeTarget.SEGMENT_WAREHOUSE, self.warehouse_id, "enabled")
        segment_state = (
            f"OFF since {switched_off.at} (switched off by this plan)"
            if switched_off is not None and switched_off.after is False
            else "not switched off by this plan"
        )
        return (
            f"World now: Segment's warehouse {self.warehouse_id} is {segment_state}; RudderStack destination "
            f"{self.destination_id} still holds its sync (manualSync on), so NOTHING loads into the warehouse until "
            "this step succeeds. Events are not lost: old clients' events reach RudderStack through Segment's "
            "webhook and new clients send to RudderStack directly; its data plane keeps them staged until an "
            "upload. What you can do: check RudderStack's control plane (status page, token, network from the "
            f"workers); or release by hand in RudderStack (destination {self.destination_id}: turn manual sync "
            "off), then mark this task success; or run the rollback DAG (re-enables Segment's warehouse; Segment "
            "loads what it still has)."
        )

    def _final_load_watch(self) -> Any:
        """The gate sensor's own watch: Segment's final load finished and no Segment load running."""
        from segment_rudderstack.waits.watches import SyncGateWatch

        return SyncGateWatch.final_load(
            segment_conn_id=self.segment_conn_id,
            warehouse_id=self.warehouse_id,
            started_after=self.started_after,
            source_ids=self.source_ids,
            allow_partial=self.allow_partial,
        )

    def _released_at(self, changed: bool, now: datetime) -> datetime:
        """When the sync was released: ``now``, or the recorded earlier release when nothing changed."""
        if changed:
            return now
        # Released earlier: that instant counts (sensors downstream wait for loads after it; triggers
        # recorded after it are not repeated).
        earlier = self.change_log.last(
            ChangeTarget.RUDDERSTACK_DESTINATION, self.destination_id, "config.manualSync"
        )
        if earlier is not None and earlier.after is False:
            return as_utc(earlier.at)
        return now

    def _release(self, context: Any) -> dict[str, Any]:
        if not self.require_upstream(self.destination_id, "destination_id"):
            self.dry_run_note(
                context, "no destination yet: its sync would be released after Segment's final load"
            )
            return {"released": False}
        # The gate sensor's own watch and decision, checked again right before the change.
        check = self._final_load_watch().check()
        gate = check.decision
        if not gate.done and self.is_dry_run:
            self.dry_run_note(
                context, f"release RudderStack's sync once this holds: {gate.reason}", kind=WAIT
            )
            return {"released": False, "dry_run": True, "gate": gate.reason}
        if not gate.done:
            raise AirflowFailException(
                f"refusing to release RudderStack's sync: {gate.reason}. Expected Segment's final load to be "
                "finished and no Segment load running; re-run this task once that holds."
            )
        resources = [self.segment_warehouse_resource(self.segment_conn_id, self.warehouse_id)]
        self.exclusive_resources(context, resources)  # the switch-off took it; renewed (or taken) here
        now = datetime.now(UTC)
        start_at = sync_start_at(
            check.observation.last_load_end, timedelta(minutes=float(self.margin_minutes)), now
        )
        hook = self.rudderstack()
        destination = hook.get_destination(self.destination_id)
        config = dict(destination.get("config") or {})
        # The overlap is loaded by the first uploads after the release: they must deduplicate (checked again
        # here, in case preferAppend was switched back on since the hold).
        self.ensure_merge_mode(context, hook, self.destination_id, config)
        held = bool(config.get("manualSync", False))
        if held:
            self.set_destination_config(
                context, hook, self.destination_id, "syncStartAt", config.get("syncStartAt"), start_at
            )
            config["syncStartAt"] = start_at
        changed = self.set_destination_config(context, hook, self.destination_id, "manualSync", held, False)
        config["manualSync"] = False
        released_at = self._released_at(changed, now)
        outcome: dict[str, Any] = {"triggered_sources": [], "upload_triggered": False}
        sources = self._sources_to_trigger()
        if self.trigger_upload and sources:
            outcome = self._trigger(context, sources, released_at, config, now)
        elif self.trigger_upload:
            self.log.warning("no RudderStack source ids to trigger; RudderStack uploads on its own schedule")
        self.exclusive_resources(context, resources, release=True)  # this plan's irreversible steps are over
        return {
            "released": changed or not held,
            "sync_start_at": start_at,
            "gate": gate.reason,
            "released_at": released_at.isoformat(),
            # RudderStack's own next slot (an ETA when no upload was triggered; evidence/eta.py)
            "next_upload_slot": _next_slot(config, now),
            **outcome,
        }


# ------------------------------------------------------------------------------------------ undo (rollback)
@undoes(ChangeTarget.RUDDERSTACK_DESTINATION, CONFIG_PREFIX)
def undo_config_change(undo: Undo, context: Any, target_id: str, field: str, change: Any = None):
    """Any config key without its own step: hold the sync (RudderStack loads nothing until a person decides)."""
    config = undo.rudderstack.get_destination(target_id).get("config") or {}
    before = bool(config.get("manualSync", False))
    if undo.rollback.set_destination_config(context, undo.rudderstack, target_id, "manualSync", before, True):
        return f"held RudderStack sync on destination {target_id}"
    return None


@undoes(ChangeTarget.RUDDERSTACK_DESTINATION, "exists")
def undo_destination_created(undo: Undo, context: Any, target_id: str, field: str, change: Any):
    matches = [
        d
        for d in undo.rudderstack.list_destinations()
        if d.get("id") == change.object_id or d.get("name") == target_id
    ]
    undo.rollback.settle_by_rollback(change, matches[0].get("id") if matches else None)
    return undo_config_change(undo, context, matches[0]["id"], "config.manualSync") if matches else None


@undoes(ChangeTarget.RUDDERSTACK_DESTINATION, "config.preferAppend")
def undo_append_mode_switch(undo: Undo, context: Any, target_id: str, field: str, change: Any):
    # This plan switched preferAppend off for the overlap (merge mode): give back what it was. A latest
    # change that already restored it (restore_append_after_duplicate_check) leaves nothing to undo.
    done = [text for text in [undo_config_change(undo, context, target_id, "config.manualSync")] if text]
    if change is None or change.after is not False:
        return done
    current = (undo.rudderstack.get_destination(target_id).get("config") or {}).get("preferAppend")
    if undo.rollback.set_destination_config(
        context, undo.rudderstack, target_id, "preferAppend", current, change.before
    ):
        done.append(f"restored preferAppend={change.before!r} on RudderStack destination {target_id}")
    return done


@undoes(ChangeTarget.RUDDERSTACK_DESTINATION, "config.skipUsersTable")
@undoes(ChangeTarget.RUDDERSTACK_DESTINATION, "config.allowUsersContextTraits")
def undo_users_setting(undo: Undo, context: Any, target_id: str, field: str, change: Any):
    # The setup pinned skipUsersTable / allowUsersContextTraits on a destination the plan reuses: hold its sync,
    # then give back the value it had.
    done = [text for text in [undo_config_change(undo, context, target_id, "config.manualSync")] if text]
    if change is None or change.after == change.before:
        return done
    key = field.removeprefix("config.")
    # A key the destination did not have reads as false in rudder-server (options.go setOption): false gives
    # that behaviour back (a JSON null is not a boolean RudderStack's schema accepts).
    original = False if change.before is None else change.before
    current = (undo.rudderstack.get_destination(target_id).get("config") or {}).get(key)
    if undo.rollback.set_destination_config(context, undo.rudderstack, target_id, key, current, original):
        done.append(f"restored {key}={original!r} on RudderStack destination {target_id}")
    return done


not_undone(
    ChangeTarget.RUDDERSTACK_SOURCE,
    "the Segment-type source stays: it receives nothing once Segment's webhooks are switched off, and a re-run "
    "reuses it",
)
not_undone(
    ChangeTarget.RUDDERSTACK_CONNECTION,
    "the connection stays: the destination's sync is held, so nothing loads through it until a person decides",
)
not_undone(
    ChangeTarget.RUDDERSTACK_UPLOAD_TRIGGER,
    "an upload cannot be taken back: recorded so a retried release knows which sources it already triggered",
)


def _next_slot(config: dict[str, Any], now: datetime) -> str | None:
    from segment_rudderstack.waits.rudderstack_schedule import upload_schedule

    slot = upload_schedule(config, now).next_slot
    return slot.isoformat() if slot else None
