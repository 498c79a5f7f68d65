# ruff: noqa: S608 - the schema names in these queries are made by the tests themselves
"""rudder-server's warehouse loader rules, checked from outside: a destination created through the control
plane, events sent with the real rudder-sdk-python to /v1/batch, an upload triggered over HTTP, then rows read
from PostgreSQL. One test per rule; the rules and their rudder-server sources: docs/real-services.md."""

from __future__ import annotations

import psycopg2
import pytest
import requests
from rudderstack.analytics import Client as RudderClient

from sandbox.rudderstack_definitions import accepted_config
from tests.sandbox.test_rudderstack_uploads import AUTH, _finish

WRITE_KEY = "wk_rs_backend"
SOURCE = "rs_src_backend"


def _destination(url: str, namespace: str, **config) -> dict:
    """A destination the control plane accepts; the loader flags only as given (absent keys read as false)."""
    full = accepted_config(namespace, **config)
    for flag in ("skipUsersTable", "allowUsersContextTraits", "preferAppend"):
        if flag not in config:
            full.pop(flag, None)
    dest = requests.post(
        f"{url}/v2/destinations",
        json={
            "name": "wh",
            "type": "POSTGRES",
            "config": full,
        },
        headers=AUTH,
        timeout=5,
    ).json()["destination"]
    connection = {"sourceId": SOURCE, "destinationId": dest["id"]}
    requests.post(f"{url}/v2/connections", json=connection, headers=AUTH, timeout=5).raise_for_status()
    return dest


def _send(url: str, calls: list[tuple[str, dict]]) -> None:
    """Each call through the real SDK (sync mode: one gzip /v1/batch per call)."""
    client = RudderClient(WRITE_KEY, host=url, sync_mode=True, gzip=True, max_retries=0)
    for method, kwargs in calls:
        getattr(client, method)(**kwargs)


def _upload(emulator, url: str, dest: dict) -> dict:
    body = {"source_id": SOURCE, "destination_id": dest["id"]}
    requests.post(f"{url}/internal/v1/warehouse/trigger-upload", json=body, timeout=5).raise_for_status()
    emulator.schedule_once()
    upload = _finish(emulator, dest["id"])
    assert upload["status"] == "exported_data", upload
    return upload


def _query(dsn: str, statement: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


def _columns(dsn: str, schema: str, table: str) -> dict[str, str]:
    rows = _query(
        dsn,
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    )
    return dict(rows)


def _track(message_id: str, event: str = "Order Completed", **properties) -> tuple[str, dict]:
    return ("track", {"user_id": "u1", "event": event, "properties": properties, "message_id": message_id})


@pytest.fixture
def rudder(make_rudderstack, pg_dsn):
    emulator, url = make_rudderstack()
    return emulator, url, pg_dsn


def test_namespace_is_snake_cased_so_web_v2_is_written_as_web_v_2(rudder, namespace):
    emulator, url, dsn = rudder
    configured = f"{namespace}_web_v2"
    dest = _destination(url, configured)
    _send(url, [_track("ns-1")])
    _upload(emulator, url, dest)
    schemas = {r[0] for r in _query(dsn, "SELECT schema_name FROM information_schema.schemata")}
    assert f"{namespace}_web_v_2" in schemas
    assert configured not in schemas


def test_names_follow_rudder_snake_case_not_segment_go_snakecase(rudder, namespace):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace)
    long_key = "a_very_long_property_name_that_goes_on_and_on_past_sixty_three_characters"
    props = {"XMLHttpRequest": 1, "_private_note": "x", "2fa Enabled": True, "order": "o-1", long_key: "v"}
    _send(url, [_track("names-1", **props)])
    _upload(emulator, url, dest)
    columns = _columns(dsn, namespace, "order_completed")
    assert "xml_http_request" in columns  # Segment's go-snakecase writes `xmlhttp_request`
    assert "_private_note" in columns  # a leading underscore is kept
    assert "_2fa_enabled" in columns  # a leading digit gets a `_` prefix
    assert "_order" in columns and "order" not in columns  # a PostgreSQL reserved word gets a `_` prefix
    assert long_key[:63] in columns  # cut at 63 characters on PostgreSQL


def test_track_event_named_like_a_standard_table_goes_to_underscore_table(rudder, namespace):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace)
    _send(url, [_track("tbl-1", event="Pages"), _track("tbl-2", event="identifies")])
    _upload(emulator, url, dest)
    tables = {
        r[0]
        for r in _query(
            dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (namespace,)
        )
    }
    assert {"_pages", "_identifies", "tracks"} <= tables
    assert "pages" not in tables and "identifies" not in tables


def test_types_come_from_values_and_dates_are_rewritten(rudder, namespace):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace)
    props = {"whole": 3.0, "ratio": 2.5, "flag": True, "day": "2024-05-01", "tags": ["a", "b"]}
    _send(url, [_track("types-1", **props)])
    _upload(emulator, url, dest)
    columns = _columns(dsn, namespace, "order_completed")
    assert columns["whole"] == "bigint"  # a whole float is an int
    assert columns["ratio"] == "numeric"
    assert columns["flag"] == "boolean"
    assert columns["day"] == "timestamp with time zone"
    assert columns["tags"] == "text"  # arrays are JSON text
    [(day, tags, whole)] = _query(dsn, f'SELECT day::text, tags, whole FROM "{namespace}".order_completed')
    assert day.startswith("2024-05-01 00:00:00") and tags == '["a","b"]' and whole == 3


