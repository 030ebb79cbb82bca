"""What every command leaves in --out: metrics.json and report.md (markdown with figures).

    table(rows, columns)      a markdown table; floats with `digits` decimals (significant digits below 0.1)
    write_json(path, obj)     pretty JSON, written atomically
    write_csv(path, columns)  a CSV file of named columns, written atomically
    write_report(path, title, sections)   "# title" then "## heading\\n\\nbody" per section

Example:
    >>> from grukit.report import table
    >>> print(table([{"model": "GRU", "MAE": 0.51234}], ["model", "MAE"]))
    | model | MAE |
    |---|---|
    | GRU | 0.5123 |
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence


def _fmt(value: Any, digits: int) -> str:
    """A float with `digits` decimals, or `digits` significant digits below 0.1, where decimals would show
    fewer (0.001234 and 1.6e-06, not 0.0012 and 0.0000)."""
    if isinstance(value, float):
        small = value != 0 and abs(value) < 0.1
        return f"{value:.{digits}g}" if small else f"{value:.{digits}f}"
    return str(value)


def number(value: float, digits: int = 4) -> str:
    """A number for a report's text: `digits` decimals, or `digits` significant digits below 0.1.

    Example:
        >>> number(1.25728), number(12345.678), number(0.0012345), number(1.6e-06)
        ('1.2573', '12345.6780', '0.001234', '1.6e-06')
    """
    return _fmt(float(value), digits)


def seconds(value: float) -> str:
    """A duration for a report's text: one decimal below 10 s, and "under 0.1 s" below that, so that a short run
    does not read "0 s".

    Example:
        >>> seconds(0.04), seconds(0.42), seconds(9.96), seconds(274.5)
        ('under 0.1 s', '0.4 s', '10 s', '274 s')
    """
    if value < 0.05:
        return "under 0.1 s"
    return f"{value:.1f} s" if round(value, 1) < 10 else f"{value:.0f} s"


def plural(n: int, word: str) -> str:
    """"1 member", "5 members": n and word, with an s unless n is 1.

    Example:
        >>> plural(1, "thread"), plural(2, "thread")
        ('1 thread', '2 threads')
    """
    return f"{n} {word}" + ("" if n == 1 else "s")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, digits: int = 4) -> str:
    """A markdown table of `rows` restricted to `columns` (missing cells are empty)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, ""), digits) for c in columns) + " |")
    return "\n".join(lines)


def _atomic_write(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """`obj` as indented JSON (NaN is refused: metrics must be numbers)."""
    return _atomic_write(Path(path), json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n")


def write_csv(path: str | Path, columns: dict[str, Sequence[Any]]) -> Path:
    """A CSV file of equally long `columns` (name -> values; floats in full, as repr writes them), atomically."""
    names = list(columns)
    rows = [names, *([repr(float(v)) if isinstance(v, float) else str(v) for v in row]
                     for row in zip(*(columns[n] for n in names)))]
    return _atomic_write(Path(path), "".join(",".join(row) + "\n" for row in rows))


def write_report(path: str | Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """report.md: a title and (heading, markdown body) sections; figures as ![name](file.png)."""
    parts = [f"# {title}", ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body.strip(), ""]
    return _atomic_write(Path(path), "\n".join(parts))


def figure(name: str, file: str | Path) -> str:
    """Markdown that shows a figure stored next to report.md."""
    return f"![{name}]({Path(file).name})"
