"""The migration view in the Airflow UI (an Airflow 3 plugin page, see segment_rudderstack_plugin.py).

Served by Airflow's API server as a FastAPI sub-application under ``/segment-rudderstack`` and shown in the
UI as "Migrations" (Browse menu) and as a "Migration" tab on each migration DAG. For every plan: the verdict,
the runbook steps with state and times, the cutover point, the adoption share over time with the
threshold, the change log, the last duplicate check and links to the runs. It reads Airflow's metadata
database (DAG runs, task instances, XComs, the change-log Variable, a deferred adoption sensor's trigger)
and needs the viewer to be logged in to Airflow with read access to the DAG.

The page is built from the same facts and sections as the run report (:mod:`segment_rudderstack.evidence.report`).
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from segment_rudderstack.evidence import report, report_chart, report_render
from segment_rudderstack.evidence.report_facts import ReportFacts, TaskFact, phase_of
from segment_rudderstack.evidence.report_outages import OUTAGES_KEY
from segment_rudderstack.instants import as_utc, parse_instant
from segment_rudderstack.ui.operations import (
    operations_html,
    operations_payload,
    read_operations,
    register_hold_routes,
)
from segment_rudderstack.waits.outage import OUTAGE_XCOM_KEY

URL_PREFIX = "/segment-rudderstack"
DAG_PREFIX = "segment_to_rudderstack__"
INVALID_TAG = "invalid-plan"
RUNS_SHOWN = 10
# Which task's result is which step, when the report task does not say (its task_ids field).
DEFAULT_ROLES = {
    "preflight": "preflight",
    "webhooks": "route_segment_to_rudderstack.ensure_webhooks",
    "final_load": "segment_final_load.wait_final_load",
    "segment_warehouse": "segment_final_load.disable_segment_warehouse",
    "release": "release_rudderstack.release_sync",
    "upload": "release_rudderstack.wait_upload",
    "duplicates": "duplicate_check",
    "adoption": "client_adoption.wait_client_adoption",
    "webhook_disabled": "client_adoption.disable_segment_webhook",
}


# ------------------------------------------------------------------------------------------ reading Airflow


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def migration_dag_ids(session: Any) -> list[str]:
    from airflow.models.dag import DagModel
    from sqlalchemy import select

    rows = session.scalars(
        select(DagModel.dag_id).where(DagModel.dag_id.startswith(DAG_PREFIX), DagModel.is_stale.is_(False))
    ).all()
    return sorted(rows)


def _roles(dag_id: str, session: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """Step role -> task id (from the report task of the serialized DAG) and the DAG's param defaults."""
    roles, params = dict(DEFAULT_ROLES), {}
    try:
        from airflow.models.serialized_dag import SerializedDagModel

        dag = SerializedDagModel.get_dag(dag_id, session=session)
    except Exception:
        dag = None
    if dag is None:
        return roles, params
    if "report" in dag.task_dict:
        declared = getattr(dag.task_dict["report"], "task_ids", None)
        if isinstance(declared, dict):
            roles.update({k: v for k, v in declared.items() if isinstance(v, str)})
    try:
        params = {k: dag.params[k] for k in dag.params}
    except Exception:
        params = {}
    return roles, params


def _snapshots(dag_model: Any, runs: Any) -> tuple[SimpleNamespace | None, list[SimpleNamespace]]:
    """Plain copies of the DAG model and the runs, readable after the session's transaction ends."""
    model = (
        SimpleNamespace(
            is_paused=bool(getattr(dag_model, "is_paused", False)),
            description=getattr(dag_model, "description", None),
            tags=[t.name for t in getattr(dag_model, "tags", None) or []],
        )
        if dag_model
        else None
    )
    run_rows = [
        SimpleNamespace(
            run_id=r.run_id,
            state=r.state.value if hasattr(r.state, "value") else r.state,
            start_date=r.start_date,
        )
        for r in runs
    ]
    return model, run_rows


