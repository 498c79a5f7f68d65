"""The shape-continuity check's warehouse reads on PostgreSQL and on Snowflake (fakesnow): the schema snapshot,
per-column fill split by loader and client library, value samples, RudderStack's discards and rows by message id.

Every test runs on both warehouses (the ``warehouse`` fixture is parametrized); on Snowflake the tables and
columns are stored upper case, as unquoted DDL stores them, and the results still use Segment's lower-case names.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from segment_rudderstack.dialects import shape_queries
from segment_rudderstack.dialects.session import Session
from segment_rudderstack.dialects.shape_queries import (
    DiscardGroup,
    FillRow,
    SchemaSnapshot,
    column_fill,
    discards_since,
    schema_snapshot,
    value_sample,
    values_by_id,
)
from segment_rudderstack.dialects.sql import SqlText, compose, join_sql
from tests.warehouse.test_dialects import event

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # the cutover
BEFORE = (T0 - timedelta(hours=1), T0)
AFTER = (T0, T0 + timedelta(hours=1))
DEST = "2rudderDestinationId"
FILL_COLUMNS = [
    "id",
    "context_destination_id",
    "context_library_name",
    "context_traits_email",
    "context_app_build",
    "payload",
]


def bulk_insert(warehouse, schema: str, table: str, rows: list[dict], per_statement: int = 400) -> None:
    """Multi-row INSERTs (the fixture's row-by-row insert is slow for thousands of rows on fakesnow)."""
    cols = list(rows[0])
    with warehouse.dialect.session() as s:
        for at in range(0, len(rows), per_statement):
            part = rows[at : at + per_statement]
            row_sql = compose("({p})", p=join_sql(", ", [SqlText("%s")] * len(cols)))
            s.execute(
                compose(
                    "INSERT INTO {t} ({c}) VALUES {v}",
                    t=warehouse.qt(schema, table),
                    c=join_sql(", ", [warehouse.q(c) for c in cols]),
                    v=join_sql(", ", [row_sql] * len(part)),
                ),
                [r[c] for r in part for c in cols],
            )


def tracked(msg_id, received_at, *, library, destination=None, email=None, build=None):
    return {
        **event(msg_id, received_at, library=library),
        "context_destination_id": destination,
        "context_traits_email": email,
        "context_app_build": build,
    }


def by_group(rows: list[FillRow]) -> dict[tuple[str, str | None], tuple[int, dict[str, int]]]:
    return {(r.loader, r.library): (r.rows, r.filled) for r in rows}


# ------------------------------------------------------------------------------------------ snapshot
def test_snapshot_lists_each_column_with_its_type_length_and_position(warehouse, unique):
    schema = warehouse.create_schema(f"shape_snap_{unique}")
    warehouse.create_table(schema, "tracks", ["id", "received_at", "context_library_name"])
    warehouse._exec(
        compose(
            "CREATE TABLE {t} ({i} VARCHAR(32), {n} INTEGER)",
            t=warehouse.qt(schema, "order_completed"),
            i=warehouse.q("id"),
            n=warehouse.q("quantity"),
        )
    )

    snapshot = schema_snapshot(warehouse.dialect, f"shape_snap_{unique}")

    assert snapshot.exists and snapshot.actual == schema
    assert list(snapshot.tables) == ["order_completed", "tracks"]
    assert snapshot.table_names["tracks"] == warehouse.stored_name("tracks")
    tracks = snapshot.tables["tracks"]
    assert list(tracks) == ["id", "received_at", "context_library_name"]
    assert [c.ordinal_position for c in tracks.values()] == [1, 2, 3]
    assert tracks["received_at"].name == warehouse.stored_name("received_at")
    order = snapshot.tables["order_completed"]
    assert order["id"].character_maximum_length == 32
    if warehouse.kind == "postgres":
        assert tracks["received_at"].data_type == "timestamp with time zone"
        assert tracks["id"].character_maximum_length is None  # text has no maximum length
        assert order["quantity"].data_type == "integer"
    else:
        assert tracks["received_at"].data_type.upper().startswith("TIMESTAMP")
        assert order["quantity"].data_type.upper() in {"NUMBER", "INTEGER"}
    assert order["quantity"].character_maximum_length is None
    # only the tables asked for, and the snapshot survives a trip through XCom (JSON)
    only = schema_snapshot(warehouse.dialect, schema, tables=["TRACKS", "pages"])
    assert list(only.tables) == ["tracks"]
    assert SchemaSnapshot.from_dict(json.loads(json.dumps(snapshot.to_dict()))) == snapshot
    assert snapshot.types()["order_completed"]["id"] == order["id"].data_type


def test_snapshot_of_a_missing_schema_is_empty(warehouse, unique):
    snapshot = schema_snapshot(warehouse.dialect, f"nowhere_{unique}")
    assert snapshot == SchemaSnapshot(f"nowhere_{unique}", exists=False)
    assert SchemaSnapshot.from_dict(snapshot.to_dict()) == snapshot


# ---------------------------------------------------------------------------------------------- fill
def test_fill_before_and_after_the_cutover_split_by_loader_and_library(warehouse, unique):
    schema = warehouse.create_schema(f"shape_fill_{unique}")
    warehouse.create_table(schema, "tracks", list(dict.fromkeys([*event("x", T0), *FILL_COLUMNS])))
    rows = [
        # before: Segment's rows from the old SDK; the e-mail trait in 3 of 4
        *(
            tracked(f"s{i}", T0 - timedelta(minutes=10 * i + 1), library="analytics-ios", email=e)
            for i, e in enumerate(["a@x", "b@x", "c@x", None])
        ),
        # after: RudderStack's rows from the new SDK: no e-mail trait, a build number
        tracked("r1", T0 + timedelta(minutes=1), library="rudder-ios", destination=DEST, build="41"),
        tracked("r2", T0 + timedelta(minutes=2), library="rudder-ios", destination=DEST, build="42"),
        # after: an old client still through Segment's webhook, loaded by RudderStack too
        tracked("w1", T0 + timedelta(minutes=3), library="analytics-ios", destination=DEST, email="d@x"),
        # after: another RudderStack destination (say a shadow load) and a row without a library
        tracked("o1", T0 + timedelta(minutes=4), library="rudder-ios", destination="2otherDest"),
        tracked("n1", T0 + timedelta(minutes=5), library=None),
        # outside both windows: not counted
        tracked("early", T0 - timedelta(hours=1, seconds=1), library="analytics-ios", email="e@x"),
        tracked("at-end", T0 + timedelta(hours=1), library="rudder-ios", destination=DEST, build="43"),
    ]
    warehouse.insert(schema, "tracks", rows)
    asked = ["context_traits_email", "CONTEXT_APP_BUILD", "payload"]

    before = column_fill(warehouse.dialect, schema, "tracks", asked, start=BEFORE[0], end=BEFORE[1])
    after = column_fill(
        warehouse.dialect, schema, "tracks", asked, start=AFTER[0], end=AFTER[1], destination_id=DEST
    )

    full = {"payload": 4}
    assert by_group(before) == {
        ("segment", "analytics-ios"): (4, {**full, "context_traits_email": 3, "context_app_build": 0}),
    }
    assert by_group(after) == {
        ("rudderstack", "rudder-ios"): (2, {"context_traits_email": 0, "context_app_build": 2, "payload": 2}),
        ("rudderstack", "analytics-ios"): (
            1,
            {"context_traits_email": 1, "context_app_build": 0, "payload": 1},
        ),
        ("segment", "rudder-ios"): (1, {"context_traits_email": 0, "context_app_build": 0, "payload": 1}),
        ("segment", None): (1, {"context_traits_email": 0, "context_app_build": 0, "payload": 1}),
    }
    assert before[0].share("context_traits_email") == 0.75
    assert all(r.absent == () for r in before + after)
    # without a destination id, any row carrying one is RudderStack's
    any_rudder = column_fill(warehouse.dialect, schema, "tracks", asked, start=AFTER[0], end=AFTER[1])
    assert by_group(any_rudder)[("rudderstack", "rudder-ios")][0] == 3
    assert [FillRow.from_dict(json.loads(json.dumps(r.to_dict()))) for r in after] == after


def test_fill_of_a_table_only_segment_wrote_reports_the_columns_it_lacks(warehouse, unique):
    schema = warehouse.create_schema(f"shape_seg_{unique}")
    warehouse.create_table(schema, "tracks")  # Segment's columns: no context_destination_id
    warehouse.insert(
        schema,
        "tracks",
        [
            event("a", T0 - timedelta(minutes=5), library="analytics-ios"),
            event("b", T0 - timedelta(minutes=4)),
        ],
    )
    fill = column_fill(
        warehouse.dialect,
        f"shape_seg_{unique}",
        "TRACKS",
        ["user_id", "context_destination_id", "context_app_build"],
        start=BEFORE[0],
        end=BEFORE[1],
        destination_id=DEST,
    )
    assert by_group(fill) == {
        ("segment", "analytics-ios"): (1, {"user_id": 1}),
        ("segment", "rudder-analytics-python"): (1, {"user_id": 1}),
    }
    assert {r.absent for r in fill} == {("context_destination_id", "context_app_build")}
    assert fill[0].share("context_app_build") is None
    # a table or schema that does not exist has no rows
    assert column_fill(warehouse.dialect, schema, "pages", ["user_id"], start=BEFORE[0], end=BEFORE[1]) == []
    assert column_fill(warehouse.dialect, f"nowhere_{unique}", "tracks", [], start=T0, end=AFTER[1]) == []


def test_a_table_without_received_at_cannot_be_read_by_window(warehouse, unique):
    schema = warehouse.create_schema(f"shape_norecv_{unique}")
    warehouse.create_table(schema, "users", ["id", "user_id"])
    with pytest.raises(ValueError, match="'users' has no received_at column"):
        column_fill(warehouse.dialect, schema, "users", ["user_id"], start=BEFORE[0], end=BEFORE[1])
    with pytest.raises(ValueError, match="'users' has no received_at column"):
        value_sample(warehouse.dialect, schema, "users", ["user_id"], start=BEFORE[0], end=BEFORE[1], limit=5)


# -------------------------------------------------------------------------------------------- values
def test_value_sample_reads_the_latest_rows_of_the_window_and_only_the_named_columns(warehouse, unique):
    schema = warehouse.create_schema(f"shape_sample_{unique}")
    warehouse.create_table(schema, "tracks")
    warehouse.insert(
        schema,
        "tracks",
        [
            event(f"m{i}", T0 - timedelta(minutes=i), payload=f"v{i}")
            for i in range(1, 8)  # m1 is the latest
        ]
        + [event("late", T0 + timedelta(seconds=1), payload="outside")],
    )
    sample = value_sample(
        warehouse.dialect, schema, "tracks", ["PAYLOAD", "no_such"], start=BEFORE[0], end=T0, limit=3
    )
    assert sample == [
        {"id": "m1", "payload": "v1"},
        {"id": "m2", "payload": "v2"},
        {"id": "m3", "payload": "v3"},
    ]
    assert (
        value_sample(warehouse.dialect, schema, "pages", ["payload"], start=BEFORE[0], end=T0, limit=3) == []
    )


def test_values_by_id_reads_thousands_of_ids_in_chunks(warehouse, unique, monkeypatch):
    schema = warehouse.create_schema(f"shape_ids_{unique}")
    warehouse.create_table(schema, "tracks", ["id", "received_at", "payload"])
    rows = [
        {"id": f"m{i}", "received_at": T0 + timedelta(seconds=i), "payload": f"v{i}"} for i in range(2300)
    ]
    rows.append({"id": "m7", "received_at": T0 + timedelta(hours=2), "payload": "latest copy"})
    bulk_insert(warehouse, schema, "tracks", rows)
    statements: list[int] = []
    fetchall = Session.fetchall

    def counting(self, sql, params=()):
        if " IN (" in sql and "information_schema" not in sql:
            statements.append(len(params))
        return fetchall(self, sql, params)

    monkeypatch.setattr(Session, "fetchall", counting)
    wanted = [f"m{i}" for i in range(2400)]  # m2300 .. m2399 do not exist

    found = values_by_id(
        warehouse.dialect, f"shape_ids_{unique}", "tracks", ["PAYLOAD"], [*wanted, "m1", None]
    )

    assert len(found) == 2300
    assert found["m0"] == {"id": "m0", "payload": "v0"}
    assert found["m2299"]["payload"] == "v2299"
    assert found["m7"]["payload"] == "latest copy"  # of two rows with one id, the latest received_at
    assert statements == [shape_queries.ID_CHUNK, shape_queries.ID_CHUNK, 400]
    assert values_by_id(warehouse.dialect, schema, "pages", ["payload"], wanted) == {}


# ------------------------------------------------------------------------------------------ discards
def discard(table, column, reason, row_id, value, received_at):
    return {
        "table_name": table,
        "row_id": row_id,
        "column_name": column,
        "column_value": value,
        "reason": reason,
        "received_at": received_at,
        "uuid_ts": received_at + timedelta(minutes=30),
    }


def test_discards_are_grouped_per_table_column_and_reason_with_the_latest_examples(warehouse, unique):
    schema = warehouse.create_schema(f"shape_disc_{unique}")
    assert discards_since(warehouse.dialect, schema, since=T0) == []  # RudderStack has discarded nothing
    columns = ["table_name", "row_id", "column_name", "column_value", "reason", "received_at", "uuid_ts"]
    warehouse.create_table(schema, "rudder_discards", columns)
    bad_int = "incompatible schema conversion from int to string"
    warehouse.insert(
        schema,
        "rudder_discards",
        [
            *(
                discard("order_completed", "revenue", bad_int, f"m{i}", f"{i}.5", T0 + timedelta(minutes=i))
                for i in range(1, 5)
            ),
            discard("order_completed", "revenue", "other reason", "m9", "x", T0 + timedelta(minutes=9)),
            # Snowflake's loader writes the names as stored (upper case): the same group
            discard("TRACKS", "CONTEXT_APP_BUILD", bad_int, "t1", "41", T0 + timedelta(minutes=2)),
            discard("tracks", "context_app_build", bad_int, "t2", "42", T0 + timedelta(minutes=3)),
            discard("order_completed", "revenue", bad_int, "old", "0.5", T0 - timedelta(seconds=1)),  # before
        ],
    )

    groups = discards_since(warehouse.dialect, f"shape_disc_{unique}", since=T0, examples=3)

    assert [(g.table_name, g.column_name, g.reason, g.count) for g in groups] == [
        ("order_completed", "revenue", bad_int, 4),
        ("tracks", "context_app_build", bad_int, 2),
        ("order_completed", "revenue", "other reason", 1),
    ]
    revenue = groups[0]
    assert revenue.examples == (("m4", "4.5"), ("m3", "3.5"), ("m2", "2.5"))  # the latest three
    assert (revenue.first_received_at, revenue.last_received_at) == (
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=4),
    )
    assert {e for e in groups[1].examples} == {("t1", "41"), ("t2", "42")}
    assert [DiscardGroup.from_dict(json.loads(json.dumps(g.to_dict()))) for g in groups] == groups
    assert groups[0].to_dict()["examples"][0] == {"row_id": "m4", "column_value": "4.5"}
    counted = discards_since(warehouse.dialect, schema, since=T0, examples=0)
    assert [(g.count, g.examples) for g in counted] == [(4, ()), (2, ()), (1, ())]
