"""The warehouse dialect interface, its result types, and the SQL every dialect shares.

A dialect wraps one ``DbApiHook`` and answers the questions the migration asks of the warehouse:
which Segment tables exist, what columns they have, how many events in a trailing window still came
through Segment's webhook, and which message ids are present more than once (and removing the extras).

SQL text is built only from literal templates and identifiers quoted by the dialect (see :func:`compose`,
which refuses anything else at run time); every value is a bound parameter. Names are resolved through
``information_schema`` so the caller can use Segment's lower-case names whatever case the warehouse
stored them in (Snowflake stores unquoted names upper-case).

A subclass sets ``conn_types`` and implements :meth:`WarehouseDialect._remove_duplicates` (the only step
that needs warehouse-specific SQL); the registry in :mod:`segment_rudderstack.dialects.registry` picks
it up from the hook's connection type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

from segment_rudderstack.dialects.column_types import ColumnDifference, compare_columns
from segment_rudderstack.dialects.results import AdoptionSample, DuplicateCount
from segment_rudderstack.dialects.session import Session, Table, require_aware
from segment_rudderstack.dialects.sql import Quoted, SqlText, compose, join_sql
from segment_rudderstack.vocabulary import CLIENT_EVENT_TABLES

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------- dialect
class WarehouseDialect:
    """Warehouse questions for one ``DbApiHook``. Subclasses add the warehouse-specific duplicate removal."""

    name: ClassVar[str] = "generic"
    conn_types: ClassVar[tuple[str, ...]] = ()
    # How the warehouse folds unquoted identifiers: "lower" (PostgreSQL) or "upper" (Snowflake).
    folds_to: ClassVar[str] = "lower"

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.hook).__name__})"

    # -------------------------------------------------------------------------------- identifiers
    def quote_identifier(self, name: str) -> Quoted:
        """Quote one identifier exactly as given (case kept, ``"`` doubled, ``%`` escaped for pyformat)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"an identifier must be a non-empty string, got {name!r}")
        if "\x00" in name:
            raise ValueError("an identifier cannot contain a NUL character")
        return Quoted('"' + name.replace('"', '""').replace("%", "%%") + '"')

    def fold_identifier(self, name: str) -> str:
        """The name the warehouse stores for ``name`` written unquoted (only for simple one-case names)."""
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) and (name.islower() or name.isupper()):
            return name.upper() if self.folds_to == "upper" else name.lower()
        return name

    def qualified(self, schema: str, table: str) -> SqlText:
        return compose("{s}.{t}", s=self.quote_identifier(schema), t=self.quote_identifier(table))

    # ------------------------------------------------------------------------------------ sessions
    @contextmanager
    def session(self) -> Iterator[Session]:
        """A connection from the hook; committed when the block succeeds, rolled back when it raises."""
        conn = self.hook.get_conn()
        try:
            yield Session(conn)
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # the original error matters more than a failed rollback
                log.warning("rollback after a failed warehouse statement failed as well", exc_info=True)
            raise
        finally:
            conn.close()

    @contextmanager
    def transaction(self, session: Session) -> Iterator[None]:
        """Statements inside run atomically. Default: the session's own transaction (DB-API, no autocommit)."""
        yield

    # ------------------------------------------------------------------------------------- catalog
    def resolve_schema(self, s: Session, schema: str) -> str | None:
        candidates = list(dict.fromkeys([schema, self.fold_identifier(schema)]))
        placeholders = join_sql(", ", [SqlText("%s")] * len(candidates))
        rows = s.fetchall(
            compose(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ({p})",
                p=placeholders,
            ),
            candidates,
        )
        present = {r[0] for r in rows}
        return next((c for c in candidates if c in present), None)

    def _tables(self, s: Session, schema: str) -> dict[str, str]:
        rows = s.fetchall(
            SqlText(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE'"
            ),
            [schema],
        )
        found: dict[str, str] = {}
        for (actual,) in rows:
            key = actual.lower()
            # Two tables differing only by case: prefer the one an unquoted name resolves to.
            if key not in found or actual == self.fold_identifier(key):
                found[key] = actual
        return found

    def load_tables(self, s: Session, schema: str, wanted: Iterable[str] | None) -> dict[str, Table]:
        present = self._tables(s, schema)
        names = sorted(present) if wanted is None else [t.lower() for t in wanted if t.lower() in present]
        if not names:
            return {}
        actual_names = [present[n] for n in names]
        placeholders = join_sql(", ", [SqlText("%s")] * len(actual_names))
        rows = s.fetchall(
            compose(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name IN ({p}) ORDER BY table_name, ordinal_position",
                p=placeholders,
            ),
            [schema, *actual_names],
        )
        tables = {n: Table(n, present[n]) for n in names}
        by_actual = {present[n]: tables[n] for n in names}
        for table_name, column_name, data_type in rows:
            table = by_actual.get(table_name)
            if table is None:
                continue
            key = column_name.lower()
            if key not in table.columns or column_name == self.fold_identifier(key):
                table.columns[key] = (column_name, str(data_type))
        return tables

    def ping(self) -> None:
        """One trivial query: raises what the driver raises while the warehouse does not answer."""
        with self.session() as s:
            s.fetchall(SqlText("SELECT 1"))

    def schema_exists(self, schema: str) -> bool:
        with self.session() as s:
            return self.resolve_schema(s, schema) is not None

    def list_tables(self, schema: str) -> set[str]:
        """Base tables in ``schema`` by their lower-case (Segment) names; empty when the schema is missing."""
        with self.session() as s:
            actual = self.resolve_schema(s, schema)
            return set(self._tables(s, actual)) if actual else set()

    def list_columns(self, schema: str, tables: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
        """``{table: {column: data_type}}`` with lower-case names; missing tables are left out."""
        with self.session() as s:
            actual = self.resolve_schema(s, schema)
            if actual is None:
                return {}
            loaded = self.load_tables(s, actual, tables)
        return {n: {c: ty for c, (_, ty) in t.columns.items()} for n, t in loaded.items()}

    def compare_columns(
        self, expected: Mapping[str, Mapping[str, str]], actual: Mapping[str, Mapping[str, str]]
    ) -> list[ColumnDifference]:
        return compare_columns(expected, actual)

    # ------------------------------------------------------------------------------------ adoption
    def adoption_share(
        self,
        schema: str,
        *,
        webhook_source_id: str,
        since: datetime,
        until: datetime,
        tables: Sequence[str] = CLIENT_EVENT_TABLES,
        library_names: Sequence[str] | None = None,
    ) -> AdoptionSample:
        """Count rows received in ``[since, until)`` and those whose ``context_source_id`` is the webhook source.

        Only the window is read (a predicate on ``received_at``), so the cost follows the window, not the
        table. A table without ``context_source_id`` (Segment wrote it, RudderStack has not yet) counts
        all its rows as total and none as via Segment; missing tables are skipped and reported.
        """
        require_aware("since", since)
        require_aware("until", until)
        if since >= until:
            raise ValueError(
                f"since must be before until, got since={since.isoformat()} until={until.isoformat()}"
            )
        if not webhook_source_id:
            raise ValueError("webhook_source_id is required: the id of RudderStack's Segment-type source")
        libraries = [str(n) for n in library_names] if library_names else []

        with self.session() as s:
            actual_schema = self.resolve_schema(s, schema)
            loaded = self.load_tables(s, actual_schema, tables) if actual_schema else {}
            counted = [t for t in loaded.values() if t.column("received_at")]
            missing = tuple(t.lower() for t in tables if t.lower() not in {c.name for c in counted})
            if missing:
                log.info("adoption share: skipping tables not present (or without received_at): %s", missing)
            total = via_segment = via_library = 0
            if counted:
                selects: list[SqlText] = []
                params: list[Any] = []
                for table in counted:
                    sql, part_params = self._adoption_select(
                        actual_schema, table, webhook_source_id, libraries, since, until
                    )
                    selects.append(sql)
                    params.extend(part_params)
                for row in s.fetchall(join_sql(" UNION ALL ", selects), params):
                    total += int(row[0] or 0)
                    via_segment += int(row[1] or 0)
                    via_library += int(row[2] or 0)

        return AdoptionSample(
            at=until,
            total=total,
            via_segment=via_segment,
            since=since,
            via_library=via_library if libraries else None,
            tables=tuple(t.name for t in counted),
            missing_tables=missing,
        )

    def _adoption_select(
        self,
        schema: str,
        table: Table,
        webhook_source_id: str,
        libraries: list[str],
        since: datetime,
        until: datetime,
    ) -> tuple[SqlText, list[Any]]:
        params: list[Any] = []
        source_col = table.column("context_source_id")
        if source_col:
            via_segment = compose(
                "COALESCE(SUM(CASE WHEN {c} = %s THEN 1 ELSE 0 END), 0)", c=self.quote_identifier(source_col)
            )
            params.append(webhook_source_id)
        else:
            via_segment = SqlText("0")
        library_col = table.column("context_library_name")
        if libraries and library_col:
            via_library = compose(
                "COALESCE(SUM(CASE WHEN {c} IN ({p}) THEN 1 ELSE 0 END), 0)",
                c=self.quote_identifier(library_col),
                p=join_sql(", ", [SqlText("%s")] * len(libraries)),
            )
            params.extend(libraries)
        else:
            via_library = SqlText("0")
        received = self.quote_identifier(table.column("received_at") or "received_at")
        sql = compose(
            "SELECT COUNT(*) AS total_rows, {vs} AS via_segment, {vl} AS via_library FROM {t} WHERE {r} >= %s AND {r} < %s",
            vs=via_segment,
            vl=via_library,
            t=self.qualified(schema, table.actual),
            r=received,
        )
        params.extend([since, until])
        return sql, params

    # ------------------------------------------------------------------------------- loaded rows
    def rows_loaded_by_destination(
        self,
        schema: str,
        *,
        destination_id: str,
        loaded_after: datetime,
        received_after: datetime,
        tables: Sequence[str] = CLIENT_EVENT_TABLES,
    ) -> int:
        """Rows a RudderStack destination loaded (``context_destination_id``) at or after ``loaded_after``
        (``uuid_ts``, the load time). ``received_after`` bounds the scan by ``received_at`` so the cost follows
        the window, not the table. Tables without those columns count zero."""
        require_aware("loaded_after", loaded_after)
        require_aware("received_after", received_after)
        total = 0
        with self.session() as s:
            actual_schema = self.resolve_schema(s, schema)
            loaded = self.load_tables(s, actual_schema, tables) if actual_schema else {}
            for table in loaded.values():
                columns = [table.column(c) for c in ("context_destination_id", "uuid_ts", "received_at")]
                if not all(columns):
                    continue
                dest, uuid_ts, received = (self.quote_identifier(c) for c in columns)
                sql = compose(
                    "SELECT COUNT(*) FROM {t} WHERE {r} >= %s AND {u} >= %s AND {d} = %s",
                    t=self.qualified(actual_schema, table.actual),
                    r=received,
                    u=uuid_ts,
                    d=dest,
                )
                total += int(s.fetchall(sql, [received_after, loaded_after, destination_id])[0][0] or 0)
        return total

    def rows_loaded_per_source(
        self,
        schema: str,
        *,
        destination_id: str,
        source_ids: Sequence[str],
        loaded_after: datetime,
        received_after: datetime,
        tables: Sequence[str] = CLIENT_EVENT_TABLES,
    ) -> dict[str, int]:
        """Rows each of ``source_ids`` got loaded by RudderStack destination ``destination_id`` at or after
        ``loaded_after``: RudderStack's own columns ``context_destination_id``, ``context_source_id`` and
        ``uuid_ts`` (the load time), with ``received_at >= received_after`` bounding the scan. Every source id is
        in the answer (0 when none). Tables without those columns count zero."""
        require_aware("loaded_after", loaded_after)
        require_aware("received_after", received_after)
        wanted = [s for s in dict.fromkeys(source_ids) if isinstance(s, str) and s]
        counts = dict.fromkeys(wanted, 0)
        if not wanted:
            return counts
        with self.session() as s:
            actual_schema = self.resolve_schema(s, schema)
            loaded = self.load_tables(s, actual_schema, tables) if actual_schema else {}
            for table in loaded.values():
                names = ("context_source_id", "context_destination_id", "uuid_ts", "received_at")
                columns = [table.column(c) for c in names]
                if not all(columns):
                    continue
                src, dest, uuid_ts, received = (self.quote_identifier(c) for c in columns)
                placeholders = join_sql(", ", [SqlText("%s")] * len(wanted))
                sql = compose(
                    "SELECT {src}, COUNT(*) FROM {t} WHERE {r} >= %s AND {u} >= %s AND {d} = %s "
                    "AND {src} IN ({ids}) GROUP BY {src}",
                    src=src,
                    t=self.qualified(actual_schema, table.actual),
                    r=received,
                    u=uuid_ts,
                    d=dest,
                    ids=placeholders,
                )
                for source_id, count in s.fetchall(
                    sql, [received_after, loaded_after, destination_id, *wanted]
                ):
                    if source_id in counts:
                        counts[source_id] += int(count or 0)
        return counts

    # ---------------------------------------------------------------------------------- duplicates
    def _window(self, table: Table, since: datetime | None) -> tuple[SqlText, list[Any]]:
        """`` AND received_at >= %s`` when a window start is given (empty otherwise)."""
        if since is None:
            return SqlText(""), []
        require_aware("since", since)
        received = table.column("received_at")
        if received is None:
            raise ValueError(
                f"table {table.name!r} has no received_at column, so a window start (since) cannot apply; "
                "call without since to check the whole table"
            )
        return compose(" AND {r} >= %s", r=self.quote_identifier(received)), [since]

    def _id_column(self, table: Table) -> Quoted:
        id_col = table.column("id")
        if id_col is None:
            raise ValueError(
                f"table {table.name!r} has no id column (the Segment message id); duplicates are found by id, "
                "so only pass Segment event tables"
            )
        return self.quote_identifier(id_col)

    def _keep_order(self, table: Table) -> SqlText:
        """Which copy of an id survives: latest received_at, then latest uuid_ts (load time), then any."""
        keys = [
            compose("{c} DESC NULLS LAST", c=self.quote_identifier(col))
            for col in (table.column("received_at"), table.column("uuid_ts"))
            if col
        ]
        return join_sql(", ", keys) if keys else compose("{i}", i=self._id_column(table))

    def _count_sql(self, schema: str, table: Table, since: datetime | None) -> tuple[SqlText, list[Any]]:
        window, params = self._window(table, since)
        sql = compose(
            "SELECT COUNT(*) AS duplicated_ids, COALESCE(SUM(copies - 1), 0) AS extra_rows FROM ("
            "SELECT {i}, COUNT(*) AS copies FROM {t} WHERE {i} IS NOT NULL{w} GROUP BY {i} HAVING COUNT(*) > 1"
            ") AS duplicated",
            i=self._id_column(table),
            t=self.qualified(schema, table.actual),
            w=window,
        )
        return sql, params

    def count_duplicates(
        self, schema: str, tables: Iterable[str], since: datetime | None = None
    ) -> dict[str, DuplicateCount]:
        """Per existing table: ids present more than once (among rows received since ``since``, if given)."""
        wanted = list(tables)
        result: dict[str, DuplicateCount] = {}
        with self.session() as s:
            actual_schema = self.resolve_schema(s, schema)
            loaded = self.load_tables(s, actual_schema, wanted) if actual_schema else {}
            for name, table in loaded.items():
                sql, params = self._count_sql(actual_schema, table, since)
                ids, extra = s.fetchall(sql, params)[0]
                result[name] = DuplicateCount(int(ids or 0), int(extra or 0))
        self._warn_missing(schema, wanted, loaded)
        return result

    def repair_duplicates(
        self,
        schema: str,
        tables: Iterable[str],
        since: datetime | None = None,
    ) -> dict[str, int]:
        """Keep exactly one row per id (the latest ``received_at``, then ``uuid_ts``); return rows removed.

        What a repair would remove is :meth:`count_duplicates`' ``extra_rows`` (a dry run counts, it does
        not call this).
        """
        wanted = list(tables)
        removed: dict[str, int] = {}
        with self.session() as s:
            actual_schema = self.resolve_schema(s, schema)
            loaded = self.load_tables(s, actual_schema, wanted) if actual_schema else {}
            for name, table in loaded.items():
                removed[name] = self._remove_duplicates(s, actual_schema, table, since)
                log.info("removed %d duplicate rows from %s.%s", removed[name], schema, name)
        self._warn_missing(schema, wanted, loaded)
        return removed

    def _remove_duplicates(self, s: Session, schema: str, table: Table, since: datetime | None) -> int:
        raise NotImplementedError(f"{type(self).__name__} does not implement duplicate removal")

    @staticmethod
    def _warn_missing(schema: str, wanted: Iterable[str], loaded: Mapping[str, Table]) -> None:
        missing = sorted({t.lower() for t in wanted} - set(loaded))
        if missing:
            log.warning("tables not found in schema %r, skipped: %s", schema, ", ".join(missing))
