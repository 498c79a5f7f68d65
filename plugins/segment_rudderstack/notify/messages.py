"""The messages of a migration, as pure functions of what happened: run started, runbook milestones, an approval
gate reached, a task failed, a phase overdue, a run past its deadline.

Every message says what happened, where (plan, run, task) and what to do, with a link. No message carries a
secret: every text goes through :func:`safe_text` (known secrets, URL query values, ``user:password@`` and
whatever Airflow's secrets masker knows in this process are replaced by ``***``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from segment_rudderstack.hooks.errors import scrub

#: the events a plan's ``notify.events`` can name
EVENTS = ("run_started", "milestone", "approval", "failure", "stalled")
#: the runbook milestones (``notify`` sends one message each, in a real run)
MILESTONES = {
    "cutover": "Cutover point: Segment's webhook to RudderStack is on",
    "server_side_drained": "Server side drained: Segment has nothing left from the server-side sources",
    "warehouse_off": "Segment's warehouse is off",
    "rudderstack_loading": "RudderStack is loading the warehouse",
    "duplicates": "Duplicate check done",
    "webhook_off": "Segment's webhook is off",
    "complete": "Migration complete",
}
MAX_REASON = 600


@dataclass(frozen=True)
class Message:
    """One notification: a subject line, a plain-text body and the link to act on."""

    event: str
    subject: str
    text: str
    link: str | None = None

    def as_text(self) -> str:
        """Subject, body and link in one block (Slack's ``text``)."""
        return "\n".join(p for p in (f"*{self.subject}*", self.text, self.link and f"Open: {self.link}") if p)

    def as_html(self) -> str:
        """The e-mail body: the text as paragraphs, the link as a link."""
        import html

        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in self.text.split("\n") if p.strip())
        link = f"<p><a href='{html.escape(self.link)}'>{html.escape(self.link)}</a></p>" if self.link else ""
        return f"<html><body>{paragraphs}{link}</body></html>"


def _masked(text: str) -> str:
    """What Airflow's secrets masker of this process hides (connection passwords it has handed out)."""
    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # outside a task process there may be no masker: scrub() below still runs
        return text
    try:
        value = redact(text)
    except Exception:
        return text
    return value if isinstance(value, str) else text


def safe_text(text: Any, secrets: Iterable[str] = (), limit: int | None = None) -> str:
    """``text`` fit for a message: no secret, one size."""
    value = scrub(_masked(str(text)), secrets)
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    return value


def _plan_line(plan_name: str, run_id: str | None) -> str:
    return f"Plan `{plan_name}`" + (f", run `{run_id}`" if run_id else "")


def run_started(plan_name: str, run_id: str, *, dry_run: bool, link: str | None) -> Message:
    mode = (
        "DRY RUN: every step reads and reports what it would change; nothing is changed"
        if dry_run
        else ("real run: the runbook's changes will be made, each recorded for the rollback")
    )
    return Message(
        "run_started",
        f"[{plan_name}] migration run started" + (" (dry run)" if dry_run else ""),
        f"{_plan_line(plan_name, run_id)}: started ({mode}). Follow it in the migration view.",
        link,
    )


def _milestone_detail(milestone: str, result: Mapping[str, Any]) -> str:
    """What the milestone's task returned, in a sentence (only ids, times and counts: never settings)."""
    if milestone == "cutover":
        return f"Segment's client sources forward to RudderStack since {result.get('cutover_at') or 'now'}."
    if milestone == "warehouse_off":
        if result.get("already"):
            return "Segment's warehouse was already off."
        return f"Segment's warehouse switched off at {result.get('at') or 'now'}; RudderStack's sync is next."
    if milestone == "rudderstack_loading":
        return "RudderStack's first upload after the release is in the warehouse."
    if milestone == "duplicates":
        return (
            f"{_count(result.get('duplicates'))} duplicate row(s) found in the overlap window, "
            f"{_count(result.get('removed'))} removed."
        )
    if milestone == "webhook_off":
        disabled = result.get("disabled") or []
        return (
            f"Segment's webhook destination(s) {', '.join(map(str, disabled)) or '(already off)'} off at "
            + (f"{result.get('at') or 'now'}; old clients' events are no longer forwarded.")
        )
    if milestone == "server_side_drained":
        return "Segment loaded the server-side sources' last events; nothing more arrives through Segment."
    return ""


