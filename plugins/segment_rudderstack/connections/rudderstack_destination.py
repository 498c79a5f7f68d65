"""Airflow warehouse connections (PostgreSQL, Snowflake) as RudderStack warehouse destination config.

Snowflake:

RudderStack's warehouse service reads these config keys (rudder-server ``warehouse/internal/model/settings.go``;
``warehouse/integrations/snowflake/snowflake.go`` hands them to its Snowflake driver): ``account``,
``warehouse``, ``database``, ``user``, ``role`` and either ``password`` or key-pair authentication:
``useKeyPairAuth: true`` with ``privateKey`` (the PEM text of the key itself, not a path) and, for an encrypted
key, ``privateKeyPassphrase``. It names schemas, tables and columns in upper case on Snowflake
(``warehouse/utils/utils.go`` ``ToProviderCase``), as Snowflake stores unquoted names.

Airflow's Snowflake connection (apache-airflow-providers-snowflake ``SnowflakeHook``) keeps a key pair in the
extra ``private_key_content`` (PEM text, or that text base64-encoded) or ``private_key_file`` (a path on the
worker), with the connection password as the key's passphrase. Other authenticators (OAuth, browser SSO,
Okta, ...) have no RudderStack equivalent and are refused with a message saying what RudderStack needs.
"""

from __future__ import annotations

import base64
import binascii
import pathlib
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

RUDDERSTACK_NEEDS = (
    "RudderStack's Snowflake destination authenticates with a password (config 'password') or a key pair "
    "(config 'useKeyPairAuth': true, 'privateKey': the PEM text of the private key, 'privateKeyPassphrase' "
    "when the key is encrypted)"
)
PASSWORD_OR_KEY_PAIR = {"", "snowflake", "snowflake_jwt"}
PEM_BEGIN = "-----BEGIN "


class CredentialsError(ValueError):
    """The connection cannot be copied into RudderStack's destination config; the message says why."""


def upper_case_name(name: str) -> str:
    """The name RudderStack gives ``name`` on Snowflake (``ToProviderCase``: upper case)."""
    return name.upper()


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
        config.update(useKeyPairAuth=True, privateKey=pem)
        if conn.password:
            config["privateKeyPassphrase"] = conn.password  # Airflow's hook uses the password as passphrase
    elif conn.password:
        config.update(useKeyPairAuth=False, password=conn.password)
    else:
        raise CredentialsError(
            f"Snowflake connection {conn_id!r} has neither a password nor a private key. {RUDDERSTACK_NEEDS}"
        )
    return {k: v for k, v in config.items() if v not in (None, "")}


def warehouse_credentials(conn_id: str) -> dict[str, Any]:
    """RudderStack warehouse destination config fields taken from an Airflow warehouse connection."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "snowflake":
        return _snowflake_credentials(conn)
    config = {
        "host": conn.host,
        "port": str(conn.port) if conn.port else None,
        "database": conn.schema,
        "user": conn.login,
        "password": conn.password,
    }
    extra = conn.extra_dejson or {}
    for key in ("account", "warehouse", "role", "sslMode"):
        if extra.get(key):
            config[key] = extra[key]
    if extra.get("database"):
        config["database"] = extra["database"]
    return {k: v for k, v in config.items() if v not in (None, "")}


def _snowflake_credentials(conn: Any) -> dict[str, Any]:
    """Password or key pair, as RudderStack's Snowflake destination reads them (snowflake_credentials.py)."""
    from airflow.sdk.log import mask_secret

    try:
        config = snowflake_destination_config(conn)
    except CredentialsError as exc:
        raise AirflowFailException(f"{exc}. Nothing was changed.") from None
    for key in ("password", "privateKey", "privateKeyPassphrase"):
        if config.get(key):
            mask_secret(config[key])
    return config
