"""Bad plan files made visible where operators look: a placeholder DAG per bad plan.

Airflow 3.3 shows nothing for a Python warning raised while a DAG file is parsed, and an exception would
turn the one DAG file that builds every plan into an import error that marks *all* its DAGs stale. So each
plan that cannot be built (invalid, unreadable, or sharing its ``name`` with another file) becomes a small
DAG of its own: its display name and description say "INVALID PLAN", name the file and the fields, its docs
say how to fix it, and its only task fails with the same message if someone triggers it. The other plans'
DAGs are built as usual. Reading the files is local and cheap, as the DAG factory requires.
"""

from __future__ import annotations

import logging
import pathlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from airflow.sdk import DAG, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.plan.model import PLAN_NAME, Plan, PlanError, load_plan

log = logging.getLogger(__name__)

INVALID_TAG = "invalid-plan"
DAG_ID_PREFIX = "segment_to_rudderstack__"


@dataclass(frozen=True)
class PlanFile:
    """One plan file as found on disk: the plan when it validates, else the error."""

    path: pathlib.Path
    name: str | None  # the plan name when it can be read (even from an invalid plan)
    plan: Plan | None = None
    error: str | None = None


def read_plan_file(path: pathlib.Path) -> PlanFile:
    try:
        plan = load_plan(path)
    except PlanError as exc:
        return PlanFile(path=path, name=_readable_name(path), error=str(exc))
    return PlanFile(path=path, name=plan.name, plan=plan)


def _readable_name(path: pathlib.Path) -> str | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and PLAN_NAME.match(name) else None


def _placeholder_id(name: str | None, path: pathlib.Path) -> str:
    if name:
        return f"{DAG_ID_PREFIX}{name}"  # where operators look for this plan's DAG
    stem = re.sub(r"[^A-Za-z0-9_]", "_", path.stem)[:150]
    return f"{DAG_ID_PREFIX}invalid__{stem}"


def sort_plan_files(files: list[PlanFile]) -> tuple[list[Plan], dict[str, tuple[list[pathlib.Path], str]]]:
    """Valid plans with a name of their own, and for every other file (or group of files sharing a name):
    placeholder DAG id → (files, message)."""
    by_name: dict[str, list[PlanFile]] = {}
    for item in files:
        if item.name:
            by_name.setdefault(item.name, []).append(item)
    good: list[Plan] = []
    bad: dict[str, tuple[list[pathlib.Path], str]] = {}
    for item in files:
        shared = by_name.get(item.name, []) if item.name else []
        if len(shared) > 1:
            if item is shared[0]:
                names = ", ".join(str(f.path) for f in shared)
                message = (
                    f"plan name {item.name!r} is used by {len(shared)} files: {names}. The DAG ids come from the "
                    "name, so none of them is built (which one is meant cannot be guessed). Give each plan "
                    "file its own `name:`."
                )
                errors = [f"{f.path}: {f.error}" for f in shared if f.error]
                bad[_placeholder_id(item.name, item.path)] = (
                    [f.path for f in shared],
                    "\n".join([message, *errors]),
                )
            continue
        if item.plan is not None:
            good.append(item.plan)
        else:
            bad[_placeholder_id(item.name, item.path)] = ([item.path], item.error or "invalid plan")
    return good, bad


class InvalidPlanOperator(BaseOperator):
    """The only task of a placeholder DAG: fails at once (no retry) with what is wrong with the plan.

    :param message: what is wrong with the plan file (its fields and problems), shown as the task's error.
    """

    ui_color = "#f8d7da"

    def __init__(self, *, message: str, **kwargs: Any):
        kwargs["retries"] = 0
        super().__init__(**kwargs)
        self.message = message

    def execute(self, context: Any) -> None:
        raise AirflowFailException(f"this plan cannot run until its file is fixed:\n{self.message}")


def _summary(message: str) -> str:
    """The fields and problems on one line (the DAG list shows the description, not the docs)."""
    lines = [
        line.strip().removeprefix("- ")
        for line in message.splitlines()
        if line.strip() and not line.endswith("invalid migration plan:")
    ]
    return "; ".join(lines)


def build_invalid_plan_dag(dag_id: str, paths: list[pathlib.Path], message: str, *, tags: list[str]) -> DAG:
    files = ", ".join(p.name for p in paths)
    log.error("INVALID PLAN %s (DAG %s): %s", files, dag_id, message)
    doc = (
        f"# Invalid migration plan: {files}\n\n"
        "This DAG stands in for a plan file that cannot be used. Nothing runs until the file is fixed; "
        "the other plans are not affected.\n\n"
        f"```\n{message}\n```\n\n"
        "Fix the file (each line names the field), save it, and the migration DAG replaces this one at the "
        'next parse. Check a plan without Airflow: `python -c "from segment_rudderstack.plan.model import load_plan; '
        "load_plan('include/plans/<file>.yaml')\"`."
    )
    with DAG(
        dag_id=dag_id,
        dag_display_name=f"INVALID PLAN: {files}",
        description=f"INVALID PLAN {files}: {_summary(message)}"[:1000],
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=[*tags, INVALID_TAG],
        doc_md=doc,
    ) as dag:
        InvalidPlanOperator(task_id="invalid_plan", message=message)
    return dag
