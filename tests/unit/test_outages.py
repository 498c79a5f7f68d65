"""Issue 24's policy in small: what counts as an outage (also for a call the hook does not repeat), which
service it names, how one outage is told from the next, how a step defers and resumes, and the lines the
report and the view show. The same policy against real services: tests/faults/test_step_outages.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from segment_rudderstack.evidence.report import verdict
from segment_rudderstack.evidence.report_facts import ReportFacts, TaskFact
from segment_rudderstack.evidence.report_outages import OUTAGES_KEY
from segment_rudderstack.evidence.report_render import to_markdown
from segment_rudderstack.hooks.errors import ApiError, ResponseFormatError
from segment_rudderstack.operators.outages import RESUME_METHOD, OutageRidingOperator
from segment_rudderstack.safety.failfast import is_permanent
from segment_rudderstack.waits.outage import Outage, ServiceAnswersWatch, probe_for
from segment_rudderstack.waits.transient import is_transient, service_of


def api_error(
    status: int | None, *, retryable: bool, service: str = "RudderStack API", **kw: Any
) -> ApiError:
    return ApiError(
        status=status,
        endpoint="POST /v2/destinations",
        message="x",
        retryable=retryable,
        service=service,
        **kw,
    )


def test_an_outage_is_transient_even_on_a_call_the_hook_does_not_repeat():
    lost = api_error(502, retryable=False)  # a POST answered 502: it may have taken effect, the hook stops
    assert is_transient(lost) and not is_permanent(lost)
    assert is_transient(api_error(None, retryable=False))  # a POST that timed out
    assert is_transient(ResponseFormatError(endpoint="GET /", message="truncated"))
    for status in (401, 403, 404, 422):
        assert is_permanent(api_error(status, retryable=False)) and not is_transient(
            api_error(status, retryable=False)
        )
    assert is_permanent(api_error(None, retryable=False, outage=False))  # a redirect loop: the host is wrong


def test_the_service_is_named_as_a_person_reads_it():
    assert service_of(api_error(503, retryable=True)) == "RudderStack's control plane"
    assert service_of(api_error(503, retryable=True, service="Segment API")) == "Segment's Public API"
    assert (
        service_of(api_error(503, retryable=True, service="RudderStack data plane"))
        == "RudderStack's data plane"
    )
    assert service_of(ConnectionRefusedError()) == "an outside service"


def test_one_outage_goes_on_until_the_service_answered_and_held():
    down = api_error(None, retryable=True)
    outage = Outage.begin(down, budget_seconds=900, task_id="release", now=1000.0)
    assert outage.continues_with(down, now=1300.0)  # not answered yet: the same outage
    outage.answered_at = 1400.0
    assert outage.continues_with(down, now=1450.0)  # failed again right after answering: still the same
    assert not outage.continues_with(down, now=1400.0 + 600)  # much later: a new outage
    assert not outage.continues_with(api_error(503, retryable=True, service="Segment API"), now=1450.0)
    assert not outage.spent(now=1000.0 + 899) and outage.spent(now=1000.0 + 900)


def test_the_lines_say_what_is_down_since_when_and_the_budget():
    since = datetime(2026, 12, 2, 12, 4, tzinfo=UTC).timestamp()
    outage = Outage.begin(api_error(None, retryable=True), budget_seconds=900, task_id="release", now=since)
    assert outage.waiting_line(now=since + 180) == (
        "waiting for RudderStack's control plane since 12:04 UTC, 3 min; budget 15 min"
    )
    assert "did not answer for 15 min (since 12:04 UTC; budget 15 min" in outage.failure_message(
        now=since + 900
    )
    outage.ended = since + 200
    assert outage.ridden_line().startswith(
        "RudderStack's control plane did not answer from 12:04 UTC to 12:07 UTC"
    )


def test_the_answers_again_read_is_the_failed_services_own():
    error = api_error(None, retryable=True)
    error.hook, error.conn_id = "segment_rudderstack.hooks.rudderstack.RudderStackHook", "rs_prod"
    assert probe_for(error, {}) == {
        "service": "RudderStack's control plane",
        "hook": error.hook,
        "conn_id": "rs_prod",
    }
    unnamed = api_error(None, retryable=True, service="Segment API")  # raised outside the hook's call
    assert probe_for(unnamed, {"segment": "seg"})["conn_id"] == "seg"
    with pytest.raises(ValueError, match="outside segment_rudderstack"):
        ServiceAnswersWatch(service="x", hook="os.system", conn_id="c").observe()
    assert ServiceAnswersWatch(service="x").check().decision.done  # nothing to read: one interval only


class Step(OutageRidingOperator):
    """A step whose service is down for its first ``down`` calls."""

    def __init__(self, *, down: int, error: ApiError, **kwargs: Any):
        super().__init__(task_id="step", **kwargs)
        self.down, self.error, self.calls = down, error, 0

    def execute(self, context: Any) -> str:
        self.calls += 1
        if self.calls <= self.down:
            raise self.error
        return "done"


class Ti:
    def __init__(self) -> None:
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


def test_a_step_defers_on_an_outage_and_runs_again_once_the_service_answers():
    ti, step = Ti(), Step(down=1, error=api_error(502, retryable=False), transient_budget_seconds=60)
    with pytest.raises(TaskDeferred) as deferred:
        step.execute({"ti": ti})
    assert deferred.value.method_name == RESUME_METHOD
    assert deferred.value.trigger.watch_spec["class"].endswith("ServiceAnswersWatch")
    assert deferred.value.trigger.first_check_at > time.time()  # the first read waits one interval
    resumed = getattr(step, RESUME_METHOD)({"ti": ti}, event={"status": "decided"}, **deferred.value.kwargs)
    assert resumed == "done" and step.calls == 2
    first, last = ti.pushed[0][1], ti.pushed[-1][1]
    assert (
        first["ended"] is None
        and last["ended"] is not None
        and last["service"] == "RudderStack's control plane"
    )


def test_a_spent_budget_and_a_configuration_error_fail_once():
    step = Step(down=1, error=api_error(502, retryable=False), transient_budget_seconds=60)
    with pytest.raises(TaskDeferred) as deferred:
        step.execute({})
    with pytest.raises(AirflowFailException, match="RudderStack's control plane did not answer for"):
        getattr(step, RESUME_METHOD)(
            {}, event={"status": "error", "permanent": False, "error": "refused"}, **deferred.value.kwargs
        )
    denied = Step(down=1, error=api_error(401, retryable=False))
    with pytest.raises(AirflowFailException, match="configuration error"):
        denied.execute({})  # at once: no deferral
    assert denied.calls == 1


def test_a_step_that_may_not_defer_waits_in_the_worker():
    step = Step(down=2, error=api_error(503, retryable=True), transient_budget_seconds=2, deferrable=False)
    assert step.execute({}) == "done" and step.calls == 3


def facts_with(state: str, record: dict[str, Any]) -> ReportFacts:
    task = "release_rudderstack.release_sync"
    return ReportFacts(
        plan_name="p", run_id="r", tasks={task: TaskFact(state=state)}, extra={OUTAGES_KEY: {task: record}}
    )


def test_the_report_and_the_view_say_a_step_is_waiting_out_an_outage_and_later_that_it_did():
    outage = Outage.begin(
        api_error(None, retryable=True), budget_seconds=900, task_id="release_sync", now=time.time() - 180
    )
    waiting = verdict(facts_with("deferred", outage.to_dict()))
    assert waiting.kind == "waiting" and "WAITING for RudderStack's control plane since" in waiting.text
    assert "3 min; budget 15 min" in waiting.text
    outage.ended = time.time()
    markdown = to_markdown(facts_with("success", outage.to_dict()))
    assert (
        "RudderStack's control plane did not answer from" in markdown
        and "waited and went through" in markdown
    )


def test_a_step_resumed_with_the_event_alone_keeps_its_outage():
    """`airflow dags test` resumes with ``{"event": ...}`` only: the record comes back in the event's memory."""
    ti, step = Ti(), Step(down=1, error=api_error(None, retryable=True), transient_budget_seconds=60)
    with pytest.raises(TaskDeferred) as deferred:
        step.execute({"ti": ti})
    memory = deferred.value.trigger.memory
    assert getattr(step, RESUME_METHOD)({"ti": ti}, event={"status": "decided", "memory": memory}) == "done"
    assert ti.pushed[-1][1]["since"] == ti.pushed[0][1]["since"] and ti.pushed[-1][1]["ended"] is not None
    with pytest.raises(AirflowFailException, match="configuration error"):  # a 401 while waiting: no re-run
        getattr(Step(down=0, error=api_error(401, retryable=False)), RESUME_METHOD)(
            {}, event={"status": "error", "permanent": True, "message": "configuration error"}
        )