def _count(value: Any) -> int:
    if isinstance(value, Mapping):
        return sum(int(v) for v in value.values() if isinstance(v, int | float))
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def milestone(
    plan_name: str, run_id: str, name: str, result: Any, *, eta: str | None = None, link: str | None
) -> Message:
    title = MILESTONES.get(name, name)
    if name == "cutover" and isinstance(result, str):  # several lanes: the cutover point is one instant
        result = {"cutover_at": result}
    detail = _milestone_detail(name, result if isinstance(result, Mapping) else {})
    if name == "complete":
        detail = f"Every runbook step is done. Report: {result}" if result else "Every runbook step is done."
    text = f"{_plan_line(plan_name, run_id)}: {detail}" + (f"\nNext: {eta}" if eta else "")
    return Message("milestone", f"[{plan_name}] {title}", safe_text(text), link)


def dry_run_finished(plan_name: str, run_id: str, changes: int, report: Any, link: str | None) -> Message:
    return Message(
        "milestone",
        f"[{plan_name}] dry run finished: {changes} change(s) a real run would make",
        safe_text(
            f"{_plan_line(plan_name, run_id)}: nothing was changed. The consolidated plan (every change, in the order "
            f"a real run makes them) is in the report: {report}"
        ),
        link,
    )


def approval(
    plan_name: str, run_id: str, subject: str, body: str, *, assigned: Iterable[str] = (), link: str | None
) -> Message:
    who = ", ".join(assigned)
    text = (
        f"{_plan_line(plan_name, run_id)} waits for a person: {subject}\n{body}\n"
        f"Respond in Airflow's Required Actions{' (assigned to ' + who + ')' if who else ''}."
    )
    return Message("approval", f"[{plan_name}] approval needed: {subject}", safe_text(text, limit=3000), link)


def failure(
    plan_name: str, run_id: str, task_id: str, *, phase: str, reason: Any, todo: str, link: str | None
) -> Message:
    text = (
        f"{_plan_line(plan_name, run_id)}: task `{task_id}` ({phase}) failed.\n"
        f"Reason: {safe_text(reason, limit=MAX_REASON)}\n"
        f"What to do: {todo}"
    )
    return Message("failure", f"[{plan_name}] FAILED: {task_id}", safe_text(text), link)


def phase_waiting(plan_name: str, run_id: str | None, phase: str, *, eta: str, link: str | None) -> Message:
    """A waiting phase begins: what it waits for and its ETA (sent once per phase, when it first defers)."""
    text = (
        f"{_plan_line(plan_name, run_id)}: now waiting for {phase}.\nETA: {eta}\n"
        "The migration view keeps the estimate current; an overdue notice follows if the wait outlasts it."
    )
    return Message("milestone", f"[{plan_name}] waiting: {phase}", safe_text(text), link)


def overdue(
    plan_name: str,
    run_id: str | None,
    phase: str,
    *,
    expected: str,
    basis: str,
    waiting: str,
    link: str | None,
) -> Message:
    text = (
        f"{_plan_line(plan_name, run_id)}: {phase} was expected to be over by {expected} ({basis}) and is still "
        f"waiting: {waiting}. Nothing is wrong by itself; look whether the outside world moves (Segment's loads, "
        "RudderStack's uploads, the clients' update), or hold the plan."
    )
    return Message("stalled", f"[{plan_name}] overdue: {phase}", safe_text(text), link)


def run_stalled(
    plan_name: str, run_id: str | None, *, deadline: str, state: str | None, link: str | None
) -> Message:
    text = (
        f"{_plan_line(plan_name, run_id)} is still {state or 'running'} past its deadline ({deadline}, the plan's "
        "notify.run_deadline_minutes after it was queued). Open the migration view: the verdict says what the run "
        "waits for; a held plan waits until its hold is released."
    )
    return Message("stalled", f"[{plan_name}] run past its deadline", safe_text(text), link)
