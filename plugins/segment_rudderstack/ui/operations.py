"""What the migration view shows and offers for a cutover that lasts weeks: the plan's hold (shown, set and
released from the page), the ETA of each waiting phase (:mod:`segment_rudderstack.evidence.eta`), and a dry
run's consolidated plan (:mod:`segment_rudderstack.evidence.dry_run_plan`), and the shape checks' findings
(:mod:`segment_rudderstack.evidence.shape_report`).

Holding or releasing from the page needs the viewer's Airflow permission to edit Variables (the hold is the
Variable ``segment_to_rudderstack__<plan>__hold``); the command line does the same with ``airflow variables``.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from segment_rudderstack.evidence import eta as estimates
from segment_rudderstack.evidence import report
from segment_rudderstack.evidence.dry_run_plan import PLAN_KEY, WOULD_CHANGE_KEY, consolidate, describe
from segment_rudderstack.evidence.report_render import section_html
from segment_rudderstack.evidence.shape_report import section_shape
from segment_rudderstack.safety.hold import hold_key_for_plan, hold_value, parse_hold
from segment_rudderstack.shape.findings import SHAPE_KEY

ETA_KEY = "eta"
DAG_PREFIX = "segment_to_rudderstack__"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _task_order(dag_id: str, session: Any) -> list[str]:
    try:
        from airflow.models.serialized_dag import SerializedDagModel

        dag = SerializedDagModel.get_dag(dag_id, session=session)
        order = getattr(dag.task_dict.get("report"), "task_order", None) if dag else None
    except Exception:
        return []
    return list(order) if isinstance(order, list) else []


def read_operations(session: Any, dag_id: str, facts: Any, extra: dict[str, Any]) -> None:
    """The run's ETAs (XCom ``eta``) and dry-run entries (XCom ``would_change``), and the plan's hold."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    extra["etas"], extra["hold"] = {}, None
    if facts.run_id not in (None, "—"):
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == facts.run_id,
                XComModel.key.in_([ETA_KEY, WOULD_CHANGE_KEY, SHAPE_KEY]),
            )
        ).all()
        values = [(x.task_id, x.key, XComModel.deserialize_value(x)) for x in rows]
        extra["etas"] = {t: v for t, k, v in values if k == ETA_KEY and isinstance(v, dict)}
        facts.extra[SHAPE_KEY] = {t: v for t, k, v in values if k == SHAPE_KEY and isinstance(v, dict)}
        if facts.dry_run:
            entries = {t: v for t, k, v in values if k == WOULD_CHANGE_KEY and isinstance(v, list)}
            facts.extra[PLAN_KEY] = consolidate(entries, _task_order(dag_id, session))
    extra["hold"] = read_plan_hold(facts.plan_name)


def read_plan_hold(plan_name: str) -> Any:
    """The plan's hold, read in the metadata database (the API server's side)."""
    try:
        return parse_hold(_variable_row(hold_key_for_plan(plan_name), lambda row: row.val if row else None))
    except Exception:
        return None


def _variable_row(key: str, use: Any) -> Any:
    """``use(the Variable's ORM row or None)`` in one session. Straight through the ORM: in the API server a
    library module may have imported the Task SDK's task runner, and then ``airflow.models.Variable`` hands
    reads and writes to the Task SDK, which has no supervisor there."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return use(session.scalar(select(Variable).where(Variable.key == key)))


def phase_etas(facts: Any, extra: dict[str, Any], now: datetime | None = None) -> dict[str, str]:
    """{phase key: ETA text} for the phases still running; the adoption trend is recomputed from the live checks."""
    now = now or datetime.now(UTC)
    out: dict[str, str] = {}
    for row in report.phase_rows(facts):
        if row.state != "running":
            continue
        recorded = [extra.get("etas", {}).get(t) for t in row.task_ids if t in extra.get("etas", {})]
        text = recorded[-1].get("text") if recorded else None
        if row.phase.key == "adoption":
            history = facts.result("adoption").get("history") or []
            times = sorted(t for t in (estimates.parse_time(h.get("at")) for h in history) if t)
            gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
            live = estimates.adoption_eta(
                history,
                facts.threshold,
                consecutive_checks=facts.consecutive_checks or 1,
                check_interval_seconds=sorted(gaps)[len(gaps) // 2] if gaps else 0.0,
                now=now,
            )
            text = live.text() if (live.known or not text) else text
        if row.state == "running" and (extra.get("hold") is not None):
            text = (
                text + "; " if text else ""
            ) + "the plan is held: its next irreversible step waits for the release"
        out[row.phase.key] = text or f"{row.phase.label}: unknown (no estimate recorded for this phase)"
    return out


def operations_html(dag_id: str, facts: Any, extra: dict[str, Any]) -> list[str]:
    """The hold box with its buttons, the ETAs of the running phases, and a dry run's plan."""
    hold = extra.get("hold")
    key = hold_key_for_plan(facts.plan_name)
    action = f"/segment-rudderstack/dags/{_e(dag_id)}/hold"
    if hold is not None:
        out = [
            f"<h3>Hold</h3><p id='hold' class='verdict v-waiting'><strong>HELD</strong>: {_e(hold.describe())}. "
            "Segment's warehouse switch-off, the release and the webhook switch-off wait while it is set.</p>",
            f"<form method='post' action='{action}'><input type='hidden' name='action' value='release'>"
            f"<button type='submit'>Release the hold</button> <span class='muted'>or: airflow variables delete "
            f"{_e(key)}</span></form>",
        ]
    else:
        out = [
            "<h3>Hold</h3><p id='hold' class='muted'>not held: the irreversible steps run when their gates hold.</p>",
            f"<form method='post' action='{action}'><input type='hidden' name='action' value='hold'>"
            "<input name='reason' placeholder='why (shown to everyone)' size='40'> "
            f"<button type='submit'>Hold the plan</button> <span class='muted'>or: airflow variables set {_e(key)} "
            '"&lt;reason&gt;"</span></form>',
        ]
    etas = phase_etas(facts, extra)
    out.append("<h3>ETA</h3>")
    if etas:
        out.append("<ul id='etas'>" + "".join(f"<li>{_e(t)}</li>" for t in etas.values()) + "</ul>")
    else:
        out.append("<p id='etas' class='muted'>no phase is waiting now.</p>")
    shape = section_shape(facts)
    if shape is not None:  # the report's section "Shape continuity", as the checks left it so far
        out.append(section_html(shape).replace("<h2>", "<h3 id='shape'>").replace("</h2>", "</h3>"))
    plan = facts.extra.get(PLAN_KEY)
    if facts.dry_run and plan is not None:
        rows = "".join(
            f"<tr><td>{_e(e.get('step'))}</td><td>{_e(e.get('task_id'))}</td><td>{_e(describe(e))}</td></tr>"
            for e in plan
        )
        out.append(
            f"<h3>Dry-run plan ({len(plan)} step(s), in the order a real run takes them)</h3>"
            "<table id='dry-run-plan'><thead><tr><th>step</th><th>task</th><th>what a real run would do</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
        )
    return out