def _read_run(
    session: Any, dag_id: str, run: Any, roles: dict[str, str], facts: ReportFacts, extra: dict[str, Any]
) -> None:
    """Fill ``facts`` (task states, task results by role) and ``extra`` (live adoption) from ``run``."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    tis = session.scalars(
        select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
    ).all()
    for ti in tis:
        facts.tasks[ti.task_id] = TaskFact(
            state=str(ti.state.value if hasattr(ti.state, "value") else ti.state) if ti.state else None,
            start=_aware(ti.start_date),
            end=_aware(ti.end_date),
            duration=ti.duration,
        )
    xcoms = session.scalars(
        select(XComModel).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run.run_id,
            XComModel.key.in_(("return_value", OUTAGE_XCOM_KEY)),
        )
    ).all()
    by_task = {x.task_id: XComModel.deserialize_value(x) for x in xcoms if x.key == "return_value"}
    # a step waiting out an outage (or that rode one out): the verdict and the timeline say so
    facts.extra[OUTAGES_KEY] = {
        x.task_id: XComModel.deserialize_value(x) for x in xcoms if x.key == OUTAGE_XCOM_KEY
    }
    facts.results = {role: by_task.get(task_id) for role, task_id in roles.items()}
    adoption_task = roles.get("adoption")
    live = _live_adoption(tis, adoption_task)
    if live and not facts.results.get("adoption"):
        facts.results["adoption"] = {"history": live}
        extra["adoption_live"] = True


def plan_facts(dag_id: str, session: Any, run_id: str | None = None) -> tuple[ReportFacts, dict[str, Any]]:
    """The latest run's (or ``run_id``'s) facts, and what only the view shows (runs, full change log, ...)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    plan_name = dag_id.removeprefix(DAG_PREFIX)
    dag_model = session.get(DagModel, dag_id)
    runs = session.scalars(
        select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(RUNS_SHOWN)
    ).all()
    run = next((r for r in runs if r.run_id == run_id), None) if run_id else (runs[0] if runs else None)
    roles, params = _roles(dag_id, session)
    conf = (run.conf or {}) if run else {}
    value = {**params, **{k: v for k, v in conf.items() if k in params}}
    facts = ReportFacts(
        plan_name=plan_name,
        run_id=run.run_id if run else "—",
        dry_run=bool(value.get("dry_run", False)),
        threshold=_float(value.get("adoption_threshold")),
        window_seconds=_float(value.get("adoption_window_seconds")),
        consecutive_checks=_int(value.get("adoption_consecutive_checks")),
        run_started_at=_aware(run.start_date) if run else None,
    )
    # Plain snapshots: reading the change log (Variables) may end this session's transaction.
    model, run_rows = _snapshots(dag_model, runs)
    extra: dict[str, Any] = {"runs": run_rows, "dag_model": model, "changes_all": [], "adoption_live": False}
    if run is not None:
        _read_run(session, dag_id, run, roles, facts, extra)
    read_operations(session, dag_id, facts, extra)  # hold, ETAs, a dry run's plan (ui/operations.py)
    changes = _change_log(plan_name)
    extra["changes_all"] = changes
    facts.changes = [c for c in changes if run is not None and c.get("run_id") == run.run_id]
    return facts, extra


def _live_adoption(tis: list[Any], task_id: str | None) -> list[dict[str, Any]] | None:
    """A deferred adoption sensor keeps its checks in its trigger's arguments: the share as it falls."""
    for ti in tis:
        if ti.task_id != task_id or ti.trigger_id is None:
            continue
        try:
            memory = ti.trigger.kwargs.get("memory")
        except Exception:
            return None
        return [m for m in memory or [] if isinstance(m, dict)]
    return None


def _change_log(plan_name: str) -> list[dict[str, Any]]:
    """The plan's whole change log, read from Airflow Variables as the rollback reads it."""
    from dataclasses import asdict

    from segment_rudderstack.safety.changelog import ChangeLog

    try:
        return [asdict(c) for c in ChangeLog(f"{DAG_PREFIX}{plan_name}__changes").entries()]
    except Exception:
        return []


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


