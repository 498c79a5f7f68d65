"""Airflow connections (PostgreSQL, Snowflake, staging storage) as RudderStack warehouse destination config.

This module is the one place that turns Airflow connections and the plan's destination settings into the
``config`` of a RudderStack warehouse destination (:func:`destination_config`), or refuses with a message that
says what RudderStack needs and where to set it (never a secret). What RudderStack requires of that config is
checked in :mod:`segment_rudderstack.connections.required_fields`.

Sources (rudderlabs/rudder-integrations-config ``src/configurations/destinations/<type>/schema.json``,
rudder-server, sqlconnect-go; see docs/real-services.md for the commits):

- PostgreSQL: ``host``, ``port`` (a string), ``database``, ``user``, ``password`` and ``sslMode``, one of
  ``disable``, ``require``, ``verify-ca`` (schema.json ``sslMode`` pattern). The Airflow connection keeps libpq's
  ``sslmode`` in its extra (psycopg2 refuses a camelCase ``sslMode``). libpq's ``prefer`` (its default),
  ``allow`` and ``verify-full`` have no RudderStack equivalent: refused, saying what to set. ``verify-ca`` also
  needs ``clientKey``, ``clientCert`` and ``serverCA`` (PEM text; schema.json wants the client key as PKCS#1,
  ``BEGIN RSA PRIVATE KEY``, on one line, which rudder-server ``warehouse/utils/utils.go`` ``FormatPemContent``
  turns back into a PEM file): read from the files the connection's extras ``sslkey``, ``sslcert`` and
  ``sslrootcert`` name.
- Snowflake: ``account``, ``warehouse``, ``database``, ``user``, ``role`` and either ``password``
  (``useKeyPairAuth: false``) or ``useKeyPairAuth: true`` with ``privateKey`` (PEM text) and
  ``privateKeyPassphrase`` for an encrypted key. RudderStack parses the key as PKCS#8 only (sqlconnect-go
  ``sqlconnect/internal/snowflake/config.go`` ``ParsePrivateKey``: ``pkcs8.ParsePKCS8PrivateKeyRSA``; schema.json's
  ``privateKey`` pattern ``BEGIN (ENCRYPTED )?PRIVATE KEY``): a PKCS#1 key (``BEGIN RSA PRIVATE KEY``, which
  Airflow's Snowflake hook accepts) is converted to PKCS#8 here with ``cryptography`` (encrypted again with the
  same passphrase), anything else is refused with the ``openssl`` command that converts it. Airflow's Snowflake
  connection keeps the key in the extra ``private_key_content`` (PEM text or its base64) or ``private_key_file``
  (a path on the worker), with the connection password as the key's passphrase. Other authenticators (OAuth,
  browser SSO, Okta, ...) have no RudderStack equivalent. RudderStack names Snowflake schemas in upper case
  (rudder-server ``warehouse/utils/utils.go`` ``ToProviderCase``).
- Staging storage (schema.json ``useRudderStorage``, required): RudderStack-managed object storage
  (``useRudderStorage: true``; "only available for RudderStack managed data planes", ui-config.json), or a bucket
  of the plan's provider (PostgreSQL ``bucketProvider`` S3 | GCS | AZURE_BLOB | MINIO; Snowflake ``cloudProvider``
  AWS | GCP | AZURE) with its keys taken from an Airflow connection: aws (login = access key id, password = secret
  access key, extra ``role_arn``), google_cloud_platform (extra ``keyfile_dict`` or ``key_path``), wasb (login =
  account name, password = account key, extra ``sas_token``). Keys never come from the plan file.
- The settings the cutover depends on (:func:`pinned_settings`): ``preferAppend`` off (merge: the overlap is
  deduplicated), ``skipUsersTable`` off unless the plan says the warehouse has no ``users`` model, and
  ``allowUsersContextTraits`` as the plan chooses (rudder-server ``processor/internal/transformer/
  destination_transformer/embedded/warehouse/options.go`` ``extractDestOpts``; schema.json defaults
  ``preferAppend`` and ``skipUsersTable`` to true, and a missing ``allowUsersContextTraits`` reads as false).
"""

from __future__ import annotations

