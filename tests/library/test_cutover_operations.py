"""A cutover that lasts weeks (issue 21), at library level against the emulators and real local receivers:

- a held plan: Segment's warehouse switch-off defers (nothing changes) on the library's one trigger watching the
  hold Variable, and switches off once the hold is released;
- a dry run's would-be changes are kept per task for the consolidated plan;
- notifications reach a stand-in for Slack's incoming webhook (HTTP) and an SMTP server (aiosmtpd) through
  Airflow's own Slack and SMTP notifiers, never carrying a secret; a missing provider skips its channel only;
  the trigger sends an overdue notice while it keeps waiting; the DAG-run deadline callback sends its message.
"""

from __future__ import annotations

import asyncio
import json
import sys
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import TaskDeferred

from sandbox.common import ServerThread
from sandbox.notify_receivers import SlackStandIn, SmtpReceiver
from segment_rudderstack.evidence.dry_run_plan import WOULD_CHANGE_KEY
from segment_rudderstack.notify import channels, messages
from segment_rudderstack.notify.notifier import MigrationNotifier, run_past_deadline
from segment_rudderstack.operators.segment import DisableSegmentWarehouseOperator
from segment_rudderstack.safety.changelog import default_store
from segment_rudderstack.safety.hold import HoldWatch, hold_key
from segment_rudderstack.triggers.condition import ConditionTrigger
from tests.library.test_library_segment_operators import WAREHOUSE_ID
from tests.library.world import BACKEND, SEGMENT_TOKEN, WEB, context


def _switch_off(world, cutover) -> DisableSegmentWarehouseOperator:
    operator = DisableSegmentWarehouseOperator(
        task_id="disable_warehouse",
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB, BACKEND],
        change_log_key=world.change_log_key,
    )
    operator.hold_check_seconds = 0.05
    return operator


async def _first_event(trigger: ConditionTrigger, timeout: float = 20.0):
    async def first():
        async for event in trigger.run():
            return event.payload

    return await asyncio.wait_for(first(), timeout)


def test_a_held_plan_waits_at_the_switch_off_and_continues_when_released(world):
    cutover = world.cutover()
    world.load()
    key = hold_key(world.change_log_key)
    store = default_store()
    store.set(key, "waiting for the data team's sign-off")
    operator = _switch_off(world, cutover)
    mark = world.mark()
    try:
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context())
        trigger = deferred.value.trigger
        assert isinstance(trigger, ConditionTrigger) and deferred.value.method_name == "execute_after_hold"
        assert trigger.watch_spec["class"].endswith("HoldWatch") and trigger.deadline is None
        assert world.segment_changes(mark) == [] and world.segment_warehouse()["enabled"] is True

        async def release_later():
            await asyncio.sleep(0.3)
            store.delete(key)

        async def both():
            return (await asyncio.gather(_first_event(trigger), release_later()))[0]

        event = asyncio.run(both())
    finally:
        if store.get(key, default=None) is not None:
            store.delete(key)
    assert event["status"] == "decided" and event["decision"]["outcome"] == "done"
    result = operator.execute_after_hold(context(), event=event)
    assert result["disabled"] is True and world.segment_warehouse()["enabled"] is False


def test_a_hold_set_again_before_the_step_runs_defers_it_again(world):
    key = hold_key(world.change_log_key)
    store = default_store()
    store.set(key, json.dumps({"reason": "second thoughts", "by": "admin"}))
    try:
        decision = HoldWatch(variable=key).check().decision
        assert decision.waiting and "held by admin: second thoughts" in decision.reason
        with pytest.raises(TaskDeferred):
            _switch_off(world, world.cutover()).execute_after_hold(context(), event={"status": "decided"})
    finally:
        store.delete(key)


def test_a_dry_run_keeps_every_would_be_change_for_the_plan(world):
    cutover = world.cutover()
    world.load()
    pushed: dict[str, list] = {}
    ti = SimpleNamespace(
        run_id="manual__dry",
        xcom_pull=lambda **_: None,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )
    operator = _switch_off(world, cutover)
    operator.dry_run = True
    mark = world.mark()
    operator.execute({"ti": ti})
    assert world.segment_changes(mark) == []
    assert pushed[WOULD_CHANGE_KEY] == [
        {
            "kind": "change",
            "target": "segment.warehouse",
            "target_id": WAREHOUSE_ID,
            "field": "enabled",
            "before": True,
            "after": False,
        }
    ]


@pytest.fixture
def receivers(monkeypatch):
    """The stand-in for Slack's incoming webhook and the SMTP server, as Airflow connections."""
    slack = SlackStandIn()
    server = ServerThread(slack.app).start()
    smtp = SmtpReceiver().start()
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_LIB", json.dumps(slack.connection(server.url)))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_LIB", json.dumps(smtp.connection()))
    settings = {
        "slack": {"conn_id": "slack_lib"},
        "email": {"conn_id": "smtp_lib", "to": ["team@example.com"], "from_email": None},
        "events": list(messages.EVENTS),
        "base_url": "http://airflow.example",
        "overdue_grace_minutes": 0,
    }
    try:
        yield SimpleNamespace(slack=slack, smtp=smtp, settings=settings)
    finally:
        server.stop()
        smtp.stop()


def _secrets(receivers) -> list[str]:
    return [receivers.slack.token, receivers.smtp.password, SEGMENT_TOKEN]