# ------------------------------------------------------------------------------------------ rendering

CSS = (
    report_render.CSS
    + """
body{max-width:none;margin:1rem}.plan{border:1px solid #ddd;border-radius:6px;padding:0 1rem 1rem;margin-bottom:1.5rem}
.state-success,.state-done{color:#2e7d32}.state-failed{color:#c62828;font-weight:bold}
.state-running,.state-deferred,.state-up_for_reschedule,.state-queued{color:#e65100;font-weight:bold}
.muted{color:#777}nav a{margin-right:1rem}"""
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _chart_img(facts: ReportFacts) -> str:
    fig = report_chart.adoption_figure(facts)
    if fig is None:
        return "<p class='muted'>No adoption check yet.</p>"
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return (
        f"<img id='adoption-chart' alt='adoption share over time (UTC)' src='data:image/png;base64,{data}'>"
    )


def _run_link(dag_id: str, run_id: str) -> str:
    return f"/dags/{_e(dag_id)}/runs/{_e(run_id)}"


def _changes_html(changes: list[dict[str, Any]]) -> list[str]:
    out = [f"<h3>Change log ({len(changes)} outside change(s), all runs; the rollback DAG undoes them)</h3>"]
    if changes:
        out.append(
            "<table id='changes'><thead><tr><th>when (UTC)</th><th>what</th><th>before</th><th>after</th>"
            "<th>task</th><th>run</th></tr></thead><tbody>"
        )
        for c in changes:
            out.append(
                f"<tr><td>{_e(report.utc(parse_instant(c.get('at'))))}</td><td>{_e(c.get('target'))} "
                f"<code>{_e(c.get('target_id'))}</code> {_e(c.get('field'))}</td>"
                f"<td>{_e(report.short(c.get('before')))}</td><td>{_e(report.short(c.get('after')))}</td>"
                f"<td>{_e(c.get('task_id') or '')}</td><td>{_e(c.get('run_id') or '')}</td></tr>"
            )
        out.append("</tbody></table>")
    else:
        out.append("<p id='changes' class='muted'>No outside change recorded.</p>")
    return out


def _runs_html(dag_id: str, runs: list[Any]) -> list[str]:
    out = ["<h3>Runs</h3><ul id='runs'>"]
    for run in runs:
        state = run.state.value if hasattr(run.state, "value") else run.state
        out.append(
            f"<li><a href='{_run_link(dag_id, run.run_id)}' target='_top'>{_e(run.run_id)}</a> "
            f"<span class='state-{_e(state)}'>{_e(state)}</span> started {_e(report.utc(_aware(run.start_date)))}</li>"
        )
    if not runs:
        out.append("<li class='muted'>no run yet</li>")
    return out


def _steps_html(dag_id: str, facts: ReportFacts) -> list[str]:
    """The runbook steps of the run, as a table."""
    out: list[str] = []
    out.append(
        f"<h3>Runbook steps (run <a href='{_run_link(dag_id, facts.run_id)}' target='_top'>"
        f"{_e(facts.run_id)}</a>)</h3>"
    )
    rows = report.phase_rows(facts)
    out.append(
        "<table id='steps'><thead><tr><th>step</th><th>state</th><th>started (UTC)</th><th>ended (UTC)</th>"
        "<th>took</th><th>tasks</th></tr></thead><tbody>"
    )
    for row in rows:
        tasks = ", ".join(
            f"<span class='state-{_e(facts.tasks[t].state or 'none')}'>{_e(t.split('.')[-1])}: "
            f"{_e(facts.tasks[t].state or 'not started')}</span>"
            for t in row.task_ids
        )
        out.append(
            f"<tr><td>{_e(row.phase.label)}</td><td class='state-{_e(row.state.replace(' ', '_'))}'>"
            f"{_e(row.state)}</td><td>{_e(report.utc(row.started))}</td><td>{_e(report.utc(row.ended))}</td>"
            f"<td>{_e(report.duration(row.seconds))}</td><td>{tasks}</td></tr>"
        )
    out.append("</tbody></table>")
    return out


def _duplicates_html(facts: ReportFacts) -> list[str]:
    """The last duplicate check of the run."""
    out: list[str] = []
    duplicates = facts.result("duplicates")
    out.append("<h3>Last duplicate check</h3>")
    if duplicates:
        task = facts.tasks.get(
            next((t for t in facts.tasks if phase_of(t) and phase_of(t).key == "duplicates"), ""),
            None,
        )
        when = report.utc(task.end) if task else "—"
        out.append(
            f"<p id='duplicates'>at {_e(when)}: found {_e(report.count_text(duplicates.get('duplicates')))}, "
            f"removed {_e(report.count_text(duplicates.get('removed')))} (looked back to "
            f"{_e(report.utc(parse_instant(duplicates.get('since'))))}).</p>"
        )
    else:
        out.append("<p id='duplicates' class='muted'>not run yet in this run.</p>")
    return out


def render_plan(dag_id: str, facts: ReportFacts, extra: dict[str, Any]) -> str:
    verdict = (
        report.verdict(facts) if extra["runs"] else report.Verdict("running", "NOT STARTED: no run yet.")
    )
    dag_model = extra.get("dag_model")
    paused = bool(getattr(dag_model, "is_paused", False))
    out = [
        f"<section class='plan' data-dag-id='{_e(dag_id)}'><h2>Plan <code>{_e(facts.plan_name)}</code> "
        f"<small class='muted'><a href='/dags/{_e(dag_id)}' target='_top'>{_e(dag_id)}</a>"
        f"{' (paused: scheduled runs start only once it is unpaused)' if paused else ''}</small></h2>",
        f"<p class='verdict v-{_e(verdict.kind)}' id='verdict'>{report_render.inline_html(verdict.text)}</p>",
    ]
    if verdict.todo:
        out.append(f"<p>{report_render.inline_html(verdict.todo)}</p>")

    marks = report.milestones(facts)
    out.append("<h3>Cutover point</h3>")
    out.append(
        f"<p id='cutover'>{'Segment started sending to RudderStack at <strong>' + _e(report.utc(marks['cutover'])) + '</strong>' if marks['cutover'] else 'not reached yet'}"
        f"{'; Segment warehouse off at ' + _e(report.utc(marks['warehouse_off'])) if marks['warehouse_off'] else ''}"
        f"{'; Segment webhook off at ' + _e(report.utc(marks['webhook_off'])) if marks['webhook_off'] else ''}.</p>"
    )

    out += _steps_html(dag_id, facts)
    out += operations_html(dag_id, facts, extra)

    live = " (live: the sensor is still checking)" if extra.get("adoption_live") else ""
    threshold = f"; threshold {facts.threshold:.2%}" if facts.threshold is not None else ""
    out.append(f"<h3>Adoption share over time{_e(live)}{_e(threshold)}</h3>")
    out.append(_chart_img(facts))

    out += _duplicates_html(facts)

    out += _changes_html(extra.get("changes_all") or [])
    out += _runs_html(dag_id, extra["runs"])
    out.append("</ul></section>")
    return "\n".join(out)


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{CSS}</style>"
        f"</head><body><h1>{_e(title)}</h1>{body}<p class='muted'>Times in UTC. Generated "
        f"{_e(report.utc(datetime.now(UTC)))}.</p></body></html>"
    )


