# ruff: noqa: S608 - the schema names in these queries are made by the tests themselves
"""Segment's documented warehouse rules (segment-docs warehouses/schema.md), checked from outside: events sent
with the real segment-analytics-python to the Segment emulator, a load, then rows read from PostgreSQL."""

from __future__ import annotations

import psycopg2

from tests.sandbox.test_segment_loads import WH, sdk, world  # noqa: F401 - `world` is a fixture


def _query(dsn: str, statement: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


def _columns(dsn: str, schema: str, table: str) -> dict[str, str]:
    query = "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
    return dict(_query(dsn, query, (schema, table)))


def test_names_are_go_snakecase_nested_objects_flattened_arrays_stringified(world, pg_dsn):  # noqa: F811
    emulator, url, _, schema, _ = world()
    client = sdk(url)
    client.track(
        "user-1", "Product Viewed", {"XMLHttpRequest": 1, "product": {"skuCode": "A-1"}, "tags": ["a", "b"]}
    )
    client.flush()
    emulator.run_load(WH)
    columns = _columns(pg_dsn, schema, "product_viewed")
    assert "xmlhttp_request" in columns  # RudderStack writes `xml_http_request`
    assert "product_sku_code" in columns
    assert columns["tags"] == "text"
    assert _query(pg_dsn, f'SELECT tags FROM "{schema}".product_viewed') == [('["a", "b"]',)]
    assert "loaded_at" not in _columns(pg_dsn, schema, "tracks")  # BigQuery only


def test_users_have_no_anonymous_id_column(world, pg_dsn):  # noqa: F811
    emulator, url, _, schema, _ = world()
    client = sdk(url)
    client.identify("user-2", {"plan": "pro"}, anonymous_id="anon-2")
    client.flush()
    emulator.run_load(WH)
    assert "anonymous_id" not in _columns(pg_dsn, schema, "users")
    assert _query(pg_dsn, f'SELECT id, plan FROM "{schema}".users') == [("user-2", "pro")]
    assert _query(pg_dsn, f'SELECT anonymous_id FROM "{schema}".identifies') == [("anon-2",)]


def test_strings_are_cut_at_512_characters(world, pg_dsn):  # noqa: F811
    emulator, url, _, schema, _ = world()
    client = sdk(url)
    client.track("user-3", "Note Saved", {"body": "x" * 600})
    client.flush()
    emulator.run_load(WH)
    assert _query(pg_dsn, f'SELECT length(body) FROM "{schema}".note_saved') == [(512,)]


def test_the_first_value_sets_the_type_and_later_values_lose_precision(world, pg_dsn):  # noqa: F811
    emulator, url, _, schema, _ = world()
    client = sdk(url)
    client.track("user-4", "Cart Viewed", {"items": 3}, message_id="first")
    client.flush()
    emulator.run_load(WH)
    client.track("user-4", "Cart Viewed", {"items": 7.9}, message_id="second")
    client.flush()
    emulator.run_load(WH)
    assert _columns(pg_dsn, schema, "cart_viewed")["items"] == "bigint"
    assert dict(_query(pg_dsn, f'SELECT id, items FROM "{schema}".cart_viewed')) == {"first": 3, "second": 7}
