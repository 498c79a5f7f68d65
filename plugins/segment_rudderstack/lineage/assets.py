"""Airflow assets of the migrated tables, and the events that tell downstream DAGs (dbt models, exports) that the
cutover reached them.

**One asset per migrated table**, its URI spelled as the Postgres and Snowflake providers spell table assets
(``airflow.providers.postgres.assets.postgres``: ``postgres://<host>:<port>/<database>/<schema>/<table>``, the
port always written; ``airflow.providers.snowflake.assets.snowflake``:
``snowflake://<account>/<DATABASE>/<SCHEMA>/<TABLE>``, names as Snowflake stores unquoted ones). The tables are
those of the lane's schema that Segment and RudderStack both write (RudderStack's own ``rudder_*`` tables left
out), read when the event is emitted.

**Parse time.** A DAG file does no I/O, and a URI needs the warehouse connection (host and port, database,
Snowflake's account): a DAG file cannot name the table assets. So each lane has two **asset aliases** whose names
come from the plan alone (:func:`alias_name`): ``segment_to_rudderstack__<plan>__<lane>__rudderstack_first_load``
(on the upload sensor: RudderStack's first load after the release is verified in the warehouse) and
``segment_to_rudderstack__<plan>__<lane>__duplicate_checked`` (on the duplicate check). Those tasks declare the
alias as their outlet; when they succeed (never in a dry run) they read the connection and the schema's tables and
add one event per table through the alias, on the table's asset. A downstream DAG schedules on the alias, or, when
it knows the warehouse's address, on the table's asset itself: the same event queues both.

Each event's ``extra`` (:func:`cutover_extra`): ``plan``, ``lane``, ``schema``, ``table``, ``stage``,
``previous_writer`` (``segment``), ``writer`` (``rudderstack``), ``cutover_at`` (when Segment's webhook to
RudderStack was enabled: from then on every event also reaches RudderStack), ``overlap_window`` (``start`` = the
cutover point, ``end`` = the release of RudderStack's sync: rows received in it may have been loaded by both
tools, under the same message id), ``rudderstack_destination_id``, ``segment_warehouse_id``, and for the
duplicate check ``duplicates`` (found and removed per table, and the window it looked at).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIRST_LOAD = "rudderstack_first_load"
DUPLICATE_CHECKED = "duplicate_checked"
STAGES: tuple[str, ...] = (FIRST_LOAD, DUPLICATE_CHECKED)
POSTGRES_DEFAULT_PORT = 5432
#: RudderStack's own tables in a destination's schema (rudder_discards, rudder_identity_*, ...): not Segment's.
RUDDERSTACK_TABLE_PREFIX = "rudder_"


def alias_name(plan_name: str, lane: str, stage: str) -> str:
    """The asset alias of a lane's tables at ``stage`` (one of :data:`STAGES`): known from the plan alone."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {list(STAGES)}, got {stage!r}")
    return f"segment_to_rudderstack__{plan_name}__{lane}__{stage}"


@dataclass(frozen=True)
class WarehouseAddress:
    """Where a warehouse's tables are, as their asset URIs begin: ``<scheme>://<authority>/<database>``."""

    scheme: str
    authority: str
    database: str
    upper_case: bool = False  # Snowflake stores unquoted names in upper case

    @property
    def namespace(self) -> str:
        """The OpenLineage dataset namespace of the warehouse (as the providers' converters write it)."""
        return f"{self.scheme}://{self.authority}"

    def table_parts(self, schema: str, table: str) -> list[str]:
        """Database, schema and table as the warehouse stores them."""
        parts = [self.database, schema, table]
        return [p.upper() for p in parts] if self.upper_case else parts

    def table_uri(self, schema: str, table: str) -> str:
        return f"{self.namespace}/{'/'.join(self.table_parts(schema, table))}"


def warehouse_address(conn: Any) -> WarehouseAddress:
    """The address of an Airflow warehouse connection (``postgres`` or ``snowflake``), or a ValueError saying
    what is missing. PostgreSQL: host (a Unix socket directory, libpq's ``host=/path``, is ``localhost``), port
    (default 5432) and the database (the connection's ``schema`` field, or extra ``database``); Snowflake: extras
    ``account`` and ``database``."""
    conn_type = str(conn.conn_type or "").lower()
    extra = conn.extra_dejson or {}
    if conn_type in ("postgres", "postgresql"):
        database = extra.get("database") or conn.schema
        host = conn.host or str(extra.get("host") or "")
        if host.startswith("/"):  # libpq: a host that is a directory is a Unix socket on this machine
            host = "localhost"
        if not host or not database:
            raise ValueError(
                f"connection {conn.conn_id!r} names no host or database (found host {conn.host!r}, database "
                f"{database!r}): a table's asset URI is postgres://<host>:<port>/<database>/<schema>/<table>"
            )
        port = int(conn.port or extra.get("port") or POSTGRES_DEFAULT_PORT)
        return WarehouseAddress("postgres", f"{host.lower()}:{port}", str(database))
    if conn_type == "snowflake":
        account = extra.get("account") or extra.get("extra__snowflake__account")
        database = extra.get("database") or extra.get("extra__snowflake__database")
        if not account or not database:
            raise ValueError(
                f"connection {conn.conn_id!r} has no extra 'account' or 'database' (found {account!r}, "
                f"{database!r}): a table's asset URI is snowflake://<account>/<database>/<schema>/<table>"
            )
        return WarehouseAddress("snowflake", str(account).lower(), str(database), upper_case=True)
    raise ValueError(
        f"connection {conn.conn_id!r} is of type {conn_type!r}: table assets are spelled for postgres and "
        "snowflake connections only"
    )


