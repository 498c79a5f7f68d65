"""House style that a reader of the library relies on: every public operator, sensor, hook and trigger documents
its arguments (``:param name:``, as the dbt Cloud provider does), and no function in plugins/ or include/ grows
past about 60 lines (the DAG factory excepted: it is wiring, one function per task group).

The test finds its modules itself: it imports every module of the library package, and walks every ``.py`` file
under plugins/ and include/."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import pkgutil

import pytest
from airflow.sdk import BaseHook, BaseOperator
from airflow.triggers.base import BaseTrigger

import segment_rudderstack

PLUGINS = pathlib.Path(segment_rudderstack.__file__).resolve().parent.parent
ROOT = PLUGINS.parent
SCANNED = [PLUGINS, ROOT / "include"]
MAX_FUNCTION_LINES = 65  # "about 60"
EXEMPT = {"plugins/segment_rudderstack/factory/dags.py"}


def library_modules():
    """Every module of the library package, imported."""
    prefix = segment_rudderstack.__name__ + "."
    names = sorted(m.name for m in pkgutil.walk_packages(segment_rudderstack.__path__, prefix=prefix))
    return [segment_rudderstack, *(importlib.import_module(name) for name in names)]


def public_classes():
    for module in library_modules():
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and cls.__module__ == module.__name__
                and not name.startswith("_")
                and issubclass(cls, (BaseOperator, BaseHook, BaseTrigger))
            ):
                yield cls


def test_the_walk_finds_the_public_classes():
    names = {cls.__name__ for cls in public_classes()}
    for expected in ("SegmentHook", "ConditionSensor", "ConditionTrigger", "EnsureReceivedAtIndexOperator"):
        assert expected in names, f"the module walk did not find {expected}; it found {sorted(names)}"


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


def test_no_function_in_plugins_or_include_is_longer_than_about_60_lines():
    long = []
    for path in sorted(p for root in SCANNED for p in root.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in EXEMPT:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, f"functions longer than {MAX_FUNCTION_LINES} lines; split them: {long}"
