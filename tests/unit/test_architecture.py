"""The library's rooms (docs/architecture.md): each room imports only the rooms below it, nothing imports a
private name of another module, there is no import cycle, and the module map in the docs lists every module."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

import segment_rudderstack
from segment_rudderstack.waits.watches import SegmentLoadWatch, load_watch

LIBRARY = pathlib.Path(segment_rudderstack.__file__).resolve().parent
ARCHITECTURE = LIBRARY.parents[1] / "docs" / "architecture.md"

#: the rooms from the bottom up; a module may import its own room and the rooms before it
ROOMS = [
    {"", "vocabulary", "instants", "rendered", "sync_status", "provider_info"},
    {"hooks", "dialects", "plan", "connections"},
    {"waits", "shape"},
    {"safety"},
    {"evidence", "lineage"},
    {"notify"},
    {"ui"},
    {"triggers"},
    {"sensors"},
    {"operators"},
    {"factory"},
]
LEVEL = {room: level for level, rooms in enumerate(ROOMS) for room in rooms}


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in LIBRARY.rglob("*.py"):
        parts = list(path.relative_to(LIBRARY.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _room(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return ""
    return parts[0] if f"segment_rudderstack.{parts[0]}" in MODULES and len(parts) > 1 else parts[0]


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import of the library, lazy ones included."""
    out = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segment_rudderstack"):
            assert node.level == 0, f"{module}:{node.lineno}: relative import; the library imports absolutely"
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                out.append(
                    (child, None, node.lineno) if child in MODULES else (node.module, alias.name, node.lineno)
                )
        elif isinstance(node, ast.Import):
            out += [
                (a.name, None, node.lineno) for a in node.names if a.name.startswith("segment_rudderstack")
            ]
    return out


def test_each_room_imports_only_the_rooms_below_it():
    upward = [
        f"{module}:{line} imports {target} ({_room(module)} may not import {_room(target)})"
        for module in MODULES
        for target, _, line in _imports(module)
        if LEVEL[_room(target)] > LEVEL[_room(module)]
    ]
    assert not upward, upward


def test_the_library_never_imports_the_sandbox():
    """The sandbox (include/sandbox/) is the independent check of the library's loader rules (shape/): a library
    module that imported it would check itself."""
    found = [
        f"{module}:{node.lineno}"
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sandbox")
        or (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sandbox" for a in node.names))
    ]
    assert not found, found


def test_no_module_imports_a_private_name_of_another():
    private = [
        f"{module}:{line} imports {target}.{name}"
        for module in MODULES
        for target, name, line in _imports(module)
        if name and name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert not private, private


def test_the_import_graph_has_no_cycle():
    graph = {m: {t for t, _, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, node])):
                return cycle
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [])):
            pytest.fail(" -> ".join(cycle))


def test_the_root_holds_only_a_handful_of_shared_modules():
    root = sorted(p.name for p in LIBRARY.glob("*.py"))
    assert len(root) <= 6, root


def test_the_module_map_lists_every_module():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    listed = set(re.findall(r"`([a-z_/]+\.py)`", text))
    missing = sorted(
        path.relative_to(LIBRARY).as_posix()
        for path in LIBRARY.rglob("*.py")
        if path.name != "__init__.py" and path.relative_to(LIBRARY).as_posix() not in listed
    )
    assert not missing, f"docs/architecture.md's module map does not list {missing}"


def test_a_trigger_deferred_before_the_move_still_rebuilds_its_watch():
    watch = SegmentLoadWatch(
        segment_conn_id="s", warehouse_id="wh", started_after="2026-11-29T07:00:00+00:00"
    )
    old_spec = {**watch.spec(), "class": "segment_rudderstack.watches.SegmentLoadWatch"}
    assert load_watch(old_spec) == watch


def test_all_sql_is_composed_in_the_dialects():
    outside = [
        f"{module}:{line} imports {target}.{name}"
        for module in MODULES
        if _room(module) != "dialects"
        for target, name, line in _imports(module)
        if target in {"segment_rudderstack.dialects.base", "segment_rudderstack.dialects.sql"}
        and name in {"compose", "join_sql", "SqlText"}
    ]
    assert not outside, f"SQL text is composed only in dialects/: {outside}"


def test_parsing_a_dag_file_loads_no_http_client_nor_warehouse_driver():
    """The DAG processor imports the factory constantly: the hooks (and their requests client) and the warehouse
    drivers load only in the task that uses them (the package ``__init__`` files resolve their names on first use;
    httpx, msgspec and tenacity are Airflow's own)."""
    import subprocess
    import sys

    probe = (
        "import sys, json; import segment_rudderstack.factory.dags; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'requests', 'psycopg2', 'matplotlib', 'fastapi', 'fakesnow'} "
        "or m in {'segment_rudderstack.hooks.segment', 'segment_rudderstack.hooks.rudderstack', "
        "'segment_rudderstack.hooks.api_hook', 'segment_rudderstack.hooks.segment_delivery', "
        "'snowflake.connector', 'airflow.providers.postgres.hooks.postgres'})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"loaded at parse time: {out}"
