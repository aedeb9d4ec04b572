"""Render a computed table (:class:`~proxybench.tables.build.TableData`) as a paper would print it.

* ``md`` — GitHub Markdown; a column group is written before its column name
  (``cifar10 · ρ``), Markdown having one header row; best in **bold**, second <u>underlined</u>.
* ``latex`` — booktabs ``tabular`` in a ``table`` with the caption, ``\\multicolumn`` group
  headers with ``\\cmidrule``, row blocks separated by ``\\midrule``; ``\\textbf`` and
  ``\\underline`` for best and second.
* ``csv`` — tidy long rows (row_group, row, col_group, col, value, mark): every number at full
  precision, for programs.
* ``table`` — aligned text for the terminal; ``*`` marks the best, ``+`` the second.

Marks follow each cell's ``better`` (``max`` or ``min``), per column within a block of rows,
compared at the displayed precision so ties share a mark; a column with fewer than two
numbers gets no marks, fewer than three no second. A missing number is "—", never a guess.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from proxybench.tables.build import Cell, TableData

__all__ = ["FORMATS", "render_table", "marks"]

FORMATS = ("md", "latex", "csv", "table")
DASH = "—"


def marks(data: TableData) -> dict[tuple[str, str, str, str], str]:
    """``best`` / ``second`` per cell key ``(row_group, row, col_group, col)``."""
    digits = data.definition.decimals
    blocks: dict[tuple[str, str, str, str], list[Cell]] = defaultdict(list)
    for cell in data.cells:
        if cell.better is not None and cell.value is not None:
            blocks[(cell.row_group, cell.col_group, cell.col, cell.better)].append(cell)
    found: dict[tuple[str, str, str, str], str] = {}
    for (_, _, _, better), cells in blocks.items():
        if len(cells) < 2:
            continue
        shown = sorted({round(c.value, digits) for c in cells}, reverse=better == "max")  # type: ignore[arg-type]
        ranks = {shown[0]: "best"}
        if len(cells) >= 3 and len(shown) >= 2:
            ranks[shown[1]] = "second"
        for cell in cells:
            mark = ranks.get(round(cell.value, digits))  # type: ignore[arg-type]
            if mark:
                found[(cell.row_group, cell.row, cell.col_group, cell.col)] = mark
    return found


def render_table(data: TableData, fmt: str = "md") -> str:
    """``data`` as text in ``fmt`` (one of :data:`FORMATS`), ending with a newline.

    Raises:
        ValueError: Unknown format (the CLI restricts the choice).
    """
    if fmt == "csv":
        return _csv(data)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    index = {(c.row_group, c.row, c.col_group, c.col): c for c in data.cells}
    found = marks(data)
    digits = data.definition.decimals

    def number(key: tuple[str, str, str, str]) -> tuple[str, str | None]:
        cell = index.get(key)
        if cell is None or cell.value is None:
            return DASH, None
        return f"{cell.value:.{digits}f}", found.get(key)

    grid: list[tuple[str, str, list[tuple[str, str | None]]]] = []
    for row_group, row in data.rows:
        grid.append((row_group, row, [number((row_group, row, cg, c)) for cg, c in data.columns]))
    if fmt == "md":
        return _markdown(data, grid)
    if fmt == "latex":
        return _latex(data, grid)
    return _text(data, grid)


def _caption(data: TableData) -> str:
    parts = [data.definition.caption] if data.definition.caption else []
    parts += data.provenance
    return " ".join(parts)


def _csv(data: TableData) -> str:
    found = marks(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row_group", "row", "col_group", "col", "value", "mark"])
    for cell in data.cells:
        key = (cell.row_group, cell.row, cell.col_group, cell.col)
        writer.writerow([cell.row_group, cell.row, cell.col_group, cell.col,
                         "" if cell.value is None else repr(cell.value), found.get(key, "")])
    return buffer.getvalue()


def _group_spans(columns: list[tuple[str, str]]) -> list[tuple[str, int]]:
    spans: list[tuple[str, int]] = []
    for group, _ in columns:
        if spans and spans[-1][0] == group:
            spans[-1] = (group, spans[-1][1] + 1)
        else:
            spans.append((group, 1))
    return spans


def _markdown(data: TableData, grid: list[tuple[str, str, list[tuple[str, str | None]]]]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    def decorate(text: str, mark: str | None) -> str:
        return f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text

    has_groups = any(group for group, _ in data.columns)
    has_row_groups = any(group for group, _ in data.rows)
    lead = ["Block"] if has_row_groups else []
    if has_groups:
        # Markdown has one header row: group names head the first column of their group,
        # the column names follow as an italic first body row.
        firsts = {j for j, (group, _) in enumerate(data.columns) if j == 0 or data.columns[j - 1][0] != group}
        head = lead + [""] + [esc(group) if j in firsts else "" for j, (group, _) in enumerate(data.columns)]
        sub = [[""] * len(lead) + [""] + [f"*{esc(col)}*" for _, col in data.columns]]
    else:
        head = lead + [""] + [esc(col) for _, col in data.columns]
        sub = []
    lines = [f"**{esc(data.definition.title)}**", "", "| " + " | ".join(head) + " |",
             "| " + " | ".join(["---"] * (1 + len(lead)) + ["---:"] * len(data.columns)) + " |"]
    lines += ["| " + " | ".join(cells) + " |" for cells in sub]
    for row_group, row, values in grid:
        cells = ([esc(row_group)] if has_row_groups else []) + [esc(row)] + [decorate(t, m) for t, m in values]
        lines.append("| " + " | ".join(cells) + " |")
    caption = _caption(data)
    legend = "Best in bold, second underlined."
    lines += ["", f"{caption} {legend}".strip()]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_GREEK = {"ρ": r"$\rho$", "τ": r"$\tau$", "σ": r"$\sigma$", "α": r"$\alpha$", "ε": r"$\epsilon$",
                "—": "--", "·": r"$\cdot$", "−": "$-$", "≤": r"$\le$", "≥": r"$\ge$"}


def tex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped and the Greek letters we use in math mode."""
    return "".join(_LATEX_SPECIAL.get(ch) or _LATEX_GREEK.get(ch, ch) for ch in text)