import base64
import binascii
import json
import pathlib
from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

RUDDERSTACK_NEEDS = (
    "RudderStack's Snowflake destination authenticates with a password (config 'password') or a key pair "
    "(config 'useKeyPairAuth': true, 'privateKey': the PEM text of an RSA private key in PKCS#8 form, "
    "'privateKeyPassphrase' when the key is encrypted)"
)
PASSWORD_OR_KEY_PAIR = {"", "snowflake", "snowflake_jwt"}
PEM_BEGIN = "-----BEGIN "
TO_PKCS8 = (
    "convert it to PKCS#8 with `openssl pkcs8 -topk8 -inform PEM -in rsa_key.pem -out rsa_key.p8 -nocrypt` "
    "(or `-v2 aes256` instead of `-nocrypt` to keep it encrypted) and put rsa_key.p8 in the connection"
)
#: libpq ``sslmode`` (psycopg2) -> RudderStack's ``sslMode`` (schema.json pattern disable|require|verify-ca)
SSL_MODES = {"disable": "disable", "require": "require", "verify-ca": "verify-ca"}
#: config keys that carry secrets (db-config.json ``secretKeys`` of POSTGRES and SNOWFLAKE, and the TLS key)
SECRET_KEYS = frozenset(
    {
        "password",
        "accessKeyID",
        "accessKey",
        "accountKey",
        "sasToken",
        "secretAccessKey",
        "credentials",
        "privateKey",
        "privateKeyPassphrase",
        "clientKey",
    }
)
#: staging storage kinds of the plan -> PostgreSQL ``bucketProvider`` / Snowflake ``cloudProvider``
BUCKET_PROVIDERS = {"s3": "S3", "gcs": "GCS", "azure_blob": "AZURE_BLOB", "minio": "MINIO"}
CLOUD_PROVIDERS = {"s3": "AWS", "gcs": "GCP", "azure_blob": "AZURE"}
PREFER_APPEND, SKIP_USERS_TABLE, ALLOW_USERS_CONTEXT_TRAITS = (
    "preferAppend",
    "skipUsersTable",
    "allowUsersContextTraits",
)


class CredentialsError(ValueError):
    """The connection cannot be copied into RudderStack's destination config; the message says why."""


def upper_case_name(name: str) -> str:
    """The name RudderStack gives ``name`` on Snowflake (``ToProviderCase``: upper case)."""
    return name.upper()


def pinned_settings(*, users_table: bool = True, allow_users_context_traits: bool = True) -> dict[str, Any]:
    """The config the migration's destination must have while the cutover runs (besides ``preferAppend``, which
    the hold/release steps switch off and the rollback gives back): the ``users`` table kept up to date unless
    the warehouse has none, and whether ``context.traits`` also fill the identifies/users trait columns."""
    return {SKIP_USERS_TABLE: not users_table, ALLOW_USERS_CONTEXT_TRAITS: bool(allow_users_context_traits)}


# ---------------------------------------------------------------------------------------------- PEM keys


def _one_line(pem: str) -> str:
    """A PEM block on one line (newlines as spaces), as schema.json's patterns match it and rudder-server's
    ``FormatPemContent`` reads it back."""
    return " ".join(line.strip() for line in pem.strip().splitlines() if line.strip())


