"""A sensor's poke treats errors like its trigger does: a transient one waits for the next check."""

import pytest
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.sensors.base import ConditionSensor
from segment_rudderstack.waits.conditions import done
from segment_rudderstack.waits.watches import Watch


class FlakyWatch(Watch):
    """Fails its first observation with the given error, then sees a state that is done."""

    def __init__(self, error):
        self.error = error

    def observe(self):
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return "state"

    def decide(self, observation, memory):
        return done(f"observed {observation}"), memory


class FlakySensor(ConditionSensor):
    def __init__(self, *, error, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def build_watch(self, context):
        return FlakyWatch(error=self.error)


def test_a_transient_error_waits_for_the_next_poke():
    sensor = FlakySensor(error=ConnectionError("refused"), task_id="s", deferrable=False)
    sensor._watch = sensor.build_watch({})  # what execute() does before the poke loop
    assert sensor.poke({}).is_done is False  # the refused connection: not done, not failed
    second = sensor.poke({})
    assert second.is_done is True and second.xcom_value["reason"] == "observed state"


def test_a_permanent_error_fails_the_poke_at_once_without_retry():
    sensor = FlakySensor(error=ValueError("bad id"), task_id="s", deferrable=False)
    with pytest.raises(AirflowFailException, match="bad id.*configuration error"):
        sensor.poke({})


def test_the_first_check_is_a_poke_so_a_transient_error_defers_instead_of_failing():
    from airflow.sdk.exceptions import TaskDeferred

    sensor = FlakySensor(error=ConnectionError("refused"), task_id="s", deferrable=True, timeout=60)
    with pytest.raises(TaskDeferred):  # the refused first check waits like any poke, then defers
        sensor.execute({})


def test_a_first_check_that_holds_returns_without_waiting():
    sensor = FlakySensor(error=None, task_id="s", deferrable=True)
    assert sensor.execute({})["reason"] == "observed state"


@pytest.mark.parametrize(
    "event",
    [
        {"status": "cancelled"},
        {"status": None},
        {"status": "decided"},  # no decision in it
        {"status": "decided", "decision": {"outcome": "wait", "reason": "still loading", "details": {}}},
    ],
)
def test_execute_complete_fails_closed_on_an_event_it_does_not_know(event):
    from airflow.sdk.exceptions import AirflowFailException

    sensor = FlakySensor(error=None, task_id="gate", deferrable=True)
    with pytest.raises(AirflowFailException, match="gate: "):
        sensor.execute_complete({}, event)
