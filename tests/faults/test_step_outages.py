"""Issue 24: a multi-minute outage of each outside service during a change step. Each step waits it out
deferred (the one trigger watching the service answer again), runs again from its first read, and goes
through: exactly one of each created object, nothing unsafe. An outage longer than the budget fails the step
once, clearly, with nothing unsafe changed.

Real parts only: the Segment and RudderStack emulators on 127.0.0.1, RudderStack's control plane and the
warehouse (the session's PostgreSQL) behind a TCP port that refuses connections while closed
(``tests/faults/net.py``), Segment's API answering its load balancer's HTML 502 page (the sandbox's fault
switch). The budget is shortened (``BUDGET``), not the outage's share of it: each outage lasts 60 % of it.
Airflow's part is played as the task runner plays it: ``TaskDeferred`` → the trigger (serialized and rebuilt)
runs to its event → a fresh copy of the operator resumes with the event and the deferral's kwargs.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from segment_rudderstack.operators.rudderstack import ReleaseRudderStackSyncOperator
from segment_rudderstack.operators.segment import (
    DisableSegmentWarehouseOperator,
    EnsureSegmentWebhookOperator,
)
from segment_rudderstack.operators.shape import ShapeContinuityOperator
from segment_rudderstack.operators.warehouse import DuplicateCheckOperator
from segment_rudderstack.safety.changelog import ChangeLog
from segment_rudderstack.sensors.migration import RudderStackUploadSensor
from tests.faults.net import Gate, http_target, postgres_socket, tcp_dsn
from tests.library.test_library_sensors import connected, upload_now
from tests.library.test_library_warehouse_and_lifecycle import seed_duplicates
from tests.library.world import (
    BACKEND,
    DATA_PLANE_CONN,
    FAST_RETRIES,
    RS_APP,
    RUDDERSTACK_CONN,
    RUDDERSTACK_TOKEN,
    WAREHOUSE_CONN,
    WAREHOUSE_ID,
    WEB,
    rudderstack_event,
)

BUDGET = 30.0  # seconds (15 min in a plan); every outage below lasts 60 % of it (18 s)
OUTAGE = 0.6 * BUDGET
SHORT_BUDGET = 15.0  # the outage that outlasts its budget


class Ti(SimpleNamespace):
    """The task instance as the library reads it, keeping what the step pushes to XCom."""

    def __init__(self) -> None:
        super().__init__(run_id="manual__outage", try_number=1, pushed=[])

    def xcom_pull(self, **_: Any) -> None:
        return None

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


def rebuilt(trigger):
    classpath, kwargs = trigger.serialize()
    json.dumps(kwargs)  # what the triggerer stores must be plain JSON
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def first_event(trigger, timeout: float) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(run(), timeout=timeout))


def run_step(operator, ti: Ti, timeout: float = 3 * BUDGET) -> tuple[Any, int]:
    """Run ``operator`` as Airflow would: through every deferral to its end. Returns (result, deferrals)."""
    context = {"ti": ti}
    call = lambda: operator.execute(context)  # noqa: E731
    deferrals = 0
    while True:
        try:
            return call(), deferrals
        except TaskDeferred as deferred:
            deferrals += 1
            assert deferrals < 20, "the step kept deferring"
            event = first_event(rebuilt(deferred.trigger), timeout)
            resumed = copy.deepcopy(operator)  # a fresh task: nothing of the deferred one but its kwargs
            method, kwargs = getattr(resumed, deferred.method_name), dict(deferred.kwargs or {})
            call = lambda m=method, k=kwargs, e=event: m(context, event=e, **k)  # noqa: E731


def outage_warnings(capfd) -> list[str]:
    out, err = capfd.readouterr()
    return [
        line for line in (out + err).splitlines() if "warning" in line.lower() and "does not answer" in line
    ]


def after(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer


@pytest.fixture
def control_plane(world, monkeypatch):
    """RudderStack's control plane reached through a port that refuses connections until opened (its data
    plane, another service, stays up)."""
    gate = Gate(http_target(world.rudderstack_url))
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{RUDDERSTACK_CONN.upper()}",
        json.dumps(
            {
                "conn_type": "http",
                "host": f"http://127.0.0.1:{gate.port}",
                "password": RUDDERSTACK_TOKEN,
                "extra": FAST_RETRIES,
            }
        ),
    )
    gate.open()
    yield gate
    gate.close()


@pytest.fixture
def warehouse_gate(world, pg_dsn, monkeypatch):
    gate = Gate(postgres_socket(pg_dsn))
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN.upper()}", tcp_dsn(pg_dsn, gate.port))
    gate.open()
    yield gate
    gate.close()


def ended_outage(ti: Ti, service: str) -> dict[str, Any]:
    records = [value for key, value in ti.pushed if key == "outage"]
    assert records and records[0]["ended"] is None, records  # recorded while waiting, for the view
    assert records[-1]["service"] == service and records[-1]["ended"] is not None, records
    return records[-1]


def switch_off(world, cutover, rs_source, **kwargs) -> DisableSegmentWarehouseOperator:
    return DisableSegmentWarehouseOperator(
        task_id="disable_segment_warehouse",
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB, BACKEND],
        change_log_key=world.change_log_key,
        client_source_ids=[WEB],
        rudderstack_source_id=rs_source,
        rudderstack_conn_id=RUDDERSTACK_CONN,
        rudderstack_data_plane_conn_id=DATA_PLANE_CONN,
        namespace=world.schema,
        sync_list_requests_per_minute=120,
        **kwargs,
    )


def webhook_path(world) -> tuple[str, Any]:
    """A Segment-type source and the webhook of the client source to it; then Segment's final load."""
    rs_source = world.make_rs_segment_source(world.make_rs_destination())
    cutover = EnsureSegmentWebhookOperator(
        task_id="ensure_webhooks",
        source_ids=[WEB],
        rudderstack_source_id=rs_source,
        change_log_key=world.change_log_key,
    ).execute({"ti": Ti()})["cutover_at"]
    world.load()
    return rs_source, cutover


