"""Plain-text and markdown tables of result rows (for the CLI and the benchmark reports).

Contract: ``markdown_table(rows, columns)`` renders dicts as a GitHub markdown table; a
column is ``(key, header, format)``; missing values print as ``-``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Column = tuple[str, str, str]


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    v = row.get(key)
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    try:
        return format(v, fmt)
    except (TypeError, ValueError):
        return str(v)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as a markdown table; numbers right-aligned."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    align = "|" + "|".join("---" if f == "s" else "---:" for _, _, f in columns) + "|"
    body = ["| " + " | ".join(_cell(r, k, f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join([head, align, *body])


def text_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as an aligned plain-text table (for terminals)."""
    cells = [[h for _, h, _ in columns]] + [[_cell(r, k, f) for k, _, f in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = []
    for n, c in enumerate(cells):
        lines.append(
            "  ".join(
                v.ljust(w) if columns[i][2] == "s" else v.rjust(w)
                for i, (v, w) in enumerate(zip(c, widths))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
