"""Preflight: prove that the migration is safe to start, before anything is changed.

Checks that Segment's warehouse is there and loading, that its recent loads are healthy, that the
RudderStack destination (when it exists) writes to the same namespace as Segment's schema, that the
schema holds the required Segment tables, and that the columns RudderStack will write are type-compatible
with the ones already there. Every problem found is listed in one failure message and a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.dialects.identifiers import same_namespace
from segment_rudderstack.operators.outages import OutageRidingOperator
from segment_rudderstack.rendered import as_list
from segment_rudderstack.safety.changelog import ChangeLog
from segment_rudderstack.vocabulary import EVENT_TABLES, ChangeTarget
from segment_rudderstack.waits import conditions
from segment_rudderstack.waits.watches import SYNC_REPORTS_PER_CHECK

# Columns RudderStack writes into every Segment event table, with the type family it writes them as.
RUDDERSTACK_EVENT_COLUMNS: dict[str, str] = {
    "id": "string",
    "anonymous_id": "string",
    "user_id": "string",
    "received_at": "timestamp",
    "sent_at": "timestamp",
    "timestamp": "timestamp",
    "original_timestamp": "timestamp",
    "uuid_ts": "timestamp",
    "context_library_name": "string",
    "context_source_id": "string",
    "context_source_type": "string",
    "context_destination_id": "string",
    "context_destination_type": "string",
}
TRACK_COLUMNS = {"event": "string", "event_text": "string"}


def expected_columns(tables: Sequence[str]) -> dict[str, dict[str, str]]:
    expected = {}
    for table in tables:
        columns = dict(RUDDERSTACK_EVENT_COLUMNS)
        if table == "tracks":
            columns.update(TRACK_COLUMNS)
        expected[table] = columns
    return expected


def format_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = lambda r: " | ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)])


class PreflightOperator(OutageRidingOperator):
    """Fails before any change when the migration is unsafe; returns a summary of what it found. A connection
    that does not answer is a problem it reports (a typo and an outage look alike here, and nothing has changed
    yet); an outage in the middle of its reads is ridden out like in every step (:class:`OutageRidingOperator`).

    :param segment_conn_id: the Segment Public API connection.
    :param warehouse_id: Segment's warehouse id.
    :param source_ids: the plan's Segment sources.
    :param rudderstack_conn_id: the RudderStack control plane connection.
    :param destination_id: the RudderStack destination's id when the plan names one; else it is looked up by
        name and type.
    :param destination_name: the RudderStack destination's name.
    :param destination_type: its type (``POSTGRES``, ``SNOWFLAKE``).
    :param warehouse_conn_id: the warehouse connection (a DbApiHook's: PostgreSQL, Snowflake).
    :param namespace: the schema Segment writes to (the destination's namespace).
    :param required_tables: tables that must exist in it.
    :param change_log_key: the plan's change log (a warehouse this migration disabled is not a problem).
    :param selected_source_ids: the sources this run migrates.
    :param final_step: ``disable_warehouse`` or ``disconnect_sources`` (a subset of sources needs the latter).
    :param delivery_overview_granularity: when set, ask Segment's Delivery Overview (beta) once whether it
        answers.
    :param rudderstack_data_plane_conn_id: the data plane connection (it must answer before anything changes).
    :param allow_merge_mode_change: whether the plan lets the migration switch ``preferAppend`` off; when not, a
        destination in append mode is a problem.
    :param destination_config: the plan's extra config for a new destination (``rudderstack.destination.config``).
    :param credentials_conn_id: the warehouse connection a new destination's credentials come from (``None``:
        none are copied).
    :param staging: the plan's staging storage (``rudderstack.destination.staging`` as a dict).
    :param sync_frequency_minutes: a new destination's ``syncFrequency``.
    :param users_table: whether the warehouse keeps a ``users`` table (``skipUsersTable`` off).
    :param allow_users_context_traits: the plan's ``allowUsersContextTraits``.

    The config the run will send is checked against what RudderStack requires of the destination type
    (:mod:`segment_rudderstack.connections.required_fields`): for a destination to create, the whole config
    built from the connections and the plan; for an existing one, its stored config (without secrets, which
    RudderStack may not show), since every change PUTs it back. Each missing or invalid field is a problem naming
    where to set it. An existing destination whose users-table settings differ from the plan's is reported; the
    setup changes them as recorded changes.
    """

    ui_color = "#d5f5e3"
    template_fields = ("namespace", "destination_id", "selected_source_ids")

    def __init__(
        self,
        *,
        segment_conn_id: str,
        warehouse_id: str,
        source_ids: Sequence[str],
        rudderstack_conn_id: str,
        destination_id: str | None,
        destination_name: str,
        destination_type: str,
        warehouse_conn_id: str,
        namespace: str,
        required_tables: Sequence[str] = ("tracks",),
        change_log_key: str | None = None,
        selected_source_ids: Sequence[str] | str | None = None,
        final_step: str = "disable_warehouse",
        delivery_overview_granularity: str | None = None,
        rudderstack_data_plane_conn_id: str | None = None,
        allow_merge_mode_change: bool = True,
        destination_config: dict[str, Any] | None = None,
        credentials_conn_id: str | None = None,
        staging: Mapping[str, Any] | None = None,
        sync_frequency_minutes: int = 30,
        users_table: bool = True,
        allow_users_context_traits: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.credentials_conn_id = credentials_conn_id
        self.staging = dict(staging) if staging else None
        self.sync_frequency_minutes = sync_frequency_minutes
        self.users_table = users_table
        self.allow_users_context_traits = allow_users_context_traits
        self.rudderstack_data_plane_conn_id = rudderstack_data_plane_conn_id
        # preferAppend / skipUsersTable (segment_rudderstack.safety.merge_mode): of the existing destination, or of the
        # plan's config for one the migration will create.
        self.allow_merge_mode_change = allow_merge_mode_change
        self.destination_config = dict(destination_config or {})
        # Segment's Delivery Overview (beta) is asked once whether it answers (None: not asked).
        self.delivery_overview_granularity = delivery_overview_granularity
        self.selected_source_ids = selected_source_ids
        self.final_step = final_step
        self.segment_conn_id = segment_conn_id
        self.warehouse_id = warehouse_id
        self.source_ids = list(source_ids)
        self.rudderstack_conn_id = rudderstack_conn_id
        self.destination_id = destination_id
        self.destination_name = destination_name
        self.destination_type = destination_type
        self.warehouse_conn_id = warehouse_conn_id
        self.namespace = namespace
        self.required_tables = list(required_tables)
        self.change_log_key = change_log_key

    def _check_segment(self, problems: list[str], summary: dict[str, Any]) -> None:
        from segment_rudderstack.hooks.segment import SegmentHook

        hook = SegmentHook(segment_conn_id=self.segment_conn_id)
        warehouse = hook.get_warehouse(self.warehouse_id)
        summary["segment_warehouse_enabled"] = bool(warehouse.get("enabled"))
        if not warehouse.get("enabled"):
            ours = ChangeLog(self.change_log_key).last(
                ChangeTarget.SEGMENT_WAREHOUSE, self.warehouse_id, "enabled"
            )
            if ours is not None and ours.after is False:
                self.log.info(
                    "Segment warehouse %s was disabled by this migration at %s", self.warehouse_id, ours.at
                )
            else:
                problems.append(
                    f"Segment warehouse {self.warehouse_id} is disabled, expected enabled: the migration takes over "
                    "from a loading Segment warehouse. Enable it in Segment or check the plan's warehouse id."
                )
        reports = hook.list_warehouse_syncs(self.warehouse_id, count=SYNC_REPORTS_PER_CHECK)
        healthy = []
        for source_id in self.source_ids:
            mine = [r for r in reports if r.source_id == source_id and r.end is not None]
            if not mine:
                self.log.warning("no finished Segment load seen yet for source %s", source_id)
                continue
            newest = max(mine, key=lambda r: r.start)
            state = conditions.sync_state(newest)
            healthy.append((source_id, newest.start.isoformat(), str(newest.status)))
            if state == "failure":
                problems.append(
                    f"Segment's newest load for source {source_id} (started {newest.start.isoformat()}) ended "
                    f"{newest.status!r}, expected Success: fix Segment's loads before migrating"
                )
        summary["segment_recent_loads"] = healthy

    def _check_delivery_overview(self) -> dict[str, Any]:
        """Not a problem when missing: the proof from Segment's metrics is skipped and said so, once, here."""
        from segment_rudderstack.hooks.segment_delivery import SegmentMetricsHook

        hook = SegmentMetricsHook(self.segment_conn_id)
        available, why = hook.delivery_overview_available(
            self.source_ids[0], granularity=self.delivery_overview_granularity
        )
        if available:
            self.log.info(
                "Segment's Delivery Overview metrics answer: the run will prove itself against them"
            )
        else:
            self.log.warning("%s", why)
        return {"available": available, "reason": why}

    def _check_source_schemas(self, summary: dict[str, Any]) -> None:
        """Say when a source's slug (the schema Segment names for it by default) differs from the plan's schema.
        Segment's Public API exposes no source's warehouse schema name (SourceV1 has ``slug``, no schema; the
        "Schema Name" set in a source's warehouse settings is not in the API), so a difference is a warning to
        confirm in Segment, not a failure; the warehouse check below proves the schema holds Segment's tables."""
        from segment_rudderstack.hooks.segment import SegmentHook

        hook = SegmentHook(segment_conn_id=self.segment_conn_id)
        notes = []
        for source_id in self.source_ids:
            slug = str(hook.get_source(source_id).get("slug") or "")
            if slug and slug.replace("-", "_").lower() != self.namespace.lower():
                notes.append(
                    f"source {source_id}: the plan says schema {self.namespace!r}, Segment's default for it is its "
                    f"slug {slug!r}; Segment's Public API does not show a schema name changed in the source's "
                    "warehouse settings: confirm it there (Source > Settings > SQL Settings)"
                )
        for note in notes:
            self.log.warning("%s", note)
        summary["schema_notes"] = notes

    def _check_rudderstack(self, problems: list[str], summary: dict[str, Any]) -> None:
        from segment_rudderstack.hooks.rudderstack import RudderStackHook

        hook = RudderStackHook(rudderstack_conn_id=self.rudderstack_conn_id)
        if self.destination_id:
            candidates = [hook.get_destination(self.destination_id)]
        else:
            candidates = [
                d
                for d in hook.list_destinations()
                if d.get("name") == self.destination_name
                and str(d.get("type", "")).upper() == self.destination_type.upper()
            ]
        summary["rudderstack_destination"] = candidates[0].get("id") if candidates else None
        new_config = self._check_new_config(problems) if not candidates else None
        self._check_existing_config(candidates, problems, summary)
        self._check_merge_mode(candidates, problems, summary, new_config)
        for destination in candidates:
            found = (destination.get("config") or {}).get("namespace")
            if not same_namespace(found, self.namespace):
                problems.append(
                    f"RudderStack destination {destination.get('id')} has namespace {found!r}, but Segment writes "
                    f"to schema {self.namespace!r}: they must be the same so RudderStack writes the same tables"
                )

    def _check_new_config(self, problems: list[str]) -> dict[str, Any] | None:
        """The config a new destination would be created with, checked as RudderStack checks it."""
        from segment_rudderstack.connections.rudderstack_destination import (
            CredentialsError,
            checked_destination_config,
        )

        try:
            config, refused = checked_destination_config(self, self.destination_config)
        except CredentialsError as exc:
            problems.append(f"the RudderStack destination to create cannot be configured: {exc}")
            return None
        problems.extend(
            f"the RudderStack destination to create ({self.destination_name!r}): {line}" for line in refused
        )
        return config

    def _check_existing_config(
        self, candidates: list[dict[str, Any]], problems: list[str], summary: dict[str, Any]
    ) -> None:
        """An existing destination: fields RudderStack would refuse on the next change, and the users-table
        settings the setup will change (recorded; the rollback gives them back)."""
        from segment_rudderstack.connections.required_fields import config_problems
        from segment_rudderstack.connections.rudderstack_destination import SECRET_KEYS, pinned_settings

        wanted = pinned_settings(
            users_table=self.users_table, allow_users_context_traits=self.allow_users_context_traits
        )
        for destination in candidates:
            config, destination_id = destination.get("config") or {}, destination.get("id")
            for problem in config_problems(self.destination_type, config, skip=SECRET_KEYS):
                problems.append(
                    f"RudderStack destination {destination_id}: config.{problem.field} {problem.why}; RudderStack "
                    "would refuse every change the migration makes to it (hold, release): set it in RudderStack "
                    "(the destination's settings)"
                )
            differ = {k: [config.get(k), v] for k, v in wanted.items() if config.get(k) != v}
            if differ:
                summary["settings_to_change"] = differ
                self.log.warning(
                    "RudderStack destination %s: %s; the setup changes them to the plan's values (each a recorded "
                    "change the rollback undoes)",
                    destination_id,
                    ", ".join(
                        f"{k} is {now!r}, the plan wants {want!r}" for k, (now, want) in differ.items()
                    ),
                )

    def _check_merge_mode(
        self,
        candidates: list[dict[str, Any]],
        problems: list[str],
        summary: dict[str, Any],
        new_config: dict[str, Any] | None = None,
    ) -> None:
        from segment_rudderstack.safety.merge_mode import merge_mode_findings

        found = [(d.get("id"), d.get("config") or {}) for d in candidates] or [
            (None, new_config if new_config is not None else self.destination_config)
        ]
        for destination_id, config in found:
            findings = merge_mode_findings(
                destination_id,
                config,
                allow_change=self.allow_merge_mode_change,
                users_table=self.users_table,
            )
            problems.extend(findings.problems)
            for warning in findings.warnings:
                self.log.warning("%s", warning)
            summary["prefer_append"] = findings.prefer_append
            summary["skip_users_table"] = findings.skip_users_table

    def _check_warehouse(self, problems: list[str], summary: dict[str, Any]) -> None:
        from segment_rudderstack.dialects import dialect_for_conn_id

        dialect = dialect_for_conn_id(self.warehouse_conn_id)
        if not dialect.schema_exists(self.namespace):
            problems.append(
                f"schema {self.namespace!r} does not exist in warehouse connection {self.warehouse_conn_id!r}: "
                "expected the schema Segment writes to"
            )
            return
        tables = dialect.list_tables(self.namespace)
        summary["tables"] = sorted(tables)
        missing = [t for t in self.required_tables if t not in tables]
        if missing:
            problems.append(f"required Segment tables missing from schema {self.namespace!r}: {missing}")
        present = [t for t in EVENT_TABLES if t in tables]
        differences = dialect.compare_columns(
            expected_columns(present), dialect.list_columns(self.namespace, present)
        )
        rows = [
            (d.table, d.column or "", d.kind, d.expected_type or "", d.actual_type or "") for d in differences
        ]
        if rows:
            self.log.info(
                "column comparison (RudderStack will write vs found):\n%s",
                format_table(rows, ("table", "column", "difference", "expected", "found")),
            )
        mismatches = [d for d in differences if d.kind == "type_mismatch"]
        for d in mismatches:
            problems.append(d.describe())
        summary["column_differences"] = [r for r in rows]

    def _check_namespace(self, problems: list[str]) -> None:
        """RudderStack writes into its snake-cased namespace (rudder-server ToSafeNamespace): it must be the schema
        Segment writes, or its loads land where no model reads (docs/shape-continuity.md)."""
        from segment_rudderstack.shape.rudderstack_rules import namespace_problem

        warehouse = "snowflake" if self.destination_type.upper() == "SNOWFLAKE" else "postgres"
        problem = namespace_problem(self.namespace, warehouse)
        if problem:
            problems.append(problem)

    def _check_selection(self, problems: list[str]) -> None:
        selected = as_list(self.selected_source_ids)
        left_out = sorted(set(self.source_ids) - set(selected)) if selected is not None else []
        if left_out and self.final_step == "disable_warehouse":
            problems.append(
                f"this run migrates only {selected}, but disabling Segment's warehouse would also stop loading "
                f"{left_out}, which get no webhook to RudderStack in this run: select every source, or set "
                "segment.final_step: disconnect_sources in the plan"
            )

    def execute(self, context: Any) -> dict[str, Any]:
        problems: list[str] = []
        summary: dict[str, Any] = {"namespace": self.namespace}
        self._check_selection(problems)
        self._check_namespace(problems)
        # Every connection answers, every Segment source id exists and loads into the warehouse, and the
        # warehouse user may work in the schema: all before the first change (preflight_checks.py).
        from segment_rudderstack.hooks.segment import SegmentHook
        from segment_rudderstack.safety.preflight_checks import (
            connection_problems,
            segment_source_problems,
            warehouse_privilege_problems,
        )

        unreachable = connection_problems(
            self.segment_conn_id, self.rudderstack_conn_id, self.rudderstack_data_plane_conn_id
        )
        if unreachable:
            raise AirflowFailException(
                "preflight found problems; nothing was changed:\n"
                + "\n".join(f"  - {p}" for p in unreachable)
            )
        problems += segment_source_problems(
            SegmentHook(segment_conn_id=self.segment_conn_id), self.warehouse_id, self.source_ids
        )
        if problems:  # the checks below read every source: a wrong id would only repeat itself as a crash
            raise AirflowFailException(
                "preflight found problems; nothing was changed:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        exists, privileges = warehouse_privilege_problems(
            self.warehouse_conn_id, self.namespace, self.required_tables
        )
        problems += privileges
        self._check_segment(problems, summary)
        self._check_source_schemas(summary)
        summary["stays_on_segment"] = self._read_what_stays()
        self._check_rudderstack(problems, summary)
        if not (exists and privileges):  # without privileges the schema only looks missing: said once above
            self._check_warehouse(problems, summary)
        if self.delivery_overview_granularity:
            summary["delivery_overview"] = self._check_delivery_overview()
        if problems:
            raise AirflowFailException(
                "preflight found problems; nothing was changed:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        summary["window_queries"] = self._report_window_queries()
        self.log.info("preflight passed: %s", summary)
        return summary

    def _read_what_stays(self) -> dict[str, Any]:
        """Informational (never fails the preflight): the migrated sources' other Segment destinations, the
        workspace's Functions and the sources' tracking plans, for the report (evidence/stays_on_segment.py)."""
        from segment_rudderstack.evidence.stays_on_segment import read_what_stays
        from segment_rudderstack.hooks.segment import SegmentHook

        selected = as_list(self.selected_source_ids)
        sources = [s for s in self.source_ids if selected is None or s in selected]
        found = read_what_stays(SegmentHook(segment_conn_id=self.segment_conn_id), sources, self.warehouse_id)
        for note in found["notes"]:
            self.log.warning("what stays on Segment: %s", note)
        self.log.info(
            "what stays on Segment: %d other destinations, %d other warehouses on sources %s",
            len(found["destinations"]),
            len(found["warehouses"]),
            sources,
        )
        return found

    def _report_window_queries(self) -> list[dict[str, Any]]:
        """Informational (never fails the preflight): are the adoption and duplicate window queries index-backed
        (EXPLAIN), and how many rows one check reads (segment_rudderstack.dialects.query_plans, docs/scaling.md)."""
        from segment_rudderstack.dialects.query_plans import window_query_report

        try:
            return window_query_report(self.warehouse_conn_id, self.namespace, EVENT_TABLES, self.log)
        except Exception as error:
            self.log.warning("could not EXPLAIN the window queries (%s); checks still work", error)
            return []
