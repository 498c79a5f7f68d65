"""A person operating the session's migration run in the real deployment (issue 21), as a thread beside the test:
it answers the approval gates over Airflow's REST API (Required Actions), and, while the plan is held, watches
Segment's warehouse switch-off wait deferred with Segment's warehouse still on, then releases the hold through
the migration view's API. What it saw is kept for the test's assertions; the notifications are read from the
sandbox's Slack stand-in and SMTP server."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from scripts.airflow_local import ApiClient

SWITCH_OFF = "segment_final_load.disable_segment_warehouse"
ANSWER_AFTER_S = 5.0


def view_hold(dag_id: str) -> str:
    return f"/segment-rudderstack/api/dags/{dag_id}/hold"


@dataclass(eq=False)  # a thread: hashable, compared by identity
class PersonAtTheConsole(threading.Thread):
    """Answer every gate that waits for input ("Approve", or the option ``answers`` names for that task); release
    the hold once the step ``release_at`` waits on it."""

    base_url: str
    token: str
    dag_id: str
    run_id: str
    segment_log: object  # the Segment emulator's request log: no warehouse switch-off while held
    answers: dict[str, str] = field(default_factory=dict)  # task_id -> the option chosen there
    release_at: str = SWITCH_OFF
    approved: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # task_id#try_number
    asked: dict[str, float] = field(default_factory=dict)  # task_id#try_number -> when first seen waiting
    offered: dict[str, list[str]] = field(default_factory=dict)  # task_id -> the options the gate offered
    held_view: dict | None = None  # the view's JSON while the held step waited
    switch_offs_while_held: int | None = None  # Segment's warehouse switch-offs seen while held
    webhook_offs_while_held: int | None = None  # Segment's webhook switch-offs seen while held
    released: bool = False
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(name="person-at-the-console", daemon=True)
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def run(self) -> None:
        api = ApiClient(self.base_url, self.token)
        try:
            while not self._halt.is_set():
                try:
                    self._look(api)
                except Exception as exc:  # keep watching; the test reports what went wrong
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.5)
        finally:
            api.close()

    def _look(self, api: ApiClient) -> None:
        from sandbox.invariants import warehouse_disabled_at, webhook_disabled_at

        for ti in api.task_instances(self.dag_id, self.run_id):
            attempt = f"{ti['task_id']}#{ti.get('try_number')}"  # a retried gate asks again
            if ti["state"] == "awaiting_input":
                # like a person, answer a few seconds after the gate asked: an answer within the instant the task
                # process parks itself gets that process killed ("shouldn't be running anymore") and the gate retried
                self.asked.setdefault(attempt, time.monotonic())
            if (
                ti["state"] == "awaiting_input"
                and attempt not in self.answered
                and time.monotonic() - self.asked[attempt] >= ANSWER_AFTER_S
            ):
                self._answer(api, ti["task_id"], attempt)
            if ti["task_id"] == self.release_at and ti["state"] == "deferred" and not self.released:
                self.held_view = api.get_json(f"/segment-rudderstack/api/dags/{self.dag_id}")
                self.switch_offs_while_held = len(warehouse_disabled_at(self.segment_log.entries()))
                self.webhook_offs_while_held = len(webhook_disabled_at(self.segment_log.entries()))
                response = api.http.delete(view_hold(self.dag_id))
                self.released = response.status_code == 200
                if not self.released:
                    self.errors.append(f"releasing the hold: HTTP {response.status_code} {response.text}")

    def _answer(self, api: ApiClient, task_id: str, attempt: str) -> None:
        path = f"/api/v2/dags/{self.dag_id}/dagRuns/{self.run_id}/taskInstances/{task_id}/-1/hitlDetails"
        self.offered[task_id] = list(api.get_json(path).get("options") or [])
        choice = self.answers.get(task_id, "Approve")
        response = api.http.patch(path, json={"chosen_options": [choice], "params_input": {}})
        if response.status_code == 200:
            self.answered.append(attempt)
            self.approved.append(task_id)
        else:
            self.errors.append(
                f"answering {task_id} with {choice!r}: HTTP {response.status_code} {response.text}"
            )


def secrets_of(sandbox) -> list[str]:
    """Every secret the sandbox's connections hold (none may appear in a notification)."""
    from psycopg2.extensions import parse_dsn

    info = sandbox.info
    found = [info.segment_token, info.rudderstack_token, parse_dsn(info.warehouse_dsn).get("password")]
    found += list(info.segment_sources.values()) + list(info.rudderstack_sources.values())
    if sandbox.slack is not None:
        found.append(sandbox.slack.token.rsplit("/", 1)[-1])
    if sandbox.smtp is not None:
        found.append(sandbox.smtp.password)
    return [s for s in found if s and len(s) >= 6]
