"""Checks that must pass before the first outside change, and before Segment's warehouse is switched off.

Each function returns a list of problems (sentences saying what was expected, what was found and what to do);
an empty list means the check passed. They are small and separate so the preflight, the switch-off and other
operators can call exactly the ones they need.

- :func:`connection_problems`: every connection answers with its credentials (Segment token, RudderStack
  control plane, RudderStack data plane health).
- :func:`segment_source_problems`: every Segment source id of the plan exists and is connected to the warehouse.
- :func:`warehouse_privilege_problems`: the warehouse user may use the schema and create, insert and delete in
  it (PostgreSQL: ``has_schema_privilege`` / ``has_table_privilege``); "no privilege" is told apart from
  "does not exist".
- :func:`replacement_path_problems`: right before Segment's warehouse is switched off, the path that replaces
  it works now: each client source's webhook is enabled and points at the RudderStack Segment-type source on a
  data plane that answers, Segment reports deliveries through it since the cutover (when its Delivery Overview
  answers), and the RudderStack destination still has the namespace the plan set and its sync held.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)


def connection_problems(
    segment_conn_id: str | None,
    rudderstack_conn_id: str | None,
    data_plane_conn_id: str | None,
    *,
    outages_raise: bool = False,
) -> list[str]:
    """A problem per connection that does not answer its cheap read. With ``outages_raise`` (a step after the
    setup, whose connections answered before) an outage is raised for the step to wait out instead."""
    from segment_rudderstack.hooks.rudderstack import RudderStackDataPlaneHook, RudderStackHook
    from segment_rudderstack.hooks.segment import SegmentHook
    from segment_rudderstack.waits.transient import is_transient

    checks = []
    if segment_conn_id:
        checks.append(
            ("Segment Public API", segment_conn_id, lambda: SegmentHook(segment_conn_id=segment_conn_id))
        )
    if rudderstack_conn_id:
        checks.append(
            (
                "RudderStack control plane",
                rudderstack_conn_id,
                lambda: RudderStackHook(rudderstack_conn_id=rudderstack_conn_id),
            )
        )
    if data_plane_conn_id:
        checks.append(
            (
                "RudderStack data plane (/health)",
                data_plane_conn_id,
                lambda: RudderStackDataPlaneHook(rudderstack_data_plane_conn_id=data_plane_conn_id),
            )
        )
    problems = []
    for what, conn_id, make in checks:
        try:
            if outages_raise:
                make().ping()
                ok, message = True, ""
            else:
                ok, message = make().test_connection()
        except Exception as exc:  # noqa: BLE001 - a missing connection is a problem to report, not a crash
            if outages_raise and is_transient(exc):
                raise
            ok, message = False, str(exc)
        if not ok:
            problems.append(
                f"{what} (connection {conn_id!r}) does not answer as expected: {message}. Fix the connection's "
                "host and token before migrating (nothing was changed)"
            )
    return problems


def segment_source_problems(hook: Any, warehouse_id: str, source_ids: Sequence[str]) -> list[str]:
    from segment_rudderstack.hooks.errors import ApiError

    problems = []
    for source_id in source_ids:
        try:
            hook.get_source(source_id)
        except ApiError as exc:
            if exc.status == 404:
                problems.append(
                    f"Segment source {source_id!r} (plan: sources[].id) does not exist in the workspace (HTTP 404); "
                    "fix the id in the plan"
                )
                continue
            if exc.status in (401, 403):
                problems.append(
                    f"Segment source {source_id!r} cannot be read with this token (HTTP {exc.status}): "
                    "give the token read access to sources"
                )
                continue
            raise
        connected = {w.get("id") for w in hook.list_connected_warehouses(source_id)}
        if warehouse_id not in connected:
            problems.append(
                f"Segment source {source_id!r} is not connected to warehouse {warehouse_id} (connected to: "
                f"{sorted(connected) or 'none'}); expected the plan's sources to load into that warehouse"
            )
    return problems


def warehouse_privilege_problems(
    warehouse_conn_id: str, namespace: str, tables: Sequence[str] = ()
) -> tuple[bool | None, list[str]]:
    """``(schema exists, problems)``; ``exists`` is ``None`` when the dialect has no privilege check here."""
    from segment_rudderstack.dialects import dialect_for_conn_id
    from segment_rudderstack.dialects.privileges import schema_privileges

    dialect = dialect_for_conn_id(warehouse_conn_id)
    if getattr(dialect, "name", "") != "postgres":
        log.info(
            "warehouse privilege check: not implemented for %s; RudderStack's own connection test covers it",
            getattr(dialect, "name", "this warehouse"),
        )
        return None, []
    privileges = schema_privileges(dialect, namespace, tables)
    if not privileges.schema_exists:
        return False, []  # the preflight's schema check says it does not exist
    user, problems = privileges.user, []
    missing = [name for name, ok in (("USAGE", privileges.usage), ("CREATE", privileges.create)) if not ok]
    if missing:
        problems.append(
            f"warehouse user {user!r} has no privilege {' and '.join(missing)} on schema {namespace!r} (the "
            f"schema exists). RudderStack and the migration need USAGE and CREATE on it: GRANT "
            f"{', '.join(missing)} ON SCHEMA {namespace} TO {user}"
        )
    for table, (insert, delete) in privileges.tables.items():
        lacking = [name for name, ok in (("INSERT", insert), ("DELETE", delete)) if not ok]
        if lacking:
            problems.append(
                f"warehouse user {user!r} has no privilege {' and '.join(lacking)} on table "
                f"{namespace}.{table} (it exists): loads and the duplicate repair need both"
            )
    return True, problems


def replacement_path_problems(
    *,
    segment_conn_id: str,
    client_source_ids: Sequence[str],
    webhook_url: str | None,
    data_plane_conn_id: str | None,
    rudderstack_conn_id: str | None,
    destination_id: str | None,
    namespace: str | None,
    since: datetime | None,
    delivery_check: Any = None,
) -> list[str]:
    """What must hold right before Segment's warehouse is switched off (see the module docstring).
    ``delivery_check(destination_id, since)`` returns the number of events Segment delivered through a webhook
    destination since ``since``, or ``None`` when Segment's metrics do not answer."""
    from segment_rudderstack.hooks.segment import SegmentHook
    from segment_rudderstack.hooks.segment_webhooks import webhooks_forwarding_to

    problems: list[str] = []
    if not client_source_ids:
        return problems
    if not webhook_url:
        return [
            "no RudderStack Segment-type source is known for the client sources' webhooks; expected the webhook "
            "path to be set up (route_segment_to_rudderstack) before Segment's warehouse is switched off"
        ]
    if data_plane_conn_id:
        problems += connection_problems(None, None, data_plane_conn_id, outages_raise=True)
    hook = SegmentHook(segment_conn_id=segment_conn_id)
    for source_id in client_source_ids:
        forwarding = webhooks_forwarding_to(hook, source_id, webhook_url)  # classic or Webhooks (Actions)
        webhooks = [d for d, _ in forwarding]
        enabled = [d for d, on in forwarding if on]
        if not enabled:
            problems.append(
                f"client source {source_id!r} has no enabled Segment webhook to RudderStack's data plane "
                f"({len(webhooks)} disabled); switching Segment's warehouse off now would lose its old clients' "
                "events. Re-run route_segment_to_rudderstack (or enable the webhook) first"
            )
            continue
        if delivery_check is not None and since is not None:
            delivered = delivery_check(source_id, enabled[0].get("id"), since)
            if delivered == 0:
                problems.append(
                    f"Segment reports no event delivered through the webhook of source {source_id!r} since "
                    f"{since.isoformat()}: expected events on the replacement path before Segment's warehouse is "
                    "switched off (are old clients sending? does the data plane accept them?)"
                )
    if rudderstack_conn_id and destination_id:
        from segment_rudderstack.dialects.identifiers import same_namespace
        from segment_rudderstack.hooks.rudderstack import RudderStackHook

        config = (
            RudderStackHook(rudderstack_conn_id=rudderstack_conn_id)
            .get_destination(destination_id)
            .get("config")
            or {}
        )
        if namespace and not same_namespace(config.get("namespace"), namespace):
            problems.append(
                f"RudderStack destination {destination_id} now writes to namespace {config.get('namespace')!r}, "
                f"expected {namespace!r} as the plan set: someone changed it since the setup"
            )
    return problems


