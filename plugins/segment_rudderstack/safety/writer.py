"""One writer per plan, and one plan at a time on a shared Segment warehouse or warehouse schema.

- **The plan's writer lease** (Variable ``<change log key>__writer``): every changing operator takes (or renews)
  it for its run right before an outside change (:meth:`MigrationOperator.apply_change`). Another live run
  holding it refuses the change with who holds it and until when. A crashed holder does not block forever:
  the lease expires (``lease_seconds`` after its last change) and a holder whose DAG run is no longer running
  is taken over at once.
- **The rollback fence**: a rollback records when it started (``rollback_at``). A migration run that started
  before that instant stops before its next change, so a forced rollback is not undone behind its back.
  A rollback refuses to start while a migration run of the plan is running (its DAG run state), unless forced.
- **Shared resources** (Variable ``segment_to_rudderstack__resource__<name>``): the irreversible steps (Segment's
  warehouse switched off, RudderStack's sync released, Segment's webhook switched off) hold a lease on the
  Segment warehouse and the warehouse schema they touch, from the switch-off until the release, so two plans
  sharing them cannot run those steps concurrently.

Airflow Variables have no compare-and-set: a lease is written, then read back, and the writer that reads
back someone else's lease lost the race. With the scheduler's one-run-per-DAG (``max_active_runs=1``) and
the rollback's refusal this is enough to keep two runs of one plan from interleaving their changes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.instants import as_utc

DEFAULT_LEASE_SECONDS = 900.0  # a writer's lease lasts this long after its last change
DEFAULT_RESOURCE_LEASE_SECONDS = (
    6 * 3600.0
)  # switch-off → release: Segment's final load + RudderStack's upload
MIGRATION = "migration"
ROLLBACK = "rollback"


def _now() -> datetime:
    return datetime.now(UTC)


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    return as_utc(value if isinstance(value, datetime) else str(value))


def _store(store: Any = None) -> Any:
    if store is not None:
        return store
    from segment_rudderstack.safety.changelog import default_store

    return default_store()


def run_identity(context: Any) -> tuple[str | None, str | None, datetime | None]:
    """(dag_id, run_id, run start) of the task's run, from whatever the context carries."""
    context = context or {}
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None)
    started = _parse(getattr(dag_run, "start_date", None)) if dag_run is not None else None
    return dag_id, run_id, started


def run_is_running(context: Any, dag_id: str | None, run_id: str | None) -> bool | None:
    """Whether the DAG run is still running (``None``: cannot tell from here)."""
    if not dag_id or not run_id:
        return None
    ti = (context or {}).get("ti")
    getter = getattr(ti, "get_dagrun_state", None)
    try:
        if getter is not None:
            return str(getter(dag_id=dag_id, run_id=run_id)).lower() in ("running", "queued")
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
            return None if run is None else str(run.state).lower() in ("running", "queued")
    except Exception:  # noqa: BLE001 - unknown run or no access: cannot tell
        return None


def running_runs(context: Any, dag_id: str) -> int:
    """How many runs of ``dag_id`` are running (Task SDK inside a task; metadata DB outside)."""
    ti = (context or {}).get("ti")
    counter = getattr(ti, "get_dr_count", None)
    if counter is not None:
        return int(counter(dag_id=dag_id, states=["running"]))
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        return (
            session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.state == DagRunState.RUNNING).count()
        )


