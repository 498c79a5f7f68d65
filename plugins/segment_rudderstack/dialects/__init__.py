"""Warehouse dialects: the SQL the migration needs, one small module per warehouse.

``get_dialect(hook)`` returns the dialect for a ``DbApiHook`` (``PostgresHook``, ``SnowflakeHook``);
``dialect_for_conn_id(conn_id)`` does the same from an Airflow connection id. Each dialect offers
``schema_exists``, ``list_tables``, ``list_columns``, ``adoption_share``, ``count_duplicates``,
``repair_duplicates`` and ``compare_columns``. Adding a warehouse is one new module here (see ``base``).
"""

from __future__ import annotations

import importlib
from typing import Any

# Names resolved on first use (PEP 562): the DAG processor imports this package at parse time, through modules
# that need only a small part of it, and must not pay for the rest (scripts/bench_parse.py measures it).
_HOMES = {
    "AdoptionSample": "segment_rudderstack.dialects.results",
    "ColumnDifference": "segment_rudderstack.dialects.column_types",
    "DuplicateCount": "segment_rudderstack.dialects.results",
    "WarehouseDialect": "segment_rudderstack.dialects.base",
    "compare_columns": "segment_rudderstack.dialects.column_types",
    "dialect_classes": "segment_rudderstack.dialects.registry",
    "dialect_for_conn_id": "segment_rudderstack.dialects.registry",
    "get_dialect": "segment_rudderstack.dialects.registry",
    "type_family": "segment_rudderstack.dialects.column_types",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
