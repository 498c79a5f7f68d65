"""Segment side of the runbook: the Webhooks destination that forwards events to RudderStack, and switching
Segment's warehouse and webhook off at the right moments."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.evidence.dry_run_plan import WAIT
from segment_rudderstack.hooks.segment_webhooks import (
    WebhookRoute,
    is_connected,
    is_webhook_to,
    subscription_target_id,
)
from segment_rudderstack.instants import as_utc
from segment_rudderstack.lineage.openlineage import WriterChangeLineage
from segment_rudderstack.operators.base import MigrationOperator
from segment_rudderstack.operators.hold import HoldHonouring
from segment_rudderstack.operators.undo import Undo, undoes
from segment_rudderstack.rendered import as_list
from segment_rudderstack.ui.links import SegmentDestinationsLink, SegmentWarehouseLink
from segment_rudderstack.vocabulary import (
    ALL_EVENT_TYPES_TRIGGER,
    MIGRATION_WEBHOOK_NAME,
    WEBHOOK_KINDS,
    WEBHOOKS_ACTIONS_METADATA_ID,
    WEBHOOKS_ACTIONS_SEND_ACTION_ID,
    WEBHOOKS_METADATA_ID,
    ChangeTarget,
    send_mapping_settings,
)
from segment_rudderstack.waits.conditions import Decision
from segment_rudderstack.waits.watches import AdoptionWatch, SegmentLoadWatch


class _SegmentOperator(MigrationOperator):
    def __init__(self, *, segment_conn_id: str = "segment_default", **kwargs: Any):
        super().__init__(**kwargs)
        self.segment_conn_id = segment_conn_id

    def segment(self):
        from segment_rudderstack.hooks.segment import SegmentHook

        return SegmentHook(segment_conn_id=self.segment_conn_id)


class _WebhookOperator(_SegmentOperator):
    """Finds, per Segment source, the Webhooks destination (and, for Webhooks (Actions), its "Send" mapping)
    that this plan created to forward events to RudderStack's Segment-type source.

    :param webhook_kind: ``actions`` (Webhooks (Actions): a destination named ``destination_name`` with a "Send"
        mapping named ``<destination_name>: Send`` posting to the RudderStack webhook URL; the default) or
        ``classic`` (a classic Webhooks destination whose hook is that URL). Destinations and mappings without
        this plan's name (or, classic, without its URL) are never touched.
    """

    template_fields = (*MigrationOperator.template_fields, "rudderstack_source_id", "source_ids")
    operator_extra_links = (SegmentDestinationsLink(),)

    def __init__(
        self,
        *,
        source_ids: Sequence[str],
        rudderstack_source_id: str | None,
        rudderstack_conn_id: str = "rudderstack_default",
        rudderstack_data_plane_conn_id: str = "rudderstack_data_plane_default",
        destination_name: str = MIGRATION_WEBHOOK_NAME,
        webhook_kind: str = "actions",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if webhook_kind not in WEBHOOK_KINDS:
            raise ValueError(f"webhook_kind must be one of {list(WEBHOOK_KINDS)}, not {webhook_kind!r}")
        self.source_ids = source_ids
        self.rudderstack_source_id = rudderstack_source_id
        self.rudderstack_conn_id = rudderstack_conn_id
        self.rudderstack_data_plane_conn_id = rudderstack_data_plane_conn_id
        self.destination_name = destination_name
        self.webhook_kind = webhook_kind

    @property
    def mapping_name(self) -> str:
        return f"{self.destination_name}: Send"

    def webhook_url(self) -> str | None:
        """The RudderStack webhook URL (it carries the source's write key: masked, never returned)."""
        from segment_rudderstack.hooks.rudderstack import RudderStackDataPlaneHook, RudderStackHook

        if not self.require_upstream(self.rudderstack_source_id, "rudderstack_source_id"):
            return None  # dry run: the source would be created upstream
        source = RudderStackHook(rudderstack_conn_id=self.rudderstack_conn_id).get_source(
            self.rudderstack_source_id
        )
        write_key = source.get("writeKey")
        if not write_key:
            raise AirflowFailException(
                f"RudderStack source {self.rudderstack_source_id} has no writeKey in its API answer; "
                "expected a Segment-type source with a write key"
            )
        return RudderStackDataPlaneHook(
            rudderstack_data_plane_conn_id=self.rudderstack_data_plane_conn_id
        ).webhook_url(write_key)

    def is_our_mapping(self, mapping: dict[str, Any], url: str) -> bool:
        settings = mapping.get("settings") or {}
        return (
            mapping.get("name") == self.mapping_name
            and mapping.get("actionId") == WEBHOOKS_ACTIONS_SEND_ACTION_ID
            and settings.get("url") == url
        )

    def find_webhooks(self, hook, url: str | None) -> dict[str, list[WebhookRoute]]:
        found: dict[str, list[WebhookRoute]] = {}
        for source_id in as_list(self.source_ids) or []:
            routes: list[WebhookRoute] = []
            for destination in hook.list_connected_destinations(source_id) if url else []:
                metadata_id = (destination.get("metadata") or {}).get("id")
                if self.webhook_kind == "classic":
                    if is_webhook_to(destination, url):
                        routes.append(WebhookRoute(source_id, destination))
                elif (
                    metadata_id == WEBHOOKS_ACTIONS_METADATA_ID
                    and destination.get("name") == self.destination_name
                ):
                    mappings = [
                        m
                        for m in hook.list_destination_subscriptions(destination["id"])
                        if self.is_our_mapping(m, url)
                    ]
                    routes.append(WebhookRoute(source_id, destination, mappings[0] if mappings else None))
            # An Actions destination that already has our mapping is the one to use.
            found[source_id] = sorted(routes, key=lambda r: r.mapping is None)
        return found


class EnsureSegmentWebhookOperator(_WebhookOperator):
    """Ensure each given Segment source has exactly one Webhooks destination forwarding to RudderStack's
    Segment-type source (Webhooks (Actions): with its "Send" mapping), enabled (or disabled) as asked. No
    duplicate destination or mapping on re-run.

    Returns ``{"destinations": {source_id: destination_id}, "cutover_at": iso}``; ``cutover_at`` is when the
    webhook was (last) enabled on all sources, the instant after which a Segment load must start and finish
    before Segment's warehouse may be disabled.

    :param enabled: the state the Webhooks destinations must have. Other arguments: ``source_ids`` (the client
        sources), ``rudderstack_source_id`` (RudderStack's Segment-type source; empty only in a dry run),
        ``rudderstack_conn_id``, ``rudderstack_data_plane_conn_id``, ``destination_name``, ``segment_conn_id``.
    """

    def __init__(self, *, enabled: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.enabled = enabled

    def execute(self, context: Any) -> dict[str, Any]:
        hook = self.segment()
        url = self.webhook_url()
        found = self.find_webhooks(hook, url)
        destinations: dict[str, str | None] = {}
        enabled_at: list[datetime] = []
        for source_id, routes in found.items():
            if len(routes) > 1:
                self.log.warning(
                    "Segment source %s has %d Webhooks destinations forwarding to RudderStack (%s); using the first",
                    source_id,
                    len(routes),
                    [r.destination_id for r in routes],
                )
            if self.webhook_kind == "actions":
                destination_id, since = self._ensure_actions(context, hook, url, source_id, routes)
            else:
                destination_id, since = self._ensure_classic(context, hook, url, source_id, routes)
            destinations[source_id] = destination_id
            enabled_at += since
        cutover = max(enabled_at) if enabled_at else datetime.now(UTC)
        self.log.info("cutover point (webhook enabled on all sources): %s", cutover.isoformat())
        return {"destinations": destinations, "cutover_at": cutover.isoformat()}

    def _ensure_classic(self, context, hook, url, source_id, routes) -> tuple[str | None, list[datetime]]:
        if not routes:
            created = (
                self.create_missing(
                    context,
                    target=ChangeTarget.SEGMENT_DESTINATION,
                    target_id=f"{source_id}:{self.destination_name}",
                    make=lambda: hook.create_destination(
                        source_id=source_id,
                        metadata_id=WEBHOOKS_METADATA_ID,
                        name=self.destination_name,
                        enabled=self.enabled,
                        settings={"hooks": [{"hook": url, "headers": []}]},
                    ),
                )
                or {}
            )
            if created.get("id"):
                self._record_enabled(context, ChangeTarget.SEGMENT_DESTINATION, created["id"], self.enabled)
            if not self.enabled:
                return created.get("id"), []
            return created.get("id"), [
                self._enabled_since(ChangeTarget.SEGMENT_DESTINATION, created["id"])
                if created.get("id")
                else datetime.now(UTC)
            ]
        destination_id = routes[0].destination_id
        self.adopt_existing(
            ChangeTarget.SEGMENT_DESTINATION, f"{source_id}:{self.destination_name}", destination_id
        )
        self._set_destination(context, hook, routes[0].destination)
        return destination_id, [
            self._enabled_since(ChangeTarget.SEGMENT_DESTINATION, destination_id)
        ] if self.enabled else []

    def _ensure_actions(self, context, hook, url, source_id, routes) -> tuple[str | None, list[datetime]]:
        """Webhooks (Actions): the destination (created disabled, settings without a sharedSecret: RudderStack's
        Segment source does not verify signatures), then its "Send" mapping, then the destination's switch —
        so nothing is sent before the mapping is in place."""
        if routes:
            destination = routes[0].destination
            self.adopt_existing(
                ChangeTarget.SEGMENT_DESTINATION, f"{source_id}:{self.destination_name}", destination["id"]
            )
        else:
            destination = self.create_missing(
                context,
                target=ChangeTarget.SEGMENT_DESTINATION,
                target_id=f"{source_id}:{self.destination_name}",
                make=lambda: hook.create_destination(
                    source_id=source_id,
                    metadata_id=WEBHOOKS_ACTIONS_METADATA_ID,
                    name=self.destination_name,
                    enabled=False,
                    settings={},
                ),
            )
            if destination is None:  # dry run
                self.dry_run_note(context, "then add its Send mapping to RudderStack and enable both")
                return None, []
        destination_id = destination["id"]
        mapping = self._ensure_send_mapping(context, hook, url, destination_id, routes)
        if routes and routes[0].mapping is not None and self.enabled:
            self._set_mapping(context, hook, destination_id, mapping)  # switching on: the mapping first
        self._set_destination(context, hook, destination)
        if (
            mapping is not None and mapping.get("id") and not self.enabled
        ):  # switching off: the destination first
            self._set_mapping(context, hook, destination_id, mapping)
        if not self.enabled:
            return destination_id, []
        since = [self._enabled_since(ChangeTarget.SEGMENT_DESTINATION, destination_id)]
        if mapping is not None and mapping.get("id"):
            mapping_target = subscription_target_id(destination_id, mapping["id"])
            since.append(self._enabled_since(ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION, mapping_target))
        return destination_id, since

    def _ensure_send_mapping(self, context, hook, url, destination_id: str, routes) -> dict[str, Any] | None:
        """The webhook destination's "Send" mapping to ``url``: adopted when it exists, else created (None in a
        dry run)."""
        mapping = routes[0].mapping if routes else None
        if mapping is None:
            mapping = self.create_missing(
                context,
                target=ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION,
                target_id=f"{destination_id}/{self.mapping_name}",
                make=lambda: hook.create_destination_subscription(
                    destination_id,
                    name=self.mapping_name,
                    action_id=WEBHOOKS_ACTIONS_SEND_ACTION_ID,
                    trigger=ALL_EVENT_TYPES_TRIGGER,
                    enabled=self.enabled,
                    settings=send_mapping_settings(url),
                ),
            )
            if mapping is not None and mapping.get("id"):
                self._record_enabled(
                    context,
                    ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION,
                    subscription_target_id(destination_id, mapping["id"]),
                    self.enabled,
                )
        else:
            self.adopt_existing(
                ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION,
                f"{destination_id}/{self.mapping_name}",
                mapping["id"],
            )
        return mapping

    def _set_destination(self, context, hook, destination: dict[str, Any]) -> None:
        destination_id = destination["id"]
        self.apply_change(
            context,
            target=ChangeTarget.SEGMENT_DESTINATION,
            target_id=destination_id,
            field="enabled",
            before=bool(destination.get("enabled")),
            after=self.enabled,
            apply=lambda: hook.set_destination_enabled(destination_id, self.enabled),
        )

    def _set_mapping(self, context, hook, destination_id: str, mapping: dict[str, Any]) -> None:
        self.apply_change(
            context,
            target=ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION,
            target_id=subscription_target_id(destination_id, mapping["id"]),
            field="enabled",
            before=bool(mapping.get("enabled")),
            after=self.enabled,
            apply=lambda: hook.set_destination_subscription_enabled(
                destination_id, mapping["id"], self.enabled
            ),
        )

    def _record_enabled(self, context: Any, target: ChangeTarget, target_id: str, after: bool) -> None:
        """Something created enabled: its "enabled" state is logged too, so the rollback finds and disables it."""
        self.record_change(
            context, target=target, target_id=target_id, field="enabled", before=None, after=after
        )

    def _enabled_since(self, target: ChangeTarget, target_id: str) -> datetime:
        change = self.change_log.last(target, target_id, "enabled")
        if change is not None and change.after is True:
            return as_utc(change.at)
        # Enabled outside this migration: we cannot know since when, so take now (the safe, later instant).
        self.log.info(
            "%s %s was enabled outside this plan's change log; cutover counted from now", target, target_id
        )
        return datetime.now(UTC)


class DisableSegmentWebhookOperator(HoldHonouring, _WebhookOperator):
    """Disable the Webhooks destinations (and, for Webhooks (Actions), their "Send" mappings) that forward
    Segment events to RudderStack (the last runbook step).

    With ``adoption_guard`` (``warehouse_conn_id``, ``namespace``, ``threshold``, ``window_seconds``, optional
    ``min_events`` and ``library_names``) it first measures the share of events still arriving through the
    webhook over the trailing window itself and refuses while it is above the threshold (the sustained streak
    is the ClientAdoptionSensor's job; this re-check guards against running the step out of order).

    :param adoption_guard: ``{warehouse_conn_id, namespace, threshold, window_seconds, min_events?,
        library_names?}``: re-measure the adoption share before switching off. Other arguments as
        :class:`EnsureSegmentWebhookOperator`.
    """

    template_fields = (*_WebhookOperator.template_fields, "adoption_guard")

    def __init__(self, *, adoption_guard: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.adoption_guard = adoption_guard

    def _adoption_refusal(self) -> str | None:
        if not self.adoption_guard or not self.rudderstack_source_id:
            return None  # without the RudderStack source there is no webhook to it, so nothing to switch off
        guard = self.adoption_guard
        watch = AdoptionWatch(
            warehouse_conn_id=guard["warehouse_conn_id"],
            namespace=guard["namespace"],
            webhook_source_id=self.rudderstack_source_id,
            window_seconds=float(guard["window_seconds"]),
            threshold=float(guard["threshold"]),
            consecutive_checks=1,
            min_events=guard.get("min_events"),
            library_names=guard.get("library_names") or [],
            tables=None,
        )
        decision = watch.check().decision
        return None if decision.done else decision.reason

    def execute(self, context: Any) -> dict[str, Any]:
        self.wait_while_held(context)  # the plan's hold (safety/hold.py): deferred until it is released
        hook = self.segment()
        refusal = self._adoption_refusal()
        if refusal and self.is_dry_run:
            self.dry_run_note(
                context, f"disable Segment's webhook once adoption allows it: {refusal}", kind=WAIT
            )
            return {"disabled": [], "dry_run": True, "adoption": refusal}
        if refusal:
            raise AirflowFailException(
                f"refusing to disable Segment's webhook: {refusal}. Old clients still send through Segment; wait "
                "for the adoption sensor (or lower the plan's threshold deliberately) and re-run this task."
            )
        found = self.find_webhooks(hook, self.webhook_url())
        disabled: list[str] = []
        for routes in found.values():
            for route in routes:
                # The destination first: it stops every mapping at once.
                if self.apply_change(
                    context,
                    target=ChangeTarget.SEGMENT_DESTINATION,
                    target_id=route.destination_id,
                    field="enabled",
                    before=bool(route.destination.get("enabled")),
                    after=False,
                    apply=lambda d=route.destination_id: hook.set_destination_enabled(d, False),
                ):
                    disabled.append(route.destination_id)
                if route.mapping is not None:
                    mapping_id = route.mapping["id"]
                    self.apply_change(
                        context,
                        target=ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION,
                        target_id=subscription_target_id(route.destination_id, mapping_id),
                        field="enabled",
                        before=bool(route.mapping.get("enabled")),
                        after=False,
                        apply=lambda d=route.destination_id, m=mapping_id: (
                            hook.set_destination_subscription_enabled(d, m, False)
                        ),
                    )
        return {"disabled": disabled, "at": datetime.now(UTC).isoformat()}


class _LoadStartedMeanwhile(Exception):
    """The last look before the switch-off found a Segment load running (or no final load any more)."""


def _load_running(decision: Decision) -> bool:
    """A final-load decision that waits because a Segment load is running (rather than for one to start)."""
    return decision.waiting and bool(decision.details.get("running"))


class DisableSegmentWarehouseOperator(HoldHonouring, WriterChangeLineage, _SegmentOperator):
    """Switch Segment's warehouse loads off once its final load is confirmed.

    Re-checks Segment's syncs itself and refuses while a Segment load is running or before a load that started
    after ``started_after`` (the cutover point) finished successfully. ``final_step="disconnect_sources"``
    disconnects only the plan's sources instead (disabling the warehouse stops loads for every source).

    :param warehouse_id: Segment's warehouse id.
    :param started_after: the cutover point: the final load is one that started after it.
    :param source_ids: the sources whose final load is awaited (and, with ``disconnect_sources``, disconnected).
    :param allow_partial: accept a final load that ended Partial.
    :param final_step: ``disable_warehouse`` (stops loads for every source) or ``disconnect_sources``.
    :param running_load_wait_seconds: how long to wait for a load that started after the sensor saw the final
        one.
    :param sync_list_requests_per_minute: Segment's rate limit of the sync list (checks are spaced by it).
    :param client_source_ids: the client sources whose webhook must be enabled and delivering before the switch-
        off.
    :param rudderstack_source_id: RudderStack's Segment-type source the webhooks deliver to.
    :param rudderstack_conn_id: the RudderStack control plane connection (the replacement path is re-checked).
    :param rudderstack_data_plane_conn_id: the data plane connection (it must answer).
    :param destination_id: RudderStack's warehouse destination.
    :param namespace: the schema it writes to.
    :param replacement_paths: with several lanes (schemas), one path per lane instead of the four arguments
        above: ``[{client_source_ids, rudderstack_source_id, destination_id, namespace}, ...]``; every lane's
        path must hold.
    """

    operator_extra_links = (SegmentWarehouseLink(),)

    template_fields = (
        *MigrationOperator.template_fields,
        "warehouse_id",
        "started_after",
        "source_ids",
        "client_source_ids",
        "rudderstack_source_id",
        "destination_id",
        "replacement_paths",
        "writer_change",
    )

    def __init__(
        self,
        *,
        warehouse_id: str,
        started_after: str | datetime,
        source_ids: Sequence[str] | None = None,
        allow_partial: bool = False,
        final_step: str = "disable_warehouse",
        running_load_wait_seconds: float = 3600,
        sync_list_requests_per_minute: float = 2.0,
        client_source_ids: Sequence[str] | str | None = None,
        rudderstack_source_id: str | None = None,
        rudderstack_conn_id: str | None = None,
        rudderstack_data_plane_conn_id: str | None = None,
        destination_id: str | None = None,
        namespace: str | None = None,
        replacement_paths: Sequence[Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        # The replacement path proven right before the switch-off (preflight_checks.replacement_path_problems).
        self.replacement_paths = replacement_paths
        self.client_source_ids = client_source_ids
        self.rudderstack_source_id = rudderstack_source_id
        self.rudderstack_conn_id = rudderstack_conn_id
        self.rudderstack_data_plane_conn_id = rudderstack_data_plane_conn_id
        self.destination_id = destination_id
        self.namespace = namespace
        if final_step not in ("disable_warehouse", "disconnect_sources"):
            raise ValueError(
                f"final_step must be disable_warehouse or disconnect_sources, not {final_step!r}"
            )
        self.warehouse_id = warehouse_id
        self.started_after = started_after
        self.source_ids = source_ids
        self.allow_partial = allow_partial
        self.final_step = final_step
        self.running_load_wait_seconds = running_load_wait_seconds
        self.check_interval = 60.0 / float(sync_list_requests_per_minute)

    def _check(self, hook, watch: SegmentLoadWatch) -> tuple[bool, Decision]:
        """Whether Segment's warehouse is enabled, and the final-load sensor's decision, observed now."""
        enabled = bool(hook.get_warehouse(self.warehouse_id).get("enabled"))
        return enabled, watch.check().decision

    def execute(self, context: Any) -> dict[str, Any]:
        self.wait_while_held(context)  # the plan's hold (safety/hold.py): deferred until it is released
        hook = self.segment()
        # The final-load sensor's own watch and decision, checked again right before the change.
        watch = SegmentLoadWatch.final_load(
            segment_conn_id=self.segment_conn_id,
            warehouse_id=self.warehouse_id,
            started_after=self.started_after,
            source_ids=self.source_ids,
            allow_partial=self.allow_partial,
        )
        if not self.is_dry_run and bool(hook.get_warehouse(self.warehouse_id).get("enabled")):
            # The slow proof (several calls per lane) first, so that it never stands between the last look at
            # Segment's loads and the change.
            self._prove_replacement_path()
        # A new scheduled load may have started since the sensor saw the final one finish: wait for it to end
        # (bounded) rather than fail; any other reason to refuse ends the task below.
        deadline = time.monotonic() + float(self.running_load_wait_seconds)
        while True:
            enabled, decision = self._wait_while_loading(hook, watch, deadline)
            if self.final_step == "disable_warehouse" and not enabled:
                return self._already_off(decision)
            if not decision.done and self.is_dry_run:
                self.dry_run_note(
                    context,
                    f"switch Segment's warehouse {self.warehouse_id} off once this holds: {decision.reason}",
                    kind=WAIT,
                )
                return {"disabled": False, "dry_run": True, "last_check": decision.reason}
            if not decision.done:
                raise AirflowFailException(
                    f"refusing to switch Segment's warehouse {self.warehouse_id} off: {decision.reason}. Expected "
                    f"a Segment load that started after {as_utc(self.started_after).isoformat()} to have "
                    "finished successfully and no load running; re-run this task once that holds."
                )
            # From here until RudderStack's sync is released, no other plan may switch this warehouse's loads.
            self.exclusive_resources(
                context, [self.segment_warehouse_resource(self.segment_conn_id, self.warehouse_id)]
            )
            try:
                changed = self._switch_off(context, hook, watch)
            except _LoadStartedMeanwhile as started:
                self.log.info("%s at the last look before the switch-off; waiting for it to end", started)
                continue
            return {"disabled": changed, "at": datetime.now(UTC).isoformat(), "last_check": decision.reason}

    def _already_off(self, decision: Decision) -> dict[str, Any]:
        """Segment's warehouse is off: an earlier attempt whose answer was lost (an outage) may have switched it
        off; its open intent is settled from this observation, and the switch-off counts as this run's."""
        settled = (
            []
            if self.is_dry_run
            else self.settle_intents(
                ChangeTarget.SEGMENT_WAREHOUSE, self.warehouse_id, "enabled", current=False
            )
        )
        if any(c is not None and c.status == "done" for c in settled):
            return {"disabled": True, "at": settled[-1].at, "settled": True, "last_check": decision.reason}
        self.log.info("unchanged: Segment warehouse %s is already disabled", self.warehouse_id)
        return {"disabled": False, "already": True, "last_check": decision.reason}

    def _wait_while_loading(self, hook, watch: SegmentLoadWatch, deadline: float) -> tuple[bool, Decision]:
        """Observe until no Segment load is running (or the deadline passed, or the warehouse is off)."""
        enabled, decision = self._check(hook, watch)
        while _load_running(decision) and enabled and not self.is_dry_run and time.monotonic() < deadline:
            # Jittered: Segment starts loads on a fixed schedule, and checks at a fixed period can fall in step
            # with it, finding a load running every time while the warehouse is idle most of the time between.
            pause = self.check_interval * random.uniform(0.5, 1.5)
            self.log.info(
                "%s; checking again in %.1f s before switching Segment's warehouse off",
                decision.reason,
                pause,
            )
            time.sleep(pause)
            enabled, decision = self._check(hook, watch)
        return enabled, decision

    def _last_look(self, hook, watch: SegmentLoadWatch) -> None:
        """The final-load decision observed once more after the change's intent is recorded, right before the
        call: the bookkeeping before a change (leases, write-ahead log) must not leave a window in which a
        load that starts meanwhile is running when the warehouse is switched off."""
        _, decision = self._check(hook, watch)
        if not decision.done:
            raise _LoadStartedMeanwhile(decision.reason)

    def _switch_off(self, context: Any, hook, watch: SegmentLoadWatch) -> bool:
        last_look = None if self.is_dry_run else (lambda: self._last_look(hook, watch))
        if self.final_step == "disable_warehouse":
            return self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_WAREHOUSE,
                target_id=self.warehouse_id,
                field="enabled",
                before=True,
                after=False,
                apply=lambda: hook.set_warehouse_enabled(self.warehouse_id, False),
                last_look=last_look,
            )
        changed = False
        for source_id in watch.source_ids or []:
            changed |= self.apply_change(
                context,
                target=ChangeTarget.SEGMENT_WAREHOUSE_SOURCE,
                target_id=f"{self.warehouse_id}:{source_id}",
                field="connected",
                before=is_connected(hook, self.warehouse_id, source_id),
                after=False,
                apply=lambda s=source_id: hook.disconnect_warehouse_source(self.warehouse_id, s),
                last_look=last_look,
            )
        return changed

    def _prove_replacement_path(self) -> None:
        """Refuse the switch-off unless the webhook path that replaces Segment's warehouse works now (every
        lane's, with several schemas)."""
        paths = list(self.replacement_paths or []) or [
            {
                "client_source_ids": self.client_source_ids,
                "rudderstack_source_id": self.rudderstack_source_id,
                "destination_id": self.destination_id,
                "namespace": self.namespace,
            }
        ]
        if self.is_dry_run or not self.rudderstack_conn_id:
            return
        problems: list[str] = []
        clients: list[str] = []
        for path in paths:
            lane_clients = as_list(path.get("client_source_ids")) or []
            if lane_clients:  # a lane this run does not migrate has none selected
                clients += lane_clients
                problems += self._replacement_problems(lane_clients, path)
        if problems:
            raise AirflowFailException(
                f"refusing to switch Segment's warehouse {self.warehouse_id} off: the path that replaces it is not "
                "proven; nothing was changed:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        if clients:
            self.log.info(
                "replacement path proven for %s: webhooks enabled to a reachable data plane", clients
            )

    def _replacement_problems(self, clients: list[str], path: Mapping[str, Any]) -> list[str]:
        from segment_rudderstack.safety.preflight_checks import (
            replacement_path_problems,
            segment_delivery_check,
        )

        url = None
        if path.get("rudderstack_source_id"):
            from segment_rudderstack.hooks.rudderstack import RudderStackDataPlaneHook, RudderStackHook

            write_key = (
                RudderStackHook(rudderstack_conn_id=self.rudderstack_conn_id)
                .get_source(path["rudderstack_source_id"])
                .get("writeKey")
            )
            if write_key and self.rudderstack_data_plane_conn_id:
                url = RudderStackDataPlaneHook(
                    rudderstack_data_plane_conn_id=self.rudderstack_data_plane_conn_id
                ).webhook_url(write_key)
        return replacement_path_problems(
            segment_conn_id=self.segment_conn_id,
            client_source_ids=clients,
            webhook_url=url,
            data_plane_conn_id=self.rudderstack_data_plane_conn_id,
            rudderstack_conn_id=self.rudderstack_conn_id,
            destination_id=path.get("destination_id") or None,
            namespace=path.get("namespace"),
            since=as_utc(self.started_after),
            delivery_check=segment_delivery_check(self.segment_conn_id),
        )


# ------------------------------------------------------------------------------------------ undo (rollback)
def _put_back(undo: Undo, context: Any, target: ChangeTarget, target_id: str, field: str, **change: Any):
    """One undo through the rollback's recorded change (``before``, ``after``, ``apply``); ``done`` when made."""
    done = change.pop("done")
    return (
        done
        if undo.rollback.apply_change(context, target=target, target_id=target_id, field=field, **change)
        else None
    )


@undoes(ChangeTarget.SEGMENT_WAREHOUSE, "enabled")
def undo_warehouse_disabled(undo: Undo, context: Any, target_id: str, field: str, change: Any = None):
    return _put_back(
        undo,
        context,
        ChangeTarget.SEGMENT_WAREHOUSE,
        target_id,
        field,
        before=bool(undo.segment.get_warehouse(target_id).get("enabled")),
        after=True,
        apply=lambda: undo.segment.set_warehouse_enabled(target_id, True),
        done=f"re-enabled Segment warehouse {target_id}",
    )


@undoes(ChangeTarget.SEGMENT_WAREHOUSE_SOURCE, "connected")
def undo_source_disconnected(undo: Undo, context: Any, target_id: str, field: str, change: Any = None):
    warehouse_id, _, source_id = target_id.partition(":")
    return _put_back(
        undo,
        context,
        ChangeTarget.SEGMENT_WAREHOUSE_SOURCE,
        target_id,
        field,
        before=is_connected(undo.segment, warehouse_id, source_id),
        after=True,
        apply=lambda: undo.segment.connect_warehouse_source(warehouse_id, source_id),
        done=f"reconnected Segment source {source_id} to warehouse {warehouse_id}",
    )


@undoes(ChangeTarget.SEGMENT_DESTINATION, "enabled")
def undo_webhook_enabled(undo: Undo, context: Any, target_id: str, field: str, change: Any = None):
    return _put_back(
        undo,
        context,
        ChangeTarget.SEGMENT_DESTINATION,
        target_id,
        field,
        before=bool(undo.segment.get_destination(target_id).get("enabled")),
        after=False,
        apply=lambda: undo.segment.set_destination_enabled(target_id, False),
        done=f"disabled Segment webhook destination {target_id}",
    )


@undoes(ChangeTarget.SEGMENT_DESTINATION, "exists")
def undo_webhook_created(undo: Undo, context: Any, target_id: str, field: str, change: Any):
    # Created by this plan (perhaps by an attempt that died before writing the outcome): find it by its
    # deterministic name (<source id>:<destination name>) and make sure it no longer forwards events.
    source_id, _, name = target_id.partition(":")
    found = [
        d
        for d in undo.segment.list_connected_destinations(source_id)
        if d.get("id") == change.object_id or d.get("name") == name
    ]
    undo.rollback.settle_by_rollback(change, found[0].get("id") if found else None)
    return [text for d in found if (text := undo_webhook_enabled(undo, context, d["id"], "enabled"))]


@undoes(ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION, "enabled")
def undo_mapping_enabled(undo: Undo, context: Any, target_id: str, field: str, change: Any = None):
    """Webhooks (Actions) mappings (id ``<destination>/<mapping>``): switched off, never deleted."""
    destination_id, _, mapping_id = target_id.partition("/")
    return _put_back(
        undo,
        context,
        ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION,
        target_id,
        field,
        before=bool(undo.segment.get_destination_subscription(destination_id, mapping_id).get("enabled")),
        after=False,
        apply=lambda: undo.segment.set_destination_subscription_enabled(destination_id, mapping_id, False),
        done=f"disabled Segment webhook mapping {target_id}",
    )


@undoes(ChangeTarget.SEGMENT_DESTINATION_SUBSCRIPTION, "exists")
def undo_mapping_created(undo: Undo, context: Any, target_id: str, field: str, change: Any):
    # Created by this plan (perhaps by an attempt that died before writing the outcome): found by its
    # deterministic name (<destination id>/<mapping name>) and switched off.
    destination_id, _, name = target_id.partition("/")
    found = [
        m
        for m in undo.segment.list_destination_subscriptions(destination_id)
        if m.get("id") == change.object_id or m.get("name") == name
    ]
    undo.rollback.settle_by_rollback(change, found[0].get("id") if found else None)
    return [
        text
        for m in found
        if (text := undo_mapping_enabled(undo, context, f"{destination_id}/{m['id']}", "enabled"))
    ]
