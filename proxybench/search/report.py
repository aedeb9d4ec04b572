"""What ``proxybench search report`` adds to the picks table: a Pareto plot and an OOD check of the picks.

* :func:`plot_pareto` draws the archive as the search saw it: every successfully measured
  candidate, coloured by the iteration that measured it, the non-dominated front as a step
  line and the picks labelled, so one can see whether the search moved the front and where
  the picks sit on it. It is written to ``RUN/pareto.png``.
* :func:`evaluate_picks_ood` gives each pick weights (an explicit, short weights recipe: the
  pick's own ``train`` recipe is hundreds of epochs) and measures its clean error and mean
  corruption error (:func:`proxybench.evaluation.evaluate_ood`), written to ``RUN/ood.parquet``.
  A search on proxies never looks at corrupted images, so this is the check that the picks
  are not brittle.

**Orientation of the plot.** Every objective is *plotted in the user's units and orientation*
(the raw proxy score, not the negated value the search minimises) and the axis of a
higher-is-better objective is *inverted* and labelled ``"<name>, higher is better (axis
inverted)"``; lower-is-better ones are labelled ``"<name> [unit], lower is better"``. So in
every panel the better architectures lie towards the lower left, the front has the familiar
shape, and the tick labels are values the user recognises (SynFlow 1e30, not −1e30). An axis
whose values span more than six orders of magnitude (the rule of
:func:`proxybench.search.select.log_columns`) is logarithmic, or ``symlog`` when some value
is not positive.

The objective values are those the picks were made from (``f_ar`` recomputed with the
archive's γ, as :mod:`proxybench.search.loop` does). The figure is built on an explicit Agg
canvas at a fixed size and dpi, and the PNG carries no software tag or timestamp, so the same
run gives a byte-identical file on one installation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from proxybench.errors import InvalidSettingError, StoreError
from proxybench.search.archive import RUN_KEY, Archive
from proxybench.search.loop import _gamma, _objective_matrix
from proxybench.search.problem import Objective
from proxybench.search.select import log_columns, non_dominated

__all__ = ["OOD_COLUMNS", "axis_label", "evaluate_picks_ood", "pareto_figure", "plot_pareto"]

_DPI = 100
_PNG_METADATA = {"Software": None}
_PANEL = (5.2, 4.2)  # inches of a single panel; a grid uses _GRID_PANEL per cell
_GRID_PANEL = 3.4
_UNITS = {"params": "M", "flops": "M MACs", "top1_error": "%", "mce": "%", "robustness": "pp"}

#: Columns of ``RUN/ood.parquet`` and of the dicts :func:`evaluate_picks_ood` returns.
OOD_COLUMNS: tuple[str, ...] = ("rank", "label", "arch", "candidate", "dataset", "weights", "resolution", "n_images",
                                "corruptions", "severities", "seed", "clean_error", "mce", "mce_sum")


def _load_run(out: Path) -> dict[str, Any]:
    run_json = out / "run.json"
    if not run_json.is_file():
        raise StoreError(f"{out} holds no search (no run.json); run proxybench search --out {out} first")
    return json.loads(run_json.read_text())


def _objectives(settings: Mapping[str, Any]) -> list[Objective]:
    """The run's objectives as recorded in ``run.json`` (:meth:`Objective.describe` read back)."""
    return [Objective(name=d["name"], kind=d["kind"], quantities=tuple(d["quantities"]), expensive=d["expensive"],
                      higher_is_better=bool(d.get("higher_is_better")), settings=dict(d.get("settings") or {}))
            for d in settings["objectives"]]


def axis_label(objective: Objective) -> str:
    """The axis label of an objective in the user's orientation (see the module docstring)."""
    if objective.higher_is_better:
        return f"{objective.name}, higher is better (axis inverted)"
    unit = _UNITS.get(objective.name)
    return f"{objective.name}{f' [{unit}]' if unit else ''}, lower is better"


