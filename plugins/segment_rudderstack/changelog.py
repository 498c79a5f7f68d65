"""The log of outside changes a migration made (what, before, after), so a rollback can undo them.

Entries are kept in an Airflow Variable per plan (``Plan.change_log_key``), as a JSON list. Airflow's
Variable store is already backed up with the metadata database and readable in the UI, and it needs
no extra infrastructure. Tests and tools may pass any object with the same ``get``/``set`` class methods.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    target: str  # a ChangeTarget value (segment_rudderstack.vocabulary), e.g. "segment.warehouse"
    target_id: str
    field: str
    before: Any
    after: Any
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    task_id: str | None = None
    run_id: str | None = None

    def describe(self) -> str:
        return f"{self.target} {self.target_id}: {self.field} {self.before!r} -> {self.after!r}"


class _MetadataDbVariables:
    """Airflow Variables read and written straight in the metadata database (outside a running task:
    tests, the command line, the demo). Inside a task the Task SDK's ``Variable`` is used instead."""

    @staticmethod
    def get(key: str, default: Any = None, deserialize_json: bool = False) -> Any:
        from airflow.models.variable import Variable

        return Variable.get(key, default_var=default, deserialize_json=deserialize_json)

    @staticmethod
    def set(key: str, value: Any, serialize_json: bool = False) -> None:
        from airflow.models.variable import Variable

        Variable.set(key, value, serialize_json=serialize_json)


def default_store() -> Any:
    from airflow.sdk.execution_time import task_runner

    if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        from airflow.sdk import Variable

        return Variable
    return _MetadataDbVariables


class ChangeLog:
    def __init__(self, key: str | None, store: Any = None):
        self.key = key
        self._store = store

    @property
    def store(self):
        if self._store is None:
            self._store = default_store()
        return self._store

    def entries(self) -> list[Change]:
        if not self.key:
            return []
        raw = self.store.get(self.key, default=None, deserialize_json=True)
        return [Change(**item) for item in (raw or [])]

    def record(self, change: Change) -> None:
        log.info("changed %s", change.describe())
        if not self.key:
            return
        entries = [asdict(c) for c in self.entries()]
        entries.append(asdict(change))
        self.store.set(self.key, entries, serialize_json=True)

    def last(self, target: str, target_id: str | None = None, field: str | None = None) -> Change | None:
        for change in reversed(self.entries()):
            if change.target == target and target_id in (None, change.target_id) and field in (None, change.field):
                return change
        return None