def warehouse_switch_offs(world, mark) -> list[dict[str, Any]]:
    return [
        c
        for c in world.segment_changes(mark)
        if c["method"] == "PATCH" and c["path"] == f"/warehouses/{WAREHOUSE_ID}"
    ]


def test_the_switch_off_waits_out_rudderstacks_control_plane_down_at_its_replacement_path_proof(
    world, control_plane, capfd
):
    rs_source, cutover = webhook_path(world)
    mark, ti = world.mark(), Ti()
    control_plane.close()  # refusing connections from the moment the switch-off starts
    after(OUTAGE, control_plane.open)
    # Meanwhile a Segment load starts and outlasts the outage: the step, once RudderStack answers, re-checks
    # Segment's loads from fresh observations and waits for that load to end before it switches off.
    loading = threading.Thread(target=lambda: (time.sleep(OUTAGE - 8), _load_for(world, 12)), daemon=True)
    loading.start()
    started = time.monotonic()
    result, deferrals = run_step(switch_off(world, cutover, rs_source, transient_budget_seconds=BUDGET), ti)
    took = time.monotonic() - started
    loading.join(30)
    assert result["disabled"] is True and world.segment_warehouse()["enabled"] is False
    assert took >= OUTAGE - 1 and deferrals >= 1
    [patch] = warehouse_switch_offs(world, mark)  # once
    load_end = [e for e in world.segment.log.entries("load") if e["phase"] == "end"][-1]
    assert load_end["seq"] < patch["seq"]  # never while a Segment load was running
    assert ended_outage(ti, "RudderStack's control plane")["errors"] >= 1
    assert ChangeLog(world.change_log_key).open_intents() == []
    assert len(outage_warnings(capfd)) == 1  # one per outage, naming the service
    print(f"[outage] switch-off: {took:.0f} s, {deferrals} deferral(s)")