# ------------------------------------------------------------------------------------------ the app


async def current_user(request: Request) -> Any:
    """The logged-in Airflow user: a bearer token, else the UI's JWT cookie (as Airflow's own routes read
    them). 401 without one, 403 for an invalid one."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    header = request.headers.get("authorization", "")
    token = (
        header[7:].strip()
        if header.lower().startswith("bearer ")
        else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    )
    return await resolve_user_from_token(token)


def _can_read(user: Any, dag_id: str) -> bool:
    try:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

        return bool(
            get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user)
        )
    except Exception:
        return False


CurrentUser = Annotated[Any, Depends(current_user)]


def _plan_section_html(dag_id: str, session: Any) -> str:
    """One plan's section of the overview page; a plan that cannot be read or is invalid says so."""
    try:
        facts, extra = plan_facts(dag_id, session)
    except Exception as exc:  # one unreadable plan must not hide the others
        return (
            f"<section class='plan' data-dag-id='{_e(dag_id)}'><h2>{_e(dag_id)}</h2><p "
            f"class='verdict v-failed'>cannot show this plan: {_e(type(exc).__name__)}: "
            f"{_e(exc)}</p></section>"
        )
    dag_model = extra.get("dag_model")
    if dag_model is not None and INVALID_TAG in dag_model.tags:
        return (
            f"<section class='plan' data-dag-id='{_e(dag_id)}'><h2>{_e(dag_id)}</h2>"
            f"<p class='verdict v-failed'>{_e(dag_model.description or 'INVALID PLAN')}</p>"
            "</section>"
        )
    return render_plan(dag_id, facts, extra)


