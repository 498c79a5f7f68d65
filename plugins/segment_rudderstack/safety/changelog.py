"""The write-ahead log of outside changes a migration made (what, before, after), so a rollback can undo them.

Every outside change is written twice: an **intent** before the call (what is about to change, from what, to
what) and its **outcome** after it. A task that dies between the call and the outcome leaves an open intent;
the retry (which reads the real state first) or the rollback resolves it by reading the real state: objects
carry a deterministic name (e.g. ``<source id>:<destination name>``), so what a dead attempt created is found.

Storage: Airflow Variables, readable from Task SDK tasks (through the API server) and from the metadata
database (tests, the command line), with no extra infrastructure. The cost of one record does not grow
with the log: each entry is one Variable ``<key>__<seq>``, and a small head Variable ``<key>`` holds the
next sequence number, the latest entry of each (target, id, field) and the open intents, so its size is
bounded by the number of objects a plan touches, not by the number of changes. (A log written by an earlier
version, a JSON list in ``<key>``, is still read.)

Tests and tools may pass any object with the same ``get``/``set`` (and optional ``delete``) class methods.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

INTENT = "intent"  # recorded before the outside call, not resolved yet
DONE = "done"  # the change is in place
NOT_APPLIED = (
    "not_applied"  # an intent whose change did not happen (the call failed or never reached the service)
)


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
    status: str = DONE
    seq: int | None = None
    #: the id of the object a creation made, once known (the intent only knows its deterministic name)
    object_id: str | None = None
    resolved_by: str | None = None  # "call", "retry" or "rollback": who settled the intent

    def describe(self) -> str:
        return f"{self.target} {self.target_id}: {self.field} {self.before!r} -> {self.after!r}"

    @property
    def key(self) -> str:
        return _key(self.target, self.target_id, self.field)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _key(target: str, target_id: str, field_name: str) -> str:
    return json.dumps([target, target_id, field_name])


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

    @staticmethod
    def delete(key: str) -> None:
        from airflow.models.variable import Variable

        Variable.delete(key)


def default_store() -> Any:
    from airflow.sdk.execution_time import task_runner

    if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        from airflow.sdk import Variable

        return Variable
    return _MetadataDbVariables


def _empty_head() -> dict[str, Any]:
    return {"format": 2, "next": 1, "latest": {}, "open": {}}


class ChangeLog:
    def __init__(self, key: str | None, store: Any = None):
        self.key = key
        self._store = store

    @property
    def store(self):
        if self._store is None:
            self._store = default_store()
        return self._store

    # ------------------------------------------------------------------ storage
    def _entry_key(self, seq: int) -> str:
        return f"{self.key}__{seq:06d}"

    def _raw_head(self) -> Any:
        return self.store.get(self.key, default=None, deserialize_json=True)

    def _head(self) -> dict[str, Any]:
        raw = self._raw_head()
        if isinstance(raw, dict) and raw.get("format") == 2:
            return raw
        head = _empty_head()
        if isinstance(raw, list):  # an earlier version's log: one JSON list; keep it as entries 1..n
            for item in raw:
                change = replace(Change.from_dict(item), seq=head["next"], status=DONE)
                self.store.set(self._entry_key(change.seq), asdict(change), serialize_json=True)
                head["latest"][change.key] = change.seq
                head["next"] += 1
        return head

    def _save_head(self, head: dict[str, Any]) -> None:
        self.store.set(self.key, head, serialize_json=True)

    def _get(self, seq: int) -> Change | None:
        raw = self.store.get(self._entry_key(seq), default=None, deserialize_json=True)
        return Change.from_dict(raw) if raw else None

    # ------------------------------------------------------------------ writing
    def begin(self, change: Change) -> int:
        """Record the intent of ``change`` before making it; returns its sequence number."""
        if not self.key:
            return 0
        head = self._head()
        seq = head["next"]
        intent = replace(change, status=INTENT, seq=seq)
        head["next"] = seq + 1
        head["open"][str(seq)] = asdict(intent)
        self._save_head(head)  # one write: the intent survives even if the entry is never written
        log.info("intent #%d: %s", seq, intent.describe())
        return seq

    def resolve(
        self, seq: int, status: str = DONE, *, resolved_by: str = "call", **updates: Any
    ) -> Change | None:
        """Settle the intent ``seq``: ``done`` (the change is in place) or ``not_applied``."""
        if not self.key or not seq:
            return None
        head = self._head()
        raw = head["open"].get(str(seq))
        if raw is None:
            return self._get(seq)  # already settled (by another attempt)
        change = replace(Change.from_dict(raw), status=status, resolved_by=resolved_by, **updates)
        if status == DONE:
            change = replace(change, at=datetime.now(UTC).isoformat())
        self.store.set(self._entry_key(seq), asdict(change), serialize_json=True)
        del head["open"][str(seq)]
        if status == DONE:
            head["latest"][change.key] = seq
        self._save_head(head)
        if status == DONE:
            log.info("changed %s", change.describe())
        else:
            log.info("intent #%d %s: %s", seq, status, change.describe())
        return change

    def record(self, change: Change) -> None:
        """Record a change already made (intent and outcome at once)."""
        log.info("changed %s", change.describe())
        if not self.key:
            return
        head = self._head()
        seq = head["next"]
        done = replace(change, status=DONE, seq=seq, resolved_by=change.resolved_by or "call")
        self.store.set(self._entry_key(seq), asdict(done), serialize_json=True)
        head["next"] = seq + 1
        head["latest"][done.key] = seq
        self._save_head(head)

    def clear(self) -> None:
        """Forget the log (a fresh sandbox). Entries stay as orphans and are overwritten by the next records."""
        if not self.key:
            return
        delete = getattr(self.store, "delete", None)
        if delete is not None:
            try:
                delete(self.key)
                return
            except Exception:  # noqa: BLE001 - a missing key is fine
                pass
        self._save_head(_empty_head())

    # ------------------------------------------------------------------ reading
    def open_intents(
        self, target: str | None = None, target_id: str | None = None, field: str | None = None
    ) -> list[Change]:
        """Intents recorded before an outside call whose outcome was never written (a task died mid-change)."""
        if not self.key:
            return []
        found = [Change.from_dict(raw) for raw in self._head()["open"].values()]
        return [
            c
            for c in found
            if target in (None, c.target) and target_id in (None, c.target_id) and field in (None, c.field)
        ]

    def entries(self) -> list[Change]:
        """Every change in place (``done``), oldest first. Reads one Variable per entry."""
        if not self.key:
            return []
        head = self._head()
        out: list[Change] = []
        for seq in range(1, int(head["next"])):
            change = self._get(seq)
            if change is not None and change.status == DONE and change.seq == seq:
                out.append(change)
        return out

    def latest(self) -> list[Change]:
        """The latest change of each (target, id, field) this plan touched: what a rollback needs. Its cost
        grows with the number of objects, not with the number of changes."""
        if not self.key:
            return []
        head = self._head()
        changes = [self._get(seq) for seq in sorted(head["latest"].values())]
        return [c for c in changes if c is not None]

    def last(self, target: str, target_id: str | None = None, field: str | None = None) -> Change | None:
        if not self.key:
            return None
        head = self._head()
        best: int | None = None
        for key, seq in head["latest"].items():
            t, i, f = json.loads(key)
            if t == target and target_id in (None, i) and field in (None, f):
                best = seq if best is None else max(best, seq)
        return self._get(best) if best is not None else None
