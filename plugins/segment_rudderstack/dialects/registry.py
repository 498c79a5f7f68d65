"""Pick the dialect for a hook by its connection type. Every module in this package that defines a
``WarehouseDialect`` subclass with ``conn_types`` is found here, so a new warehouse is one new module."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache
from typing import Any

from segment_rudderstack.dialects.base import WarehouseDialect

_NOT_DIALECT_MODULES = {"base", "registry"}


@cache
def dialect_classes() -> dict[str, type[WarehouseDialect]]:
    """``{conn_type: dialect class}`` for every dialect module in this package (imported on first use)."""
    package = importlib.import_module("segment_rudderstack.dialects")
    found: dict[str, type[WarehouseDialect]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name in _NOT_DIALECT_MODULES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, WarehouseDialect) and cls.__module__ == module.__name__:
                for conn_type in cls.conn_types:
                    found[conn_type] = cls
    return found


def _conn_type_of(hook: Any) -> str | None:
    conn_type = getattr(hook, "conn_type", None)
    if conn_type in dialect_classes():
        return conn_type
    conn_name_attr = getattr(hook, "conn_name_attr", None)
    conn_id = getattr(hook, conn_name_attr, None) if conn_name_attr else None
    if conn_id and hasattr(hook, "get_connection"):
        return hook.get_connection(conn_id).conn_type
    return conn_type


def get_dialect(hook: Any) -> WarehouseDialect:
    """The dialect for a ``DbApiHook`` (``PostgresHook``, ``SnowflakeHook``, ...), chosen by connection type."""
    conn_type = _conn_type_of(hook)
    cls = dialect_classes().get(conn_type or "")
    if cls is None:
        supported = ", ".join(sorted(dialect_classes())) or "none"
        raise ValueError(
            f"no warehouse dialect for connection type {conn_type!r} (hook {type(hook).__name__}); "
            f"supported: {supported}. Use one of those connection types, or add a module to "
            "segment_rudderstack/dialects/ with a WarehouseDialect subclass for it"
        )
    return cls(hook)


def dialect_for_conn_id(conn_id: str) -> WarehouseDialect:
    """The dialect for an Airflow connection id (builds the provider's hook for it)."""
    from airflow.sdk import BaseHook

    return get_dialect(BaseHook.get_connection(conn_id).get_hook())
