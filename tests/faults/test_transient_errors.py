"""Finding 3 and 4 of issue 10: a sensor rides out a warehouse that refuses connections for a while and a
truncated 2xx body, fails once, naming the service, when the outage outlasts its budget (issue 24), and fails
at once (no retry, one warning at most) on a permanent configuration error.

The warehouse is the real PostgreSQL behind a TCP port that is closed, then opened (tests/faults/net.py);
Segment's truncated body comes from a real HTTP server (pytest-httpserver)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.sensors.migration import ClientAdoptionSensor, SegmentWarehouseLoadSensor
from tests.faults.net import Gate, postgres_socket, tcp_dsn
from tests.library.test_library_sensors import defer, first_event
from tests.library.world import RS_APP, WAREHOUSE_CONN, WAREHOUSE_ID, context, load_rudderstack_rows

WEBHOOK_SOURCE = "rs_src_segment_webhook"


def adoption_sensor(world, **kwargs):
    return ClientAdoptionSensor(
        task_id="adoption",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        webhook_source_id=WEBHOOK_SOURCE,
        threshold=0.10,
        window_seconds=3600,
        consecutive_checks=1,
        poke_interval=0.2,
        timeout=60,
        **kwargs,
    )


@pytest.fixture
def gated_warehouse(world, pg_dsn, monkeypatch):
    """The warehouse connection goes through a port that is closed until the test opens it."""
    gate = Gate(postgres_socket(pg_dsn))
    monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN.upper()}", tcp_dsn(pg_dsn, gate.port))
    yield gate
    gate.close()


def warnings_of(capfd) -> list[str]:
    """Warnings about observing state in what the sensor and trigger logged (Airflow logs via structlog)."""
    out, err = capfd.readouterr()
    return [line for line in (out + err).splitlines() if "warning" in line.lower() and "observe" in line]


def test_deferred_adoption_sensor_rides_out_a_warehouse_refusing_connections(world, gated_warehouse, capfd):
    load_rudderstack_rows(world, RS_APP, 20)  # 0 % through Segment: adoption holds once the warehouse answers
    # The warehouse refuses connections at the first check (in the worker): the sensor defers anyway...
    trigger = defer(adoption_sensor(world, transient_budget_seconds=30))
    assert trigger.transient_budget["errors"] == 1
    threading.Timer(
        2.0, gated_warehouse.open
    ).start()  # ...and the triggerer rides out the rest of the outage
    started = time.monotonic()
    event = first_event(trigger)
    assert event["status"] == "decided" and event["decision"]["outcome"] == "done", event
    assert event["checks"] >= 3 and time.monotonic() - started >= 1.5  # it did wait through the outage
    assert len(warnings_of(capfd)) == 1  # one warning per outage, the rest counted at INFO


def test_poking_adoption_sensor_rides_out_a_warehouse_down_at_its_first_check(world, gated_warehouse):
    load_rudderstack_rows(world, RS_APP, 20)
    threading.Timer(1.5, gated_warehouse.open).start()  # down when the task starts
    result = adoption_sensor(world, deferrable=False).execute(context())
    assert result["share"] == 0


def test_a_warehouse_down_longer_than_the_budget_fails_once_naming_it(world, gated_warehouse):
    sensor = adoption_sensor(world, transient_budget_seconds=1.0, deferrable=False)
    with pytest.raises(AirflowFailException) as raised:  # once: the budget is the policy, no retry on top
        sensor.execute(context())  # never opened
    text = str(raised.value)
    assert (
        "the warehouse did not answer: could not observe state for" in text and "Connection refused" in text
    )


def test_deferred_budget_spent_ends_the_wait_with_one_clear_failure(world, gated_warehouse):
    sensor = adoption_sensor(world, transient_budget_seconds=1.0)
    sensor.deferrable = True
    from segment_rudderstack.triggers.condition import ConditionTrigger

    trigger = ConditionTrigger(
        watch=sensor.build_watch(context()).spec(), poke_interval=0.2, transient_budget={"seconds": 1.0}
    )
    event = first_event(trigger)
    assert event["status"] == "error" and event["permanent"] is False and event["checks"] >= 2
    with pytest.raises(AirflowFailException, match="the warehouse did not answer"):
        sensor.execute_complete(context(), event)


def test_a_warehouse_login_that_does_not_exist_fails_at_once_without_retry(world, pg_dsn, monkeypatch, capfd):
    gate = Gate(postgres_socket(pg_dsn)).open()
    try:
        bad = tcp_dsn(pg_dsn, gate.port).replace("postgres:@", "nobody_here:@")
        monkeypatch.setenv(f"AIRFLOW_CONN_{WAREHOUSE_CONN.upper()}", bad)
        with pytest.raises(AirflowFailException, match="configuration error"):
            adoption_sensor(world).execute(context())
        from segment_rudderstack.triggers.condition import ConditionTrigger

        event = first_event(
            ConditionTrigger(watch=adoption_sensor(world).build_watch(context()).spec(), poke_interval=0.1)
        )
        assert event["status"] == "error" and event["permanent"] is True and event["checks"] == 1
        assert warnings_of(capfd) == []
    finally:
        gate.close()


# ------------------------------------------------------------------ Segment: truncated 2xx body, 401, 404


def segment_answer(world, path: str, **params) -> bytes:
    """Segment's real answer for ``path`` (from the emulator), as bytes."""
    import httpx

    response = httpx.get(
        f"{world.segment_url}{path}", params=params, headers={"Authorization": "Bearer sandbox-segment-token"}
    )
    response.raise_for_status()
    return response.content


