"""Task arguments after Jinja rendering: native objects in this project's DAGs (they render natively), strings
in a user's DAG that does not. These helpers accept both."""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from typing import Any


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def as_list(value: Any) -> list[str] | None:
    """A list of ids from a list, or from its rendered text (``["a", "b"]``, ``['a', 'b']`` or ``a,b``);
    ``None`` (or an empty text) stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text == "None":
            return None
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = ast.literal_eval(text)
            return [str(v) for v in parsed]
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    raise TypeError(f"expected a list of ids, got {type(value).__name__}")