def test_a_failure_reaches_slack_and_email_with_reason_todo_and_link_but_no_secret(receivers):
    from airflow.sdk.log import mask_secret

    for secret in _secrets(receivers):
        mask_secret(secret)  # what the Task SDK does with a connection's password it hands to a task
    ti = SimpleNamespace(
        task_id="segment_final_load.disable_segment_warehouse",
        run_id="manual__1",
        dag_id="segment_to_rudderstack__prod",
        log_url="http://airflow.example/dags/x/runs/manual__1/tasks/t",
    )
    error = RuntimeError(
        f"401 from https://api.segmentapis.com/warehouses/wh?token={SEGMENT_TOKEN}; smtp {receivers.smtp.password}"
    )
    MigrationNotifier(event="failure", settings=receivers.settings, plan_name="prod")(
        {"ti": ti, "exception": error, "params": {"dry_run": False}}
    )

    [slack] = receivers.slack.texts()
    [(subject, mail)] = receivers.smtp.bodies()
    assert subject == "[prod] FAILED: segment_final_load.disable_segment_warehouse"
    for text in (slack, mail):
        assert "Segment&#x27;s final load" in text or "Segment's final load" in text
        assert "401 from https://api.segmentapis.com/warehouses/wh?token=***" in text
        assert "What to do:" in text and "rollback DAG" in text
        assert "http://airflow.example/dags/x/runs/manual__1/tasks/t" in text
        assert not [s for s in _secrets(receivers) if s in text]


def test_a_missing_provider_skips_its_channel_and_the_other_still_delivers(receivers, monkeypatch):
    monkeypatch.setitem(sys.modules, "airflow.providers.slack.notifications.slack_webhook", None)
    message = messages.run_started("prod", "manual__2", dry_run=True, link="http://airflow.example/v")
    outcome = channels.deliver(message, receivers.settings)
    assert outcome["slack"].startswith("skipped: apache-airflow-providers-slack is not installed")
    assert outcome["email"] == "sent" and receivers.slack.texts() == []
    assert receivers.smtp.bodies()[0][0] == "[prod] migration run started (dry run)"


def test_a_channel_that_fails_never_fails_the_task(receivers):
    settings = {**receivers.settings, "slack": {"conn_id": "slack_missing"}}
    outcome = channels.deliver(messages.run_started("prod", "r", dry_run=False, link=None), settings)
    assert outcome["slack"].startswith("failed: ") and outcome["email"] == "sent"


def test_the_trigger_sends_the_overdue_notice_once_and_keeps_waiting(receivers, world):
    key = hold_key(world.change_log_key)
    store = default_store()
    store.set(key, "held for the test")
    message = messages.overdue(
        "prod",
        "manual__3",
        "Segment's final load",
        expected="now",
        basis="observed cadence",
        waiting="x",
        link=None,
    )
    trigger = ConditionTrigger(
        watch=HoldWatch(variable=key).spec(),
        poke_interval=0.05,
        notice={"at": 0, "settings": receivers.settings, "message": message.__dict__},
    )

    async def until_release():
        for _ in range(200):
            if receivers.slack.texts():
                break
            await asyncio.sleep(0.05)
        store.delete(key)

    async def both():
        return (await asyncio.gather(_first_event(trigger), until_release()))[0]

    try:
        event = asyncio.run(both())
    finally:
        if store.get(key, default=None) is not None:
            store.delete(key)
    assert event["status"] == "decided"  # the notice did not end the wait; the release did
    assert [t.splitlines()[0] for t in receivers.slack.texts()] == ["*[prod] overdue: Segment's final load*"]
    assert len(receivers.smtp.bodies()) == 1


def test_the_run_deadline_callback_says_the_run_is_past_its_deadline(receivers):
    context = {"dag_run": {"run_id": "manual__4", "state": "running"}, "deadline": {"deadline_time": "12:00"}}
    asyncio.run(
        run_past_deadline("prod", "segment_to_rudderstack__prod", receivers.settings, context=context)
    )
    [text] = receivers.slack.texts()
    assert "[prod] run past its deadline" in text and "run `manual__4` is still running" in text
    assert "http://airflow.example/segment-rudderstack/dags/segment_to_rudderstack__prod" in text


def test_a_waiting_phase_announces_its_eta_once_when_it_begins(receivers, world):
    from datetime import UTC, datetime, timedelta

    from segment_rudderstack.sensors.estimates import ETA_KEY, record_estimate
    from segment_rudderstack.sensors.migration import ClientAdoptionSensor

    sensor = ClientAdoptionSensor(
        task_id="webhook_off.wait_client_adoption",
        warehouse_conn_id="unused",
        namespace=world.schema,
        webhook_source_id="rs_src_segment_webhook",
        threshold=0.05,
        window_seconds=3600,
        consecutive_checks=2,
        poke_interval=600,
    )
    sensor.notify_settings, sensor.plan_name = receivers.settings, "prod"
    now = datetime.now(UTC)
    # three checks, an hour apart, with the old clients' share falling by 0.1 an hour: 0.05 is some 2.5 h away
    sensor._memory = [
        {"at": (now - timedelta(hours=2 - i)).isoformat(), "via_segment": 500 - 100 * i, "total": 1000}
        for i in range(3)
    ]
    pushed: list[tuple[str, object]] = []
    ti = SimpleNamespace(
        run_id="manual__5",
        dag_id="segment_to_rudderstack__prod",
        xcom_push=lambda key, value: pushed.append((key, value)),
    )
    notice = record_estimate(sensor, {"ti": ti})

    [(key, eta)] = pushed
    assert key == ETA_KEY and eta["at"] is not None
    [slack] = receivers.slack.texts()
    [(subject, mail)] = receivers.smtp.bodies()
    assert subject.startswith("[prod] waiting: ") and "wait_client_adoption" in subject
    for text in (slack, mail):
        assert f"ETA: {eta['text']}" in text.replace("&#x27;", "'"), text
        assert "http://airflow.example/segment-rudderstack/dags/segment_to_rudderstack__prod" in text
    assert notice is not None and notice["message"]["event"] == "stalled"  # the overdue notice is still armed
