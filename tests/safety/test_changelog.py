"""The write-ahead change log on a plain in-memory store (the same get/set calls as Airflow's Variable)."""

from __future__ import annotations

import copy
import json

from segment_rudderstack.safety.changelog import DONE, NOT_APPLIED, Change, ChangeLog


class Store:
    """Variables in a dict, counting reads and writes."""

    def __init__(self):
        self.data: dict[str, str] = {}
        self.calls = 0

    def get(self, key, default=None, deserialize_json=False):
        self.calls += 1
        if key not in self.data:
            return default
        return json.loads(self.data[key]) if deserialize_json else self.data[key]

    def set(self, key, value, serialize_json=False):
        self.calls += 1
        self.data[key] = json.dumps(value) if serialize_json else value

    def delete(self, key):
        self.data.pop(key, None)


def change(n: int = 0, **kw) -> Change:
    return Change(
        **{
            "target": "segment.destination",
            "target_id": f"d{n % 3}",
            "field": "enabled",
            "before": False,
            "after": True,
            "task_id": "t",
            "run_id": "r",
            **kw,
        }
    )


def test_an_intent_is_kept_until_resolved_and_only_done_changes_are_entries():
    log = ChangeLog("plan", Store())
    seq = log.begin(change())
    assert [i.seq for i in log.open_intents()] == [seq] and log.entries() == []
    log.resolve(seq, DONE, object_id="d0")
    assert log.open_intents() == [] and [(c.status, c.object_id) for c in log.entries()] == [(DONE, "d0")]
    other = log.begin(change(1))
    log.resolve(other, NOT_APPLIED)
    assert len(log.entries()) == 1 and log.open_intents() == []


def test_recording_costs_the_same_number_of_variable_calls_at_any_length():
    store = Store()
    log = ChangeLog("plan", store)
    costs = []
    for n in range(600):
        before = store.calls
        log.record(change(n))
        costs.append(store.calls - before)
    assert set(costs) == {3}  # read the head, write the entry, write the head
    assert len(json.dumps(store.data["plan"])) < 1000  # the head stays small: one slot per object touched
    assert len(log.latest()) == 3 and len(log.entries()) == 600


def test_an_earlier_versions_list_is_still_read_and_extended():
    store = Store()
    store.set(
        "plan",
        [
            {
                "target": "segment.warehouse",
                "target_id": "w",
                "field": "enabled",
                "before": True,
                "after": False,
                "at": "2026-01-01T00:00:00+00:00",
            }
        ],
        serialize_json=True,
    )
    log = ChangeLog("plan", store)
    assert [(c.target, c.after) for c in log.entries()] == [("segment.warehouse", False)]
    log.record(change())
    assert [c.target for c in ChangeLog("plan", store).entries()] == [
        "segment.warehouse",
        "segment.destination",
    ]
    assert ChangeLog("plan", store).last("segment.warehouse", "w", "enabled").after is False


def test_clear_forgets_the_log():
    store = Store()
    log = ChangeLog("plan", store)
    log.record(change())
    snapshot = copy.deepcopy(store.data)
    log.clear()
    assert log.entries() == [] and "plan" not in store.data and len(snapshot) == 2
