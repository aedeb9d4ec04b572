"""PNG figures of a :class:`~proxybench.stats.correlation.CorrelationResult`: scatter grids and a ρ heatmap.

:func:`plot_correlations` writes

* one **scatter grid** per (dataset, metric, settings group): one panel per result row
  (proxy), the proxy's raw score on x against the truth value on y, only the pairs the
  statistics used (status ``ok``, both finite). The panel title carries the row's ρ, τ and
  n from the result, so the numbers are the table's. A *settings group* is a result row's
  group columns without the proxy's own (``proxy``, ``higher_is_better``,
  ``settings_hash``): preset, weights, seed, batch size, truth epochs/seed/source and any
  ``by`` column. Each panel is exactly one correlation group, so a scatter never mixes
  settings.
* one **heatmap** (``heatmap_spearman.png``): Spearman ρ of every proxy (rows) for every
  (dataset, metric[, settings]) column, ρ and n written in each cell, a diverging colormap
  centred at 0 (vmin −1, vmax 1). A cell whose n is below :data:`SMALL_N` is not coloured
  by its ρ: it is grey and hatched and says ``n < 30``, so a ρ = 1.00 from three
  architectures does not look like the strongest result. The figure is sized to its labels:
  column labels put one setting per line (long values wrapped at ``,``/``=``/``:``), and
  every label stays inside the canvas.

**Axes** (``axes``; ``correlate --plot-axes``): ``value`` (the default) plots the scores and
the truth as stored; ``rank`` plots their ranks instead (1 = worst, n = best, ties averaged,
after the orientation below), so one outlier cannot squash the rest of the cloud, and the
Pearson correlation of the plotted points is the panel's Spearman ρ. Markers are edge-less,
sized and made transparent according to the panel's n (:func:`marker_style`), and rasterized
in the vector sense (one image, not one path per point).

**x scale** (:func:`x_scale`, decided from each panel's data): let *hi* be the largest
``|score|`` and *lo* the 10th percentile of the non-zero ``|score|`` values. When
``hi / lo > 10**3`` (more than three orders of magnitude) the axis is logarithmic if every
score is positive, otherwise ``symlog`` with a linear region of half-width *lo*; else it is
linear. (The percentile keeps a zero-centred proxy, whose smallest magnitudes are always
tiny, on a linear axis.)

**Orientation.** Scores are plotted as stored; for a lower-is-better proxy the x axis is
reversed and labelled so ("score, lower is better →"), so in every panel better-ranked
architectures are to the right and a positive ρ looks like an increasing cloud. Truth is
plotted as stored too; for a cost (``latency:*``, ``energy:*``, negated by ``correlate``) the
y axis is reversed, so better architectures are at the top in every panel.

Titles are wrapped, never clipped, and figure titles get the top margin their lines need.
File names keep whole tokens (:func:`plot_groups`: a name too long is cut at a ``_`` or ``-``
boundary and made unique with a digest).

Figures are built with :class:`matplotlib.figure.Figure` on an explicit Agg canvas (no
pyplot, no display, no global backend change); sizes and dpi are fixed and the PNG carries
no ``Software`` tag or timestamp, so the same inputs give byte-identical files on one
installation. The points come from one DuckDB query per scatter grid, over the join of
:func:`proxybench.stats.correlation.create_joined_pairs`.
"""

from __future__ import annotations

import glob
import hashlib
import math
import re
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from proxybench.stats.correlation import GROUP_COLUMNS, CorrelationResult, create_joined_pairs, truth_orientation

__all__ = ["AXES", "SMALL_N", "PlotGroup", "heatmap_figure", "iter_figures", "marker_style", "plot_correlations",
           "plot_groups", "scatter_figure", "x_scale"]

#: Group columns that tell the panels of one scatter grid apart (the rest define the grid).
PANEL_COLUMNS = ("proxy", "higher_is_better", "settings_hash")

#: Orders of magnitude beyond which the x axis becomes logarithmic (see the module docstring).
LOG_DECADES = 3.0

#: Heatmap cells with fewer pairs are greyed and hatched (their ρ is too noisy to colour).
SMALL_N = 30

