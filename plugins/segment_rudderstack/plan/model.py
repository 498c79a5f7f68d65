"""Migration plans: the YAML file a data engineer writes to describe one Segment → RudderStack move.

A plan is validated when it is loaded; every error names the field (``sources[1].kind``) and says what
was expected. Loading a plan reads one local file and does no network or database work, so the DAG
factory may call it at parse time.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Conservative identifier rule for names that end up as SQL identifiers or Airflow ids. Quoting would make
# anything safe in SQL, but a namespace like `events; drop table x` is a typo or an attack, never a schema.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,126}$")
PLAN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
# RudderStack destination types whose identifiers are upper case (rudder-server warehouse/utils ToProviderCase).
UPPER_CASE_DESTINATIONS = frozenset({"SNOWFLAKE", "SNOWPIPE_STREAMING"})
SYNC_FREQUENCIES_MINUTES = (30, 60, 180, 360, 720, 1440)
_SECRET_KEY = re.compile(r"password|secret|token|private_?key|credentials", re.IGNORECASE)


class PlanError(ValueError):
    """A plan file is missing, unreadable or invalid. The message lists every problem with its field."""


ConnId = Annotated[str, Field(pattern=_CONN_ID.pattern)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentSettings(_Model):
    conn_id: ConnId = "segment_default"
    warehouse_id: str = Field(min_length=1)
    allow_partial_loads: bool = False
    sync_list_requests_per_minute: float = Field(default=2, gt=0, le=600)
    final_step: Literal["disable_warehouse", "disconnect_sources"] = "disable_warehouse"
    webhook_kind: Literal["actions", "classic"] = Field(
        default="actions",
        description="Segment destination that forwards events to RudderStack: Webhooks (Actions) with a Send "
        "mapping (default), or the classic Webhooks (maintenance in Segment's catalog; new workspaces may lack it)",
    )


def _schema_name(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a plain schema name (letters, digits, _ and $; starting with a letter or _)"
        )
    return value


class SourceSettings(_Model):
    id: str = Field(min_length=1, description="Segment source id")
    kind: Literal["client", "server"]
    schema_: str | None = Field(
        default=None,
        alias="schema",
        description="warehouse schema Segment loads this source into (default: warehouse.namespace)",
    )
    rudderstack_source_id: str | None = Field(
        default=None,
        description="RudderStack source the new clients (or migrated servers) send to; it is connected to the destination",
    )

    @field_validator("schema_")
    @classmethod
    def _plain_schema(cls, value: str | None) -> str | None:
        return None if value is None else _schema_name(value)


#: destination config keys the plan sets through its own fields (never in ``rudderstack.destination.config``)
_OWNED_KEYS = {
    "sslMode": "the warehouse connection's extra sslmode (disable, require or verify-ca)",
    "useRudderStorage": "rudderstack.destination.staging",
    "bucketProvider": "rudderstack.destination.staging",
    "cloudProvider": "rudderstack.destination.staging",
    "bucketName": "rudderstack.destination.staging.bucket",
    "containerName": "rudderstack.destination.staging.bucket",
    "skipUsersTable": "rudderstack.destination.users_table",
    "allowUsersContextTraits": "rudderstack.destination.allow_users_context_traits",
}


class StagingSettings(_Model):
    """Where RudderStack stages events before it loads them (schema.json ``useRudderStorage``, required): its own
    object storage, or a bucket of the warehouse's cloud with its keys in an Airflow connection."""

    storage: Literal["rudderstack", "s3", "gcs", "azure_blob", "minio"] = Field(
        description="rudderstack: RudderStack-managed object storage (useRudderStorage: true; RudderStack's "
        "hosted data planes only); s3, gcs, azure_blob, minio (PostgreSQL only): a bucket of yours"
    )
    bucket: str | None = Field(default=None, description="the bucket (Azure: the container)")
    conn_id: ConnId | None = Field(
        default=None,
        description="Airflow connection with the bucket's keys: aws (s3, minio), google_cloud_platform (gcs), "
        "wasb (azure_blob)",
    )
    role_arn: str | None = Field(
        default=None, description="s3: IAM role RudderStack assumes (role-based access, no keys)"
    )
    prefix: str | None = Field(default=None, description="Snowflake: folder in the bucket")
    storage_integration: str | None = Field(
        default=None, description="Snowflake: the storage integration (required for gcs and azure_blob)"
    )
    endpoint: str | None = Field(default=None, description="minio: the endpoint (host:port)")
    use_ssl: bool = Field(default=True, description="minio: connect with TLS")
    account_name: str | None = Field(
        default=None, description="azure_blob: the storage account (default: the connection's login)"
    )

    @model_validator(mode="after")
    def _complete(self) -> StagingSettings:
        if self.storage == "rudderstack":
            given = sorted(
                k for k in ("bucket", "conn_id", "role_arn", "prefix", "endpoint") if getattr(self, k)
            )
            if given:
                raise ValueError(f"storage rudderstack takes no bucket settings, found {given}")
            return self
        missing = [k for k in ("bucket",) if not self.bucket]
        if not self.conn_id and not (self.storage == "s3" and self.role_arn):
            missing.append("conn_id")
        if self.storage == "minio" and not self.endpoint:
            missing.append("endpoint")
        if missing:
            raise ValueError(
                f"storage {self.storage} needs {missing} (the keys come from the Airflow connection conn_id, "
                "never from the plan)"
            )
        return self


