"""RudderStack's destination definitions for the warehouse types the library creates, as its control plane
validates a destination's ``config`` (create and update) before it stores it.

Source: rudderlabs/rudder-integrations-config at d1195826d9e1b7161d8e8107f8fe43de8f2e7307,
``src/configurations/destinations/postgres/schema.json`` and ``src/configurations/destinations/snowflake/
schema.json`` (``configSchema``: JSON Schema draft-07, "used for validation in the backend"). The parts below are
transcribed from those files: every ``required`` list, every property the library or a user of the sandbox
sets with its type, pattern or enum, and every ``allOf`` if/then rule, each with its index in the file
(``allOf[i]``). Left out: the consent-management and connection-mode objects (per-source-type UI settings the
warehouse destinations never read), and PostgreSQL's SSH tunnel rule keeps only its required keys.
``additionalProperties`` is true in both files: other keys pass.

The answer to a refused config is RudderStack's API error shape as its own client parses it (rudderlabs/
rudder-iac ``api/client/common.go`` ``APIError``: ``error``, ``message``, ``code``, ``details``; ``details`` is "a
flat {"field":"message"} object", e.g. ``api/client/datagraph/column_metadata_test.go`` records
``{"message":"request validation failed","error":"request validation failed","details":{...}}``): 400 with
``details`` naming each ``config.<field>`` and the schema.json rule that refused it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft7Validator

SOURCE = "{file}/schema.json"  # rudder-integrations-config src/configurations/destinations/, commit above
_ENV = r"(^env[.].+)|"  # every string pattern also accepts an env.<NAME> reference
_TEMPLATE = r"(^\{\{.*\|\|(.*)\}\}$)|(^env[.].+)|"  # Snowflake's patterns also accept {{ ... || default }}
_S3_BUCKET = r"^((?!^xn--)(?!.*\.\..*)(?!^(\d+(\.|$)){4}$)[a-z0-9][a-z0-9-.]{1,61}[a-z0-9])$"
_GCS_BUCKET = r"^((?!goog)(?!.*google.*)(?!^(\d+(\.|$)){4}$)(?!.*\.\..*)[a-z0-9][a-z0-9-._]{1,61}[a-z0-9])$"
_AZURE_CONTAINER = r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$"
_NAMESPACE = r"^((?!pg_|PG_|pG_|Pg_).{0,64})$"
_EXCLUDE_WINDOW = {
    "type": "object",
    "required": ["excludeWindowStartTime", "excludeWindowEndTime"],
    "properties": {"excludeWindowStartTime": {"type": "string"}, "excludeWindowEndTime": {"type": "string"}},
}


def _text(pattern: str, prefix: str = _ENV) -> dict[str, Any]:
    return {"type": "string", "pattern": prefix + pattern}


def _when(conditions: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    """An ``allOf`` entry: ``if`` every key has its ``const`` value (and is present), ``then`` ..."""
    return {
        "if": {"properties": {k: {"const": v} for k, v in conditions.items()}, "required": list(conditions)},
        "then": then,
    }


_POSTGRES_PROPERTIES: dict[str, Any] = {
    "host": _text(r"(?!.*.ngrok.io)^(.{1,200})$"),
    "database": _text(r"^(.{1,100})$"),
    "user": _text(r"^(.{1,100})$"),
    "password": _text(r".+"),
    "port": _text(r"^(.{1,100})$"),
    "skipTracksTable": {"type": "boolean"},
    "skipUsersTable": {"type": "boolean"},
    "namespace": {"type": "string", "pattern": r"(^env[.].*)|" + _NAMESPACE},
    "useSSH": {"type": "boolean"},
    "sslMode": {"type": "string", "pattern": r"^(disable|require|verify-ca)$"},
    "syncFrequency": {"type": "string", "pattern": r"^(5|15|30|60|180|360|720|1440)$"},
    "syncStartAt": {"type": "string"},
    "excludeWindow": _EXCLUDE_WINDOW,
    "jsonPaths": {"type": "string", "pattern": r"(^env[.].*)|.*"},
    "useRudderStorage": {"type": "boolean"},
    "preferAppend": {"type": "boolean"},
    "bucketProvider": {"type": "string", "pattern": r"^(S3|GCS|AZURE_BLOB|MINIO)$"},
}

#: postgres/schema.json configSchema (allOf indices as in the file)
POSTGRES: dict[str, Any] = {
    "type": "object",
    "required": [
        "host",
        "database",
        "user",
        "password",
        "port",
        "sslMode",
        "syncFrequency",
        "useRudderStorage",
    ],
    "properties": _POSTGRES_PROPERTIES,
    "allOf": [
        # allOf[0] (and allOf[7]): the SSH tunnel's keys
        _when({"useSSH": True}, {"required": ["sshHost", "sshPort", "sshUser", "sshPublicKey"]}),
        # allOf[1]: a bucket of the user's when RudderStack-managed storage is off
        _when(
            {"useRudderStorage": False},
            {
                "properties": {"cleanupObjectStorageFiles": {"type": "boolean"}},
                "required": ["bucketProvider"],
            },
        ),
        # allOf[2]: S3: the bucket, and keys or a role
        _when(
            {"bucketProvider": "S3", "useRudderStorage": False},
            {
                "properties": {"bucketName": _text(_S3_BUCKET)},
                "required": ["bucketName"],
                "anyOf": [
                    {"type": "object", "required": ["accessKeyID", "accessKey"]},
                    {
                        "type": "object",
                        "properties": {"iamRoleARN": {"type": "string"}, "roleBasedAuth": {"const": True}},
                        "required": ["iamRoleARN", "roleBasedAuth"],
                    },
                ],
            },
        ),
        # allOf[3]: GCS
        _when(
            {"bucketProvider": "GCS", "useRudderStorage": False},
            {
                "properties": {"bucketName": _text(_GCS_BUCKET), "credentials": _text(r".+")},
                "required": ["bucketName", "credentials"],
            },
        ),
        # allOf[4]: Azure Blob: the container, the account, and its key or a SAS token
        _when(
            {"bucketProvider": "AZURE_BLOB", "useRudderStorage": False},
            {
                "properties": {
                    "containerName": _text(_AZURE_CONTAINER),
                    "accountName": _text(r"^(.{1,100})$"),
                },
                "required": ["containerName", "accountName"],
                "anyOf": [
                    {"required": ["accountKey"]},
                    {
                        "properties": {"useSASTokens": {"const": True}},
                        "required": ["useSASTokens", "sasToken"],
                    },
                ],
            },
        ),
        # allOf[5]: MinIO
        _when(
            {"bucketProvider": "MINIO", "useRudderStorage": False},
            {
                "properties": {"useSSL": {"type": "boolean"}},
                "required": ["bucketName", "endPoint", "accessKeyID", "secretAccessKey", "useSSL"],
            },
        ),
        # allOf[6]: verify-ca needs the client key (PKCS#1, one line: '.' matches no newline), cert and CA
        _when(
            {"sslMode": "verify-ca"},
            {
                "properties": {
                    "clientKey": {
                        "type": "string",
                        "pattern": "-----BEGIN RSA PRIVATE KEY-----.*-----END RSA PRIVATE KEY-----",
                    },
                    "clientCert": {
                        "type": "string",
                        "pattern": "-----BEGIN CERTIFICATE-----.*-----END CERTIFICATE-----",
                    },
                    "serverCA": {
                        "type": "string",
                        "pattern": "-----BEGIN CERTIFICATE-----.*-----END CERTIFICATE-----",
                    },
                },
                "required": ["clientKey", "clientCert", "serverCA"],
            },
        ),
    ],
    "additionalProperties": True,
}

_SNOWFLAKE_PROPERTIES: dict[str, Any] = {
    "account": _text(r"^(.{1,100})$", _TEMPLATE),
    "database": _text(r"^(.{1,100})$", _TEMPLATE),
    "warehouse": _text(r"^(.{1,100})$", _TEMPLATE),
    "user": _text(r"^(.{1,100})$", _TEMPLATE),
    "role": _text(r"^(.{0,100})$", _TEMPLATE),
    "namespace": _text(_NAMESPACE, _TEMPLATE),
    "syncFrequency": {"type": "string", "enum": ["5", "15", "30", "60", "180", "360", "720", "1440"]},
    "syncStartAt": {"type": "string"},
    "skipTracksTable": {"type": "boolean"},
    "skipUsersTable": {"type": "boolean"},
    "excludeWindow": _EXCLUDE_WINDOW,
    "jsonPaths": _text(r"^(.*)$", _TEMPLATE),
    "useRudderStorage": {"type": "boolean"},
    "useKeyPairAuth": {"type": "boolean"},
    "preferAppend": {"type": "boolean"},
    "manualSync": {"type": "boolean"},
}

#: snowflake/schema.json configSchema (allOf indices as in the file)
SNOWFLAKE: dict[str, Any] = {
    "type": "object",
    "required": ["account", "database", "warehouse", "user", "syncFrequency", "useRudderStorage"],
    "properties": _SNOWFLAKE_PROPERTIES,
    "allOf": [
        # allOf[0]: password authentication
        _when({"useKeyPairAuth": False}, {"required": ["password"]}),
        # allOf[1]: key-pair authentication: a PKCS#8 key (plain or encrypted), its passphrase at most 100 chars
        _when(
            {"useKeyPairAuth": True},
            {
                "properties": {
                    "privateKey": {
                        "type": "string",
                        "pattern": "-----BEGIN (?:ENCRYPTED )?PRIVATE KEY-----[\\s\\S]+?"
                        "-----END (?:ENCRYPTED )?PRIVATE KEY-----",
                    },
                    "privateKeyPassphrase": {"type": "string", "pattern": "^(.{0,100})$"},
                },
                "required": ["privateKey", "useKeyPairAuth"],
            },
        ),
        # allOf[2]: a bucket of the user's cloud when RudderStack-managed storage is off
        _when(
            {"useRudderStorage": False},
            {
                "properties": {
                    "cloudProvider": {"type": "string", "enum": ["AWS", "GCP", "AZURE"]},
                    "prefix": _text(r"^(.{0,100})$", _TEMPLATE),
                },
                "required": ["cloudProvider"],
            },
        ),
        # allOf[3]: AWS: the bucket, and keys (roleBasedAuth false) or a role
        _when(
            {"cloudProvider": "AWS", "useRudderStorage": False},
            {
                "properties": {"bucketName": _text(_S3_BUCKET, _TEMPLATE)},
                "required": ["bucketName"],
                "anyOf": [
                    {
                        "properties": {"roleBasedAuth": {"const": False}},
                        "required": ["accessKeyID", "accessKey"],
                    },
                    {
                        "properties": {"roleBasedAuth": {"const": True}},
                        "required": ["iamRoleARN", "roleBasedAuth"],
                    },
                ],
            },
        ),
        # allOf[4]: GCP
        _when(
            {"cloudProvider": "GCP", "useRudderStorage": False},
            {
                "properties": {"bucketName": _text(_GCS_BUCKET, _TEMPLATE)},
                "required": ["bucketName", "storageIntegration", "credentials"],
            },
        ),
        # allOf[5]: Azure
        _when(
            {"cloudProvider": "AZURE", "useRudderStorage": False},
            {
                "properties": {"containerName": _text(_AZURE_CONTAINER, _TEMPLATE)},
                "required": ["containerName", "storageIntegration", "accountName"],
                "anyOf": [
                    {"properties": {"useSASTokens": {"const": False}}, "required": ["accountKey"]},
                    {
                        "properties": {"useSASTokens": {"const": True}},
                        "required": ["sasToken", "useSASTokens"],
                    },
                ],
            },
        ),
    ],
    "additionalProperties": True,
}

DEFINITIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "POSTGRES": ("postgres", POSTGRES),
    "SNOWFLAKE": ("snowflake", SNOWFLAKE),
}
_VALIDATORS = {kind: Draft7Validator(schema) for kind, (_, schema) in DEFINITIONS.items()}


def _path(error: Any) -> str:
    keys = [str(part) for part in error.absolute_path]
    if error.validator == "anyOf":
        keys.append("|".join(dict.fromkeys(k for o in error.validator_value for k in o.get("required", []))))
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        keys.append(missing)
    return "config" + "".join(f".{k}" for k in keys)


def _rule(error: Any) -> str:
    """Where in schema.json the failing keyword is, e.g. ``allOf[1].then.required``."""
    parts = []
    for part in error.absolute_schema_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".")


def _message(error: Any) -> str:
    if error.validator == "required":
        return "Required"
    if error.validator == "anyOf":
        options = [" + ".join(option.get("required", [])) for option in error.validator_value]
        return f"needs one of: {' | '.join(options)}"
    if error.validator in ("pattern", "enum", "const"):
        return f"{error.instance!r} does not match {error.validator} {error.validator_value!r}"
    return error.message


def config_errors(destination_type: str, config: Mapping[str, Any]) -> dict[str, str] | None:
    """``{"config.<field>": "<why> (<schema.json> <rule>)"}`` for a config RudderStack refuses, ``{}`` when it is
    accepted, ``None`` when the sandbox has no definition for the type."""
    known = DEFINITIONS.get(str(destination_type).upper())
    if known is None:
        return None
    file, _ = known
    source = SOURCE.format(file=file)
    details: dict[str, str] = {}
    for error in sorted(_VALIDATORS[str(destination_type).upper()].iter_errors(dict(config)), key=str):
        details.setdefault(_path(error), f"{_message(error)} ({source} {_rule(error)})")
    return details


def accepted_config(namespace: str, destination_type: str = "POSTGRES", **overrides: Any) -> dict[str, Any]:
    """A complete config the control plane accepts, for destinations made outside the library (test set-ups,
    someone else's destination): the sandbox's PostgreSQL in the required fields (the emulator loads into the
    warehouse it was given whatever they say), RudderStack-managed staging, merge mode, the users table kept
    and context traits allowed (what a migration's plan asks for by default)."""
    base: dict[str, Any] = {
        "namespace": namespace,
        "syncFrequency": "30",
        "useRudderStorage": True,
        "preferAppend": False,
        "skipUsersTable": False,
        "allowUsersContextTraits": True,
    }
    if str(destination_type).upper() == "SNOWFLAKE":
        base.update(account="sandbox", database="SANDBOX", warehouse="SANDBOX", user="SANDBOX")
        base.update(useKeyPairAuth=False, password="sandbox")
    else:
        base.update(host="127.0.0.1", port="5432", database="postgres", user="postgres", password="sandbox")
        base.update(sslMode="disable")
    return {**base, **overrides}