def _plan_payload(facts: ReportFacts, extra: dict[str, Any], verdict: Any) -> Any:
    """The plan's state as JSON-compatible data (times as strings)."""
    return json.loads(
        json.dumps(
            {
                "plan": facts.plan_name,
                "run_id": facts.run_id,
                "verdict": verdict.__dict__,
                "milestones": {k: v.isoformat() if v else None for k, v in report.milestones(facts).items()},
                "steps": [
                    {"phase": r.phase.key, "state": r.state, "started": r.started, "ended": r.ended}
                    for r in report.phase_rows(facts)
                ],
                "changes": extra["changes_all"],
                "runs": [r.run_id for r in extra["runs"]],
                **operations_payload(facts, extra),
            },
            default=str,
        )
    )


def create_app() -> FastAPI:
    """Cheap to build (every process that loads plugins builds it); Airflow's API modules load per request."""
    app = FastAPI(title="Segment → RudderStack migrations", docs_url=None, redoc_url=None, openapi_url=None)

    def session_scope():
        from airflow.utils.session import create_session

        return create_session()

    @app.get("/", response_class=HTMLResponse)
    def all_plans(user: CurrentUser) -> str:
        with session_scope() as session:
            dag_ids = [d for d in migration_dag_ids(session) if _can_read(user, d)]
            parts = []
            for dag_id in dag_ids:
                parts.append(_plan_section_html(dag_id, session))
        body = "\n".join(parts) or "<p>No migration DAG found (plans live in include/plans/).</p>"
        return page("Segment → RudderStack migrations", body)

    @app.get("/dags/{dag_id}", response_class=HTMLResponse)
    def one_plan(dag_id: str, user: CurrentUser, run_id: str | None = None) -> str:
        if not dag_id.startswith(DAG_PREFIX):
            return page(
                "Migration", f"<p><code>{_e(dag_id)}</code> is not a Segment → RudderStack migration DAG.</p>"
            )
        if not _can_read(user, dag_id):
            raise HTTPException(status_code=403, detail=f"no read access to DAG {dag_id}")
        with session_scope() as session:
            facts, extra = plan_facts(dag_id, session, run_id)
            return page(f"Migration {facts.plan_name}", render_plan(dag_id, facts, extra))

    @app.get("/api/dags/{dag_id}", response_class=JSONResponse)
    def plan_json(dag_id: str, user: CurrentUser, run_id: str | None = None) -> Any:
        if not dag_id.startswith(DAG_PREFIX) or not _can_read(user, dag_id):
            raise HTTPException(status_code=404, detail=f"no migration DAG {dag_id} readable by you")
        with session_scope() as session:
            facts, extra = plan_facts(dag_id, session, run_id)
            verdict = report.verdict(facts)
            return _plan_payload(facts, extra, verdict)

    register_hold_routes(app, current_user)
    return app