#: the replacement path counts as broken when Segment received at least this many events from a client source
#: over the window and delivered none of them through its webhook
MIN_RECEIVED_FOR_DELIVERY_PROOF = 5


def segment_delivery_check(segment_conn_id: str, *, max_window: timedelta = timedelta(hours=4)):
    """A ``delivery_check`` for :func:`replacement_path_problems` from Segment's Delivery Overview: over the
    last ``max_window`` (at most since the cutover), 0 when Segment received events from the source
    (at least :data:`MIN_RECEIVED_FOR_DELIVERY_PROOF`) but delivered none through the webhook destination;
    ``None`` (no proof either way) when the beta API does not answer or too few events came in."""
    from segment_rudderstack.hooks.segment_delivery import (
        BUCKET,
        DeliveryOverviewUnavailable,
        SegmentMetricsHook,
        floor_time,
    )

    def check(source_id: str, destination_id: str | None, since: datetime) -> int | None:
        if not destination_id:
            return None
        now = datetime.now(UTC)
        start = floor_time(max(since, now - max_window), "MINUTE")
        end = floor_time(now, "MINUTE") + BUCKET["MINUTE"]
        hook = SegmentMetricsHook(segment_conn_id)
        try:
            received = hook.delivery_metrics(
                "successfully-received",
                source_id=source_id,
                start=start,
                end=end,
                granularity="MINUTE",
                now=end,
            ).total
            if received < MIN_RECEIVED_FOR_DELIVERY_PROOF:
                return None
            return hook.delivery_metrics(
                "successful-delivery",
                source_id=source_id,
                destination_config_id=destination_id,
                start=start,
                end=end,
                granularity="MINUTE",
                now=end,
            ).total
        except DeliveryOverviewUnavailable:
            return None
        except Exception as exc:  # noqa: BLE001 - the metrics are extra proof; their outage must not block
            log.warning(
                "Segment's Delivery Overview could not be read (%s); webhook deliveries not proven", exc
            )
            return None

    return check
