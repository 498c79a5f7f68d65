"""Airflow connections become the config RudderStack's control plane accepts (segment_rudderstack.connections):
libpq's sslmode mapped to RudderStack's sslMode or refused saying what to set, Snowflake keys converted to
PKCS#8, staging storage keys from an Airflow connection, and every missing field named with where to set it.
The result is checked against the sandbox's transcription of rudder-integrations-config's schema.json."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from airflow.models.connection import Connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from sandbox.rudderstack_definitions import config_errors
from segment_rudderstack.connections.required_fields import config_problems, explain
from segment_rudderstack.connections.rudderstack_destination import (
    CredentialsError,
    destination_config,
    postgres_destination_config,
    snowflake_private_key,
    staging_config,
)
from segment_rudderstack.plan.model import PlanError, parse_plan

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key, private_format, passphrase: str | None = None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, private_format, encryption).decode()


def postgres(extra: dict | None = None, **fields) -> Connection:
    return Connection(
        conn_id="wh",
        conn_type="postgres",
        host=fields.get("host", "db.internal"),
        port=fields.get("port", 5432),
        schema="analytics",
        login="loader",
        password="pg-s3cret",
        extra=json.dumps(extra or {}),
    )


@pytest.mark.parametrize("mode", ["disable", "require"])
def test_libpq_sslmode_becomes_rudderstacks_sslmode(mode):
    config = postgres_destination_config(postgres({"sslmode": mode}))
    assert config == {
        "host": "db.internal",
        "port": "5432",
        "database": "analytics",
        "user": "loader",
        "password": "pg-s3cret",
        "sslMode": mode,
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "sets no extra 'sslmode'"),
        ({"sslmode": "prefer"}, "set 'require' if the server takes TLS"),
        ({"sslmode": "allow"}, "set 'disable'"),
        ({"sslmode": "verify-full"}, "set 'verify-ca'"),
        ({"sslMode": "require"}, "rename it to 'sslmode'"),
    ],
)
def test_ssl_modes_rudderstack_does_not_offer_are_refused_saying_what_to_set(extra, expected):
    with pytest.raises(CredentialsError) as refused:
        postgres_destination_config(postgres(extra))
    assert expected in str(refused.value) and "disable, require or verify-ca" in str(refused.value)
    assert "pg-s3cret" not in str(refused.value)


def _certificate(key) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_verify_ca_reads_the_connections_tls_files_in_the_form_rudderstack_takes(rsa_key, tmp_path):
    (tmp_path / "client.key").write_text(pem(rsa_key, serialization.PrivateFormat.PKCS8))
    (tmp_path / "client.crt").write_text(_certificate(rsa_key))
    (tmp_path / "ca.crt").write_text(_certificate(rsa_key))
    extra = {
        "sslmode": "verify-ca",
        "sslkey": str(tmp_path / "client.key"),
        "sslcert": str(tmp_path / "client.crt"),
        "sslrootcert": str(tmp_path / "ca.crt"),
    }
    config = postgres_destination_config(postgres(extra))
    # schema.json wants the client key as PKCS#1 and every PEM on one line (rudder-server FormatPemContent)
    assert config["clientKey"].startswith("-----BEGIN RSA PRIVATE KEY----- ")
    assert "\n" not in config["clientKey"] + config["clientCert"] + config["serverCA"]
    restored = (
        config["clientKey"].replace(" ", "\n").replace("BEGIN\nRSA\nPRIVATE\nKEY", "BEGIN RSA PRIVATE KEY")
    )
    restored = restored.replace("END\nRSA\nPRIVATE\nKEY", "END RSA PRIVATE KEY")
    same = serialization.load_pem_private_key(restored.encode(), None)
    assert same.private_numbers() == rsa_key.private_numbers()
    full = {**config, "syncFrequency": "30", "useRudderStorage": True}
    assert config_problems("POSTGRES", full) == [] and config_errors("POSTGRES", full) == {}
    del extra["sslrootcert"]
    with pytest.raises(CredentialsError, match="extra 'sslrootcert'"):
        postgres_destination_config(postgres(extra))


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE])
def test_a_pkcs1_snowflake_key_is_converted_to_pkcs8(rsa_key, passphrase):
    pkcs1 = pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL, passphrase)
    assert pkcs1.startswith("-----BEGIN RSA PRIVATE KEY-----")
    converted = snowflake_private_key(pkcs1, passphrase, "sf")
    header = "-----BEGIN ENCRYPTED PRIVATE KEY-----" if passphrase else "-----BEGIN PRIVATE KEY-----"
    assert converted.startswith(header)
    key = serialization.load_pem_private_key(converted.encode(), passphrase.encode() if passphrase else None)
    assert key.private_numbers() == rsa_key.private_numbers()
    config = {"account": "a", "database": "d", "warehouse": "w", "user": "u", "syncFrequency": "30"}
    config.update(useRudderStorage=True, useKeyPairAuth=True, privateKey=converted)
    assert config_problems("SNOWFLAKE", config) == [] and config_errors("SNOWFLAKE", config) == {}


def test_keys_rudderstack_cannot_parse_are_refused_with_how_to_convert(rsa_key):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CredentialsError, match="not an RSA key"):
        snowflake_private_key(pem(ec_key, serialization.PrivateFormat.PKCS8), None, "sf")
    openssh = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    with pytest.raises(CredentialsError, match="openssl pkcs8 -topk8"):
        snowflake_private_key(openssh, None, "sf")
    encrypted = pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL, PASSPHRASE)
    with pytest.raises(CredentialsError, match="no passphrase is given"):
        snowflake_private_key(encrypted, None, "sf")


def test_staging_keys_come_from_airflow_connections_never_from_the_plan(monkeypatch):
    aws = Connection(conn_id="aws_staging", conn_type="aws", login="AKIAEXAMPLE", password="aws-s3cret")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_STAGING", aws.as_json())
    s3 = {"storage": "s3", "bucket": "rs-staging", "conn_id": "aws_staging"}
    assert staging_config("POSTGRES", s3) == {
        "useRudderStorage": False,
        "bucketProvider": "S3",
        "bucketName": "rs-staging",
        "roleBasedAuth": False,
        "accessKeyID": "AKIAEXAMPLE",
        "accessKey": "aws-s3cret",
    }
    snowflake = staging_config("SNOWFLAKE", {**s3, "prefix": "rs", "storage_integration": "RS_INT"})
    assert (snowflake["cloudProvider"], snowflake["prefix"], snowflake["storageIntegration"]) == (
        "AWS",
        "rs",
        "RS_INT",
    )
    role = staging_config(
        "POSTGRES", {"storage": "s3", "bucket": "rs-staging", "role_arn": "arn:aws:iam::1:role/rs"}
    )
    assert (role["roleBasedAuth"], role["iamRoleARN"]) == (True, "arn:aws:iam::1:role/rs")
    wasb = Connection(conn_id="blob", conn_type="wasb", login="acct", extra=json.dumps({"sas_token": "sv=x"}))
    monkeypatch.setenv("AIRFLOW_CONN_BLOB", wasb.as_json())
    azure = staging_config("POSTGRES", {"storage": "azure_blob", "bucket": "rs-box", "conn_id": "blob"})
    assert azure == {
        "useRudderStorage": False,
        "bucketProvider": "AZURE_BLOB",
        "containerName": "rs-box",
        "accountName": "acct",
        "useSASTokens": True,
        "sasToken": "sv=x",
    }
    gcp = Connection(
        conn_id="gcp", conn_type="google_cloud_platform", extra=json.dumps({"keyfile_dict": {"a": 1}})
    )
    monkeypatch.setenv("AIRFLOW_CONN_GCP", gcp.as_json())
    assert (
        staging_config("POSTGRES", {"storage": "gcs", "bucket": "rs-b", "conn_id": "gcp"})["credentials"]
        == '{"a": 1}'
    )
    assert staging_config("POSTGRES", {"storage": "rudderstack"}) == {"useRudderStorage": True}


def test_the_whole_config_is_accepted_and_missing_fields_name_where_to_set_them(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WH", postgres({"sslmode": "require"}).as_json())
    config = destination_config(
        "POSTGRES", namespace="app_events", credentials_conn_id="wh", staging={"storage": "rudderstack"}
    )
    assert config_errors("POSTGRES", config) == {} and config_problems("POSTGRES", config) == []
    assert (config["preferAppend"], config["skipUsersTable"], config["allowUsersContextTraits"]) == (
        False,
        False,
        True,
    )
    bare = destination_config("POSTGRES", namespace="app_events", credentials_conn_id="wh", users_table=False)
    assert bare["skipUsersTable"] is True
    lines = explain(config_problems("POSTGRES", bare), destination_type="POSTGRES", credentials_conn_id="wh")
    assert len(lines) == 1 and "config.useRudderStorage" in lines[0]
    assert "rudderstack.destination.staging" in lines[0] and "postgres/schema.json" in lines[0]
    nothing = explain(
        config_problems("POSTGRES", {"syncFrequency": "30"}),
        destination_type="POSTGRES",
        credentials_conn_id="wh",
    )
    assert any("config.sslMode" in line and "extra sslmode" in line for line in nothing)
    assert any("config.password" in line and "'wh': password" in line for line in nothing)


def _plan(destination: dict) -> dict:
    return {
        "name": "p",
        "segment": {"warehouse_id": "wh"},
        "sources": [{"id": "s", "kind": "client"}],
        "warehouse": {"conn_id": "w", "namespace": "app_events"},
        "rudderstack": {"destination": destination},
    }


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ({"config": {"sslMode": "require"}}, "extra sslmode"),
        ({"config": {"skipUsersTable": True}}, "rudderstack.destination.users_table"),
        ({"staging": {"storage": "s3", "bucket": "b"}}, "needs ['conn_id']"),
        ({"staging": {"storage": "s3", "bucket": "b", "conn_id": "a", "accessKey": "x"}}, "unknown field"),
        (
            {
                "type": "SNOWFLAKE",
                "staging": {"storage": "minio", "bucket": "b", "conn_id": "m", "endpoint": "e"},
            },
            "minio",
        ),
        ({"staging": {"storage": "s3", "bucket": "b", "conn_id": "a", "prefix": "x"}}, "Snowflake settings"),
    ],
)
def test_the_plan_refuses_destination_settings_in_the_wrong_place(destination, expected):
    with pytest.raises(PlanError, match="rudderstack.destination") as refused:
        parse_plan(_plan(destination))
    assert expected in str(refused.value)


def test_the_readmes_real_service_plan_is_a_valid_plan():
    import pathlib
    import re

    import yaml

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"A plan for real services.*?```yaml\n(.*?)```", readme, re.S).group(1)
    plan = parse_plan(yaml.safe_load(block))
    assert plan.rudderstack.destination.staging.storage == "s3"