def _load_for(world, seconds: float) -> None:
    """One Segment load that runs ``seconds`` (then succeeds)."""
    world.segment.settings.load_duration_s = seconds
    try:
        world.load()
    finally:
        world.segment.settings.load_duration_s = 0.05


def release(world, destination_id, cutover, **kwargs) -> ReleaseRudderStackSyncOperator:
    return ReleaseRudderStackSyncOperator(
        task_id="release",
        destination_id=destination_id,
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB],
        margin_minutes=5,
        change_log_key=world.change_log_key,
        trigger_source_ids=[RS_APP],
        **kwargs,
    )


def test_the_release_waits_out_rudderstacks_control_plane_down_and_releases_once(world, control_plane, capfd):
    destination_id = world.make_rs_destination(manualSync=True)
    with world.rs_api() as api:
        api.post(
            "/connections", json={"sourceId": RS_APP, "destinationId": destination_id}
        ).raise_for_status()
    cutover = world.cutover()
    world.load()
    DisableSegmentWarehouseOperator(
        task_id="disable_segment_warehouse",
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB, BACKEND],
        change_log_key=world.change_log_key,
    ).execute({"ti": Ti()})
    mark, ti = world.mark(), Ti()
    control_plane.close()
    after(OUTAGE, control_plane.open)
    started = time.monotonic()
    result, deferrals = run_step(
        release(world, destination_id, cutover, retry_budget_minutes=BUDGET / 60), ti
    )
    took = time.monotonic() - started
    assert result["released"] is True and result["upload_triggered"] is True
    assert world.rs_destination(destination_id)["config"]["manualSync"] is False
    assert [c["kind"] for c in world.rudderstack_changes(mark)] == ["api", "api", "trigger"]  # each once
    assert took >= OUTAGE - 1 and deferrals >= 1
    ended_outage(ti, "RudderStack's control plane")
    [warning] = outage_warnings(capfd)
    assert "Segment's warehouse wh_sandbox_pg is OFF since" in warning and "NOTHING loads" in warning
    print(f"[outage] release: {took:.0f} s, {deferrals} deferral(s)")


def test_the_webhook_is_created_once_through_segment_answering_html_502s(world, capfd):
    rs_source = world.make_rs_segment_source(world.make_rs_destination())
    faults = world.segment.faults
    # The creation reaches Segment and takes effect, but its answer is the load balancer's 502 page; from then
    # on every call is answered so, for the outage.
    faults.arm({"answer_lost": {"count": 1, "method": "POST", "path_prefix": "/destinations", "status": 502}})

    def storm() -> None:
        while not faults.state()["fired"].get("answer_lost"):
            time.sleep(0.02)
        faults.arm({"server_error": {"count": -1, "status": 502, "html": True}})
        time.sleep(OUTAGE)
        faults.clear()

    threading.Thread(target=storm, daemon=True).start()
    ti = Ti()
    started = time.monotonic()
    result, deferrals = run_step(
        EnsureSegmentWebhookOperator(
            task_id="ensure_webhooks",
            source_ids=[WEB],
            rudderstack_source_id=rs_source,
            change_log_key=world.change_log_key,
            transient_budget_seconds=BUDGET,
        ),
        ti,
    )
    took = time.monotonic() - started
    [webhook] = [w for w in world.webhooks() if w["name"] == "RudderStack (migration)"]  # exactly one
    assert webhook["enabled"] is True and len(webhook["mappings"]) == 1 and webhook["mappings"][0]["enabled"]
    assert result["destinations"] == {WEB: webhook["id"]}
    log = ChangeLog(world.change_log_key)
    assert log.open_intents() == []  # the creation whose answer was lost is settled from the real state
    created = log.last("segment.destination", f"{WEB}:RudderStack (migration)", "exists")
    assert created.resolved_by == "retry" and created.object_id == webhook["id"]
    assert took >= OUTAGE - 1 and deferrals >= 1
    ended_outage(ti, "Segment's Public API")
    assert len(outage_warnings(capfd)) == 1
    print(f"[outage] webhook creation: {took:.0f} s, {deferrals} deferral(s)")


