"""Identifier folding: how warehouses compare the names they were given."""

from __future__ import annotations


def same_namespace(a: str | None, b: str | None) -> bool:
    """Whether two schema names name the same schema once the warehouse folds them."""
    # Warehouses fold unquoted identifiers (PostgreSQL to lower case, Snowflake to upper case).
    return (a or "").strip().lower() == (b or "").strip().lower()
