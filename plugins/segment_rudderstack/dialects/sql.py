"""SQL text, built only from literal templates and identifiers quoted by a dialect: :func:`compose` refuses
anything else at run time, so every value is a bound parameter."""

from __future__ import annotations

from collections.abc import Iterable


class SqlText(str):
    """SQL text built by :func:`compose` from a literal template: safe to place into more SQL."""


class Quoted(SqlText):
    """An identifier quoted by a dialect."""


def compose(template: str, **parts: SqlText) -> SqlText:
    """Fill ``{name}`` slots of a literal SQL template with quoted identifiers or other composed SQL.

    Anything that is not :class:`SqlText` (a raw ``str`` from a user, a number) is refused: values go
    into bound parameters, never into the text.
    """
    for name, part in parts.items():
        if not isinstance(part, SqlText):
            raise TypeError(
                f"SQL slot {{{name}}} expected a quoted identifier or composed SQL, got {type(part).__name__}; "
                "pass values as bound parameters instead"
            )
    return SqlText(template.format(**parts))


def join_sql(separator: str, parts: Iterable[SqlText]) -> SqlText:
    items = list(parts)
    for part in items:
        if not isinstance(part, SqlText):
            raise TypeError(f"join_sql expected composed SQL, got {type(part).__name__}")
    return SqlText(separator.join(items))