class DestinationSettings(_Model):
    id: str | None = Field(
        default=None, description="existing RudderStack destination id; omit to create one"
    )
    name: str = "Warehouse (migrated from Segment)"
    type: str = Field(default="POSTGRES", pattern=r"^[A-Z][A-Z0-9_]{1,40}$")
    config: dict[str, Any] = Field(default_factory=dict)
    credentials_from_warehouse_connection: bool = True
    sync_frequency_minutes: int = 30
    sync_start_margin_minutes: int = Field(default=30, ge=0, le=1440)
    allow_merge_mode_change: bool = Field(
        default=True,
        description="may the migration switch the destination's preferAppend off so the overlap is deduplicated "
        "(merge mode); false: a destination in append mode stops the migration at the preflight",
    )
    restore_append_after_duplicate_check: bool = Field(
        default=False,
        description="switch preferAppend back on after the duplicate check, if the migration switched it off",
    )
    staging: StagingSettings | None = Field(
        default=None,
        description="where RudderStack stages events (required by RudderStack for a destination the migration "
        "creates): {storage: rudderstack} or a bucket with its provider and connection",
    )
    users_table: bool = Field(
        default=True,
        description="the warehouse has a users table that models read: RudderStack keeps it up to date "
        "(skipUsersTable: false); false: skipUsersTable: true",
    )
    allow_users_context_traits: bool = Field(
        default=True,
        description="identify traits sent in context.traits (RudderStack's JS SDK) also fill the identifies/users "
        "trait columns, as Segment's traits did (allowUsersContextTraits); false: only context_traits_* columns",
    )

    @model_validator(mode="after")
    def _staging_fits_the_type(self) -> DestinationSettings:
        staging, snowflake = self.staging, self.type == "SNOWFLAKE"
        if staging is None or staging.storage == "rudderstack":
            return self
        if snowflake and staging.storage == "minio":
            raise ValueError(
                "staging.storage minio: RudderStack's Snowflake destination stages on s3, gcs or azure_blob"
            )
        if not snowflake and (staging.prefix or staging.storage_integration):
            raise ValueError(
                f"staging.prefix and staging.storage_integration are Snowflake settings; {self.type} has neither"
            )
        return self

    @field_validator("sync_frequency_minutes")
    @classmethod
    def _known_frequency(cls, value: int) -> int:
        if value not in SYNC_FREQUENCIES_MINUTES:
            raise ValueError(
                f"must be one of {list(SYNC_FREQUENCIES_MINUTES)} (RudderStack's sync frequencies)"
            )
        return value

    @field_validator("config")
    @classmethod
    def _no_namespace_no_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "namespace" in value:
            raise ValueError(
                "set the namespace under warehouse.namespace (or sources[].schema), not in the destination config"
            )
        owned = sorted(k for k in value if k in _OWNED_KEYS)
        if owned:
            raise ValueError(
                "; ".join(
                    f"{k} is set through {_OWNED_KEYS[k]}, not in the destination config" for k in owned
                )
            )
        secret = sorted(k for k in value if _SECRET_KEY.search(k))
        if secret:
            raise ValueError(
                f"{secret} look like credentials: keep them in the warehouse connection "
                "(credentials_from_warehouse_connection) or a secrets backend, never in a plan file"
            )
        return value


