"""A Snowflake connection is copied into RudderStack's Snowflake destination config with the keys RudderStack
reads (rudder-server warehouse/internal/model/settings.go), or refused with a message naming what it needs."""

from __future__ import annotations

import base64
import json

import pytest
from airflow.models.connection import Connection
from airflow.sdk.exceptions import AirflowFailException
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from segment_rudderstack.connections.rudderstack_destination import (
    CredentialsError,
    snowflake_destination_config,
    warehouse_credentials,
)
from segment_rudderstack.plan.model import Lane

EXTRA = {
    "account": "xy12345",
    "region": "eu-west-1",
    "warehouse": "LOADING",
    "database": "ANALYTICS",
    "role": "TRANSFORMER",
}
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()


def snowflake(password: str | None = None, **extra) -> Connection:
    return Connection(
        conn_id="sf",
        conn_type="snowflake",
        login="MIGRATOR",
        password=password,
        extra=json.dumps({**EXTRA, **extra}),
    )


def test_password_connection():
    config = snowflake_destination_config(snowflake("s3cret"))
    assert config == {
        "account": "xy12345.eu-west-1",
        "warehouse": "LOADING",
        "database": "ANALYTICS",
        "user": "MIGRATOR",
        "role": "TRANSFORMER",
        "useKeyPairAuth": False,
        "password": "s3cret",
    }


@pytest.mark.parametrize("encoding", ["pem", "base64"])
def test_key_pair_in_the_connection_becomes_rudderstacks_key_pair_config(pem, encoding):
    content = pem if encoding == "pem" else base64.b64encode(pem.encode()).decode()
    config = snowflake_destination_config(snowflake(PASSPHRASE, private_key_content=content))
    assert config["useKeyPairAuth"] is True
    assert (
        config["privateKey"].strip() == pem.strip()
    )  # the PEM text itself, as RudderStack's driver parses it
    assert (
        config["privateKeyPassphrase"] == PASSPHRASE
    )  # Airflow's hook: the password is the key's passphrase
    assert "password" not in config


def test_key_file_is_read_on_the_worker(pem, tmp_path):
    path = tmp_path / "rsa_key.p8"
    path.write_text(pem)
    config = snowflake_destination_config(snowflake(PASSPHRASE, private_key_file=str(path)))
    assert config["privateKey"].strip() == pem.strip() and config["useKeyPairAuth"] is True


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        (lambda tmp: snowflake(None, authenticator="oauth", token="t0ken"), "uses authenticator 'oauth'"),
        (lambda tmp: snowflake(PASSPHRASE, private_key_file=str(tmp / "absent.p8")), "could not be read"),
        (
            lambda tmp: snowflake(PASSPHRASE, private_key_content="not a key at all"),
            "neither PEM text nor base64",
        ),
        (lambda tmp: snowflake(None), "neither a password nor a private key"),
        (lambda tmp: snowflake("pw", warehouse=""), "lacks ['warehouse']"),
    ],
)
def test_what_rudderstack_cannot_use_is_refused_naming_what_it_needs(conn, expected, tmp_path):
    with pytest.raises(CredentialsError) as err:
        snowflake_destination_config(conn(tmp_path))
    message = str(err.value)
    assert expected in message
    assert PASSPHRASE not in message and "t0ken" not in message and "pw" not in message.split()


def test_the_operator_path_refuses_with_a_task_failure_and_changes_nothing(monkeypatch):
    conn = snowflake(None, authenticator="externalbrowser")
    monkeypatch.setenv("AIRFLOW_CONN_SF_BROWSER", conn.as_json())
    with pytest.raises(AirflowFailException) as err:
        warehouse_credentials("sf_browser")
    assert "useKeyPairAuth" in str(err.value) and "Nothing was changed" in str(err.value)


def test_key_pair_connection_through_the_operator_path(pem, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SF_KEYPAIR", snowflake(PASSPHRASE, private_key_content=pem).as_json())
    config = warehouse_credentials("sf_keypair")
    assert config["useKeyPairAuth"] is True and config["privateKey"].startswith(
        "-----BEGIN ENCRYPTED PRIVATE KEY"
    )


def test_snowflake_destinations_get_the_upper_case_namespace():
    lane = Lane(
        name="app_events", schema="app_events", sources=(), destination_name="d", segment_source_name="s"
    )
    assert lane.namespace_for("SNOWFLAKE") == "APP_EVENTS"
    assert lane.namespace_for("POSTGRES") == "app_events"
