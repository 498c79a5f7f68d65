"""Choosing a dialect from a hook or connection id, and the guards on how SQL text is built."""

from __future__ import annotations

import json
import os

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

from segment_rudderstack.dialects import dialect_classes, dialect_for_conn_id, get_dialect, type_family
from segment_rudderstack.dialects.postgres import PostgresDialect
from segment_rudderstack.dialects.session import Session
from segment_rudderstack.dialects.snowflake import SnowflakeDialect
from segment_rudderstack.dialects.sql import compose


def test_dialect_is_chosen_by_hook_type():
    assert type(get_dialect(PostgresHook(postgres_conn_id="any"))) is PostgresDialect
    assert type(get_dialect(SnowflakeHook(snowflake_conn_id="any"))) is SnowflakeDialect
    assert set(dialect_classes()) >= {"postgres", "snowflake"}


def test_dialect_for_conn_id_builds_the_provider_hook_and_talks_to_the_warehouse(pg_hook):
    dialect = dialect_for_conn_id(pg_hook.postgres_conn_id)
    assert type(dialect) is PostgresDialect
    assert isinstance(dialect.hook, PostgresHook)
    assert dialect.schema_exists("pg_catalog")


class MysteryHook(DbApiHook):
    conn_name_attr = "mystery_conn_id"
    default_conn_name = "mystery_default"
    conn_type = "mystery"
    hook_name = "Mystery"


def test_unsupported_connection_type_says_what_is_supported():
    os.environ["AIRFLOW_CONN_SRM_TEST_MYSTERY"] = json.dumps({"conn_type": "mystery", "host": "example"})
    with pytest.raises(ValueError) as raised:
        get_dialect(MysteryHook(mystery_conn_id="srm_test_mystery"))
    message = str(raised.value)
    assert "'mystery'" in message and "postgres" in message and "snowflake" in message
    assert "add a module" in message


def test_generic_hook_on_a_postgres_connection_gets_the_postgres_dialect(pg_hook):
    class GenericHook(DbApiHook):
        conn_name_attr = "generic_conn_id"
        conn_type = "generic"

    assert type(get_dialect(GenericHook(generic_conn_id=pg_hook.postgres_conn_id))) is PostgresDialect


def test_sql_text_only_takes_quoted_identifiers():
    dialect = PostgresDialect(PostgresHook(postgres_conn_id="any"))
    with pytest.raises(TypeError, match="bound parameters"):
        compose("SELECT * FROM {t}", t="users; DROP TABLE users")  # a raw string from a user
    quoted = dialect.quote_identifier('a"b%c')
    assert quoted == '"a""b%%c"'
    assert compose("SELECT * FROM {t}", t=quoted) == 'SELECT * FROM "a""b%%c"'
    with pytest.raises(TypeError, match="compose"):
        Session(conn=None).fetchall("SELECT 1")  # type: ignore[arg-type]


def test_unquoted_simple_names_fold_the_way_each_warehouse_stores_them():
    pg = PostgresDialect(PostgresHook(postgres_conn_id="any"))
    sf = SnowflakeDialect(SnowflakeHook(snowflake_conn_id="any"))
    assert (pg.fold_identifier("TRACKS"), sf.fold_identifier("tracks")) == ("tracks", "TRACKS")
    # anything that needed quotes when created is kept as given
    for name in ("Segment Prod", "MixedCase", 'weird"quote'):
        assert pg.fold_identifier(name) == sf.fold_identifier(name) == name


@pytest.mark.parametrize(
    ("warehouse_type", "family"),
    [
        ("character varying(512)", "string"),
        ("TEXT", "string"),
        ("VARCHAR(16777216)", "string"),
        ("bigint", "number"),
        ("double precision", "number"),
        ("NUMBER(38,0)", "number"),
        ("FLOAT", "number"),
        ("boolean", "bool"),
        ("timestamp with time zone", "timestamp"),
        ("TIMESTAMP_NTZ", "timestamp"),
        ("jsonb", "json"),
        ("VARIANT", "json"),
        ("interval", "interval"),
    ],
)
def test_type_family(warehouse_type, family):
    assert type_family(warehouse_type) == family