#: What the scatter axes show: the values as stored, or their ranks.
AXES = ("value", "rank")

#: Longest file stem before it is cut at a token boundary and given a digest.
MAX_STEM = 120

DPI = 100
PANEL_SIZE = (3.2, 2.6)  # inches per scatter panel
_PNG_METADATA = {"Software": None}
_TABLE = "pb_plot_pairs"


@dataclass
class PlotGroup:
    """One scatter grid: the result rows (panels) sharing a dataset, metric and settings.

    Attributes:
        dataset, metric: Of every row.
        key: The grid's group columns (everything but :data:`PANEL_COLUMNS`) and values.
        rows: The result rows, one panel each, in the result's order.
        label: The settings that differ between grids (``"seed=1"``), or ``""``.
        stem: The file name without ``.png``: ``scatter_<dataset>_<metric>[_<label>]``, slugged.
    """

    dataset: str
    metric: str
    key: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    label: str = ""
    stem: str = ""


def plot_correlations(
    con: duckdb.DuckDBPyConnection, result: CorrelationResult, out_dir: str | Path, *, heatmap: bool = True,
    axes: str = "value",
) -> list[Path]:
    """Write the scatter grids and the heatmap of ``result`` as PNGs into ``out_dir`` (created if missing).

    Args:
        con: The connection ``result`` was computed on (views ``scores`` and ``truth``).
        result: From :func:`proxybench.stats.correlate`.
        out_dir: Folder for the files; existing files of the same names are replaced.
        heatmap: Also write ``heatmap_spearman.png``.
        axes: ``value`` or ``rank`` (module docstring).

    Returns:
        The paths written: the scatter grids in the result's order, then the heatmap.

    Raises:
        InvalidSettingError: ``axes`` is neither ``value`` nor ``rank``.
        OSError: ``out_dir`` cannot be created or written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, figure in iter_figures(con, result, heatmap=heatmap, axes=axes):
        path = out / f"{stem}.png"
        figure.savefig(path, dpi=DPI, format="png", metadata=_PNG_METADATA)
        written.append(path)
    return written


def iter_figures(
    con: duckdb.DuckDBPyConnection, result: CorrelationResult, *, heatmap: bool = True, axes: str = "value"
) -> Iterator[tuple[str, Any]]:
    """``(file stem, matplotlib Figure)`` for every scatter grid, then the heatmap; nothing is saved.

    The joined pairs live in a temporary table while the iterator runs; it is dropped when the
    iterator finishes or is closed.
    """
    _check_axes(axes)
    groups = plot_groups(result)
    if groups:
        create_joined_pairs(
            con, _TABLE,
            dataset=sorted({g.dataset for g in groups}),
            metric=sorted({g.metric for g in groups}),
            proxies=[glob.escape(p) for p in dict.fromkeys(r["proxy"] for g in groups for r in g.rows)],
            by=result.by,
        )
    try:
        for group in groups:
            yield group.stem, scatter_figure(con, group, axes=axes)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_TABLE}")
    if heatmap and groups:
        yield "heatmap_spearman", heatmap_figure(result, groups)


def plot_groups(result: CorrelationResult) -> list[PlotGroup]:
    """The scatter grids of ``result``: its rows grouped by every group column but :data:`PANEL_COLUMNS`."""
    names = [name for name, _ in GROUP_COLUMNS] + list(result.by)
    grid_names = [n for n in names if n not in PANEL_COLUMNS]
    groups: dict[tuple[Any, ...], PlotGroup] = {}
    for row in result.rows:
        key = tuple(row[n] for n in grid_names)
        if key not in groups:
            groups[key] = PlotGroup(row["dataset"], row["metric"], dict(zip(grid_names, key)))
        groups[key].rows.append(row)
    varying = [n for n in grid_names if n not in ("dataset", "metric")
               and len({g.key[n] for g in groups.values()}) > 1]
    stems: set[str] = set()
    for group in groups.values():
        group.label = ", ".join(f"{n}={group.key[n]}" for n in varying)
        stem = _slug("_".join(["scatter", group.dataset, group.metric] + [f"{n}-{group.key[n]}" for n in varying]))
        if stem in stems or len(stem) > MAX_STEM:
            digest = hashlib.sha256(repr(sorted(group.key.items())).encode()).hexdigest()[:10]
            stem = f"{_cut_at_token(stem, MAX_STEM - 11)}_{digest}"
        stems.add(stem)
        group.stem = stem
    return list(groups.values())


def x_scale(values: np.ndarray) -> tuple[str, dict[str, float]]:
    """``("linear" | "log" | "symlog", kwargs for set_xscale)`` for these finite scores (module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    magnitudes = np.abs(values[values != 0])
    if magnitudes.size == 0:
        return "linear", {}
    hi = float(magnitudes.max())
    lo = float(np.percentile(magnitudes, 10))
    if lo > 0 and hi / lo > 10**LOG_DECADES:
        if values.min() > 0:
            return "log", {}
        return "symlog", {"linthresh": lo}
    return "linear", {}


def marker_style(n: int) -> dict[str, Any]:
    """Marker size (points) and alpha for a panel of ``n`` points: big and opaque for a few
    points, smaller and more transparent as they start to overlap; always edge-less."""
    if n <= 100:
        size, alpha = 5.0, 0.8
    elif n <= 1000:
        size, alpha = 3.5, 0.55
    elif n <= 10000:
        size, alpha = 2.5, 0.35
    else:
        size, alpha = 2.0, 0.2
    return {"marker": "o", "markersize": size, "alpha": alpha, "markeredgewidth": 0, "rasterized": n > 500}


def scatter_figure(con: duckdb.DuckDBPyConnection, group: PlotGroup, *, axes: str = "value") -> Any:
    """The scatter grid of ``group``; needs the pairs table that :func:`iter_figures` creates."""
    _check_axes(axes)
    suptitle = " · ".join(p for p in (group.dataset, group.metric, group.label) if p)
    cols = max(1, math.ceil(math.sqrt(len(group.rows))))
    title_lines = textwrap.wrap(suptitle, width=max(30, int(PANEL_SIZE[0] * cols * 10)), break_long_words=True,
                                break_on_hyphens=False) or [""]
    figure, canvas_axes = _grid(len(group.rows), title_lines=len(title_lines))
    points = _points(con, group)
    several = _proxies_with_several_settings(group.rows)
    cost = truth_orientation(group.metric) == "lower (negated)"
    for ax, row in zip(canvas_axes, group.rows):
        x, y = points.get((row["proxy"], row["higher_is_better"], row["settings_hash"]), (np.empty(0), np.empty(0)))
        name = row["proxy"] + (f" [{str(row['settings_hash'])[:8]}]" if row["proxy"] in several else "")
        title = textwrap.wrap(name, width=34, break_long_words=True, break_on_hyphens=False)
        ax.set_title("\n".join(title + [_stats_text(row)]), fontsize=9, wrap=False)
        ax.tick_params(labelsize=7)
        if axes == "rank":
            if x.size:  # oriented ranks: better is right and up, no reversed axes
                x = _ranks(x if row["higher_is_better"] else -x)
                y = _ranks(-y if cost else y)
            ax.set_ylabel(f"{group.metric} rank, better ↑", fontsize=8)
            ax.set_xlabel("score rank, better →", fontsize=8)
        elif cost:
            ax.invert_yaxis()  # better (faster, cheaper) up, as for accuracies
            ax.set_ylabel(f"{group.metric}\nlower is better ↑ (axis reversed)", fontsize=8)
        else:
            ax.set_ylabel(group.metric, fontsize=8)
        if x.size:
            if axes == "value":
                scale, kwargs = x_scale(x)
                ax.set_xscale(scale, **kwargs)
                if scale != "linear":
                    ax.set_xticks(_decade_ticks(x, kwargs.get("linthresh")))
            ax.plot(x, y, linestyle="none", color="#1f5fa8", in_layout=False, **marker_style(x.size))
        else:
            ax.text(0.5, 0.5, "no usable pairs", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        if axes == "rank":
            pass
        elif row["higher_is_better"]:
            ax.set_xlabel("score, higher is better →", fontsize=8)
        else:
            ax.invert_xaxis()
            ax.set_xlabel("score, lower is better → (axis reversed)", fontsize=8)
    for ax in canvas_axes[len(group.rows):]:
        ax.set_axis_off()
    figure.suptitle("\n".join(title_lines), fontsize=11)
    return figure


def heatmap_figure(result: CorrelationResult, groups: Sequence[PlotGroup] | None = None) -> Any:
    """Spearman ρ, proxies × (dataset, metric[, settings]), ρ and n in the cells, RdBu centred at 0.

    Cells with n < :data:`SMALL_N` are grey and hatched; the figure is sized to its labels.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    groups = plot_groups(result) if groups is None else list(groups)
    several = set().union(*(_proxies_with_several_settings(g.rows) for g in groups)) if groups else set()

    def row_label(row: dict[str, Any]) -> str:
        return row["proxy"] + (f" [{str(row['settings_hash'])[:8]}]" if row["proxy"] in several else "")

    labels = list(dict.fromkeys(row_label(r) for g in groups for r in g.rows))
    labels.sort(key=str.lower)
    index = {label: i for i, label in enumerate(labels)}
    values = np.full((len(labels), len(groups)), np.nan)
    counts = np.zeros((len(labels), len(groups)), dtype=np.int64)
    for j, group in enumerate(groups):
        for row in group.rows:
            values[index[row_label(row)], j] = row["spearman"]
            counts[index[row_label(row)], j] = int(row["n"] or 0)
    columns = [_column_label(g) for g in groups]
    small = (counts < SMALL_N) & ~np.isnan(values)

    # size from the labels: ~0.075 in per character at 8 pt, 0.15 in per line
    col_chars = max((len(line) for c in columns for line in c.splitlines()), default=8)
    col_lines = max((len(c.splitlines()) for c in columns), default=1)
    row_chars = max((len(label) for label in labels), default=8)
    cell_w = max(0.85, 0.062 * col_chars + 0.2)
    width = 0.075 * row_chars + 0.4 + cell_w * max(len(groups), 1) + 1.3
    height = 0.15 * col_lines + 0.6 + 0.5 * max(len(labels), 1) + (0.3 if small.any() else 0.0)
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    import matplotlib

    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#e6e6e6")
    shown = np.where(small, np.nan, values)
    image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=-1.0, vmax=1.0, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            value, n = values[i, j], counts[i, j]
            if math.isnan(value):
                text, colour = "—", "black"
            elif small[i, j]:
                text, colour = f"{value:.2f}\nn={n} < {SMALL_N}", "#555555"
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#b0b0b0",
                                       linewidth=0))
            else:
                text = f"{value:.2f}\nn={n:,}"
                colour = "white" if abs(value) > 0.6 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour, linespacing=1.1,
                    fontstyle="italic" if small[i, j] else "normal")
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    figure.colorbar(image, ax=ax, label="Spearman ρ", shrink=0.8)
    if small.any():
        ax.set_xlabel(f"hatched grey: fewer than {SMALL_N} architectures, ρ not coloured", fontsize=8)
    return figure


# ----------------------------------------------------------------------------- helpers


def _grid(n: int, title_lines: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    top = 0.7 + 0.2 * title_lines  # inches above the first row: the figure title's lines
    width, height = PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows + 0.5 + 0.2 * (title_lines - 1)
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    # A fixed layout (margins in inches): constrained layout would triple the drawing time.
    figure.subplots_adjust(left=0.8 / width, right=1 - 0.2 / width, bottom=0.5 / height, top=1 - top / height,
                           wspace=0.9 / (PANEL_SIZE[0] - 0.9), hspace=0.95 / (PANEL_SIZE[1] - 0.95))
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    return figure, axes


def _points(con: duckdb.DuckDBPyConnection, group: PlotGroup) -> dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]]:
    """The usable pairs of every panel of ``group``, raw scores (un-negated), in one query."""
    names = list(group.key)
    where = " AND ".join(f"{n} IS NOT DISTINCT FROM ?" for n in names)  # names from GROUP/BY_COLUMNS only
    arrays = con.execute(
        f"SELECT proxy, higher_is_better, settings_hash, x, y_raw AS y FROM {_TABLE} WHERE usable AND {where} "
        "ORDER BY proxy, higher_is_better, settings_hash, arch",
        [group.key[n] for n in names],
    ).fetchnumpy()
    proxy, hib, settings = (np.asarray(arrays[c], dtype=object) for c in ("proxy", "higher_is_better",
                                                                           "settings_hash"))
    x = np.asarray(arrays["x"], dtype=np.float64)
    y = np.asarray(arrays["y"], dtype=np.float64)
    if x.size == 0:
        return {}
    change = (proxy[1:] != proxy[:-1]) | (hib[1:] != hib[:-1]) | (settings[1:] != settings[:-1])
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    ends = np.concatenate([starts[1:], [x.size]])
    out = {}
    for lo, hi in zip(starts, ends):
        higher = bool(hib[lo])
        raw = x[lo:hi] if higher else -x[lo:hi]  # undo the orientation: negation is exact
        out[(proxy[lo], higher, settings[lo])] = (raw + 0.0, y[lo:hi])
    return out


def _proxies_with_several_settings(rows: Sequence[dict[str, Any]]) -> set[str]:
    seen: dict[str, set[tuple[Any, Any]]] = {}
    for row in rows:
        seen.setdefault(row["proxy"], set()).add((row["higher_is_better"], row["settings_hash"]))
    return {p for p, s in seen.items() if len(s) > 1}


def _stats_text(row: dict[str, Any]) -> str:
    def fmt(value: Any) -> str:
        return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"

    return f"ρ={fmt(row['spearman'])}  τ={fmt(row['kendall'])}  n={row['n']}"


def _ranks(values: np.ndarray) -> np.ndarray:
    """1 (lowest) .. n (highest), ties averaged (as Spearman's ρ ranks)."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(values, method="average"), dtype=np.float64)


def _check_axes(axes: str) -> None:
    if axes not in AXES:
        from proxybench.errors import InvalidSettingError

        raise InvalidSettingError(f"plot axes must be one of {', '.join(AXES)}, got {axes!r}")


def _column_label(group: PlotGroup) -> str:
    """A heatmap column: dataset, metric, then one setting per line, long values wrapped at , = : -."""
    lines = [group.dataset, group.metric]
    for part in group.label.split(", ") if group.label else []:
        lines += textwrap.wrap(re.sub(r"([,=:])(?=\S)", r"\1 ", part), width=22, break_on_hyphens=True,
                               break_long_words=True) or [part]
    return "\n".join(line.replace(", ", ",").replace(": ", ":").replace("= ", "=") for line in lines)


def _cut_at_token(stem: str, most: int) -> str:
    """``stem`` cut to at most ``most`` characters at a ``_`` (else ``-``) boundary, never mid-token."""
    if len(stem) <= most:
        return stem
    head = stem[:most + 1]
    for sep in ("_", "-"):
        cut = head.rfind(sep)
        if cut > 0:
            return stem[:cut].rstrip("-._")
    return stem[:most]


def _slug(text: str) -> str:
    """File-name-safe: runs of anything but letters, digits, ``.``, ``_``, ``-`` become ``-``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return slug or "plot"


def _decade_ticks(x: np.ndarray, linthresh: float | None, most: int = 6) -> list[float]:
    """At most ``most`` powers of ten (and 0 for symlog) over the data, so log tick labels never overlap."""
    magnitude = np.abs(x[x != 0])
    low = linthresh if linthresh is not None else float(magnitude.min())
    top = float(magnitude.max())
    decades = list(range(math.ceil(math.log10(low)), math.floor(math.log10(top)) + 1)) or [round(math.log10(top))]
    if linthresh is None:
        step = max(1, math.ceil(len(decades) / most))
        return [10.0 ** k for k in decades[::step]]
    sides = [1.0] * bool((x > 0).any()) + [-1.0] * bool((x < 0).any())
    step = max(1, math.ceil(len(decades) * len(sides) / max(1, most - 1)))
    return sorted([0.0] + [sign * 10.0 ** k for sign in sides for k in decades[::step]])
