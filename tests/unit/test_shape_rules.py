"""RudderStack's loader rules as the shape checks predict them (segment_rudderstack.shape.rudderstack_rules).

Expected values come from rudder-server's own tests where they exist (rudderlabs/rudder-server at commit
f2655fbbe2260deb4e01c2a54da1a827291713bb; EW/ = processor/internal/transformer/destination_transformer/embedded/
warehouse/), from iancoleman/strcase v0.3.0 snake_test.go and segmentio/go-snakecase snake_test.go; the last
tests check that the library and the sandbox's independent emulation (include/sandbox/) agree."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from segment_rudderstack.shape.rudderstack_rules import (
    OUTCOME_KINDS,
    RUDDERSTACK_OWN_COLUMNS,
    SEVERITY,
    column_name_difference,
    namespace_problem,
    predict,
    predict_column,
    rudder_column_name,
    rudder_timestamp,
    rudder_type,
    safe_namespace,
    segment_column_name,
    value_type,
)

# ------------------------------------------------------------------------------------------ namespace

# warehouse/utils/utils_test.go TestToSafeNamespace and EW/safe_test.go TestSafeNamespace (RS / no provider)
RUDDER_SERVER_NAMESPACES = [
    ("omega", "omega"),
    ("omega v2 ", "omega_v_2"),
    ("9mega", "_9_mega"),
    ("mega&", "mega"),
    ("ome$ga", "ome_ga"),
    ("omega$", "omega"),
    ("ome_ ga", "ome_ga"),
    ("9mega________-________90", "_9_mega_90"),
    ("Cízǔ", "c_z"),
    ("Rudderstack", "rudderstack"),
    ("___", "stringempty"),
    ("group", "_group"),
    ("k3_namespace", "k_3_namespace"),
]
# iancoleman/strcase snake_test.go toSnake (inputs that start with a letter: a leading digit gets '_' first)
STRCASE_SNAKE = [
    ("testCase", "test_case"),
    ("TestCase", "test_case"),
    ("Test Case", "test_case"),
    (" Test Case ", "test_case"),
    ("ManyManyWords", "many_many_words"),
    ("AnyKind of_string", "any_kind_of_string"),
    ("numbers2and55with000", "numbers_2_and_55_with_000"),
    ("JSONData", "json_data"),
    ("userID", "user_id"),
    ("AAAbbb", "aa_abbb"),
    ("A1B", "a_1_b"),
    ("A1A2A3", "a_1_a_2_a_3"),
    ("AB1 AB2 AB3", "ab_1_ab_2_ab_3"),
]


@pytest.mark.parametrize(("name", "expected"), RUDDER_SERVER_NAMESPACES + STRCASE_SNAKE)
def test_rudderstack_writes_the_schema_its_tosafenamespace_makes_of_the_name(name, expected):
    assert safe_namespace(name) == expected


def test_on_snowflake_the_schema_is_upper_cased_and_the_setting_keeps_the_digits_together():
    assert safe_namespace("web_v2", "snowflake") == "WEB_V_2"
    assert (
        safe_namespace("k3_namespace", skip_snake_casing=True) == "k3_namespace"
    )  # the BQ case of the tests


def test_true_is_a_reserved_namespace_on_postgres():
    """ToSafeNamespace reads warehouse/utils/reservedkeywords.go, whose POSTGRES list has TRUE (not TO)."""
    assert safe_namespace("true") == "_true"
    assert safe_namespace("to") == "to"


def test_a_schema_with_a_letter_digit_boundary_is_not_where_rudderstack_writes():
    problem = namespace_problem("web_v2")
    assert problem is not None
    for said in ("'web_v2'", "'web_v_2'", "ToSafeNamespace", "strcase ToSnake", "rename the schema"):
        assert said in problem
    assert "Warehouse.postgres.skipNamespaceSnakeCasing=true" in problem
    assert "RSERVER_WAREHOUSE_POSTGRES_SKIP_NAMESPACE_SNAKE_CASING" in problem


def test_the_snake_casing_setting_is_offered_only_where_it_would_help():
    problem = namespace_problem("9lives")
    assert "'_9_lives'" in problem and "before a leading digit" in problem
    assert "would not help" in problem and "'_9lives'" in problem
    assert "reserved word" in namespace_problem("user")


@pytest.mark.parametrize(
    ("schema", "warehouse"),
    [("ios_prod", "postgres"), ("analytics", "postgres"), ("WEB", "postgres"), ("IOS_PROD", "snowflake")],
)
def test_a_schema_rudderstack_keeps_has_no_namespace_problem(schema, warehouse):
    assert namespace_problem(schema, warehouse) is None


def test_a_mixed_case_postgres_schema_is_not_where_rudderstack_writes():
    assert "'appevents'" not in namespace_problem("AppEvents")
    assert "'app_events'" in namespace_problem("AppEvents")


# ------------------------------------------------------------------------------------------ column types

POSTGRES_TYPES = [
    ("bigint", "int"),
    ("integer", "int"),
    ("smallint", "int"),
    ("double precision", "float"),
    ("numeric", "float"),
    ("real", "float"),
    ("text", "string"),
    ("timestamp with time zone", "datetime"),
    ("boolean", "boolean"),
    ("jsonb", "json"),
    # information_schema's names for these are not keys of postgresDataTypesMapToRudder
    ("character varying", None),
    ("timestamp without time zone", None),
    ("character", None),
    ("json", None),
    ("uuid", None),
    ("date", None),
    ("ARRAY", None),
    ("USER-DEFINED", None),
]
# warehouse/integrations/snowflake/datatype_mapper_test.go TestCalculateDataType, and the map's other keys
SNOWFLAKE_TYPES = [
    ("VARCHAR", None, "string"),
    ("INT", None, "int"),
    ("INT", 2, "float"),
    ("UNKNOWN", None, None),
    ("NUMBER", 0, "int"),
    ("NUMBER(38,2)", None, "float"),
    ("TEXT", None, "string"),
    ("FLOAT", None, "float"),
    ("TIMESTAMP_TZ", None, "datetime"),
    ("TIMESTAMP_NTZ", None, "datetime"),
    ("DATE", None, "datetime"),
    ("VARIANT", None, "json"),
    ("ARRAY", None, None),
    ("OBJECT", None, None),
]


@pytest.mark.parametrize(("data_type", "expected"), POSTGRES_TYPES)
def test_rudderstack_reads_postgres_column_types_through_its_map(data_type, expected):
    assert rudder_type("postgres", data_type) == expected


@pytest.mark.parametrize(("data_type", "scale", "expected"), SNOWFLAKE_TYPES)
def test_rudderstack_reads_snowflake_column_types_through_its_map(data_type, scale, expected):
    assert rudder_type("snowflake", data_type, scale) == expected


def test_an_unknown_warehouse_is_refused():
    with pytest.raises(ValueError, match="unknown warehouse 'redshift'"):
        rudder_type("redshift", "text")


# ------------------------------------------------------------------------------------------ values

# EW/datatype_test.go TestDataType (POSTGRES rows), then values as a driver reads them back
VALUE_TYPES = [
    (42, "int"),
    (654645465456456400000.0, "int"),
    (42.0, "int"),
    (42.5, "float"),
    (True, "boolean"),
    ("2022-10-05T14:48:00.000Z", "datetime"),
    ("2022/10-05T", "string"),
    ("shortValue", "string"),
    (["a", "b"], "string"),
    (datetime(2024, 5, 1, 10, tzinfo=UTC), "datetime"),
    (date(2024, 5, 1), "datetime"),
    (Decimal("3"), "int"),
    (Decimal("3.25"), "float"),
]


@pytest.mark.parametrize(("value", "expected"), VALUE_TYPES)
def test_the_transformer_types_a_value_as_rudder_server_does(value, expected):
    assert value_type(value) == expected


def test_an_object_has_no_type_of_its_own():
    with pytest.raises(TypeError, match="flattened"):
        value_type({"a": 1})


# EW/internal/utils/utils_test.go TestToTimestamp
TO_TIMESTAMP = [
    ("2021-06-01T00:00:00.000Z", "2021-06-01T00:00:00.000Z"),
    ("2021-06-01T00:00:00.000+00:00", "2021-06-01T00:00:00.000Z"),
    ("0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z"),
    ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
    ("2021-06-01 00:00:00", "2021-06-01T00:00:00.000Z"),
    ("2023-06-14", "2023-06-14T00:00:00.000Z"),
    ("2025-04-02T01:09:03", "2025-04-02T01:09:03.000Z"),
    ("2025-04-02 01:09:03.000+0530", "2025-04-01T19:39:03.000Z"),
    ("2025-04-02 01:09:03.714247+00:00", "2025-04-02T01:09:03.714Z"),
    ("2025-04-02T01:09:03.000+1000", "2025-04-01T15:09:03.000Z"),
    ("2025-04-02 01:09:03+00:00", "2025-04-02T01:09:03.000Z"),
    ("1988-04-31", "1988-05-01T00:00:00.000Z"),
]
# EW/internal/utils/utils_test.go TestValidTimestamp (the invalid rows)
NOT_TIMESTAMPS = [
    "invalid-timestamp",
    "23-05-2024T10:00:00Z",
    "2024-05-23T25:00:00Z",
    "",
    "05:23:59.244Z",
    "+2023-06-14T05:23:59.244Z",
    "-2023-06-14T05:23:59.244Z",
    "%u002e" * 10,
]


@pytest.mark.parametrize(("text", "expected"), TO_TIMESTAMP)
def test_a_date_like_string_is_rewritten_to_utc_milliseconds(text, expected):
    assert rudder_timestamp(text) == expected


@pytest.mark.parametrize("text", NOT_TIMESTAMPS)
def test_a_string_rudder_server_does_not_take_for_a_timestamp_stays_a_string(text):
    assert rudder_timestamp(text) is None
    assert value_type(text) == "string"


# ------------------------------------------------------------------------------------------ predictions

# warehouse/slave/worker.go HandleSchemaChange, after schema.go consolidateWarehouseSchema (the column's type wins)
PREDICTIONS = [
    ("string", "plain text", "same", "kept"),
    ("string", 42, "stringified", "lands as '42'"),
    ("string", True, "stringified", "lands as 'true'"),
    ("string", 1234567.5, "stringified", "lands as '1.2345675e+06'"),  # Go's %v: strconv 'g', shortest
    ("string", 0.00001, "stringified", "lands as '1e-05'"),
    ("string", ["a", 1], "stringified", "'[\"a\",1]'"),
    ("string", "2024-05-01 10:00:00+02", "format_change", "'2024-05-01T08:00:00.000Z'"),
    ("string", "2024-05-01T08:00:00.000Z", "same", "already"),
    ("string", "", "format_change", "NULL"),
    ("string", "   ", "format_change", "NULL on PostgreSQL"),
    ("int", 12.7, "truncated", "lands as 12"),
    ("int", -12.7, "truncated", "lands as -12"),
    ("int", 12.0, "same", "kept"),
    ("int", 2**53 + 1, "format_change", "float64"),
    ("int", "12", "discarded", "incompatible schema conversion from int to string"),
    ("int", True, "discarded", "incompatible schema conversion from int to boolean"),
    ("float", 42, "cast", "float64"),
    ("float", Decimal("3"), "cast", "float64"),
    ("float", Decimal("1.2345678901234567891"), "format_change", "lands as 1.2345678901234567"),
    ("float", "1.5", "discarded", "incompatible schema conversion from float to string"),
    ("boolean", "true", "discarded", "incompatible schema conversion from boolean to string"),
    ("boolean", False, "same", "kept"),
    ("datetime", "2024-05-01T08:00:00Z", "same", "instant"),
    (
        "datetime",
        datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=UTC),
        "format_change",
        "2024-05-01T08:00:00.123Z",
    ),
    ("datetime", 1714550400, "discarded", "incompatible schema conversion from datetime to int"),
    ("datetime", "next tuesday", "discarded", "rudder_discards"),
    ("json", 42, "stringified", "same scalar"),
    ("json", "a", "same", "JSON string"),
    (None, "anything", "invisible", "ADD COLUMN IF NOT EXISTS"),
    ("string", {"a": 1}, "format_change", "flattens"),
]


@pytest.mark.parametrize(("existing", "value", "kind", "said"), PREDICTIONS)
def test_the_existing_column_type_decides_what_happens_to_a_value(existing, value, kind, said):
    outcome = predict(existing, value)
    assert outcome.kind == kind
    assert said in outcome.detail


def test_a_discard_keeps_the_row_and_names_rudder_discards():
    detail = predict("int", "12").detail
    assert "NULL" in detail and "rudder_discards" in detail and "the row itself loads" in detail


def test_blank_strings_are_loaded_as_null_only_on_postgres():
    assert predict("string", "  ", warehouse="snowflake").kind == "same"


def test_the_outcomes_are_ordered_by_severity():
    assert OUTCOME_KINDS == (
        "discarded",
        "truncated",
        "invisible",
        "format_change",
        "stringified",
        "cast",
        "same",
    )
    assert [SEVERITY[k] for k in OUTCOME_KINDS] == sorted(SEVERITY.values(), reverse=True)


def test_a_column_prediction_counts_the_sample_and_names_the_worst_outcome():
    values = [12, None, 12.5, "x" * 100, 13]
    prediction = predict_column("postgres", "bigint", values)
    assert prediction.rudder_type == "int"
    assert prediction.counts == {"same": 2, "truncated": 1, "discarded": 1}
    assert prediction.sampled == 4  # NULL is skipped
    assert prediction.worst == "discarded"
    assert prediction.examples["truncated"] == "12.5"
    assert len(prediction.examples["discarded"]) == 60 and prediction.examples["discarded"].endswith("…")
    assert "incompatible schema conversion" in prediction.details["discarded"]
    assert "1 discarded, 1 truncated, 2 same" in prediction.describe()


def test_a_timestamptz_column_read_back_as_datetimes_keeps_its_instants():
    moments = [
        datetime(2024, 5, 1, 8, tzinfo=UTC),
        datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=2))),
    ]
    prediction = predict_column("postgres", "timestamp with time zone", moments)
    assert prediction.counts == {"same": 2} and prediction.worst == "same"


def test_iso_strings_in_a_text_column_change_format():
    prediction = predict_column("postgres", "text", ["2024-05-01 08:00:00", "plain"])
    assert prediction.counts == {"format_change": 1, "same": 1}
    assert "'2024-05-01T08:00:00.000Z'" in prediction.details["format_change"]


def test_an_invisible_column_type_is_the_worst_outcome_even_without_values():
    prediction = predict_column("postgres", "character varying", [])
    assert prediction.rudder_type is None and prediction.worst == "invisible" and prediction.sampled == 0
    assert predict_column("postgres", "character varying", ["a"]).counts == {"invisible": 1}


def test_snowflake_numbers_with_a_scale_are_floats():
    prediction = predict_column("snowflake", "NUMBER", [Decimal("1.50"), Decimal("2")], numeric_scale=2)
    assert prediction.rudder_type == "float"
    assert prediction.counts == {"same": 1, "cast": 1}


# ------------------------------------------------------------------------------------------ column names

# EW/safe_test.go TestTransformColumnName (standard casing, underscoreDivideNumbers false, then true)
RUDDER_COLUMNS = [
    ("&4yasdfa(84224_fs9##_____*3q", "_4yasdfa_84224_fs9_3q"),
    ("omega v2", "omega_v2"),
    ("9mega", "_9mega"),
    ("ome$ga", "ome_ga"),
    ("9mega________-________90", "_9mega_90"),
    ("Cízǔ", "c_z"),
    ("CamelCase123Key", "camel_case123_key"),
    ("path to $1,00,000", "path_to_1_00_000"),
    ("@#$%", ""),
    ("test123", "test123"),
    ("abc123def456", "abc123_def456"),
    ("__abc_123_def_456", "__abc_123_def_456"),
    ("_abc_123_def_456", "_abc_123_def_456"),
    ("--foo-bar--", "foo_bar"),  # EW/internal/snakecase/snakecase_test.go
    ("FOO BAR", "foo_bar"),
    ("XMLHttpRequest", "xml_http_request"),
]
RUDDER_COLUMNS_DIVIDED = [
    ("&4yasdfa(84224_fs9##_____*3q", "_4_yasdfa_84224_fs_9_3_q"),
    ("omega v2", "omega_v_2"),
    ("CamelCase123Key", "camel_case_123_key"),
    ("abc123def456", "abc_123_def_456"),
]
# segmentio/go-snakecase snake_test.go TestSnakecase
SEGMENT_COLUMNS = [
    ("@49L0S145_¬fwHƒ0TSLNVp", "49l0s145_fw_h_0tslnvp"),
    ("lk0B@bFmjrLQ_Z6YL", "lk0_b_b_fmjr_lq_z6yl"),
    ("samPLE text", "sam_ple_text"),
    ("sample___text", "sample_text"),
    ("sampleText", "sample_text"),
    ("   $#$sample   2    Text   ", "sample_2_text"),
    ("SAMPLE 2 TEXT", "sample_2_text"),
    ("___$$Base64Encode", "base64_encode"),
    ("something.com", "something_com"),
    ("•¶§ƒ˚foo˙∆˚¬", "foo"),
    ("CStringRef", "cstring_ref"),
    ("THE5r", "the5r"),
    ("_5TEst", "5test"),
    ("edf_6N", "edf_6n"),
    ("f_pX9", "f_p_x9"),
    ("p_z9Rg", "p_z9_rg"),
    ("2FA Enabled", "2fa_enabled"),
    ("Enabled 2FA", "enabled_2fa"),
]


@pytest.mark.parametrize(("key", "expected"), RUDDER_COLUMNS)
def test_rudderstack_names_a_column_as_its_transformer_does(key, expected):
    assert rudder_column_name(key) == expected
    assert rudder_column_name(key, "snowflake") == expected.upper()


@pytest.mark.parametrize(("key", "expected"), RUDDER_COLUMNS_DIVIDED)
def test_underscore_divide_numbers_splits_digits_off(key, expected):
    assert rudder_column_name(key, divide_numbers=True) == expected


def test_postgres_column_names_are_cut_at_63_and_reserved_words_escaped():
    assert rudder_column_name("a" * 70) == "a" * 63
    assert rudder_column_name("order") == "_order"
    assert rudder_column_name("select", "snowflake") == "_SELECT"


@pytest.mark.parametrize(("key", "expected"), SEGMENT_COLUMNS)
def test_segment_names_a_column_with_go_snakecase(key, expected):
    assert segment_column_name(key) == expected


@pytest.mark.parametrize(
    ("key", "segment", "rudder"),
    [
        ("SKUCode", "skucode", "sku_code"),
        ("XMLHttp", "xmlhttp", "xml_http"),
        ("2FA Enabled", "2fa_enabled", "_2fa_enabled"),
        ("order", "order", "_order"),
    ],
)
def test_a_key_the_two_loaders_name_differently_is_flagged(key, segment, rudder):
    difference = column_name_difference(key)
    assert f"{segment!r} with Segment" in difference and f"in {rudder!r} with RudderStack" in difference
    assert "coalesce" in difference


@pytest.mark.parametrize("key", ["userAgent", "v2Name", "product_id", "userID", "SKUCODE"])
def test_a_key_both_loaders_name_alike_is_not_flagged(key):
    assert column_name_difference(key) is None
    assert column_name_difference(key, "snowflake") is None


def test_rudderstacks_own_columns_say_why_and_where_from():
    for column in (
        "received_at",
        "context_ip",
        "context_request_ip",
        "context_passed_ip",
        "context_source_id",
        "context_source_type",
        "context_destination_id",
        "context_destination_type",
        "channel",
        "uuid_ts",
    ):
        assert ".go" in RUDDERSTACK_OWN_COLUMNS[column], column
    assert "loaded_at" not in RUDDERSTACK_OWN_COLUMNS  # BigQuery only (EW/transformer.go getColumns)


# ------------------------------------------------------------------------------------------ the sandbox agrees

AGREEMENT_NAMES = [
    "web_v2",
    "k3_namespace",
    "omega v2",
    "AppEvents",
    "ios_prod",
    "9mega",
    "group",
    "Cízǔ",
    "JSONData",
    "userID",
    "",
    "a" * 200,
]
AGREEMENT_KEYS = [
    "SKUCode",
    "XMLHttpRequest",
    "userAgent",
    "v2Name",
    "2FA Enabled",
    "order",
    "_private",
    "a" * 70,
]
AGREEMENT_VALUES = [
    42,
    42.0,
    42.5,
    -3.25,
    True,
    "plain",
    "2024-05-01 10:00:00+02",
    "2024-05-01",
    "05:00",
    ["a"],
]


@pytest.mark.parametrize("name", AGREEMENT_NAMES)
def test_the_sandbox_writes_the_same_namespace(name):
    from sandbox.rudderstack_naming import safe_namespace as sandbox_safe_namespace

    assert safe_namespace(name) == sandbox_safe_namespace(name)


@pytest.mark.parametrize("key", AGREEMENT_KEYS + [k for k, _ in RUDDER_COLUMNS])
def test_the_sandbox_names_columns_alike(key):
    from sandbox.rudderstack_naming import safe_name, transform_column_name
    from sandbox.segment_loader import go_snakecase

    sandbox_name = transform_column_name(key)
    assert rudder_column_name(key) == (safe_name(sandbox_name) if sandbox_name else "")
    assert segment_column_name(key) == go_snakecase(key)


@pytest.mark.parametrize("value", AGREEMENT_VALUES)
def test_the_sandbox_types_and_rewrites_values_alike(value):
    from sandbox.rudderstack_naming import data_type_for, to_timestamp, valid_timestamp

    assert value_type(value) == data_type_for(value)
    if isinstance(value, str):
        assert (rudder_timestamp(value) is not None) == valid_timestamp(value)
        if valid_timestamp(value):
            assert rudder_timestamp(value) == to_timestamp(value)


@pytest.mark.parametrize("existing", ["string", "int", "float", "boolean", "datetime"])
@pytest.mark.parametrize("value", [42, 42.5, True, "plain"])
def test_the_sandbox_loader_converts_or_discards_alike(existing, value):
    from sandbox.rudderstack_loader import handle_schema_change
    from sandbox.rudderstack_naming import data_type_for

    inferred = data_type_for(value)
    outcome = predict(existing, value)
    if inferred == existing:
        assert outcome.kind == "same"
        return
    try:
        landed = handle_schema_change(existing, inferred, value)
    except ValueError:
        assert outcome.kind == "discarded"
        return
    expected = {"string": "stringified", "float": "cast", "int": "truncated"}[existing]
    assert outcome.kind == expected
    if existing == "string":
        assert f"lands as {landed!r}" in outcome.detail