def test_string_into_existing_bigint_column_is_null_with_a_discards_row(rudder, namespace):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace)
    _send(url, [_track("clash-1", price=5)])
    _upload(emulator, url, dest)
    _send(url, [_track("clash-2", price="five")])
    _upload(emulator, url, dest)
    rows = dict(_query(dsn, f'SELECT id, price FROM "{namespace}".order_completed'))
    assert rows == {"clash-1": 5, "clash-2": None}  # the row loads, the value does not
    discards = _query(
        dsn,
        f"SELECT table_name, row_id, column_name, column_value, reason, received_at IS NOT NULL, "
        f'uuid_ts IS NOT NULL FROM "{namespace}".rudder_discards',
    )
    assert (
        "order_completed",
        "clash-2",
        "price",
        "five",
        "incompatible schema conversion from int to string",
        True,
        True,
    ) in discards


def test_existing_type_wins_by_conversion_where_rudder_server_converts(rudder, namespace):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace)
    _send(url, [_track("conv-1", qty=5, label="first", amount=1.5)])
    _upload(emulator, url, dest)
    _send(url, [_track("conv-2", qty=7.9, label=12, amount=2)])
    _upload(emulator, url, dest)
    rows = {
        r[0]: r[1:] for r in _query(dsn, f'SELECT id, qty, label, amount FROM "{namespace}".order_completed')
    }
    assert rows["conv-2"] == (
        7,
        "12",
        2,
    )  # int <- float truncated; string <- int stringified; float <- int cast
    assert _query(dsn, "SELECT to_regclass(%s)", (f'"{namespace}".rudder_discards',)) == [(None,)]


def test_rudderstack_adds_its_own_columns(rudder, namespace):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace)
    ip_call = (
        "track",
        {"user_id": "u2", "event": "Signed In", "context": {"ip": "203.0.113.9"}, "message_id": "ip-2"},
    )
    _send(url, [_track("cols-1"), ip_call])
    _upload(emulator, url, dest)
    columns = _columns(dsn, namespace, "tracks")
    assert "loaded_at" not in columns  # BigQuery only
    got = {
        r[0]: r[1:]
        for r in _query(
            dsn,
            "SELECT id, context_ip, context_request_ip, context_passed_ip, context_source_id, context_source_type, "
            f'context_destination_id, context_destination_type, channel, uuid_ts IS NOT NULL FROM "{namespace}".tracks',
        )
    }
    assert got["cols-1"] == (
        "127.0.0.1",
        "127.0.0.1",
        None,
        SOURCE,
        "HTTP",
        dest["id"],
        "POSTGRES",
        "server",
        True,
    )
    assert got["ip-2"][:3] == ("203.0.113.9", "127.0.0.1", "203.0.113.9")


def test_received_at_is_receive_time_and_timestamp_is_derived(rudder, namespace):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace)
    event = {
        "userId": "u3",
        "event": "Signed In",
        "messageId": "time-1",
        "receivedAt": "2020-01-01T00:00:00.000Z",  # a client's value: replaced
        "sentAt": "2020-01-01T00:00:10.000Z",
        "originalTimestamp": "2020-01-01T00:00:04.000Z",  # 6 s before sentAt
    }
    requests.post(f"{url}/v1/track", json=event, auth=(WRITE_KEY, ""), timeout=5).raise_for_status()
    _upload(emulator, url, dest)
    [(received, timestamp)] = _query(dsn, f'SELECT received_at, "timestamp" FROM "{namespace}".tracks')
    assert received.year >= 2025
    assert (received - timestamp).total_seconds() == pytest.approx(6, abs=0.002)


def test_users_only_from_identifies_with_user_id_and_skip_users_table_off(rudder, namespace, pg_dsn):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace)  # no skipUsersTable key: rudder-server reads false
    calls = [
        ("identify", {"user_id": "u4", "traits": {"plan": "pro"}, "message_id": "id-1"}),
        ("identify", {"anonymous_id": "anon-only", "traits": {"plan": "free"}, "message_id": "id-2"}),
    ]
    _send(url, calls)
    _upload(emulator, url, dest)
    users = _query(dsn, f'SELECT id, context_traits_plan, anonymous_id FROM "{namespace}".users')
    assert users == [("u4", "pro", None)]  # traits sent in context.traits stay context_traits_*
    assert "plan" not in _columns(dsn, namespace, "identifies")

    skipping = f"{namespace}_skip"
    dest2 = _destination(url, skipping, skipUsersTable=True)
    _send(url, [("identify", {"user_id": "u5", "traits": {"plan": "pro"}, "message_id": "id-3"})])
    _upload(emulator, url, dest2)
    assert _query(dsn, "SELECT to_regclass(%s)", (f'"{skipping}".users',)) == [(None,)]


def test_allow_users_context_traits_writes_plain_trait_columns(rudder, namespace):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace, allowUsersContextTraits=True)
    _send(url, [("identify", {"user_id": "u6", "traits": {"plan": "business"}, "message_id": "id-6"})])
    _upload(emulator, url, dest)
    assert _query(dsn, f'SELECT id, plan FROM "{namespace}".users') == [("u6", "business")]


def test_merge_when_prefer_append_is_absent(rudder, namespace):
    emulator, url, dsn = rudder
    dest = _destination(url, namespace)  # no preferAppend key: rudder-server reads false, so it merges
    _send(url, [_track("merge-1")])
    _upload(emulator, url, dest)
    _send(url, [_track("merge-1")])
    _upload(emulator, url, dest)
    assert _query(dsn, f'SELECT count(*) FROM "{namespace}".tracks') == [(1,)]