class RudderStackSettings(_Model):
    conn_id: ConnId = "rudderstack_default"
    data_plane_conn_id: ConnId = "rudderstack_data_plane_default"
    destination: DestinationSettings = Field(default_factory=DestinationSettings)
    segment_source_name: str = "Segment (old app versions)"


class WarehouseSettings(_Model):
    conn_id: ConnId
    namespace: str | None = Field(
        default=None,
        description="the schema of every source that names none (a one-schema plan sets only this)",
    )
    required_tables: list[str] = Field(default_factory=lambda: ["tracks"])
    create_received_at_index: bool = Field(
        default=False,
        description="PostgreSQL: after the preflight, create the received_at index on event tables whose window "
        "queries are not index-backed (recorded; the rollback drops it). See docs/scaling.md",
    )

    @field_validator("namespace")
    @classmethod
    def _plain_identifier(cls, value: str | None) -> str | None:
        return None if value is None else _schema_name(value)

    @field_validator("required_tables")
    @classmethod
    def _tables(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if not _IDENTIFIER.match(t)]
        if bad:
            raise ValueError(f"not plain table names: {bad}")
        return [t.lower() for t in value]


class AdoptionSettings(_Model):
    threshold: float = Field(default=0.01, ge=0, le=1, description="share of events via Segment's webhook")
    window_seconds: int = Field(default=86400, ge=1)
    check_interval_seconds: int = Field(default=3600, ge=1)
    consecutive_checks: int = Field(default=3, ge=1, le=1000)
    min_events: int = Field(default=1, ge=0)
    library_names: list[str] = Field(default_factory=list)
    timeout_seconds: int = Field(default=60 * 86400, ge=1)


class WaitSettings(_Model):
    poke_interval_seconds: float = Field(default=60, gt=0)
    timeout_seconds: int = Field(default=6 * 3600, ge=1)
    deferrable: bool = True
    drain_consecutive_loads: int = Field(default=2, ge=1, le=50)
    # Every step (and every wait) rides out an outage of a service it calls this long, then fails once.
    transient_budget_minutes: float = Field(default=15, gt=0)
    # The release follows the point of no return (Segment's warehouse off): it rides out an outage this long.
    release_retry_minutes: float = Field(default=45, ge=30)


class DuplicateSettings(_Model):
    repair: bool = False
    lookback_hours: float = Field(default=72, gt=0)


class ProofSettings(_Model):
    """Proof from Segment's Delivery Overview metrics (Public API, beta; docs/real-services.md)."""

    enabled: bool = True
    granularity: Literal["MINUTE", "HOUR", "DAY"] = "HOUR"
    adoption_signal: Literal["warehouse", "segment_metrics", "both"] = "warehouse"
    settle_seconds: int = Field(default=300, ge=0)
    tolerance_events: int = Field(default=10, ge=0)
    tolerance_share: float = Field(default=0.001, ge=0, le=1)
    tolerance_failed_deliveries: int = Field(default=0, ge=0)
    on_gap: Literal["fail", "approve"] = "fail"
    continuity_buckets_before: int = Field(default=6, ge=0, le=1000)


