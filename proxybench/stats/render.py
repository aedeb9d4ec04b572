"""Render a :class:`~proxybench.stats.correlation.CorrelationResult` for a terminal, a paper or a program.

* ``csv`` and ``json``: every column of every row, full precision, NaN as an empty cell /
  ``null``; for programs.
* ``table`` (aligned text), ``md`` (GitHub Markdown) and ``latex`` (booktabs ``tabular``
  inside a ``table`` with a caption): the columns a paper shows, three decimals, bootstrap
  intervals as ``0.594 [0.571, 0.612]``, the best ρ, τ and top-k of each dataset/metric block
  in bold (md, latex), an undefined statistic as "—" with the reason in a note under the
  table. The caption states the orientation convention and the settings; when the rows do
  not share one setting, a Settings column shows each row's (with a short settings hash
  where the readable part alone would not tell rows apart).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from typing import Any

from proxybench.stats.correlation import CorrelationResult, topk_column

__all__ = ["FORMATS", "render"]

FORMATS = ("table", "md", "csv", "json", "latex")

ORIENTATION_NOTE = (
    "Orientation: positive means the proxy ranks better architectures higher; scores of "
    "lower-is-better proxies are negated first (Better = lower)."
)


#: Appended to the Metric cell of truth that is not higher-is-better.
_METRIC_MARK = {"lower (negated)": " (↓, negated)", "none": " (no direction)"}

TRUTH_NEGATED_NOTE = (
    "Metrics marked ↓ (latency, energy) are costs: they are negated before ranking too, so a positive "
    "value means the proxy ranks faster/cheaper architectures higher, and Top-k% counts the fastest/cheapest k%."
)
TRUTH_UNORIENTED_NOTE = (
    "Metrics marked 'no direction' are correlated as measured (positive: the proxy ranks larger values "
    "higher); their Top-k% is undefined."
)


def render(result: CorrelationResult, fmt: str = "table") -> str:
    """``result`` as text in ``fmt`` (one of :data:`FORMATS`), ending with a newline.

    Raises:
        ValueError: Unknown format (the CLI restricts the choice).
    """
    if fmt == "csv":
        return _csv(result)
    if fmt == "json":
        return _json(result)
    if fmt in ("table", "md", "latex"):
        return _paper(result, fmt)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# ----------------------------------------------------------------------------- machine formats


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _csv(result: CorrelationResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if _plain(row[c]) is None else (repr(row[c]) if isinstance(row[c], float) else row[c])
                         for c in result.columns])
    return buffer.getvalue()


def _json(result: CorrelationResult) -> str:
    rows = [{c: _plain(row[c]) for c in result.columns} for row in result.rows]
    return json.dumps(rows, indent=2) + "\n"


# ----------------------------------------------------------------------------- paper formats


def _settings_label(row: dict[str, Any]) -> str:
    return f"{row['preset']}, {row['weights']}, seed {row['seed']}, batch {row['batch_size']}"


def _truth_label(row: dict[str, Any]) -> str:
    epochs = "" if row["truth_epochs"] is None else f", {row['truth_epochs']} epochs"
    return f"{row['truth_source']}{epochs}, seed {row['truth_seed']}"


def _fmt(value: float) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _paper(result: CorrelationResult, fmt: str) -> str:
    rows = result.rows
    labels = {_settings_label(r) for r in rows}
    # A readable label can hide different settings (device, data, proxy settings): then add the hash.
    hashes_per_label: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for r in rows:
        hashes_per_label[(r["proxy"], r["dataset"], r["metric"], _settings_label(r), _truth_label(r))].add(
            r["settings_hash"])
    need_hash = any(len(h) > 1 for h in hashes_per_label.values())
    show_settings = len(labels) > 1 or need_hash
    truths = {_truth_label(r) for r in rows}
    show_truth = len(truths) > 1

    stat_cols = ["spearman", "kendall", "pearson"] + [topk_column(k) for k in result.top_k]
    headers = {"spearman": "ρ", "kendall": "τ", "pearson": "r"}
    latex_headers = {"spearman": r"$\rho$", "kendall": r"$\tau$", "pearson": "$r$"}
    for k in result.top_k:
        headers[topk_column(k)] = f"Top-{k:g}%"
        latex_headers[topk_column(k)] = f"Top-{k:g}\\%"
    best = _best_cells(rows, ["spearman", "kendall"] + [topk_column(k) for k in result.top_k])

    head = ["Proxy", "Dataset", "Metric", "Better", "n", "Excl."] + [
        (latex_headers if fmt == "latex" else headers)[c] for c in stat_cols]
    head += [b for b in result.by]
    if show_settings:
        head.append("Settings")
    if show_truth:
        head.append("Truth")
    body: list[list[str]] = []
    notes: list[str] = []
    for i, r in enumerate(rows):
        metric = r["metric"] + _METRIC_MARK.get(r.get("truth_orientation", "higher"), "")
        cells = [r["proxy"], r["dataset"], metric, "higher" if r["higher_is_better"] else "lower",
                 str(r["n"]), str(r["excluded"])]
        for c in stat_cols:
            text = _fmt(r[c])
            if result.bootstrap and c in ("spearman", "kendall") and math.isfinite(r.get(f"{c}_lo", math.nan)):
                text += f" [{_fmt(r[f'{c}_lo'])}, {_fmt(r[f'{c}_hi'])}]"
            if (i, c) in best and fmt != "table":
                text = f"\\textbf{{{text}}}" if fmt == "latex" else f"**{text}**"
            cells.append(text)
        cells += [str(r[b]) for b in result.by]
        if show_settings:
            cells.append(_settings_label(r) + (f" [{r['settings_hash'][:8]}]" if need_hash else ""))
        if show_truth:
            cells.append(_truth_label(r))
        if r["note"]:
            notes.append(f"{r['proxy']} / {r['dataset']} / {r['metric']}: {r['note']}")
        body.append(cells)

    caption = ["Correlation of each proxy with the ground truth over the architectures scored and measured "
               "(n pairs; Excl.: pairs left out for a non-finite or failed score)."
               + (f" 95% bootstrap intervals from {result.bootstrap} resamples (seed {result.seed})."
                  if result.bootstrap else ""),
               ORIENTATION_NOTE]
    marks = {r.get("truth_orientation", "higher") for r in rows}
    if "lower (negated)" in marks:
        caption.append(TRUTH_NEGATED_NOTE)
    if "none" in marks:
        caption.append(TRUTH_UNORIENTED_NOTE)
    if not show_settings and rows:
        caption.append(f"Scores: {next(iter(labels))}.")
    if not show_truth and rows:
        caption.append(f"Truth: {next(iter(truths))}.")
    if result.top_k:
        caption.append("Top-k%: share of the truly best k% that the proxy also ranks in its best k% "
                       "(ties at the cut shared).")

    numeric = set(range(4, 6 + len(stat_cols)))
    if fmt == "md":
        return _markdown(head, body, caption, notes, numeric)
    if fmt == "latex":
        return _latex(head, body, caption, notes, numeric)
    return _text(head, body, caption, notes, numeric)


def _best_cells(rows: list[dict[str, Any]], columns: list[str]) -> set[tuple[int, str]]:
    """(row index, column) of the largest value per dataset/metric block (only blocks of 2+ rows)."""
    blocks: dict[tuple[Any, Any], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.get("truth_orientation") == "none":  # no better direction: no best cell either
            continue
        blocks[(r["dataset"], r["metric"])].append(i)
    best = set()
    for members in blocks.values():
        if len(members) < 2:
            continue
        for c in columns:
            values = [(rows[i][c], i) for i in members if rows[i].get(c) is not None and math.isfinite(rows[i][c])]
            if values:
                top = max(v for v, _ in values)
                best.update((i, c) for v, i in values if round(v, 3) == round(top, 3))
    return best


def _text(head: list[str], body: list[list[str]], caption: list[str], notes: list[str], numeric: set[int]) -> str:
    widths = [max(len(h), *(len(row[j]) for row in body)) if body else len(h) for j, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if j in numeric else c.ljust(w)
                         for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [line(head)] + [line(row) for row in body]
    lines += [""] + caption + [f"note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _markdown(head: list[str], body: list[list[str]], caption: list[str], notes: list[str], numeric: set[int]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---:" if j in numeric else "---" for j in range(len(head))]
    out = [line(head), "| " + " | ".join(align) + " |"] + [line(row) for row in body]
    out += [""] + [" ".join(caption)]
    out += [f"- {n}" for n in notes] if notes else []
    return "\n".join(out) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text).replace("—", "--").replace("ρ", r"$\rho$").replace(
        "τ", r"$\tau$").replace("↓", r"$\downarrow$")


def _latex(head: list[str], body: list[list[str]], caption: list[str], notes: list[str], numeric: set[int]) -> str:
    def cell(text: str) -> str:
        # bold cells hold numbers, already LaTeX; everything else is escaped
        return text.replace("—", "--") if text.startswith("\\textbf{") else _tex(text)

    spec = "".join("r" if j in numeric else "l" for j in range(len(head)))
    header = [h if h.startswith(("$", "Top-")) else _tex(h) for h in head]  # stat headers are LaTeX
    out = [r"\begin{table}[t]", r"\centering", r"\caption{" + _tex(" ".join(caption)) + "}",
           r"\begin{tabular}{" + spec + "}", r"\toprule",
           " & ".join(header) + r" \\", r"\midrule"]
    previous = None
    for row in body:
        block = (row[1], row[2])
        if previous is not None and block != previous:
            out.append(r"\midrule")
        previous = block
        out.append(" & ".join(cell(c) for c in row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        out.append(r"\par\smallskip{\footnotesize " + "; ".join(_tex(n) for n in notes) + "}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"