def migrated_tables(tables: set[str] | list[str]) -> list[str]:
    """The tables of a lane's schema that both tools write (RudderStack's own left out), sorted."""
    return sorted(t for t in tables if not t.startswith(RUDDERSTACK_TABLE_PREFIX))


def cutover_extra(announcement: Mapping[str, Any], table: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """The ``extra`` of one table's event (see the module docstring). ``announcement``: what the factory wired
    (``plan``, ``lane``, ``schema``, ``stage``, ``cutover_at``, ``released_at``, ``destination_id``,
    ``segment_warehouse_id``), rendered; ``details``: stage-specific fields (the duplicate check's findings)."""
    cutover_at = _text(announcement.get("cutover_at"))
    return {
        "plan": announcement.get("plan"),
        "lane": announcement.get("lane"),
        "schema": announcement.get("schema"),
        "table": table,
        "stage": announcement.get("stage"),
        "previous_writer": "segment",
        "writer": "rudderstack",
        "cutover_at": cutover_at,
        "overlap_window": {"start": cutover_at, "end": _text(announcement.get("released_at"))},
        "rudderstack_destination_id": _text(announcement.get("destination_id")),
        "segment_warehouse_id": announcement.get("segment_warehouse_id"),
        **dict(details),
    }


def _text(value: Any) -> str | None:
    if value in (None, "", "None"):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def duplicate_details(result: Mapping[str, Any], table: str) -> dict[str, Any]:
    """The duplicate check's findings for one table (the ``duplicates`` field of its event)."""
    found = result.get("duplicates") or {}
    removed = result.get("removed") or {}
    return {
        "duplicates": {
            "since": result.get("since"),
            "found": int(found.get(table, 0)),
            "removed": int(removed.get(table, 0)),
        }
    }


class AnnouncesCutover:
    """Mixin of the tasks after which downstream DAGs may read a lane's tables: once the task succeeded (never in
    a dry run), one asset event per migrated table through the alias named in ``cutover_assets`` (which the task
    must declare in ``outlets``). Concrete classes add ``"cutover_assets"`` to their ``template_fields``; a class
    that defines its own ``execute`` calls :meth:`announce_cutover` at its end (the mixin's wraps only an inherited
    ``execute`` and ``execute_complete``).

    :param cutover_assets: (templated) ``alias``, ``stage``, ``plan``, ``lane``, ``schema``,
        ``warehouse_conn_id``, ``cutover_at``, ``released_at``, ``destination_id``, ``segment_warehouse_id``;
        None: no events.
    """

    def __init__(self, *, cutover_assets: Mapping[str, Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.cutover_assets = dict(cutover_assets) if cutover_assets else None

    def execute(self, context: Any) -> Any:
        result = super().execute(context)
        self.announce_cutover(context, result)
        return result

    def execute_complete(self, context: Any, event: Any) -> Any:
        result = super().execute_complete(context, event)
        self.announce_cutover(context, result)
        return result

    def announce_cutover(self, context: Any, result: Any) -> list[str]:
        """Add the events; returns the table asset URIs announced (none in a dry run or without wiring)."""
        announcement = self.cutover_assets
        if not announcement or not isinstance(result, dict) or result.get("dry_run"):
            return []
        from airflow.sdk import Asset, AssetAlias, BaseHook

        from segment_rudderstack.dialects import dialect_for_conn_id

        conn_id = announcement["warehouse_conn_id"]
        address = warehouse_address(BaseHook.get_connection(conn_id))
        schema = announcement["schema"]
        tables = migrated_tables(dialect_for_conn_id(conn_id).list_tables(schema))
        outlet_events = (context or {}).get("outlet_events")
        uris = []
        for table in tables:
            uri = address.table_uri(schema, table)
            details = (
                duplicate_details(result, table) if announcement.get("stage") == DUPLICATE_CHECKED else {}
            )
            if outlet_events is not None:
                outlet_events[AssetAlias(announcement["alias"])].add(
                    Asset(uri=uri), extra=cutover_extra(announcement, table, details)
                )
            uris.append(uri)
        self.log.info(
            "asset events for downstream DAGs (alias %s, stage %s, cutover %s): %s",
            announcement["alias"],
            announcement.get("stage"),
            announcement.get("cutover_at"),
            uris,
        )
        return uris
