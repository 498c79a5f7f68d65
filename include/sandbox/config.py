"""Sandbox world configuration: defaults that suit a ~3-minute demo, overridable from a YAML/JSON file.

Defaults: Segment loads every 5 s taking 1.5 s, sync listing limited to 30 requests/minute; RudderStack
runs 60x fast (1 minute = 1 second, so syncFrequency "30" means an upload slot every 30 s) and an upload
takes 1 s; clients send 4 events/s and the new app version reaches 100 % of installs 75 s after start;
server-side services switch to RudderStack when told (POST /sandbox/deploy-server-side on the RudderStack
emulator, or `python -m sandbox control rudderstack deploy-server-side`).

Where things live:
- `home`: $SANDBOX_HOME, else `<repo>/.sandbox` (git-ignored): state.json, airflow-connections.env,
  sandbox.log, pgdata/ (the embedded PostgreSQL, recreated fresh at each start).
- warehouse: $SANDBOX_WAREHOUSE_DSN (or `warehouse_dsn` in the file) when given, else the embedded server.

File format (every key optional), e.g. `python -m sandbox start --config my-world.yaml`:

    warehouse_dsn: postgresql://user:pw@127.0.0.1:5432/scratch
    segment: {load_interval_s: 5, load_duration_s: 1.5, sync_list_per_minute: 30}
    rudderstack: {time_compression: 60, upload_duration_s: 1}
    clients: {seed: 7, events_per_second: 4, server_side_switch: auto, adoption: {kind: logistic, ramp_s: 90}}
    # adoption.starts_at: cutover (the demo's: the ramp begins when Segment's webhook is enabled) or clients_start
    # clients.drift: true      the drift world's clients in any world (sandbox.clients DRIFT_*)
    clients_enabled: true
    world: multi               # or default; or drift: the default world whose clients drift (clients.drift)
    host: 127.0.0.1            # or 0.0.0.0 (also $SANDBOX_HOST); public_host: the name others use ($SANDBOX_PUBLIC_HOST)
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

from sandbox.clients import AdoptionCurve, AppSource, ClientsConfig
from sandbox.rudderstack_emulator import RudderStackSettings, default_sources
from sandbox.segment import SegmentSettings, SourceSeed, WarehouseSeed
from sandbox.segment.settings import WorkspaceSeed, sandbox_workspace

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def default_home() -> pathlib.Path:
    return pathlib.Path(os.environ.get("SANDBOX_HOME") or REPO_ROOT / ".sandbox").resolve()


def demo_segment_settings() -> SegmentSettings:
    # The workspace also holds what stays on Segment after the cutover (an Amplitude destination and a tracking
    # plan on the web app, a Function), for the report's section of that name.
    return SegmentSettings(
        load_interval_s=5.0, load_duration_s=1.5, sync_list_per_minute=30, workspace=sandbox_workspace()
    )


def demo_rudderstack_settings() -> RudderStackSettings:
    return RudderStackSettings(time_compression=60.0, upload_duration_s=1.0)


def demo_clients_config() -> ClientsConfig:
    # The new app version starts rolling out when the migration enables Segment's webhook to RudderStack (its
    # cutover) and reaches every install 45 s later, so old versions always send through the webhook for a while,
    # however long the run took to get there.
    return ClientsConfig(
        events_per_second=4.0, adoption=AdoptionCurve(kind="linear", ramp_s=45.0, starts_at="cutover")
    )


@dataclass
class SandboxConfig:
    home: pathlib.Path = field(default_factory=default_home)
    warehouse_dsn: str | None = field(default_factory=lambda: os.environ.get("SANDBOX_WAREHOUSE_DSN") or None)
    ledger_schema: str = "sandbox_ledger"
    segment: SegmentSettings = field(default_factory=demo_segment_settings)
    rudderstack: RudderStackSettings = field(default_factory=demo_rudderstack_settings)
    clients: ClientsConfig = field(default_factory=demo_clients_config)
    clients_enabled: bool = True
    segment_port: int = 0  # 0: any free port on `host`
    rudderstack_port: int = 0
    # Interface the emulators listen on ($SANDBOX_HOST); 0.0.0.0 to be reachable from other machines/containers.
    host: str = field(default_factory=lambda: os.environ.get("SANDBOX_HOST") or "127.0.0.1")
    # Host name other machines use to reach it, written into the URLs and connections ($SANDBOX_PUBLIC_HOST,
    # e.g. the compose service name); None: `host`, or 127.0.0.1 when `host` is a wildcard address.
    public_host: str | None = field(default_factory=lambda: os.environ.get("SANDBOX_PUBLIC_HOST") or None)

    @property
    def embedded(self) -> bool:
        return not self.warehouse_dsn

    @property
    def local_host(self) -> str:
        """Where this machine reaches the emulators (the in-process clients use it)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    @property
    def advertised_host(self) -> str:
        return self.public_host or self.local_host