def sync_answer(world) -> bytes:
    """Segment's real answer for the warehouse's syncs (from the emulator), as bytes."""
    return segment_answer(world, f"/warehouses/{WAREHOUSE_ID}/syncs", **{"pagination.count": 500})


@pytest.fixture
def segment_via(httpserver, monkeypatch):
    def point() -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SEGMENT_DEFAULT",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": httpserver.url_for("").rstrip("/"),
                    "password": "tok",
                    "extra": {"max_attempts": 1, "timeout": 5},
                }
            ),
        )

    point()
    return httpserver


def load_sensor(cutover, **kwargs):
    return SegmentWarehouseLoadSensor(
        task_id="final_load",
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        poke_interval=0.1,
        timeout=30,
        sync_list_requests_per_minute=6000,
        **kwargs,
    )


def test_one_truncated_body_on_a_200_is_ridden_out(world, segment_via):
    cutover = world.cutover()
    world.load()
    full = sync_answer(world)
    path = f"/warehouses/{WAREHOUSE_ID}/syncs"
    # The first syncs read is cut in half, the second is whole (one-shot handlers, served in this order); the
    # sensor's ETA also reads the warehouse's advanced sync schedule, answered as the emulator answers it.
    segment_via.expect_oneshot_request(path).respond_with_data(
        full[: len(full) // 2], status=200, content_type="application/json"
    )
    segment_via.expect_oneshot_request(path).respond_with_data(
        full, status=200, content_type="application/json"
    )
    schedule = f"/warehouses/{WAREHOUSE_ID}/advanced-sync-schedule"
    segment_via.expect_request(schedule).respond_with_data(
        segment_answer(world, schedule), status=200, content_type="application/json"
    )
    result = load_sensor(cutover, deferrable=False).execute(context())
    assert result, "the sensor ended without Segment's final load"
    syncs_reads = [request for request, _ in segment_via.log if request.path == path]
    assert len(syncs_reads) == 2  # the truncated answer, then the whole one: no failure, no third read
    segment_via.check_assertions()


def test_a_truncated_body_is_ridden_out_by_the_trigger_too(world, segment_via):
    cutover = world.cutover()
    world.load()
    full = sync_answer(world)
    path = f"/warehouses/{WAREHOUSE_ID}/syncs"
    segment_via.expect_ordered_request(path).respond_with_data(
        b'{"data": {"reports": [', status=200, content_type="application/json"
    )
    segment_via.expect_ordered_request(path).respond_with_data(
        full, status=200, content_type="application/json"
    )
    from segment_rudderstack.triggers.condition import ConditionTrigger

    sensor = load_sensor(cutover)
    event = first_event(ConditionTrigger(watch=sensor.build_watch(context()).spec(), poke_interval=0.1))
    assert event["status"] == "decided" and event["decision"]["outcome"] == "done", event


@pytest.mark.parametrize("status", [401, 403, 404])
def test_permanent_segment_answers_fail_at_once_without_retry(world, segment_via, status, capfd):
    path = f"/warehouses/{WAREHOUSE_ID}/syncs"
    segment_via.expect_request(path).respond_with_json(
        {"errors": [{"type": "x", "message": "nope"}]}, status=status
    )
    with pytest.raises(AirflowFailException, match=f"HTTP {status}"):
        load_sensor(world.cutover()).execute(context())
    assert len(segment_via.log) == 1  # one request: no retry by the hook, no second check
    assert warnings_of(capfd) == []


def test_a_connection_reset_mid_session_is_transient_and_a_missing_privilege_is_not(world, pg_dsn):
    import psycopg2
    from psycopg2 import sql

    from segment_rudderstack.waits.transient import is_transient

    gate = Gate(postgres_socket(pg_dsn)).open()
    connection = psycopg2.connect(tcp_dsn(pg_dsn, gate.port))
    try:
        gate.close()  # the server side of the session goes away (a restart, a proxy reset)
        with pytest.raises(psycopg2.Error) as reset:
            connection.cursor().execute("SELECT 1")
        assert is_transient(reset.value), reset.value
    finally:
        connection.close()
    world.warehouse.ensure_schema(world.schema)
    with psycopg2.connect(pg_dsn) as admin, admin.cursor() as cur:
        cur.execute("CREATE ROLE transient_probe_nopriv LOGIN")
    try:
        with (
            pytest.raises(psycopg2.Error) as denied,
            psycopg2.connect(pg_dsn.replace("postgres:@", "transient_probe_nopriv:@")) as c,
            c.cursor() as cur,
        ):
            cur.execute(sql.SQL("SELECT * FROM {}.nothing").format(sql.Identifier(world.schema)))
        assert "permission denied" in str(denied.value) and not is_transient(denied.value), denied.value
    finally:
        with psycopg2.connect(pg_dsn) as admin, admin.cursor() as cur:
            cur.execute("DROP ROLE transient_probe_nopriv")