#: what a shape finding is (shape/findings.py) and how a plan may grade it
ShapeGrade = Literal["stop", "approve", "note"]
#: the default grade of each kind of shape finding: a value the downstream models stop seeing stops the run
DEFAULT_SHAPE_GRADES: dict[str, str] = {
    "discarded": "stop",  # RudderStack sets the value NULL and parks it in rudder_discards
    "truncated": "stop",  # a float into an integer column
    "moved": "stop",  # the value lands in another column than the one Segment filled
    "stopped_filling": "stop",  # a column Segment filled gets no values from the new clients
    "changed": "approve",  # same column, another value (RudderStack's channel, a stringified value)
    "type_change": "approve",  # a column's type differs from the before snapshot
    "table_stopped": "approve",  # a table Segment filled receives no rows from RudderStack
    "format_change": "note",  # a date-like string rewritten to RudderStack's format in a string column
    "stringified": "note",  # a number or boolean into a string column
    "invisible_type": "note",  # a column type RudderStack's type map does not know
    "new_column": "note",  # a column only RudderStack fills
    "own_column": "note",  # a column RudderStack adds or fills its own way (context_destination_id, ...)
    "shadow_budget": "approve",  # the shadow load's estimated extra rows or bytes exceed the plan's limit
}


class ShadowSettings(_Model):
    """A second RudderStack destination loading the overlap into a scratch schema, compared with Segment's rows
    before Segment's warehouse is switched off (docs/shape-continuity.md)."""

    enabled: bool = True
    schema_: str | None = Field(
        default=None,
        alias="schema",
        description="the scratch schema (one-lane plans only; default: <schema>_rs_shadow); it must be empty",
    )
    overlap_hours: float = Field(
        default=24,
        gt=0,
        description="how long the shadow is expected to load (its creation to the comparison after Segment's final "
        "load): the preflight's cost estimate scales the recent load rate by it",
    )
    max_rows: int | None = Field(
        default=None, ge=0, description="the shadow load's estimated extra rows allowed (unset: no limit)"
    )
    max_bytes: int | None = Field(
        default=None, ge=0, description="the shadow load's estimated extra bytes allowed (unset: no limit)"
    )


class ShapeSettings(_Model):
    """The shape-continuity checks (docs/shape-continuity.md): what RudderStack will do to the columns Segment
    built, proven before the steps that cannot be taken back."""

    enabled: bool = True
    sample_rows: int = Field(default=500, ge=0, le=100_000, description="per table, for the preflight")
    lookback_hours: float = Field(default=72, gt=0, description="the window read before the cutover")
    min_rows: int = Field(default=20, ge=1, description="rows a fill share needs to be judged")
    fill_drop: float = Field(
        default=0.5, gt=0, le=1, description="a column is stopped filling below this share of its old fill"
    )
    grades: dict[str, ShapeGrade] = Field(default_factory=dict)
    shadow: ShadowSettings = Field(default_factory=ShadowSettings)

    @field_validator("grades")
    @classmethod
    def _known_grades(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(DEFAULT_SHAPE_GRADES))
        if unknown:
            raise ValueError(f"unknown shape finding kinds {unknown}; known: {sorted(DEFAULT_SHAPE_GRADES)}")
        return value

    def grade_of(self, kind: str) -> str:
        return self.grades.get(kind) or DEFAULT_SHAPE_GRADES.get(kind, "approve")

    def all_grades(self) -> dict[str, str]:
        return {kind: self.grade_of(kind) for kind in DEFAULT_SHAPE_GRADES}


class SlackNotifySettings(_Model):
    conn_id: ConnId = Field(
        description="Airflow Slack incoming-webhook connection (apache-airflow-providers-slack)"
    )


class EmailNotifySettings(_Model):
    conn_id: ConnId = Field(
        default="smtp_default", description="Airflow SMTP connection (apache-airflow-providers-smtp)"
    )
    to: list[str] = Field(min_length=1)
    from_email: str | None = None


NotifyEvent = Literal["run_started", "milestone", "approval", "failure", "stalled"]


