"""What ``proxybench combine`` shows: the summary table and the learning-curve plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_summary", "plot_learning_curves", "SUMMARY_FORMATS"]

SUMMARY_FORMATS = ("table", "md", "csv")


def _fmt(value: float) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _interval(row: dict[str, Any], column: str) -> str:
    lo, hi = row.get(column + "_lo"), row.get(column + "_hi")
    if lo is None or not math.isfinite(lo):
        return _fmt(row[column])
    return f"{_fmt(row[column])} [{_fmt(lo)}, {_fmt(hi)}]"


def render_summary(summary: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str = "table",
                   caption: str = "") -> str:
    """One line per (split, features, model, n): mean over splits with its 95 % interval."""
    head = ["split", "features", "model", "n", "splits", *columns]
    body = [[r["split_kind"], r["features"], r["model"], str(r["n"]), str(r["splits"]),
             *(_interval(r, c) if fmt != "csv" else repr(r[c]) for c in columns)] for r in summary]
    if fmt == "csv":
        lines = [",".join(head)] + [",".join(row) for row in body]
        return "\n".join(lines) + "\n"
    if fmt == "md":
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return (caption + "\n\n" if caption else "") + "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in body]
    return (caption + "\n" if caption else "") + "\n".join(lines) + "\n"


def plot_learning_curves(summary: Sequence[dict[str, Any]], path: Path, metric: str = "kendall",
                         title: str = "") -> Path:
    """Mean ``metric`` against n (log axis) per model, one panel per feature set, 95 % bands.

    Only the ``class`` split is drawn when present (the honest one); a dashed line per model
    shows the ``arch`` split where both were run, so the inflation is visible.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feature_sets = list(dict.fromkeys(r["features"] for r in summary))
    models = list(dict.fromkeys(r["model"] for r in summary))
    columns = min(3, len(feature_sets))
    rows = math.ceil(len(feature_sets) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.0 * rows), squeeze=False, sharey=True)
    colours = plt.get_cmap("tab10")
    label = {"kendall": "Kendall τ", "spearman": "Spearman ρ"}.get(metric, metric)
    for panel, features in enumerate(feature_sets):
        ax = axes[panel // columns][panel % columns]
        for m, model in enumerate(models):
            for kind, style in (("class", "-"), ("arch", "--")):
                points = sorted((r["n"], r[metric], r.get(metric + "_lo"), r.get(metric + "_hi")) for r in summary
                                if r["features"] == features and r["model"] == model and r["split_kind"] == kind)
                if not points:
                    continue
                n = [p[0] for p in points]
                ax.plot(n, [p[1] for p in points], style, marker="o", markersize=5, linewidth=2,
                        color=colours(m), label=f"{model}" + (" (split by string)" if kind == "arch" else ""))
                lo = [p[2] if p[2] is not None else float("nan") for p in points]
                hi = [p[3] if p[3] is not None else float("nan") for p in points]
                if kind == "class":
                    ax.fill_between(n, lo, hi, color=colours(m), alpha=0.15, linewidth=0)
        ax.set_xscale("log")
        shown_n = sorted({r["n"] for r in summary if r["features"] == features})
        ax.set_xticks(shown_n, [str(v) for v in shown_n])
        ax.minorticks_off()
        ax.set_title(features, fontsize=11, wrap=True)
        ax.set_xlabel("training architectures n")
        ax.grid(True, which="both", alpha=0.3)
        if panel % columns == 0:
            ax.set_ylabel(f"{label} on the test architectures")
    for extra in range(len(feature_sets), rows * columns):
        axes[extra // columns][extra % columns].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0.08 if len(labels) <= 4 else 0.14, 1, 0.95 if title else 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