class PlanWriter:
    """The writer lease and rollback fence of one plan (see the module docstring)."""

    def __init__(self, change_log_key: str, store: Any = None, lease_seconds: float = DEFAULT_LEASE_SECONDS):
        self.key = f"{change_log_key}__writer"
        self._store = store
        self.lease_seconds = float(lease_seconds)

    @property
    def store(self) -> Any:
        self._store = _store(self._store)
        return self._store

    def state(self) -> dict[str, Any]:
        return self.store.get(self.key, default=None, deserialize_json=True) or {}

    def _save(self, state: dict[str, Any]) -> None:
        self.store.set(self.key, state, serialize_json=True)

    def _live(self, holder: dict[str, Any] | None, context: Any) -> bool:
        if not holder:
            return False
        expires = _parse(holder.get("expires"))
        if expires is not None and expires <= _now():
            return False
        running = run_is_running(context, holder.get("dag_id"), holder.get("run_id"))
        return running is not False

    def acquire(self, context: Any, kind: str, *, force: bool = False) -> dict[str, Any]:
        """Take or renew the lease for this run; refuse (AirflowFailException) when another live run holds it
        or when a rollback started after this migration run did."""
        dag_id, run_id, started = run_identity(context)
        state = self.state()
        if kind == MIGRATION:
            fence = _parse(state.get("rollback_at"))
            stopped = run_id in (state.get("stopped_runs") or [])
            if stopped or (fence is not None and started is not None and started < fence):
                raise AirflowFailException(
                    f"a rollback of this plan (run {state.get('rollback_run_id')}) started at {state.get('rollback_at')}"
                    f", after this migration run began: this run stops before changing anything else. Expected no "
                    "rollback during a migration; trigger a new migration run once the rollback has finished"
                )
        holder = state.get("holder")
        if holder and holder.get("run_id") != run_id and self._live(holder, context):
            if not force:
                raise AirflowFailException(
                    f"another run is changing this plan: {holder.get('kind')} run {holder.get('run_id')} of "
                    f"{holder.get('dag_id')} (lease until {holder.get('expires')}). Expected one writer at a time; "
                    "wait for it to finish (or for its lease to expire if it crashed) and clear this task"
                )
            stopped = [*(state.get("stopped_runs") or []), holder.get("run_id")][-20:]
            state["stopped_runs"] = stopped
        now = _now()
        mine = {
            "kind": kind,
            "dag_id": dag_id,
            "run_id": run_id,
            "since": (holder or {}).get("since")
            if holder and holder.get("run_id") == run_id
            else now.isoformat(),
            "expires": (now + timedelta(seconds=self.lease_seconds)).isoformat(),
        }
        state["holder"] = mine
        self._save(state)
        back = self.state().get("holder") or {}
        if back.get("run_id") != run_id:
            raise AirflowFailException(
                f"lost the race for this plan's writer lease to run {back.get('run_id')}; clear this task to retry"
            )
        return mine

    def start_rollback(self, context: Any, *, migration_dag_id: str | None, force: bool) -> None:
        """Called by the rollback before its first change: refuse while a migration run is active (unless
        forced), then fence every migration run that started before now."""
        if migration_dag_id:
            active = running_runs(context, migration_dag_id)
            if active and not force:
                raise AirflowFailException(
                    f"{active} run(s) of the migration DAG {migration_dag_id} are running; a rollback now would race "
                    "them (the migration could switch Segment off after the rollback re-enabled it). Nothing was "
                    "changed. Wait for the migration run to finish (or mark it failed), or trigger the rollback "
                    "with force=true: the migration then stops before its next change"
                )
        _, run_id, _ = run_identity(context)
        self.acquire(context, ROLLBACK, force=force)
        state = self.state()
        state["rollback_at"] = _now().isoformat()
        state["rollback_run_id"] = run_id
        self._save(state)

    def release(self, context: Any) -> None:
        _, run_id, _ = run_identity(context)
        state = self.state()
        if (state.get("holder") or {}).get("run_id") == run_id:
            state["holder"] = None
            self._save(state)


def resource_key(resource: str) -> str:
    return "segment_to_rudderstack__resource__" + re.sub(r"[^A-Za-z0-9_.-]+", "_", resource)


class SharedResources:
    """Leases on outside resources several plans may share (a Segment warehouse, a warehouse schema)."""

    def __init__(
        self, plan_key: str, store: Any = None, lease_seconds: float = DEFAULT_RESOURCE_LEASE_SECONDS
    ):
        self.plan_key = plan_key
        self._store = store
        self.lease_seconds = float(lease_seconds)

    @property
    def store(self) -> Any:
        self._store = _store(self._store)
        return self._store

    def holder(self, resource: str) -> dict[str, Any] | None:
        return self.store.get(resource_key(resource), default=None, deserialize_json=True)

    def acquire(self, context: Any, resources: list[str]) -> None:
        dag_id, run_id, _ = run_identity(context)
        now = _now()
        for resource in resources:
            held = self.holder(resource)
            if held and held.get("plan") != self.plan_key:
                expires = _parse(held.get("expires"))
                live = (expires is None or expires > now) and run_is_running(
                    context, held.get("dag_id"), held.get("run_id")
                ) is not False
                if live:
                    raise AirflowFailException(
                        f"{resource} is in the middle of another plan's irreversible steps (run {held.get('run_id')} "
                        f"of {held.get('dag_id')}, until {held.get('expires')}). Expected plans sharing it to switch "
                        "one at a time; this task waits for a retry, or clear it once the other plan's release is done"
                    )
        for resource in resources:
            self.store.set(
                resource_key(resource),
                {
                    "plan": self.plan_key,
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "expires": (now + timedelta(seconds=self.lease_seconds)).isoformat(),
                },
                serialize_json=True,
            )

    def release(self, resources: list[str]) -> None:
        for resource in resources:
            held = self.holder(resource)
            if held and held.get("plan") == self.plan_key:
                self.store.set(resource_key(resource), {}, serialize_json=True)
