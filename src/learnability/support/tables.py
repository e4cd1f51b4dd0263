"""Tables for the book: rows of dicts rendered as Markdown, so a code cell can display computed numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def markdown(
    rows: Sequence[Mapping[str, object]],
    columns: Mapping[str, str] | None = None,
    formats: Mapping[str, str] | None = None,
) -> str:
    """A Markdown table of ``rows``; ``columns`` maps keys to headers (default: all keys of the first row),
    ``formats`` maps keys to format specs such as ``".1e"``."""
    if not rows:
        raise ValueError("rows is empty: nothing to tabulate")
    columns = dict(columns or {k: k for k in rows[0]})
    missing = [k for k in columns if any(k not in r for r in rows)]
    if missing:
        raise ValueError(f"rows lack the columns {missing}")
    formats = formats or {}

    def cell(key: str, value: object) -> str:
        return format(value, formats[key]) if key in formats else str(value)

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(k, r[k]) for k in columns) + " |" for r in rows]
    return "\n".join(lines)