def _load_private_key(pem: str, passphrase: str | None, where: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    secret = passphrase.encode() if passphrase else None
    try:
        return serialization.load_pem_private_key(pem.encode("ascii"), password=secret)
    except TypeError:
        raise CredentialsError(
            f"{where}: the private key is encrypted and no passphrase is given"
            if secret is None
            else f"{where}: the private key is not encrypted, but a passphrase is given: remove the passphrase"
        ) from None
    except (ValueError, UnicodeEncodeError):
        raise CredentialsError(
            f"{where}: the private key could not be read (a wrong passphrase, or not a PEM private key)"
        ) from None


def snowflake_private_key(pem: str, passphrase: str | None, conn_id: str) -> str:
    """``pem`` as RudderStack reads a Snowflake key: PKCS#8 (an RSA key). A PKCS#1 key (``BEGIN RSA PRIVATE
    KEY``) is converted, encrypted again with ``passphrase`` when it was encrypted."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    where = f"Snowflake connection {conn_id!r}"
    kind = pem.strip().splitlines()[0] if pem.strip() else ""
    if kind not in (
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----",
    ):
        raise CredentialsError(
            f"{where}: its private key starts with {kind[:40]!r}; {RUDDERSTACK_NEEDS}. If it is an RSA key, "
            f"{TO_PKCS8}; other key types cannot be used with RudderStack's Snowflake destination"
        )
    key = _load_private_key(pem, passphrase, where)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialsError(
            f"{where}: its private key is not an RSA key; Snowflake key-pair authentication through RudderStack "
            "takes RSA keys only (sqlconnect-go ParsePKCS8PrivateKeyRSA): generate an RSA key pair for the user"
        )
    if kind != "-----BEGIN RSA PRIVATE KEY-----":
        return pem.strip() + "\n"
    encryption: Any = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    converted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return converted.decode("ascii")


def _pem_text(conn_id: str, extra: dict[str, Any]) -> str | None:
    content = extra.get("private_key_content")
    path = extra.get("private_key_file")
    if content and path:
        raise CredentialsError(
            f"Snowflake connection {conn_id!r} sets both private_key_content and private_key_file; Airflow's "
            "Snowflake hook refuses that too: keep one"
        )
    if path:
        try:
            content = pathlib.Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(
                f"Snowflake connection {conn_id!r}: its private_key_file could not be read on this worker "
                f"({type(exc).__name__}). {RUDDERSTACK_NEEDS}: put the key's PEM text in the connection extra "
                "private_key_content, or make the file readable here"
            ) from None
    if not content:
        return None
    text = str(content).strip()
    if not text.startswith(PEM_BEGIN):
        try:
            text = base64.b64decode(text, validate=True).decode("ascii").strip()
        except (binascii.Error, ValueError):
            text = ""
    if not text.startswith(PEM_BEGIN) or "PRIVATE KEY-----" not in text:
        raise CredentialsError(
            f"Snowflake connection {conn_id!r}: its private key is neither PEM text nor base64 of PEM text. "
            f"{RUDDERSTACK_NEEDS}"
        )
    return text + "\n"


# ---------------------------------------------------------------------------------------------- Snowflake


def snowflake_destination_config(conn: Any) -> dict[str, Any]:
    """RudderStack Snowflake destination config fields from an Airflow Snowflake connection (password or key
    pair). Raises :class:`CredentialsError` (naming what RudderStack needs, never a secret) when it cannot."""
    extra = dict(conn.extra_dejson or {})
    conn_id = getattr(conn, "conn_id", None) or "?"
    authenticator = str(extra.get("authenticator") or "").strip().lower()
    if authenticator not in PASSWORD_OR_KEY_PAIR:
        raise CredentialsError(
            f"Snowflake connection {conn_id!r} uses authenticator {authenticator!r}, which RudderStack cannot use. "
            f"{RUDDERSTACK_NEEDS}: give the migration a connection with one of those (a service user)"
        )
    account = extra.get("account") or ""
    region = extra.get("region") or ""
    if account and region and "." not in account:
        account = f"{account}.{region}"  # the account locator form that includes the region
    config: dict[str, Any] = {
        "account": account,
        "warehouse": extra.get("warehouse"),
        "database": extra.get("database"),
        "user": conn.login,
        "role": extra.get("role"),
    }
    missing = [key for key in ("account", "warehouse", "database", "user") if not config.get(key)]
    if missing:
        raise CredentialsError(
            f"Snowflake connection {conn_id!r} lacks {missing}, which RudderStack's Snowflake destination requires "
            "(connection extras account, warehouse, database; login as user)"
        )
    pem = _pem_text(conn_id, extra)
    if pem is not None:
        config.update(
            useKeyPairAuth=True, privateKey=snowflake_private_key(pem, conn.password or None, conn_id)
        )
        if conn.password:
            config["privateKeyPassphrase"] = conn.password  # Airflow's hook uses the password as passphrase
    elif conn.password:
        config.update(useKeyPairAuth=False, password=conn.password)
    else:
        raise CredentialsError(
            f"Snowflake connection {conn_id!r} has neither a password nor a private key. {RUDDERSTACK_NEEDS}"
        )
    return {k: v for k, v in config.items() if v not in (None, "")}


# ---------------------------------------------------------------------------------------------- PostgreSQL


def postgres_ssl_mode(conn_id: str, extra: Mapping[str, Any]) -> str:
    """RudderStack's ``sslMode`` for the connection's libpq ``sslmode`` extra, or a refusal saying what to set."""
    offered = "disable, require or verify-ca"
    if "sslMode" in extra:
        raise CredentialsError(
            f"PostgreSQL connection {conn_id!r} has the extra 'sslMode' (camelCase), which psycopg2 refuses "
            f"('invalid connection option'): rename it to 'sslmode' ({offered}, the modes RudderStack offers)"
        )
    mode = str(extra.get("sslmode") or "").strip().lower()
    if mode in SSL_MODES:
        return SSL_MODES[mode]
    if not mode:
        raise CredentialsError(
            f"PostgreSQL connection {conn_id!r} sets no extra 'sslmode' (libpq then uses 'prefer', which "
            f"RudderStack's PostgreSQL destination does not offer): set the extra 'sslmode' to {offered}"
        )
    advice = {
        "verify-full": "set 'verify-ca' (RudderStack checks the server certificate against serverCA but not "
        "the host name) or keep verify-full for Airflow in another connection",
        "prefer": "set 'require' if the server takes TLS, else 'disable'",
        "allow": "set 'disable' (or 'require' if the server takes TLS)",
    }.get(mode, f"set one of {offered}")
    raise CredentialsError(
        f"PostgreSQL connection {conn_id!r} has sslmode {mode!r}; RudderStack's PostgreSQL destination offers "
        f"only {offered} (schema.json sslMode): {advice}"
    )


def _read_pem(conn_id: str, extra: Mapping[str, Any], key: str, what: str) -> str:
    path = extra.get(key)
    if not path:
        raise CredentialsError(
            f"PostgreSQL connection {conn_id!r} has sslmode verify-ca, which RudderStack also needs {what} for: "
            f"set the extra {key!r} to the PEM file's path on the worker"
        )
    try:
        return pathlib.Path(str(path)).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(
            f"PostgreSQL connection {conn_id!r}: the {key} file could not be read on this worker "
            f"({type(exc).__name__}); RudderStack needs its PEM text for sslmode verify-ca"
        ) from None


def postgres_tls_material(conn_id: str, extra: Mapping[str, Any]) -> dict[str, str]:
    """``clientKey`` (PKCS#1), ``clientCert`` and ``serverCA`` for ``verify-ca``, each PEM on one line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    where = f"PostgreSQL connection {conn_id!r} (extra sslkey)"
    key = _load_private_key(_read_pem(conn_id, extra, "sslkey", "the client key"), None, where)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialsError(
            f"{where}: the client key is not an RSA key; RudderStack's PostgreSQL destination takes an RSA client "
            "key (schema.json clientKey: BEGIN RSA PRIVATE KEY)"
        )
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")
    material = {"clientKey": _one_line(pkcs1)}
    for field, key_name, what in (
        ("clientCert", "sslcert", "the client certificate"),
        ("serverCA", "sslrootcert", "the server's CA certificate"),
    ):
        text = _read_pem(conn_id, extra, key_name, what)
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise CredentialsError(
                f"PostgreSQL connection {conn_id!r}: the {key_name} file holds no PEM certificate "
                "(-----BEGIN CERTIFICATE-----)"
            )
        material[field] = _one_line(text)
    return material


def postgres_destination_config(conn: Any) -> dict[str, Any]:
    """RudderStack PostgreSQL destination config fields from an Airflow Postgres connection."""
    extra = dict(conn.extra_dejson or {})
    conn_id = getattr(conn, "conn_id", None) or "?"
    config: dict[str, Any] = {
        "host": conn.host,
        "port": str(conn.port or 5432),  # a string in schema.json; 5432 is what psycopg2 uses without one
        "database": conn.schema,
        "user": conn.login,
        "password": conn.password,
        "sslMode": postgres_ssl_mode(conn_id, extra),
    }
    if config["sslMode"] == "verify-ca":
        config.update(postgres_tls_material(conn_id, extra))
    return {k: v for k, v in config.items() if v not in (None, "")}


# ---------------------------------------------------------------------------------------------- staging


def _staging_conn(staging: Mapping[str, Any]) -> Any:
    from airflow.sdk import BaseHook

    conn_id = staging.get("conn_id")
    if not conn_id:
        raise CredentialsError(
            f"rudderstack.destination.staging: storage {staging.get('storage')!r} needs the Airflow connection "
            "holding the bucket's keys (staging.conn_id)"
        )
    return BaseHook.get_connection(conn_id)


def _s3_keys(staging: Mapping[str, Any]) -> dict[str, Any]:
    if staging.get("role_arn"):
        return {"roleBasedAuth": True, "iamRoleARN": staging["role_arn"]}
    conn = _staging_conn(staging)
    extra = dict(conn.extra_dejson or {})
    if extra.get("role_arn") and not (conn.login and conn.password):
        return {"roleBasedAuth": True, "iamRoleARN": extra["role_arn"]}
    if not (conn.login and conn.password):
        raise CredentialsError(
            f"staging connection {conn.conn_id!r} (an aws connection) needs login = the access key id and "
            "password = the secret access key, or the extra role_arn (or staging.role_arn) for role-based access"
        )
    return {"roleBasedAuth": False, "accessKeyID": conn.login, "accessKey": conn.password}


def _gcs_keys(staging: Mapping[str, Any]) -> dict[str, Any]:
    conn = _staging_conn(staging)
    extra = dict(conn.extra_dejson or {})
    keyfile = extra.get("keyfile_dict") or extra.get("extra__google_cloud_platform__keyfile_dict")
    path = extra.get("key_path") or extra.get("extra__google_cloud_platform__key_path")
    if isinstance(keyfile, dict):
        keyfile = json.dumps(keyfile)
    if not keyfile and path:
        try:
            keyfile = pathlib.Path(str(path)).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(
                f"staging connection {conn.conn_id!r}: its key_path could not be read on this worker "
                f"({type(exc).__name__})"
            ) from None
    if not keyfile:
        raise CredentialsError(
            f"staging connection {conn.conn_id!r} (a google_cloud_platform connection) needs the service account "
            "key JSON in the extra keyfile_dict (or key_path); RudderStack's config 'credentials' is that JSON"
        )
    return {"credentials": str(keyfile)}


def _azure_keys(staging: Mapping[str, Any]) -> dict[str, Any]:
    conn = _staging_conn(staging)
    extra = dict(conn.extra_dejson or {})
    keys: dict[str, Any] = {"accountName": staging.get("account_name") or conn.login}
    if extra.get("sas_token"):
        keys.update(useSASTokens=True, sasToken=extra["sas_token"])
    elif conn.password:
        keys.update(useSASTokens=False, accountKey=conn.password)
    if not keys["accountName"] or len(keys) == 1:
        raise CredentialsError(
            f"staging connection {conn.conn_id!r} (a wasb connection) needs login = the storage account name and "
            "password = its account key, or the extra sas_token"
        )
    return keys


def _minio_keys(staging: Mapping[str, Any]) -> dict[str, Any]:
    conn = _staging_conn(staging)
    if not (conn.login and conn.password):
        raise CredentialsError(
            f"staging connection {conn.conn_id!r} needs login = the MinIO access key id and password = its "
            "secret access key"
        )
    return {
        "endPoint": staging.get("endpoint"),
        "useSSL": bool(staging.get("use_ssl", True)),
        "accessKeyID": conn.login,
        "secretAccessKey": conn.password,
    }


def staging_config(destination_type: str, staging: Mapping[str, Any] | None) -> dict[str, Any]:
    """The staging storage part of the config (``useRudderStorage`` and the bucket's provider and keys)."""
    if not staging:
        return {}
    storage = str(staging.get("storage") or "")
    if storage == "rudderstack":
        return {"useRudderStorage": True}
    snowflake = destination_type.upper() == "SNOWFLAKE"
    providers = CLOUD_PROVIDERS if snowflake else BUCKET_PROVIDERS
    if storage not in providers:
        raise CredentialsError(
            f"rudderstack.destination.staging.storage {storage!r} is not offered by RudderStack's "
            f"{destination_type} destination: use rudderstack or one of {sorted(providers)}"
        )
    config: dict[str, Any] = {
        "useRudderStorage": False,
        ("cloudProvider" if snowflake else "bucketProvider"): providers[storage],
        ("containerName" if storage == "azure_blob" else "bucketName"): staging.get("bucket"),
        "prefix": staging.get("prefix"),
        "storageIntegration": staging.get("storage_integration"),
    }
    keys = {"s3": _s3_keys, "gcs": _gcs_keys, "azure_blob": _azure_keys, "minio": _minio_keys}[storage]
    config.update(keys(staging))
    return {k: v for k, v in config.items() if v not in (None, "")}


# ---------------------------------------------------------------------------------------------- the config


def _mask(config: Mapping[str, Any]) -> None:
    from airflow.sdk.log import mask_secret

    for key in SECRET_KEYS:
        if isinstance(config.get(key), str) and config[key]:
            mask_secret(config[key])


def credentials_config(conn_id: str) -> dict[str, Any]:
    """Config fields from an Airflow warehouse connection (Snowflake, else PostgreSQL); raises
    :class:`CredentialsError`."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "snowflake":
        return snowflake_destination_config(conn)
    return postgres_destination_config(conn)


def warehouse_credentials(conn_id: str) -> dict[str, Any]:
    """RudderStack warehouse destination config fields taken from an Airflow warehouse connection (secrets
    registered with the masker); a connection RudderStack cannot use fails the task, naming what it needs."""
    try:
        config = credentials_config(conn_id)
    except CredentialsError as exc:
        raise AirflowFailException(f"{exc}. Nothing was changed.") from None
    _mask(config)
    return config


def destination_config(
    destination_type: str,
    *,
    namespace: str,
    sync_frequency_minutes: int = 30,
    extra_config: Mapping[str, Any] | None = None,
    credentials_conn_id: str | None = None,
    staging: Mapping[str, Any] | None = None,
    users_table: bool = True,
    allow_users_context_traits: bool = True,
) -> dict[str, Any]:
    """The whole config the migration creates a destination with: the warehouse connection's credentials, the
    staging storage, the pinned settings (merge mode, users table, context traits), the plan's extra config,
    the namespace, the sync frequency, and ``manualSync`` on (nothing loads before Segment's final load).
    Raises :class:`CredentialsError`; every secret is registered with the masker."""
    config: dict[str, Any] = {}
    if credentials_conn_id:
        config.update(credentials_config(credentials_conn_id))
    config.update(staging_config(destination_type, staging))
    config[PREFER_APPEND] = False
    config.update(
        pinned_settings(users_table=users_table, allow_users_context_traits=allow_users_context_traits)
    )
    config.update(dict(extra_config or {}))
    config.update(namespace=namespace, syncFrequency=str(sync_frequency_minutes), manualSync=True)
    _mask(config)
    return config


def checked_destination_config(
    step: Any, extra_config: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """The config `step` (an operator with the destination's settings: ``destination_type``, ``namespace``,
    ``sync_frequency_minutes``, ``credentials_conn_id``, ``staging``, ``users_table``,
    ``allow_users_context_traits``) would create a destination with, and what RudderStack's control plane would
    refuse in it (each problem says where to set the field). Raises :class:`CredentialsError`."""
    from segment_rudderstack.connections.required_fields import config_problems, explain

    config = destination_config(
        step.destination_type,
        namespace=step.namespace,
        sync_frequency_minutes=step.sync_frequency_minutes,
        extra_config=extra_config,
        credentials_conn_id=step.credentials_conn_id,
        staging=step.staging,
        users_table=step.users_table,
        allow_users_context_traits=step.allow_users_context_traits,
    )
    problems = explain(
        config_problems(step.destination_type, config),
        destination_type=step.destination_type,
        credentials_conn_id=step.credentials_conn_id,
    )
    return config, problems