def _scale(ax: Any, which: str, values: np.ndarray) -> None:
    """Log (all positive) or symlog axis for a column spanning more than six decades; else linear."""
    from matplotlib.ticker import FixedLocator, LogFormatterSciNotation, LogLocator

    finite = values[np.isfinite(values)]
    if finite.size == 0 or not log_columns(finite[:, None])[0]:
        return
    set_scale, axis = (ax.set_xscale, ax.xaxis) if which == "x" else (ax.set_yscale, ax.yaxis)
    if np.all(finite > 0):
        set_scale("log")
        axis.set_major_locator(LogLocator(numticks=7))  # SynFlow spans ~30 decades: keep labels apart
    else:
        nonzero = np.abs(finite[finite != 0])
        linthresh = float(nonzero.min())
        # a linear region as wide as a tick gap keeps the "0" label clear of the ±linthresh ones
        decades = float(np.log10(nonzero.max() / linthresh))
        set_scale("symlog", linthresh=linthresh, linscale=max(1.0, decades / 6.0))
        # 0 and powers of ten outside the linear region only: a decade tick inside it would sit
        # next to the 0 tick
        top = float(nonzero.max())
        powers = [float(t) for t in LogLocator(numticks=7).tick_values(linthresh, top) if linthresh <= t <= top * 10]
        ticks = sorted({0.0, *(p for p in powers if np.any(finite > 0)), *(-p for p in powers if np.any(finite < 0))})
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(LogFormatterSciNotation(base=10, linthresh=linthresh))


def _panel(ax: Any, F: np.ndarray, raw: np.ndarray, iters: np.ndarray, labels: Sequence[str | None],
           objs: Sequence[Objective], i: int, j: int, cmap: Any, norm: Any) -> None:
    """One scatter of objective ``i`` (x) against ``j`` (y), front and picks included."""
    x, y = raw[:, i], raw[:, j]
    ax.scatter(x, y, c=iters, cmap=cmap, norm=norm, s=16, linewidths=0, zorder=2)
    if len(F):
        front = non_dominated(F[:, [i, j]])
        # order along the front by the minimised x (then y): in the plotted, possibly inverted,
        # coordinates "steps-post" then traces the boundary of the dominated region
        front = front[np.lexsort((F[front, j], F[front, i]))]
        ax.plot(x[front], y[front], drawstyle="steps-post", color="black", linewidth=1.1, zorder=3,
                label="non-dominated front")
        ax.scatter(x[front], y[front], facecolors="none", edgecolors="black", s=34, linewidths=0.9, zorder=4)
    for k, label in enumerate(labels):
        if label is None:
            continue
        ax.scatter([x[k]], [y[k]], marker="*", s=140, color="crimson", edgecolors="black", linewidths=0.5, zorder=5)
        ax.annotate(label, (x[k], y[k]), xytext=(6, 6), textcoords="offset points", fontsize=8, zorder=6,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "0.6", "alpha": 0.85})
    _scale(ax, "x", x)
    _scale(ax, "y", y)
    if objs[i].higher_is_better:
        ax.invert_xaxis()
    if objs[j].higher_is_better:
        ax.invert_yaxis()
    ax.set_xlabel(axis_label(objs[i]), fontsize=8)
    ax.set_ylabel(axis_label(objs[j]), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, linewidth=0.4, alpha=0.5)


def plot_pareto(out: str | os.PathLike[str], path: str | os.PathLike[str] | None = None,
                objectives: str | Sequence[str] | None = None) -> Path:
    """Write the PNG of :func:`pareto_figure` (default ``out/pareto.png``).

    The file goes through a temporary name and a rename, and carries no software tag or
    timestamp: drawing the same run twice gives the same bytes.

    Args:
        out: The run directory.
        path: The PNG to write (default ``out/pareto.png``).
        objectives: As :func:`pareto_figure`.

    Returns:
        The path written.

    Raises:
        StoreError: ``out`` holds no search, or the file cannot be written.
        InvalidSettingError: An unknown objective name, or fewer than two.
    """
    out = Path(out)
    figure = pareto_figure(out, objectives)
    target = Path(path) if path is not None else out / "pareto.png"
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(tmp, dpi=_DPI, format="png", metadata=_PNG_METADATA)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}; choose another path") from None
    return target