def operations_payload(facts: Any, extra: dict[str, Any]) -> dict[str, Any]:
    hold = extra.get("hold")
    return {
        "hold": hold.__dict__ if hold is not None else None,
        "etas": phase_etas(facts, extra),
        **({"dry_run_plan": facts.extra.get(PLAN_KEY)} if facts.dry_run else {}),
    }


def _can_edit_hold(user: Any, plan_name: str) -> bool:
    try:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import VariableDetails

        return bool(
            get_auth_manager().is_authorized_variable(
                method="PUT", details=VariableDetails(key=hold_key_for_plan(plan_name)), user=user
            )
        )
    except Exception:
        return False


def set_hold(plan_name: str, hold: bool, reason: str, by: str | None) -> None:
    """Hold (or release) the plan in the metadata database (the API server's side of the view's buttons)."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    key = hold_key_for_plan(plan_name)
    with create_session() as session:
        if not hold:
            session.execute(delete(Variable).where(Variable.key == key))
            return
        value = hold_value(reason or "held from the migration view", by=by)
        row = session.scalar(select(Variable).where(Variable.key == key))
        if row is None:
            session.add(Variable(key=key, val=value, description=HOLD_DESCRIPTION))
        else:
            row.set_val(value)


HOLD_DESCRIPTION = "Migration hold: the irreversible steps wait while this is set; delete it to release"


def register_hold_routes(app: Any, current_user: Any) -> None:
    """``POST /dags/{dag_id}/hold`` (the page's form: ``action`` hold|release, ``reason``) and
    ``PUT``/``DELETE /api/dags/{dag_id}/hold`` (JSON ``{"reason": ...}``)."""
    from fastapi import Depends, Form, HTTPException
    from fastapi.responses import JSONResponse, RedirectResponse

    signed_in = Depends(current_user)  # a default, not an annotation: this module's annotations are strings

    def plan_of(dag_id: str, user: Any) -> str:
        plan_name = dag_id.removeprefix(DAG_PREFIX)
        if not dag_id.startswith(DAG_PREFIX) or not _can_edit_hold(user, plan_name):
            raise HTTPException(
                status_code=403, detail=f"no permission to edit the hold Variable of {dag_id}"
            )
        return plan_name

    def who(user: Any) -> str | None:
        getter = getattr(user, "get_name", None)
        return str(getter()) if callable(getter) else None

    @app.post("/dags/{dag_id}/hold")
    def hold_form(
        dag_id: str, user: Any = signed_in, action: str = Form("hold"), reason: str = Form("")
    ) -> Any:
        set_hold(plan_of(dag_id, user), action != "release", reason, who(user))
        return RedirectResponse(f"/segment-rudderstack/dags/{dag_id}", status_code=303)

    @app.put("/api/dags/{dag_id}/hold")
    def hold_api(dag_id: str, user: Any = signed_in, body: dict[str, Any] | None = None) -> Any:
        plan_name = plan_of(dag_id, user)
        set_hold(plan_name, True, str((body or {}).get("reason") or ""), who(user))
        hold = read_plan_hold(plan_name)
        return JSONResponse({"hold": hold.__dict__ if hold is not None else None})

    @app.delete("/api/dags/{dag_id}/hold")
    def release_api(dag_id: str, user: Any = signed_in) -> Any:
        set_hold(plan_of(dag_id, user), False, "", None)
        return JSONResponse({"hold": None})