class NotifySettings(_Model):
    """Where the migration's messages go (docs/operating.md): run started, runbook milestones, approval gates,
    task failures, stalled phases. Each channel is optional; a missing provider skips its channel."""

    slack: SlackNotifySettings | None = None
    email: EmailNotifySettings | None = None
    events: list[NotifyEvent] = Field(
        default_factory=lambda: ["run_started", "milestone", "approval", "failure", "stalled"]
    )
    approvers: list[str] = Field(
        default_factory=list,
        description="Airflow user ids the approval gates are assigned to (HITL assigned_users)",
    )
    run_deadline_minutes: int | None = Field(
        default=None,
        ge=1,
        description="a DAG-run Deadline Alert: one message when a run is not over this long after it was queued",
    )
    overdue_grace_minutes: float = Field(
        default=0,
        ge=0,
        description="a waiting phase's overdue message comes this long after its estimated end",
    )
    base_url: str | None = Field(default=None, description="Airflow's URL in links (default: [api] base_url)")

    def as_settings(self) -> dict[str, Any]:
        """Plain data for notifiers, triggers and deadline callbacks."""
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Lane:
    """The sources of one warehouse schema and what the migration builds for them: one RudderStack warehouse
    destination (namespace = ``schema``), one Segment-type RudderStack source fed by the webhooks of the lane's
    client sources, and the lane's own hold, release, upload, duplicate and adoption checks.

    ``name`` is the schema in lower case with every character other than a-z, 0-9 and _ replaced by _ (it is
    part of task group ids and of the trigger form's ``lanes`` param)."""

    name: str
    schema: str
    sources: tuple[SourceSettings, ...]
    destination_name: str
    segment_source_name: str

    @property
    def source_ids(self) -> list[str]:
        return [s.id for s in self.sources]

    @property
    def client_ids(self) -> list[str]:
        return [s.id for s in self.sources if s.kind == "client"]

    @property
    def server_ids(self) -> list[str]:
        return [s.id for s in self.sources if s.kind == "server"]

    @property
    def rudderstack_source_ids(self) -> list[str]:
        return sorted({s.rudderstack_source_id for s in self.sources if s.rudderstack_source_id})

    def namespace_for(self, destination_type: str) -> str:
        """The namespace the lane's RudderStack destination is given: the schema as the warehouse stores it.
        On Snowflake RudderStack names schemas in upper case (rudder-server ``ToProviderCase``), as Snowflake
        stores Segment's unquoted schema names."""
        return self.schema.upper() if destination_type.upper() in UPPER_CASE_DESTINATIONS else self.schema


