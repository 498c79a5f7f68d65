"""What RudderStack's control plane requires of a warehouse destination's config, checked before any change.

RudderStack validates a destination's ``config`` against its definition's schema
(rudderlabs/rudder-integrations-config ``src/configurations/destinations/<type>/schema.json``; the rudder-iac
CLI definitions ``cli/internal/providers/destination/definitions/<type>/definition.go`` mark the same fields
required). The rules here are transcribed from those files (commits in docs/real-services.md) for the types the
library creates, POSTGRES and SNOWFLAKE:

- POSTGRES ``required``: host, database, user, password, port, sslMode (disable | require | verify-ca),
  syncFrequency, useRudderStorage. ``allOf``: useRudderStorage false -> bucketProvider (S3 | GCS | AZURE_BLOB |
  MINIO) and the provider's keys (S3: bucketName and accessKeyID + accessKey, or iamRoleARN with roleBasedAuth
  true; GCS: bucketName, credentials; AZURE_BLOB: containerName, accountName and accountKey, or sasToken with
  useSASTokens true; MINIO: bucketName, endPoint, accessKeyID, secretAccessKey, useSSL); sslMode verify-ca ->
  clientKey, clientCert, serverCA.
- SNOWFLAKE ``required``: account, database, warehouse, user, syncFrequency, useRudderStorage. ``allOf``:
  useKeyPairAuth false -> password; useKeyPairAuth true -> privateKey (PKCS#8 PEM); useRudderStorage false ->
  cloudProvider (AWS | GCP | AZURE) and the provider's keys (AWS: bucketName and accessKeyID + accessKey, or
  iamRoleARN with roleBasedAuth true; GCP: bucketName, storageIntegration, credentials; AZURE: containerName,
  storageIntegration, accountName and accountKey, or sasToken with useSASTokens true).

:func:`config_problems` returns one :class:`FieldProblem` per missing or invalid field; the caller says where
each is set (:func:`where_to_set`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SCHEMA = "rudder-integrations-config src/configurations/destinations/{type}/schema.json"
SYNC_FREQUENCIES = ("5", "15", "30", "60", "180", "360", "720", "1440")  # schema.json syncFrequency
SUPPORTED_TYPES = ("POSTGRES", "SNOWFLAKE")
_PKCS8 = re.compile(
    r"-----BEGIN (?:ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:ENCRYPTED )?PRIVATE KEY-----"
)
_PKCS1_ONE_LINE = re.compile(r"-----BEGIN RSA PRIVATE KEY-----.*-----END RSA PRIVATE KEY-----")
_CERT_ONE_LINE = re.compile(r"-----BEGIN CERTIFICATE-----.*-----END CERTIFICATE-----")


@dataclass(frozen=True)
class FieldProblem:
    """One config field RudderStack would refuse: ``field`` (a config key), ``why`` (the rule)."""

    field: str
    why: str


def _present(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key)
    return value is not None and value != ""


def _require(config: Mapping[str, Any], keys: tuple[str, ...], rule: str, out: list[FieldProblem]) -> None:
    out.extend(FieldProblem(k, f"required {rule}") for k in keys if not _present(config, k))


def _one_of(config: Mapping[str, Any], key: str, allowed: tuple[str, ...], out: list[FieldProblem]) -> bool:
    """Present and one of ``allowed`` (else a problem is added)."""
    if not _present(config, key):
        return False
    if str(config[key]) not in allowed or not isinstance(config[key], str):
        out.append(FieldProblem(key, f"is {config[key]!r}, expected one of {', '.join(allowed)}"))
        return False
    return True


def _boolean(config: Mapping[str, Any], key: str, out: list[FieldProblem]) -> bool | None:
    """The JSON boolean at ``key`` (None when missing; a non-boolean is a problem)."""
    if key not in config:
        return None
    if not isinstance(config[key], bool):
        out.append(FieldProblem(key, f"is {config[key]!r}, expected a JSON boolean (true or false)"))
        return None
    return config[key]


def _keys_or_role(config: Mapping[str, Any], rule: str, out: list[FieldProblem]) -> None:
    """S3 / AWS: accessKeyID + accessKey, or iamRoleARN with roleBasedAuth true (schema.json anyOf)."""
    if config.get("roleBasedAuth") is True:
        _require(config, ("iamRoleARN",), f"{rule} and roleBasedAuth is true", out)
    else:
        _require(config, ("accessKeyID", "accessKey"), f"{rule} (or roleBasedAuth true with iamRoleARN)", out)


def _azure_keys(config: Mapping[str, Any], rule: str, out: list[FieldProblem]) -> None:
    if config.get("useSASTokens") is True:
        _require(config, ("sasToken",), f"{rule} and useSASTokens is true", out)
    else:
        _require(config, ("accountKey",), f"{rule} (or useSASTokens true with sasToken)", out)


def _postgres_storage(config: Mapping[str, Any], out: list[FieldProblem]) -> None:
    providers = ("S3", "GCS", "AZURE_BLOB", "MINIO")
    _require(config, ("bucketProvider",), "when useRudderStorage is false", out)
    if not _one_of(config, "bucketProvider", providers, out):
        return
    provider = config["bucketProvider"]
    rule = f"when bucketProvider is {provider}"
    if provider == "S3":
        _require(config, ("bucketName",), rule, out)
        _keys_or_role(config, rule, out)
    elif provider == "GCS":
        _require(config, ("bucketName", "credentials"), rule, out)
    elif provider == "AZURE_BLOB":
        _require(config, ("containerName", "accountName"), rule, out)
        _azure_keys(config, rule, out)
    else:
        _require(config, ("bucketName", "endPoint", "accessKeyID", "secretAccessKey", "useSSL"), rule, out)


def _postgres(config: Mapping[str, Any], out: list[FieldProblem]) -> None:
    _require(
        config, ("host", "database", "user", "password", "port", "sslMode"), "(schema.json required)", out
    )
    if (
        _one_of(config, "sslMode", ("disable", "require", "verify-ca"), out)
        and config["sslMode"] == "verify-ca"
    ):
        _require(config, ("clientKey", "clientCert", "serverCA"), "when sslMode is verify-ca", out)
        for key, pattern, what in (
            (
                "clientKey",
                _PKCS1_ONE_LINE,
                "an RSA key in PKCS#1 PEM form (BEGIN RSA PRIVATE KEY) on one line",
            ),
            ("clientCert", _CERT_ONE_LINE, "a PEM certificate on one line"),
            ("serverCA", _CERT_ONE_LINE, "a PEM certificate on one line"),
        ):
            if _present(config, key) and not pattern.search(str(config[key])):
                out.append(FieldProblem(key, f"is not {what}"))
    if _storage_is_ours(config, out) is False:
        _postgres_storage(config, out)


def _snowflake_storage(config: Mapping[str, Any], out: list[FieldProblem]) -> None:
    _require(config, ("cloudProvider",), "when useRudderStorage is false", out)
    if not _one_of(config, "cloudProvider", ("AWS", "GCP", "AZURE"), out):
        return
    provider = config["cloudProvider"]
    rule = f"when cloudProvider is {provider}"
    if provider == "AWS":
        _require(config, ("bucketName",), rule, out)
        _keys_or_role(config, rule, out)
    elif provider == "GCP":
        _require(config, ("bucketName", "storageIntegration", "credentials"), rule, out)
    else:
        _require(config, ("containerName", "storageIntegration", "accountName"), rule, out)
        _azure_keys(config, rule, out)


def _snowflake(config: Mapping[str, Any], out: list[FieldProblem]) -> None:
    _require(config, ("account", "database", "warehouse", "user"), "(schema.json required)", out)
    key_pair = _boolean(config, "useKeyPairAuth", out)
    if key_pair is None and "useKeyPairAuth" not in config:
        out.append(
            FieldProblem("useKeyPairAuth", "required to say password or key pair (rudder-iac: required)")
        )
    elif key_pair is False:
        _require(config, ("password",), "when useKeyPairAuth is false", out)
    elif key_pair is True:
        _require(config, ("privateKey",), "when useKeyPairAuth is true", out)
        if _present(config, "privateKey") and not _PKCS8.search(str(config["privateKey"])):
            out.append(
                FieldProblem(
                    "privateKey", "is not a PKCS#8 PEM key (BEGIN PRIVATE KEY / BEGIN ENCRYPTED PRIVATE KEY)"
                )
            )
    if _storage_is_ours(config, out) is False:
        _snowflake_storage(config, out)


def _storage_is_ours(config: Mapping[str, Any], out: list[FieldProblem]) -> bool | None:
    if "useRudderStorage" not in config:
        out.append(
            FieldProblem("useRudderStorage", "required (schema.json required): where events are staged")
        )
        return None
    return _boolean(config, "useRudderStorage", out)


_RULES: dict[str, Callable[[Mapping[str, Any], list[FieldProblem]], None]] = {
    "POSTGRES": _postgres,
    "SNOWFLAKE": _snowflake,
}


def config_problems(
    destination_type: str, config: Mapping[str, Any], *, skip: frozenset[str] = frozenset()
) -> list[FieldProblem]:
    """Every field of ``config`` RudderStack would refuse for ``destination_type`` (empty: accepted, or a type
    without rules here). ``skip``: fields not to report (e.g. secrets an existing destination does not show)."""
    rules = _RULES.get(destination_type.upper())
    if rules is None:
        return []
    out: list[FieldProblem] = []
    _require(config, ("syncFrequency",), "(schema.json required)", out)
    _one_of(config, "syncFrequency", SYNC_FREQUENCIES, out)
    rules(config, out)
    seen: set[str] = set()
    unique = []
    for problem in out:
        if problem.field not in skip and problem.field not in seen:
            seen.add(problem.field)
            unique.append(problem)
    return unique


def where_to_set(field: str, *, destination_type: str, credentials_conn_id: str | None) -> str:
    """Where a user sets ``field`` of the config the migration creates a destination with."""
    conn = (
        f"Airflow connection {credentials_conn_id!r}" if credentials_conn_id else "the warehouse connection"
    )
    postgres = {
        "host": f"{conn}: host",
        "port": f"{conn}: port",
        "database": f"{conn}: schema (the database)",
        "user": f"{conn}: login",
        "password": f"{conn}: password",
        "sslMode": f"{conn}: extra sslmode (disable, require or verify-ca)",
        "clientKey": f"{conn}: extra sslkey (the client key's file)",
        "clientCert": f"{conn}: extra sslcert (the client certificate's file)",
        "serverCA": f"{conn}: extra sslrootcert (the CA certificate's file)",
    }
    snowflake = {
        "account": f"{conn}: extra account (and region)",
        "warehouse": f"{conn}: extra warehouse",
        "database": f"{conn}: extra database",
        "user": f"{conn}: login",
        "password": f"{conn}: password (or a private key in the extra private_key_content)",
        "useKeyPairAuth": f"{conn}: password, or a private key in the extra private_key_content",
        "privateKey": f"{conn}: extra private_key_content or private_key_file",
    }
    known = snowflake if destination_type.upper() == "SNOWFLAKE" else postgres
    if field in known:
        return known[field]
    if field == "syncFrequency":
        return "plan: rudderstack.destination.sync_frequency_minutes"
    if field in ("accessKeyID", "accessKey", "secretAccessKey", "accountKey", "sasToken", "credentials"):
        return "the staging connection (plan: rudderstack.destination.staging.conn_id): its login/password or extras"
    return (
        "plan: rudderstack.destination.staging (storage: rudderstack, or a bucket with its provider and its "
        "connection)"
    )


def explain(
    problems: list[FieldProblem], *, destination_type: str, credentials_conn_id: str | None
) -> list[str]:
    """One sentence per problem: the field, what RudderStack requires, and where to set it."""
    schema = SCHEMA.format(type=destination_type.lower())
    return [
        f"config.{p.field} {p.why} by RudderStack's {destination_type.upper()} destination ({schema}); set it in "
        + where_to_set(p.field, destination_type=destination_type, credentials_conn_id=credentials_conn_id)
        for p in problems
    ]