# The multi-schema world (``world="multi"``): three client sources in two schemas plus one server-side source,
# all on one Segment warehouse, as include/plans/sandbox_multi.yaml migrates them. Web installs send to the web
# app source (schema app_events, like the backend), iOS and Android installs to their own sources (schema
# mobile_events). Segment loads each source into its schema (the emulator's SourceSeed.schema).
MULTI_APP_SOURCES = (
    AppSource("src_web_app", "wk_seg_web_app", "rs_src_app", "wk_rs_app", "app_events", ("web",)),
    AppSource("src_ios_app", "wk_seg_ios_app", "rs_src_ios", "wk_rs_ios", "mobile_events", ("ios",)),
    AppSource(
        "src_android_app",
        "wk_seg_android_app",
        "rs_src_android",
        "wk_rs_android",
        "mobile_events",
        ("android",),
    ),
)
# The drift world (``world="drift"``): the default world whose clients carry the four drifts of
# sandbox.clients (DRIFT_*: a type change with the new app version, a property and a trait key RudderStack names
# differently, a property named `channel`); the same as ``clients: {drift: true}`` in a config file.
WORLDS = ("default", "multi", "drift")


def _multi_schema(config: SandboxConfig) -> None:
    config.segment.sources = [
        SourceSeed("src_web_app", "web_app", "Web App", "wk_seg_web_app", "app_events"),
        SourceSeed("src_backend", "backend", "Backend", "wk_seg_backend", "app_events"),
        SourceSeed("src_ios_app", "ios_app", "iOS App", "wk_seg_ios_app", "mobile_events"),
        SourceSeed("src_android_app", "android_app", "Android App", "wk_seg_android_app", "mobile_events"),
    ]
    config.segment.warehouses = [WarehouseSeed(connected_sources=[s.id for s in config.segment.sources])]
    # Only the migration's destinations on these sources (the multi-schema rehearsal counts them).
    config.segment.workspace = WorkspaceSeed(functions=sandbox_workspace().functions)
    config.rudderstack.sources = [
        *default_sources(),
        {"id": "rs_src_ios", "name": "iOS App (new version)", "type": "iOS", "writeKey": "wk_rs_ios"},
        {
            "id": "rs_src_android",
            "name": "Android App (new version)",
            "type": "Android",
            "writeKey": "wk_rs_android",
        },
    ]
    config.clients.app_sources = MULTI_APP_SOURCES
    config.clients.server_schema = "app_events"


def _apply(target: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in dataclasses.fields(target)}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"{where}: unknown setting {key!r}; expected one of {', '.join(sorted(known))}")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            _apply(current, value, f"{where}.{key}")
        elif isinstance(current, tuple) and isinstance(value, list):
            setattr(target, key, tuple(value))
        else:
            setattr(target, key, value)


def load_config(
    path: str | os.PathLike | None = None, *, world: str | None = None, **overrides: Any
) -> SandboxConfig:
    """The demo defaults (of the ``default`` one-schema world, the ``multi`` world of several schemas, or the
    ``drift`` world, the default one whose clients drift; default: $SANDBOX_WORLD, else ``default``), updated
    from a YAML/JSON file (when given), then from keyword `overrides`."""
    world = world or os.environ.get("SANDBOX_WORLD") or "default"
    if world not in WORLDS:
        raise ValueError(f"unknown sandbox world {world!r}; expected one of {', '.join(WORLDS)}")
    config = SandboxConfig()
    if world == "multi":
        _multi_schema(config)
    if world == "drift":
        config.clients.drift = True
    values: dict[str, Any] = {}
    if path:
        text = pathlib.Path(path).read_text()
        if str(path).endswith(".json"):
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text) or {}
        if not isinstance(values, dict):
            raise ValueError(
                f"{path}: expected a mapping of settings at the top level, got {type(values).__name__}"
            )
    values.update(overrides)
    if values.get("world", world) != world:
        return load_config(path, world=values.pop("world"), **overrides)
    values.pop("world", None)
    if "home" in values:
        values["home"] = pathlib.Path(values["home"]).resolve()
    _apply(config, values, str(path or "config"))
    return config
