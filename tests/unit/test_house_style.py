"""House style that a reader of the library relies on: every public operator, sensor, hook and trigger documents
its arguments (``:param name:``, as the dbt Cloud provider does), and no function in plugins/ grows past about
60 lines (the DAG factory excepted: it is wiring, one function per task group)."""

from __future__ import annotations

import ast
import inspect
import pathlib

import pytest
from airflow.sdk import BaseHook, BaseOperator
from airflow.triggers.base import BaseTrigger

import segment_rudderstack
from segment_rudderstack.hooks import api_hook, rudderstack, segment, segment_delivery
from segment_rudderstack.operators import approval, preflight, proof, report, rollback, status, warehouse
from segment_rudderstack.operators import rudderstack as rudderstack_operators
from segment_rudderstack.operators import segment as segment_operators
from segment_rudderstack.sensors import base as sensor_base
from segment_rudderstack.sensors import migration
from segment_rudderstack.triggers import condition

PLUGINS = pathlib.Path(segment_rudderstack.__file__).resolve().parent.parent
MODULES = [
    api_hook,
    rudderstack,
    segment,
    segment_delivery,
    approval,
    report,
    rollback,
    status,
    preflight,
    proof,
    warehouse,
    rudderstack_operators,
    segment_operators,
    sensor_base,
    migration,
    condition,
]
MAX_FUNCTION_LINES = 65  # "about 60"
EXEMPT = {"segment_rudderstack/factory/dags.py"}


def public_classes():
    for module in MODULES:
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and cls.__module__ == module.__name__
                and not name.startswith("_")
                and issubclass(cls, (BaseOperator, BaseHook, BaseTrigger))
            ):
                yield cls


@pytest.mark.parametrize(
    "cls", sorted(public_classes(), key=lambda c: c.__qualname__), ids=lambda c: c.__name__
)
def test_public_classes_document_their_own_arguments(cls):
    own = (
        [
            p
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]
        if "__init__" in vars(cls)
        else []
    )
    doc = inspect.getdoc(cls) or ""
    missing = [p.name for p in own if f":param {p.name}:" not in doc and f"``{p.name}``" not in doc]
    assert doc and not missing, (
        f"{cls.__name__} does not document {missing} in its class docstring; add ':param <name>: <what it is>' "
        "for each argument of its __init__"
    )


def test_no_function_in_plugins_is_longer_than_about_60_lines():
    long = []
    for path in sorted(PLUGINS.rglob("*.py")):
        rel = path.relative_to(PLUGINS).as_posix()
        if rel in EXEMPT:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, f"functions longer than {MAX_FUNCTION_LINES} lines; split them: {long}"
