"""Behaviour of the warehouse dialects on a real PostgreSQL and on Snowflake through fakesnow.

Every test runs on both warehouses (the ``warehouse`` fixture is parametrized).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from segment_rudderstack.dialects import AdoptionSample, DuplicateCount

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WEBHOOK_SOURCE = "2abcWebhookSourceId"
SDK_SOURCE = "2xyzHttpSourceId"


def event(
    msg_id, received_at, *, source=SDK_SOURCE, library="rudder-analytics-python", payload="p", uuid_ts=None
):
    return {
        "id": msg_id,
        "anonymous_id": "anon-" + msg_id,
        "user_id": "user-1",
        "event": "Order Completed",
        "received_at": received_at,
        "uuid_ts": uuid_ts or received_at + timedelta(minutes=5),
        "context_library_name": library,
        "context_source_id": source,
        "payload": payload,
    }


def repair(warehouse, schema, tables):
    """``repair_duplicates``, except where fakesnow cannot run it.

    The Snowflake repair makes the target schema current (``USE SCHEMA``) for its temporary table; fakesnow
    0.12 cannot run ``USE SCHEMA`` on a name holding a double quote (a DuckDB parser error; real Snowflake
    accepts any quoted name). There the known fakesnow error is expected and ``None`` returned.
    """
    if warehouse.kind == "snowflake" and '"' in schema:
        from snowflake.connector.errors import ProgrammingError

        with pytest.raises(ProgrammingError, match="Unterminated quote in qualified name"):
            warehouse.dialect.repair_duplicates(schema, tables)
        return None
    return warehouse.dialect.repair_duplicates(schema, tables)


# ------------------------------------------------------------------------------------------ catalog
def test_inventory_uses_segment_names_whatever_case_the_warehouse_stored(warehouse, unique):
    schema = warehouse.create_schema(f"segment_prod_{unique}")
    for table in ("tracks", "identifies", "order_completed"):
        warehouse.create_table(schema, table)
    dialect = warehouse.dialect

    # the user writes the schema as Segment shows it (lower case); Snowflake stored it upper case
    assert dialect.schema_exists(f"segment_prod_{unique}")
    assert dialect.schema_exists(f"SEGMENT_PROD_{unique}")
    assert dialect.list_tables(f"segment_prod_{unique}") == {"tracks", "identifies", "order_completed"}
    columns = dialect.list_columns(f"segment_prod_{unique}", ["tracks", "pages"])
    assert list(columns) == ["tracks"]
    assert set(columns["tracks"]) >= {"id", "received_at", "uuid_ts", "context_source_id"}


def test_missing_schema_is_empty_not_an_error(warehouse, unique):
    dialect = warehouse.dialect
    assert not dialect.schema_exists(f"nowhere_{unique}")
    assert dialect.list_tables(f"nowhere_{unique}") == set()
    assert dialect.list_columns(f"nowhere_{unique}") == {}
    assert dialect.count_duplicates(f"nowhere_{unique}", ["tracks"]) == {}


@pytest.mark.parametrize("name", ["Segment Prod", 'weird"quote', "100%_sure", "MixedCase"])
def test_unusual_schema_names_are_used_verbatim(warehouse, unique, name):
    schema = warehouse.create_schema(f"{name} {unique}")
    warehouse.create_table(schema, "tracks")
    warehouse.insert(schema, "tracks", [event("m1", NOW), event("m1", NOW), event("m2", NOW)])
    dialect = warehouse.dialect

    assert dialect.schema_exists(schema)
    assert dialect.list_tables(schema) == {"tracks"}
    assert dialect.count_duplicates(schema, ["tracks"]) == {"tracks": DuplicateCount(1, 1)}
    before = warehouse.rows(schema, "tracks")
    removed = repair(warehouse, schema, ["tracks"])
    if removed is None:  # fakesnow cannot run this repair (see repair()): it failed before any change
        assert warehouse.rows(schema, "tracks") == before
    else:
        assert removed == {"tracks": 1}
        assert [r[0] for r in warehouse.rows(schema, "tracks")] == ["m1", "m2"]


def test_sql_injection_in_a_schema_name_is_only_an_identifier(warehouse, unique):
    victim = warehouse.create_schema(f"victim_{unique}")
    warehouse.create_table(victim, "tracks")
    warehouse.insert(victim, "tracks", [event("v1", NOW), event("v1", NOW)])
    quoted_victim = warehouse.qt(victim, "tracks")
    attack = f'x"; DROP TABLE {quoted_victim}; --'
    dialect = warehouse.dialect

    # not a schema: every operation treats it as a (missing) name and touches nothing
    assert not dialect.schema_exists(attack)
    assert dialect.list_tables(attack) == set()
    assert dialect.repair_duplicates(attack, ["tracks"]) == {}
    sample = dialect.adoption_share(
        attack, webhook_source_id=WEBHOOK_SOURCE, since=NOW - timedelta(hours=1), until=NOW
    )
    assert sample.total == 0 and sample.share is None

    # a schema really named like the attack is read and repaired as itself
    hostile = warehouse.create_schema(attack)
    warehouse.create_table(hostile, "tracks")
    warehouse.insert(hostile, "tracks", [event("h1", NOW), event("h1", NOW)])
    assert dialect.list_tables(attack) == {"tracks"}
    assert dialect.count_duplicates(attack, ["tracks"]) == {"tracks": DuplicateCount(1, 1)}
    removed = repair(warehouse, attack, ["tracks"])
    assert removed in ({"tracks": 1}, None)  # None: fakesnow cannot run it (see repair())
    assert len(warehouse.rows(hostile, "tracks")) == (1 if removed else 2)

    assert dialect.list_tables(victim) == {"tracks"}
    assert len(warehouse.rows(victim, "tracks")) == 2


# ----------------------------------------------------------------------------------------- adoption
def test_adoption_share_counts_only_the_window(warehouse, unique):
    schema = warehouse.create_schema(f"adoption_{unique}")
    warehouse.create_table(schema, "tracks")
    warehouse.create_table(schema, "pages")
    since, until = NOW - timedelta(hours=1), NOW
    warehouse.insert(
        schema,
        "tracks",
        [
            # in the window: 1 of 4 still through Segment's webhook, 2 from the old SDK
            event("t1", since, source=WEBHOOK_SOURCE, library="analytics-python"),
            event("t2", since + timedelta(minutes=10), library="analytics-python"),
            event("t3", since + timedelta(minutes=30)),
            # outside the window (old webhook traffic and the exact end instant): not counted
            event("old1", since - timedelta(seconds=1), source=WEBHOOK_SOURCE),
            event("old2", since - timedelta(days=3), source=WEBHOOK_SOURCE),
            event("late", until, source=WEBHOOK_SOURCE),
        ],
    )
    warehouse.insert(schema, "pages", [event("p1", until - timedelta(seconds=1))])

    sample = warehouse.dialect.adoption_share(
        schema,
        webhook_source_id=WEBHOOK_SOURCE,
        since=since,
        until=until,
        library_names=["analytics-python"],
    )
    assert isinstance(sample, AdoptionSample)
    assert (sample.total, sample.via_segment, sample.share) == (4, 1, 0.25)
    assert (sample.via_library, sample.library_share) == (2, 0.5)
    assert set(sample.tables) == {"tracks", "pages"}
    assert set(sample.missing_tables) == {"screens", "identifies"}
    assert (sample.since, sample.until) == (since, until)


def test_adoption_share_before_rudderstack_wrote_context_source_id(warehouse, unique):
    schema = warehouse.create_schema(f"segment_only_{unique}")
    segment_columns = ["id", "anonymous_id", "user_id", "received_at", "uuid_ts", "context_library_name"]
    warehouse.create_table(schema, "tracks", segment_columns)
    warehouse.create_table(schema, "identifies")  # empty
    rows = [
        {k: v for k, v in event(msg_id, NOW - timedelta(minutes=3)).items() if k in segment_columns}
        for msg_id in ("s1", "s2")
    ]
    warehouse.insert(schema, "tracks", rows)

    sample = warehouse.dialect.adoption_share(
        schema, webhook_source_id=WEBHOOK_SOURCE, since=NOW - timedelta(hours=1), until=NOW
    )
    assert (sample.total, sample.via_segment, sample.share) == (2, 0, 0.0)
    assert sample.via_library is None


def test_adoption_share_of_empty_tables_has_no_share(warehouse, unique):
    schema = warehouse.create_schema(f"empty_{unique}")
    warehouse.create_table(schema, "tracks")
    sample = warehouse.dialect.adoption_share(
        schema, webhook_source_id=WEBHOOK_SOURCE, since=NOW - timedelta(hours=1), until=NOW
    )
    assert (sample.total, sample.via_segment, sample.share) == (0, 0, None)


def test_adoption_share_rejects_naive_or_reversed_windows(warehouse, unique):
    schema = warehouse.create_schema(f"naive_{unique}")
    dialect = warehouse.dialect
    with pytest.raises(ValueError, match="timezone-aware"):
        dialect.adoption_share(
            schema, webhook_source_id=WEBHOOK_SOURCE, since=datetime(2025, 1, 1), until=NOW
        )
    with pytest.raises(ValueError, match="since must be before until"):
        dialect.adoption_share(schema, webhook_source_id=WEBHOOK_SOURCE, since=NOW, until=NOW)


# --------------------------------------------------------------------------------------- duplicates
def _seed_duplicates(warehouse, schema):
    warehouse.create_table(schema, "tracks")
    warehouse.create_table(schema, "pages")  # empty
    t0 = NOW - timedelta(hours=2)
    identical = event("same", t0, payload="x")
    warehouse.insert(
        schema,
        "tracks",
        [
            identical,
            identical,
            identical,  # three identical rows: two extra
            event("newer", t0, payload="first"),
            event("newer", t0 + timedelta(seconds=5), payload="latest"),  # latest received_at wins
            event("tie", t0, payload="early-load", uuid_ts=t0 + timedelta(minutes=1)),
            event("tie", t0, payload="late-load", uuid_ts=t0 + timedelta(minutes=9)),  # tie -> latest uuid_ts
            event("single", t0, payload="alone"),
            event("old", t0 - timedelta(days=10), payload="a"),
            event("old", t0 - timedelta(days=10), payload="b"),  # before the overlap window
        ],
    )
    return t0


def test_count_duplicates_identical_and_differing_copies(warehouse, unique):
    schema = warehouse.create_schema(f"dups_{unique}")
    t0 = _seed_duplicates(warehouse, schema)
    dialect = warehouse.dialect

    assert dialect.count_duplicates(schema, ["tracks", "pages", "screens"]) == {
        "tracks": DuplicateCount(ids_with_duplicates=4, extra_rows=5),
        "pages": DuplicateCount(0, 0),
    }
    # only the overlap window: the old duplicate is outside it
    assert dialect.count_duplicates(schema, ["tracks"], since=t0) == {"tracks": DuplicateCount(3, 4)}


def test_repair_keeps_exactly_one_row_per_id(warehouse, unique):
    schema = warehouse.create_schema(f"repair_{unique}")
    t0 = _seed_duplicates(warehouse, schema)
    dialect = warehouse.dialect

    assert dialect.repair_duplicates(schema, ["tracks", "pages", "screens"], since=t0) == {
        "tracks": 4,
        "pages": 0,
    }
    payload_by_id = {}
    for msg_id, _, payload in warehouse.rows(schema, "tracks"):
        payload_by_id.setdefault(msg_id, []).append(payload)
    assert payload_by_id == {
        "same": ["x"],
        "newer": ["latest"],
        "tie": ["late-load"],
        "single": ["alone"],
        "old": ["a", "b"],  # outside the window: left alone
    }
    # a second run finds nothing; without a window the old pair is repaired too
    assert dialect.repair_duplicates(schema, ["tracks"], since=t0) == {"tracks": 0}
    assert dialect.repair_duplicates(schema, ["tracks"]) == {"tracks": 1}
    assert dialect.count_duplicates(schema, ["tracks"]) == {"tracks": DuplicateCount(0, 0)}
    assert len(warehouse.rows(schema, "tracks")) == 5


def test_what_a_repair_would_remove_is_counted_without_changing_anything(warehouse, unique):
    # A dry run of the duplicate check counts (the SQL layer has no dry-run mode): the count is the rows a
    # repair would remove, and counting changes nothing.
    schema = warehouse.create_schema(f"dry_{unique}")
    _seed_duplicates(warehouse, schema)
    before = warehouse.rows(schema, "tracks")

    assert warehouse.dialect.count_duplicates(schema, ["tracks"])["tracks"].extra_rows == 5
    assert warehouse.rows(schema, "tracks") == before


def test_repair_refuses_a_window_on_a_table_without_received_at(warehouse, unique):
    schema = warehouse.create_schema(f"norecv_{unique}")
    warehouse.create_table(schema, "users", ["id", "payload"])
    warehouse.insert(schema, "users", [{"id": "u1", "payload": "a"}, {"id": "u1", "payload": "b"}])
    with pytest.raises(ValueError, match="no received_at column"):
        warehouse.dialect.repair_duplicates(schema, ["users"], since=NOW)
    assert len(warehouse.rows(schema, "users", ("id", "payload"))) == 2
    # without a window, users (one row per user id) is repaired to one row
    assert warehouse.dialect.repair_duplicates(schema, ["users"]) == {"users": 1}


# ------------------------------------------------------------------------------------ column report
def test_compare_columns_reports_what_differs(warehouse, unique):
    schema = warehouse.create_schema(f"cols_{unique}")
    warehouse.create_table(schema, "tracks", ["id", "received_at", "context_source_id", "payload"])
    actual = warehouse.dialect.list_columns(schema)
    expected = {
        "tracks": {
            "id": "string",
            "received_at": "timestamp",
            "context_source_id": "varchar(512)",
            "payload": "bigint",  # the warehouse has a string column here
            "context_destination_id": "string",
        },
        "pages": {"id": "string"},
    }
    differences = warehouse.dialect.compare_columns(expected, actual)
    summary = [(d.table, d.column, d.kind) for d in differences]
    assert summary == [
        ("pages", None, "missing_table"),
        ("tracks", "context_destination_id", "missing_column"),
        ("tracks", "payload", "type_mismatch"),
    ]
    assert "payload" in differences[2].describe() and "number" in differences[2].describe()
