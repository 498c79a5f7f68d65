"""Warehouse.load against a real PostgreSQL: Segment's layout, append vs merge semantics."""

from __future__ import annotations

import itertools
import time

import pytest

from sandbox.warehouse import Warehouse, snake_case

_n = itertools.count(1)


@pytest.fixture
def schema() -> str:
    return f"wh_test_{int(time.time() * 1000) % 10_000_000}_{next(_n)}"


@pytest.fixture
def wh(pg_dsn: str) -> Warehouse:
    return Warehouse(pg_dsn)


def track(mid: str, received: str, **props) -> dict:
    return {
        "messageId": mid,
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "properties": props,
        "receivedAt": received,
        "sentAt": received,
        "timestamp": received,
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}, "userAgent": "pytest"},
    }


def rows(wh: Warehouse, schema: str, table: str, columns: str) -> list[tuple]:
    conn = wh.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f'SELECT {columns} FROM "{schema}"."{table}" ORDER BY 1')  # noqa: S608 - test-made names
            return cur.fetchall()
    finally:
        conn.close()


def test_track_lands_in_tracks_and_event_table_with_segment_columns(wh, schema):
    result = wh.load(
        schema,
        [track("m1", "2025-03-01T10:00:00.000Z", revenue=12.5, qty=2, gift=True, product={"sku": "A-1"})],
        merge=False,
    )

    assert result.rows_by_table == {"tracks": 1, "order_completed": 1}
    assert result.events_loaded == 1
    tracks = wh.columns(schema, "tracks")
    for column in (
        "id",
        "anonymous_id",
        "user_id",
        "received_at",
        "sent_at",
        "timestamp",
        "original_timestamp",
        "uuid_ts",
        "event",
        "event_text",
        "context_library_name",
        "context_user_agent",
    ):
        assert column in tracks
    assert tracks["received_at"] == "timestamptz"
    assert "revenue" not in tracks  # properties live in the per-event table only
    event_table = wh.columns(schema, "order_completed")
    assert (event_table["revenue"], event_table["qty"], event_table["gift"], event_table["product_sku"]) == (
        "double precision",
        "bigint",
        "boolean",
        "text",
    )
    assert rows(wh, schema, "tracks", "id, event, event_text, context_library_name") == [
        ("m1", "order_completed", "Order Completed", "analytics-python")
    ]
    assert rows(wh, schema, "order_completed", "id, revenue, qty, gift, product_sku") == [
        ("m1", 12.5, 2, True, "A-1")
    ]


def test_append_keeps_every_copy(wh, schema):
    wh.load(schema, [track("m1", "2025-03-01T10:00:00.000Z")], merge=False)
    wh.load(
        schema,
        [track("m1", "2025-03-01T10:00:00.000Z"), track("m1", "2025-03-01T10:00:01.000Z")],
        merge=False,
    )

    assert wh.event_ids(schema)["m1"] == 3
    assert wh.count_rows(schema, "order_completed") == 3


def test_merge_dedupes_the_batch_on_id_latest_received_at_wins(wh, schema):
    result = wh.load(
        schema,
        [
            track("m1", "2025-03-01T10:00:05.000Z", revenue=2),
            track("m1", "2025-03-01T10:00:01.000Z", revenue=1),
            track("m2", "2025-03-01T10:00:02.000Z", revenue=7),
        ],
        merge=True,
    )

    assert result.deduplicated_in_batch == 1
    assert rows(wh, schema, "order_completed", "id, revenue") == [("m1", 2), ("m2", 7)]


def test_merge_deletes_rows_with_the_same_id_in_every_table_first(wh, schema):
    wh.load(
        schema,
        [
            track("m1", "2025-03-01T10:00:00.000Z", revenue=1),
            track("m2", "2025-03-01T10:00:00.000Z", revenue=5),
        ],
        merge=False,
    )

    result = wh.load(
        schema,
        [track("m1", "2025-03-01T10:00:00.000Z", revenue=1)],
        merge=True,
        extra_columns={"context_source_id": "rs_src_app", "context_destination_type": "POSTGRES"},
    )

    assert result.deleted_by_table == {"tracks": 1, "order_completed": 1}
    assert wh.event_ids(schema) == {"m1": 1, "m2": 1}
    assert rows(wh, schema, "tracks", "id, context_source_id, context_destination_type") == [
        ("m1", "rs_src_app", "POSTGRES"),
        ("m2", None, None),
    ]
    assert wh.count_rows(schema, "order_completed") == 2


def test_identify_upserts_users_and_keeps_earlier_traits(wh, schema):
    base = {"type": "identify", "userId": "u9", "receivedAt": "2025-03-01T10:00:00.000Z"}
    wh.load(
        schema,
        [{**base, "messageId": "i1", "traits": {"email": "a@example.com", "plan": "free"}}],
        merge=False,
    )
    wh.load(schema, [{**base, "messageId": "i2", "traits": {"plan": "pro", "seats": 3}}], merge=False)

    assert rows(wh, schema, "users", "id, email, plan, seats") == [("u9", "a@example.com", "pro", 3)]
    assert rows(wh, schema, "identifies", "id, plan") == [("i1", "free"), ("i2", "pro")]


def test_every_event_type_has_its_table_and_bad_events_are_rejected_not_written(wh, schema):
    at = "2025-03-01T10:00:00.000Z"
    events = [
        {
            "messageId": "p1",
            "type": "page",
            "anonymousId": "a",
            "name": "Home",
            "properties": {"url": "http://x"},
            "receivedAt": at,
        },
        {"messageId": "s1", "type": "screen", "anonymousId": "a", "name": "Cart", "receivedAt": at},
        {
            "messageId": "g1",
            "type": "group",
            "userId": "u",
            "groupId": "acme",
            "traits": {"size": 10},
            "receivedAt": at,
        },
        {"messageId": "a1", "type": "alias", "userId": "u", "previousId": "a", "receivedAt": at},
        {"messageId": "x1", "type": "bogus", "userId": "u"},
    ]
    result = wh.load(schema, events, merge=False)

    assert result.rows_by_table == {"pages": 1, "screens": 1, "groups": 1, "aliases": 1}
    assert [r["messageId"] for r in result.rejected] == ["x1"]
    assert rows(wh, schema, "groups", "id, group_id, size") == [("g1", "acme", 10)]
    assert rows(wh, schema, "aliases", "id, previous_id") == [("a1", "a")]
    assert rows(wh, schema, "pages", "id, name, url") == [("p1", "Home", "http://x")]


def test_new_keys_add_columns_and_hostile_names_stay_identifiers(wh, schema):
    wh.load(schema, [track("m1", "2025-03-01T10:00:00.000Z", plain=1)], merge=False)
    hostile = 'x"; DROP TABLE tracks; --'
    wh.load(schema, [track("m2", "2025-03-01T10:00:00.000Z", **{hostile: "v"}, later=2)], merge=False)

    columns = wh.columns(schema, "order_completed")
    assert "later" in columns and snake_case(hostile) in columns
    assert wh.count_rows(schema, "tracks") == 2


def test_event_ids_count_tracks_once_not_per_event_table(wh, schema):
    wh.load(
        schema,
        [
            track("m1", "2025-03-01T10:00:00.000Z"),
            {"messageId": "p1", "type": "page", "anonymousId": "a", "receivedAt": "2025-03-01T10:00:00Z"},
        ],
        merge=False,
    )

    assert wh.event_ids(schema) == {"m1": 1, "p1": 1}