def test_the_upload_and_duplicate_checks_wait_out_the_warehouse_refusing_connections(
    world, warehouse_gate, capfd
):
    destination = connected(world, RS_APP)
    released = world.cutover()
    rudderstack_event(world)
    upload_now(world, destination)  # RudderStack loads through its own connection
    seed_duplicates(world)
    warehouse_gate.close()  # the workers' connections to the warehouse are refused (a failover)
    after(OUTAGE, warehouse_gate.open)
    upload = RudderStackUploadSensor(
        task_id="wait_upload",
        source_ids=[RS_APP],
        destination_id=destination,
        loaded_after=released.isoformat(),
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        poke_interval=1.0,
        timeout=3 * BUDGET,
        transient_budget_seconds=BUDGET,
    )
    duplicates = DuplicateCheckOperator(
        task_id="duplicate_check",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        change_log_key=world.change_log_key,
        repair=True,
        transient_budget_seconds=BUDGET,
    )
    # the shape continuity and discards check before the webhook switch-off reads the same warehouse
    continuity = ShapeContinuityOperator(
        task_id="shape_checks.check_shape_continuity",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        destination_id=destination,
        cutover_at=released.isoformat(),
        released_at=released.isoformat(),
        preflight_task_id="shape.check_shape",
        min_rows=1,
        transient_budget_seconds=BUDGET,
    )
    results: dict[str, Any] = {}
    ti, shape_ti = Ti(), Ti()
    started = time.monotonic()
    both = [
        threading.Thread(target=lambda: results.update(upload=run_step(upload, Ti()))),
        threading.Thread(target=lambda: results.update(duplicates=run_step(duplicates, ti))),
        threading.Thread(target=lambda: results.update(shape=run_step(continuity, shape_ti))),
    ]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join(3 * BUDGET)
    took = time.monotonic() - started
    assert results["upload"][0]["rows_by_source"] == {RS_APP: 1}
    checked, deferrals = results["duplicates"]
    assert checked["removed"] == {"order_completed": 1, "tracks": 1} and deferrals >= 1
    assert set(world.warehouse.event_ids_by_table(world.schema)["tracks"].values()) == {1}  # one row per id
    assert len(ChangeLog(world.change_log_key).entries()) == 1  # the repair, recorded once
    ended_outage(ti, "the warehouse")
    # the outage was waited out, never read as "same shape": the check ran once the warehouse answered and saw
    # RudderStack's row (a table Segment never loaded: a new table, no finding that stops)
    shape, shape_deferrals = results["shape"]
    assert shape_deferrals >= 1 and shape["facts"]["tables"]["signed_up"]["after_rows"] == 1
    assert took >= OUTAGE - 1
    assert len(outage_warnings(capfd)) == 3  # one per step
    print(f"[outage] upload + duplicate checks: {took:.0f} s")


def test_an_outage_longer_than_the_budget_fails_the_switch_off_once_with_nothing_changed(
    world, control_plane
):
    rs_source, cutover = webhook_path(world)
    mark, ti = world.mark(), Ti()
    control_plane.close()  # and it stays down
    started = time.monotonic()
    with pytest.raises(AirflowFailException) as failed:
        run_step(switch_off(world, cutover, rs_source, transient_budget_seconds=SHORT_BUDGET), ti)
    took = time.monotonic() - started
    text = str(failed.value)
    assert "RudderStack's control plane did not answer for" in text and "budget 15 s" in text, text
    assert "Connection refused" in text or "connection refused" in text
    assert world.segment_warehouse()["enabled"] is True and warehouse_switch_offs(world, mark) == []
    assert ChangeLog(world.change_log_key).open_intents() == []
    assert SHORT_BUDGET <= took < SHORT_BUDGET + 10
    print(f"[outage] longer than the budget: failed after {took:.0f} s")
