"""Warehouse dialects: the SQL the migration needs, one small module per warehouse.

``get_dialect(hook)`` returns the dialect for a ``DbApiHook`` (``PostgresHook``, ``SnowflakeHook``);
``dialect_for_conn_id(conn_id)`` does the same from an Airflow connection id. Each dialect offers
``schema_exists``, ``list_tables``, ``list_columns``, ``adoption_share``, ``count_duplicates``,
``repair_duplicates`` and ``compare_columns``. Adding a warehouse is one new module here (see ``base``).
"""

from segment_rudderstack.dialects.base import WarehouseDialect
from segment_rudderstack.dialects.column_types import ColumnDifference, compare_columns, type_family
from segment_rudderstack.dialects.registry import dialect_classes, dialect_for_conn_id, get_dialect
from segment_rudderstack.dialects.results import AdoptionSample, DuplicateCount

__all__ = [
    "AdoptionSample",
    "ColumnDifference",
    "DuplicateCount",
    "WarehouseDialect",
    "compare_columns",
    "dialect_classes",
    "dialect_for_conn_id",
    "get_dialect",
    "type_family",
]