def _latex(data: TableData, grid: list[tuple[str, str, list[tuple[str, str | None]]]]) -> str:
    def decorate(text: str, mark: str | None) -> str:
        text = tex(text)
        return rf"\textbf{{{text}}}" if mark == "best" else rf"\underline{{{text}}}" if mark == "second" else text

    n = len(data.columns)
    out = [r"\begin{table}[t]", r"\centering"]
    caption = _caption(data)
    out.append(r"\caption{" + tex(data.definition.title) + (". " + tex(caption) if caption else "")
               + " Best in bold, second underlined.}")
    out += [r"\begin{tabular}{l" + "r" * n + "}", r"\toprule"]
    if any(group for group, _ in data.columns):
        spans = _group_spans(data.columns)
        out.append(" & " + " & ".join(rf"\multicolumn{{{width}}}{{c}}{{{tex(group)}}}" for group, width in spans)
                   + r" \\")
        rules, start = [], 2
        for group, width in spans:
            if group:
                rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
            start += width
        out.append(" ".join(rules))
    out.append(" & " + " & ".join(tex(col) for _, col in data.columns) + r" \\")
    out.append(r"\midrule")
    previous = None
    for row_group, row, values in grid:
        if row_group and row_group != previous:
            if previous is not None:
                out.append(r"\midrule")
            out.append(rf"\multicolumn{{{n + 1}}}{{l}}{{\textit{{{tex(row_group)}}}}} \\")
        previous = row_group
        out.append(" & ".join([tex(row)] + [decorate(t, m) for t, m in values]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def _text(data: TableData, grid: list[tuple[str, str, list[tuple[str, str | None]]]]) -> str:
    symbols = {"best": "*", "second": "+", None: " "}
    has_groups = any(group for group, _ in data.columns)
    body = [[row] + [t + symbols[m] for t, m in values] for _, row, values in grid]
    head = [""] + [col for _, col in data.columns]
    widths = [max(len(head[j]), *(len(r[j]) for r in body)) for j in range(len(head))]
    if has_groups:  # widen a group's last column until the group's name fits over it
        j = 1
        for group, width in _group_spans(data.columns):
            span = sum(widths[j:j + width]) + 2 * (width - 1)
            widths[j + width - 1] += max(0, len(group) - span)
            j += width
    lines = [data.definition.title, ""]
    if has_groups:
        parts, j = [" " * widths[0]], 1
        for group, width in _group_spans(data.columns):
            span = sum(widths[j:j + width]) + 2 * (width - 1)
            parts.append(group.center(span))
            j += width
        lines.append("  ".join(parts).rstrip())
    lines.append("  ".join(h.ljust(widths[0]) if j == 0 else h.rjust(widths[j]) for j, h in enumerate(head)).rstrip())
    previous = None
    for (row_group, _, _), cells in zip(grid, body):
        if row_group != previous and row_group:
            lines.append(f"[{row_group}]")
        previous = row_group
        lines.append("  ".join(c.ljust(widths[0]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(cells)))
    caption = _caption(data)
    lines += ["", f"{caption} * best, + second.".strip()]
    return "\n".join(line.rstrip() for line in lines) + "\n"
