"""The preflight checks the destination config the run will send against what RudderStack requires, and stops
before any change naming each missing field and where to set it; a Snowflake destination built from a real
Airflow Snowflake connection (a PKCS#1 key) and an S3 bucket with keys from an aws connection is accepted by the
stricter control plane."""

from __future__ import annotations

import json

import pytest
from airflow.models.connection import Connection
from airflow.sdk.exceptions import AirflowFailException
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from segment_rudderstack.operators.rudderstack import EnsureRudderStackDestinationOperator
from tests.library.world import context, preflight_operator


def test_preflight_names_each_missing_field_and_where_to_set_it(world, monkeypatch):
    world.track(count=2)
    world.load()
    no_ssl = Connection(
        conn_id="wh_no_ssl", conn_type="postgres", host="db", login="u", password="pw", schema="d"
    )
    monkeypatch.setenv("AIRFLOW_CONN_WH_NO_SSL", no_ssl.as_json())
    mark = world.mark()
    with pytest.raises(AirflowFailException) as stopped:
        preflight_operator(world, credentials_conn_id="wh_no_ssl", staging=None).execute(context())
    message = str(stopped.value)
    assert "nothing was changed" in message and "sets no extra 'sslmode'" in message
    monkeypatch.setenv(
        "AIRFLOW_CONN_WH_NO_SSL",
        Connection(**{**json.loads(no_ssl.as_json()), "extra": '{"sslmode": "require"}'}).as_json(),
    )
    with pytest.raises(AirflowFailException) as stopped:
        preflight_operator(world, credentials_conn_id="wh_no_ssl", staging=None).execute(context())
    message = str(stopped.value)
    assert "config.useRudderStorage" in message and "rudderstack.destination.staging" in message
    assert "pw" not in message.split()
    assert world.changes(mark) == []


def test_preflight_reports_a_reused_destination_rudderstack_would_refuse_to_change(world):
    world.track(count=2)
    world.load()
    existing = world.make_rs_destination()
    # someone's destination stored before RudderStack required the field (the emulator would refuse it now)
    world.rudderstack._destinations[existing]["config"].pop("sslMode")
    with pytest.raises(AirflowFailException) as stopped:
        preflight_operator(world, destination_id=existing).execute(context())
    assert f"RudderStack destination {existing}: config.sslMode" in str(stopped.value)


def test_preflight_reports_the_users_settings_the_setup_will_change(world, capfd):
    world.track(count=2)
    world.load()
    existing = world.make_rs_destination(skipUsersTable=True)
    summary = preflight_operator(world, destination_id=existing).execute(context())
    assert summary["settings_to_change"] == {"skipUsersTable": [True, False]}
    assert "recorded change the rollback undoes" in capfd.readouterr().out


def test_a_snowflake_destination_from_airflow_connections_is_accepted(world, monkeypatch):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    snowflake = Connection(
        conn_id="sf",
        conn_type="snowflake",
        login="MIGRATOR",
        extra=json.dumps(
            {
                "account": "xy12345",
                "warehouse": "LOADING",
                "database": "ANALYTICS",
                "private_key_content": pkcs1,
            }
        ),
    )
    aws = Connection(conn_id="aws_staging", conn_type="aws", login="AKIAEXAMPLE", password="aws-s3cret")
    monkeypatch.setenv("AIRFLOW_CONN_SF", snowflake.as_json())
    monkeypatch.setenv("AIRFLOW_CONN_AWS_STAGING", aws.as_json())
    destination_id = EnsureRudderStackDestinationOperator(
        task_id="ensure_destination",
        namespace=world.schema.upper(),
        destination_type="SNOWFLAKE",
        credentials_conn_id="sf",
        staging={"storage": "s3", "bucket": "rs-staging", "conn_id": "aws_staging"},
        change_log_key=world.change_log_key,
    ).execute(context())
    config = world.rs_destination(destination_id)["config"]
    assert config["privateKey"].startswith("-----BEGIN PRIVATE KEY-----")  # converted to PKCS#8
    assert (config["useKeyPairAuth"], config["cloudProvider"], config["bucketName"]) == (
        True,
        "AWS",
        "rs-staging",
    )
    assert (config["accessKeyID"], config["accessKey"], config["useRudderStorage"]) == (
        "AKIAEXAMPLE",
        "aws-s3cret",
        False,
    )