def pareto_figure(out: str | os.PathLike[str], objectives: str | Sequence[str] | None = None) -> Any:
    """A matplotlib :class:`~matplotlib.figure.Figure` (Agg canvas) of the archive of the search in ``out``.

    Every candidate with status ``ok`` is a dot coloured by its iteration (colour bar: 0 is
    the initial sample); failed candidates have no values and are not drawn, their number is
    in the title. The non-dominated front *of the panel's two objectives* is a black step line
    through circled points (with more than two objectives a point off that line can still be
    on the run's front through a third objective); the picks (``selected``) are red stars
    labelled ``pick-k``. Values are in the user's orientation: a higher-is-better objective
    is plotted as the raw score on an inverted axis (module docstring).

    Args:
        out: The run directory.
        objectives: Names of the objectives to plot (a list or ``"a,b,c"``), at least two
            (default: the first two of the run). With more than two, a lower-triangular grid
            of every pair.

    Raises:
        StoreError: ``out`` holds no search.
        InvalidSettingError: An unknown objective name, or fewer than two.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    out = Path(out)
    settings = _load_run(out)
    objs = _objectives(settings)
    names = [o.name for o in objs]
    if isinstance(objectives, str):
        objectives = [n.strip() for n in objectives.split(",") if n.strip()]
    wanted = list(objectives) if objectives is not None else names[:2]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise InvalidSettingError(f"the run in {out} has no objective {unknown}; it has {', '.join(names)}")
    if len(wanted) < 2 or len(set(wanted)) != len(wanted):
        raise InvalidSettingError(f"plot at least two different objectives, got {wanted}; the run has "
                                  f"{', '.join(names)}")

    rows = Archive(out, names).rows()
    ok = [r for r in rows if r["status"] == "ok"]
    n_failed = len(rows) - len(ok)
    gamma = _gamma(rows, objs)
    F_all = _objective_matrix(ok, objs, gamma if gamma is not None else 1.0) if ok else np.zeros((0, len(objs)))
    cols = [names.index(n) for n in wanted]
    F = F_all[:, cols]
    chosen = [objs[c] for c in cols]
    sign = np.array([-1.0 if o.higher_is_better else 1.0 for o in chosen])
    raw = F * sign  # back to the user's orientation (problem.minimised negated higher-is-better ones)
    iters = np.array([r["iteration"] for r in ok], dtype=float)
    labels = [r["arch_label"] if r["selected"] else None for r in ok]

    m = len(chosen)
    if m == 2:
        figure = Figure(figsize=(_PANEL[0] + 1.0, _PANEL[1]), dpi=_DPI)
        pairs = {(0, 1): (1, 1, 1)}
    else:
        side = _GRID_PANEL * (m - 1)
        figure = Figure(figsize=(side + 1.0, side), dpi=_DPI)
        pairs = {(i, j): (m - 1, m - 1, (j - 1) * (m - 1) + i + 1) for i, j in combinations(range(m), 2)}
    FigureCanvasAgg(figure)
    cmap = colormaps["viridis"]
    last = int(max(iters.max() if iters.size else 0, 1))
    norm = Normalize(vmin=0, vmax=last)
    axes = []
    for (i, j), where in pairs.items():
        ax = figure.add_subplot(*where)
        _panel(ax, F, raw, iters, labels, chosen, i, j, cmap, norm)
        axes.append(ax)
    bar = figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, fraction=0.05, pad=0.03)
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    bar.set_label("iteration (0 = initial sample)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    n_picks = sum(label is not None for label in labels)
    figure.suptitle(f"{settings.get('run_id', out.name)} · {settings.get('space')} · {len(ok)} candidates drawn, "
                    f"{n_failed} failed (not drawn) · {n_picks} picks", fontsize=9)
    return figure


def _picks(out: Path) -> list[dict[str, Any]]:
    picks_dir = out / "picks"
    found = [json.loads(p.read_text()) for p in picks_dir.glob("*.json")] if picks_dir.is_dir() else []
    return sorted(found, key=lambda p: int(p["rank"]))


def evaluate_picks_ood(
    out: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    n_images: int = 1000,
    corruptions: str | Sequence[str] | None = None,
    severities: str | Sequence[int] | None = None,
    device: str | None = "cpu",
    seed: int = 0,
    weights: Any = None,
) -> list[dict[str, Any]]:
    """Clean error and mCE of every pick of the search in ``out``, also written to ``out/ood.parquet``.

    Each pick is built from the run's space under ``seed`` and given ``weights``
    (:func:`proxybench.search.measures.build_trained`, the same path as the search's trained
    measure, so trained weights are shared through the provider's cache), then evaluated
    on the first ``n_images`` test images of the run's dataset, clean and under every
    (corruption, severity) (:func:`proxybench.search.measures.measure_ood`).

    ``weights`` must be given: the pick's own recipe (``picks/<k>.json`` → ``train``) is a full
    training of 100-200 epochs, not something a report should start implicitly.

    Args:
        out: The run directory.
        data_dir: Local datasets (as ``--data-dir``).
        n_images: Test images per corruption.
        corruptions, severities: As :func:`~proxybench.evaluation.evaluate_ood` (default: all 15, 1..5).
        device: Torch device of the training and the evaluation.
        seed: Seed of the network's initialisation, of its training and of the corruptions.
        weights: A weights spec (``train:sgd,steps=50``) or provider
            (:func:`proxybench.weights.get_weights_provider`).

    Returns:
        One dict per pick in rank order, with the keys of :data:`OOD_COLUMNS` (errors in percent;
        ``mce_sum`` is the FlatNAS paper's sum over severities, see :mod:`proxybench.evaluation`).

    Raises:
        InvalidSettingError: No ``weights``, or bad corruptions/severities/n_images.
        StoreError: ``out`` holds no search, or ``ood.parquet`` cannot be written.
    """
    import pyarrow as pa

    from proxybench.data import load_images
    from proxybench.data.corruptions import parse_corruptions
    from proxybench.evaluation import parse_severities
    from proxybench.search.measures import build_trained, measure_ood
    from proxybench.spaces import get_space
    from proxybench.store.atomic import write_parquet_atomically
    from proxybench.weights import get_weights_provider

    if weights is None or (isinstance(weights, str) and not weights.strip()):
        raise InvalidSettingError("--ood needs --weights SPEC (e.g. --weights train:sgd,steps=50): the picks' own "
                                  "training recipe is far too long to run for a report")
    out = Path(out)
    settings = _load_run(out)
    # check everything cheap before the first training starts
    names = parse_corruptions(corruptions)
    sev = parse_severities(severities)
    if isinstance(n_images, bool) or int(n_images) < 1:
        raise InvalidSettingError(f"n_images must be at least 1, got {n_images}")
    provider = get_weights_provider(weights)
    # the space as the search configured it (OFA's resolutions, supernet weights; run.json's space_settings)
    space = get_space(settings["space"], **(settings.get("space_settings") or {}))
    dataset = settings.get("dataset", "cifar10")
    picks = _picks(out)
    source = load_images(dataset, "test", data_dir=data_dir) if picks else None

    rows: list[dict[str, Any]] = []
    for pick in picks:
        arch = pick["arch"]
        net = build_trained(space, arch, provider, dataset, data_dir=data_dir, seed=seed, device=device)
        result = measure_ood(net, space, arch, provider, dataset, data_dir=data_dir, n_images=n_images, seed=seed,
                             device=device, corruptions=names, severities=sev, source=source,
                             label=pick.get("label"))
        rows.append({
            "rank": int(pick["rank"]), "label": pick.get("label", f"pick-{pick['rank']}"), "arch": pick["arch"],
            "candidate": pick.get("candidate"), "dataset": dataset, "weights": provider.describe(),
            "resolution": int(result.resolution), "n_images": int(result.n), "corruptions": ",".join(names),
            "severities": ",".join(str(s) for s in sev), "seed": int(seed), "clean_error": float(result.clean_error),
            "mce": float(result.mce), "mce_sum": float(result.mce_sum),
        })

    schema = pa.schema([
        pa.field("rank", pa.int64()), pa.field("label", pa.string()), pa.field("arch", pa.string()),
        pa.field("candidate", pa.int64()), pa.field("dataset", pa.string()), pa.field("weights", pa.string()),
        pa.field("resolution", pa.int64()), pa.field("n_images", pa.int64()), pa.field("corruptions", pa.string()),
        pa.field("severities", pa.string()), pa.field("seed", pa.int64()), pa.field("clean_error", pa.float64()),
        pa.field("mce", pa.float64()), pa.field("mce_sum", pa.float64()),
    ])
    table = pa.Table.from_pylist(rows, schema=schema)
    meta = {"run_id": settings.get("run_id"), "space": settings["space"], "device": device,
            "ce": "mean over severities (FlatNAS code); mce_sum: the paper's sum over severities"}
    write_parquet_atomically(table, out / "ood.parquet", {"proxybench.search.ood": json.dumps(meta, sort_keys=True),
                                                          RUN_KEY: json.dumps(settings, sort_keys=True, default=str)})
    return rows