def lane_name(schema: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", schema.lower())


class Plan(_Model):
    name: str
    description: str = ""
    schedule: str | None = None
    require_approvals: bool = False
    dry_run: bool = False
    segment: SegmentSettings
    sources: list[SourceSettings] = Field(min_length=1)
    rudderstack: RudderStackSettings = Field(default_factory=RudderStackSettings)
    warehouse: WarehouseSettings
    adoption: AdoptionSettings = Field(default_factory=AdoptionSettings)
    waits: WaitSettings = Field(default_factory=WaitSettings)
    duplicates: DuplicateSettings = Field(default_factory=DuplicateSettings)
    proof: ProofSettings = Field(default_factory=ProofSettings)
    notify: NotifySettings | None = None  # where the migration's messages go (docs/operating.md)
    shape: ShapeSettings = Field(default_factory=ShapeSettings)  # docs/shape-continuity.md

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PLAN_NAME.match(value):
            raise ValueError("must be lower-case letters, digits and _ (it becomes part of the DAG id)")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value in (None, "", "none", "None"):
            return None
        check_schedule(value)
        return value

    @model_validator(mode="after")
    def _unique_sources(self) -> Plan:
        ids = [s.id for s in self.sources]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"sources: source ids listed twice: {dupes}")
        return self

    @model_validator(mode="after")
    def _one_shadow_schema_per_lane(self) -> Plan:
        if self.shape.shadow.schema_ and len(self.schemas) > 1:
            raise ValueError(
                "shape.shadow.schema names one scratch schema, but the plan has several schemas "
                f"({', '.join(self.schemas)}); leave it out (each lane then uses <schema>_rs_shadow)"
            )
        return self

    def shadow_schema(self, lane: Lane) -> str:
        """Where the lane's shadow destination loads (shape.shadow): the plan's scratch schema or
        ``<schema>_rs_shadow``."""
        return self.shape.shadow.schema_ or f"{lane.schema}_rs_shadow"

    @model_validator(mode="after")
    def _every_source_has_a_schema(self) -> Plan:
        if self.warehouse.namespace is None:
            unnamed = [s.id for s in self.sources if s.schema_ is None]
            if unnamed:
                raise ValueError(
                    f"sources {unnamed} name no schema and warehouse.namespace is not set: give each source its "
                    "schema (sources[].schema, the schema Segment loads it into) or set warehouse.namespace"
                )
        names: dict[str, set[str]] = {}
        for schema in self.schemas:
            names.setdefault(lane_name(schema), set()).add(schema)
        clash = sorted(sorted(v) for v in names.values() if len(v) > 1)
        if clash:
            raise ValueError(
                f"schemas {clash} differ only in case or punctuation: use one spelling per schema"
            )
        if len(self.schemas) > 1 and self.rudderstack.destination.id:
            raise ValueError(
                f"rudderstack.destination.id names one destination, but the plan's sources load into "
                f"{len(self.schemas)} schemas {self.schemas}, and a RudderStack destination writes into one: "
                "omit the id so the migration creates (or finds by name) one destination per schema"
            )
        return self

    def schema_of(self, source: SourceSettings) -> str:
        return source.schema_ or self.warehouse.namespace or ""

    @property
    def schemas(self) -> list[str]:
        """The plan's schemas in the order their first source is listed."""
        return list(dict.fromkeys(self.schema_of(s) for s in self.sources))

    @property
    def lanes(self) -> list[Lane]:
        """One lane per schema. With one schema the destination and Segment-type source keep the plan's
        names; with several, each name ends with `` [<schema>]``."""
        several = len(self.schemas) > 1
        rs = self.rudderstack
        return [
            Lane(
                name=lane_name(schema),
                schema=schema,
                sources=tuple(s for s in self.sources if self.schema_of(s) == schema),
                destination_name=f"{rs.destination.name} [{schema}]" if several else rs.destination.name,
                segment_source_name=f"{rs.segment_source_name} [{schema}]"
                if several
                else rs.segment_source_name,
            )
            for schema in self.schemas
        ]

    @property
    def client_sources(self) -> list[SourceSettings]:
        return [s for s in self.sources if s.kind == "client"]

    @property
    def server_sources(self) -> list[SourceSettings]:
        return [s for s in self.sources if s.kind == "server"]

    @property
    def dag_id(self) -> str:
        return f"segment_to_rudderstack__{self.name}"

    @property
    def rollback_dag_id(self) -> str:
        return f"segment_to_rudderstack_rollback__{self.name}"

    @property
    def change_log_key(self) -> str:
        return f"segment_to_rudderstack__{self.name}__changes"


# Presets Airflow turns into a timetable without a cron expression.
_NON_CRON_PRESETS = ("@once", "@continuous")


def check_schedule(value: str) -> None:
    """Parse ``value`` with Airflow's own cron timetable (what the scheduler will do with it), so a schedule
    Airflow cannot run (``@fortnightly``, ``every tuesday``) is a plan error naming the field, not an import
    error of the whole DAG file."""
    if value in _NON_CRON_PRESETS:
        return
    from airflow.exceptions import AirflowTimetableInvalid
    from airflow.timetables.trigger import CronTriggerTimetable

    try:
        CronTriggerTimetable(value, timezone="UTC").validate()
    except AirflowTimetableInvalid as exc:
        raise ValueError(
            f"{value!r} is not a valid cron expression or Airflow preset ({exc}); use five cron fields "
            "(e.g. '0 6 * * 1') or one of @hourly, @daily, @weekly, @monthly, @quarterly, @yearly, @once, "
            "or null to trigger by hand"
        ) from None


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ""
        for part in item["loc"]:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling)"
        lines.append(f"  - {where or 'plan'}: {message}")
    return "\n".join(lines)


def parse_plan(data: Any, *, origin: str = "<plan>") -> Plan:
    if not isinstance(data, dict):
        raise PlanError(f"{origin}: expected a mapping at the top of the plan, found {type(data).__name__}")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"{origin}: invalid migration plan:\n{_format_errors(exc)}") from None


def load_plan(path: str | pathlib.Path) -> Plan:
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read plan file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlanError(f"{path}: not valid YAML: {exc}") from None
    return parse_plan(data, origin=str(path))
