"""``proxybench correlate --plot``: scatter grids and the ρ heatmap (proxybench.stats.plots)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from proxybench_cli.main import cli
from builders import ARCHS, score_rows, truth_rows, write
from matplotlib.text import Text

from proxybench.stats import correlate
from proxybench.errors import InvalidSettingError
from proxybench.stats.plots import (
    DPI,
    SMALL_N,
    _slug,
    iter_figures,
    marker_style,
    plot_correlations,
    plot_groups,
    x_scale,
)
from proxybench.store import SCORES_SCHEMA
from proxybench.store.views import open_views
from proxybench.truth import TRUTH_SCHEMA

N = 60


@pytest.fixture()
def store(tmp_path):
    """Four proxies on 60 archs: wide (1e-3..1e5), narrow (0.1..10), lower-is-better, broken (3 excluded)."""
    rng = np.random.default_rng(0)
    acc = rng.uniform(10, 95, N).round(2)
    order = np.argsort(np.argsort(acc + rng.normal(scale=15, size=N)))  # a noisy ranking, 0..N-1
    wide = np.logspace(-3, 5, N)[order]
    narrow = np.linspace(0.1, 10, N)[order]
    broken = narrow.copy()
    broken[[3, 4, 5]] = [math.nan, math.inf, 2.0]
    rows = (score_rows("wide", wide) + score_rows("narrow", narrow) + score_rows("lower", -narrow, higher=False)
            + score_rows("broken", broken, statuses={5: "error"}))
    write(tmp_path / "res" / "scores" / "a.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "res" / "truth" / "t.parquet", truth_rows(acc), TRUTH_SCHEMA)
    return tmp_path / "res"


def figures(directory):
    with open_views(out=directory) as con:
        result = correlate(con, top_k=())
        return result, dict(iter_figures(con, result))


def test_x_scale_rule():
    assert x_scale(np.logspace(-3, 5, 50)) == ("log", {})
    assert x_scale(np.linspace(0.1, 10, 50)) == ("linear", {})
    assert x_scale(np.random.default_rng(0).normal(size=15625))[0] == "linear"  # zero-centred: tiny |x| is no span
    scale, kwargs = x_scale(np.concatenate([-np.logspace(-2, 4, 30), np.logspace(-2, 4, 30)]))
    assert scale == "symlog" and 0 < kwargs["linthresh"] < 1
    assert x_scale(np.zeros(5)) == ("linear", {})


def test_panels_titles_points_and_scales(store):
    result, figs = figures(store)
    assert list(figs) == ["scatter_cifar10_test_acc", "heatmap_spearman"]
    axes = [ax for ax in figs["scatter_cifar10_test_acc"].axes if ax.axison]
    assert len(axes) == len(result.rows) == 4
    by_proxy = {ax.get_title().splitlines()[0]: ax for ax in axes}
    assert set(by_proxy) == {"wide", "narrow", "lower", "broken"}
    for row in result.rows:
        ax = by_proxy[row["proxy"]]
        assert ax.get_title().splitlines()[1] == (
            f"ρ={row['spearman']:.3f}  τ={row['kendall']:.3f}  n={row['n']}")
        x = ax.lines[0].get_xdata()
        assert len(x) == row["n"] and np.isfinite(x).all()  # only the pairs the statistics used
    assert len(by_proxy["broken"].lines[0].get_xdata()) == N - 3
    assert by_proxy["wide"].get_xscale() == "log" and by_proxy["narrow"].get_xscale() == "linear"
    # lower-is-better: raw (un-negated) scores on a reversed axis
    assert by_proxy["lower"].xaxis_inverted() and not by_proxy["narrow"].xaxis_inverted()
    assert (by_proxy["lower"].lines[0].get_xdata() < 0).all()
    assert "lower is better" in by_proxy["lower"].get_xlabel()

    heat = figs["heatmap_spearman"].axes[0]
    cells = {t.get_text() for t in heat.texts}
    assert {f"{row['spearman']:.2f}\nn={row['n']}" for row in result.rows} <= cells
    assert heat.images[0].norm.vmin == -1 and heat.images[0].norm.vmax == 1


def test_files_are_pngs_and_byte_identical(store, tmp_path):
    with open_views(out=store) as con:
        result = correlate(con, top_k=())
        first = plot_correlations(con, result, tmp_path / "a" / "new")
        second = plot_correlations(con, result, tmp_path / "b")
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert [p.name for p in first] == ["scatter_cifar10_test_acc.png", "heatmap_spearman.png"]
    assert not tables  # the temporary pairs table is dropped
    with Image.open(first[0]) as image:
        assert image.format == "PNG" and image.size == (2 * round(3.2 * DPI), round((2 * 2.6 + 0.5) * DPI))
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()


def test_settings_groups_get_their_own_grid(tmp_path):
    acc = np.linspace(10, 90, 30)
    rows = score_rows("p", acc, seed=0) + score_rows("p", acc[::-1], seed=1) + score_rows("q", acc, seed=1)
    write(tmp_path / "scores" / "a.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc) + truth_rows(acc, metric="valid/acc"), TRUTH_SCHEMA)
    result, figs = figures(tmp_path)
    assert sorted(figs) == ["heatmap_spearman", "scatter_cifar10_test_acc_seed-0", "scatter_cifar10_test_acc_seed-1",
                            "scatter_cifar10_valid-acc_seed-0", "scatter_cifar10_valid-acc_seed-1"]
    assert [g.label for g in plot_groups(result)][:2] == ["seed=0", "seed=1"]
    titles = [ax.get_title() for ax in figs["scatter_cifar10_test_acc_seed-1"].axes if ax.axison]
    assert [t.splitlines()[1].split()[0] for t in titles] == ["ρ=-1.000", "ρ=1.000"]
    assert len(figs["heatmap_spearman"].axes[0].get_xticklabels()) == 4


def test_cli_plot(store, tmp_path):
    target = tmp_path / "plots" / "deep"
    result = CliRunner().invoke(cli, ["correlate", "--scores", str(store), "--truth", str(store), "--plot",
                                      str(target), "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr == f"2 plots written to {target}\n"
    assert result.stdout.startswith("proxy,dataset,metric")
    assert sorted(p.name for p in target.iterdir()) == ["heatmap_spearman.png", "scatter_cifar10_test_acc.png"]

    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["correlate", "--scores", str(store), "--truth", str(store), "--plot",
                                      str(blocker / "sub")], catch_exceptions=False)
    assert result.exit_code == 1 and result.output.startswith(f"Error: cannot write plots to {blocker / 'sub'}: ")
    assert len(result.output.splitlines()) == 1
    assert "--plot DIR" in CliRunner().invoke(cli, ["correlate", "-h"]).output


# ----------------------------------------------------------------------------- issue 13: fit for a paper


@pytest.fixture()
def settings_store(tmp_path):
    """Three settings with long values, a proxy with an outlier, and a proxy with an n = 3 overlap."""
    rng = np.random.default_rng(1)
    n = 200
    acc = rng.uniform(10, 95, n)
    rows = []
    for seed in (0, 1, 2):
        for proxy in ("synflow", "grad_norm", "jacob_cov_relu_with_a_long_name"):
            values = acc + rng.normal(scale=15, size=n)
            if proxy == "grad_norm":
                values[0] = 1e6  # one outlier
            part = score_rows(proxy, values, seed=seed, archs=ARCHS[:n])
            for r in part:
                r["preset"] = "naslib-reference-preset" if seed else "proxybench"
                r["weights"] = "train:asam,rho=2,epochs=5" if seed == 2 else "init"
            rows += part
    rows += score_rows("tiny_overlap", np.array([1.0, 2.0, 3.0]), seed=0, archs=ARCHS[:3])
    write(tmp_path / "scores" / "a.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc, archs=ARCHS[:n])
          + truth_rows(acc, metric="valid/acc", archs=ARCHS[:n]), TRUTH_SCHEMA)
    return tmp_path


def _texts_inside_canvas(figure):
    """Every title, label and cell text, and everything drawn (ticks included), lies inside the canvas."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    width, height = figure.canvas.get_width_height()
    texts = list(figure.texts)
    for ax in figure.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
    texts = [t for t in texts if t.get_visible() and t.get_text().strip()]
    assert texts
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= -0.5 and box.y0 >= -0.5 and box.x1 <= width + 0.5 and box.y1 <= height + 0.5, text.get_text()
    tight, canvas = figure.get_tightbbox(renderer), figure.bbox_inches
    assert tight.x0 >= -0.01 and tight.y0 >= -0.01 and tight.x1 <= canvas.x1 + 0.01 and tight.y1 <= canvas.y1 + 0.01
    return texts, renderer


def test_heatmap_labels_fit_do_not_overlap_and_show_n_with_small_n_cells_greyed(settings_store):
    result, figs = figures(settings_store)
    heat = figs["heatmap_spearman"]
    _, renderer = _texts_inside_canvas(heat)
    ax = heat.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
    assert len(boxes) == 6
    for a, b in zip(boxes, boxes[1:]):
        assert a.x1 <= b.x0, "column labels overprint"
    cells = [t.get_text() for t in ax.texts]
    for row in result.rows:
        if row["n"] >= SMALL_N:
            assert f"{row['spearman']:.2f}\nn={row['n']:,}" in cells
    tiny = [r for r in result.rows if r["proxy"] == "tiny_overlap"]
    assert tiny and all(r["n"] == 3 for r in tiny)
    assert sum(f"n=3 < {SMALL_N}" in c for c in cells) == len(tiny)
    # the small-n cells are not coloured by their ρ (masked in the image) and are hatched
    image = ax.images[0].get_array()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert image.mask[labels.index("tiny_overlap")].all()
    assert sum(p.get_hatch() == "///" for p in ax.patches) == len(tiny)


def test_scatter_titles_fit_and_markers_are_visible(settings_store):
    result, figs = figures(settings_store)
    for stem, figure in figs.items():
        if stem.startswith("scatter"):
            _texts_inside_canvas(figure)
            for ax in figure.axes:
                for line in ax.lines:
                    assert line.get_markersize() >= 3 and line.get_alpha() >= 0.5  # n = 200
                    assert line.get_markeredgewidth() == 0
    assert marker_style(50)["markersize"] > marker_style(5000)["markersize"] > 1
    assert marker_style(5000)["rasterized"] and not marker_style(50)["rasterized"]


def test_cost_metric_labels_fit(tmp_path):
    acc = np.linspace(10, 90, 40)
    write(tmp_path / "scores" / "a.parquet", score_rows("p", acc) + score_rows("q", -acc, higher=False), SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc, metric="latency:edgegpu"), TRUTH_SCHEMA)
    _, figs = figures(tmp_path)
    texts, _ = _texts_inside_canvas(figs["scatter_cifar10_latency-edgegpu"])
    assert any("lower is better" in t.get_text() for t in texts)


def test_rank_axes_plot_ranks_whose_pearson_is_the_panels_spearman(settings_store, tmp_path):
    with open_views(out=settings_store) as con:
        result = correlate(con, top_k=())
        figs = dict(iter_figures(con, result, axes="rank"))
        with pytest.raises(InvalidSettingError, match="rank"):
            list(iter_figures(con, result, axes="ranks"))
    checked = 0
    for stem, figure in figs.items():
        if not stem.startswith("scatter"):
            continue
        for ax in figure.axes:
            if not ax.lines:
                continue
            x, y = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
            n = len(x)
            assert sorted(x) == list(np.arange(1, n + 1)) and sorted(y) == list(np.arange(1, n + 1))
            rho = float(ax.get_title().splitlines()[-1].split()[0].removeprefix("ρ="))
            assert abs(np.corrcoef(x, y)[0, 1] - rho) < 5e-4
            assert ax.get_xscale() == "linear" and not ax.xaxis_inverted()
            checked += 1
    assert checked >= 9
    cli_out = tmp_path / "rank"
    ran = CliRunner().invoke(cli, ["correlate", "--scores", str(settings_store), "--truth", str(settings_store),
                                   "--plot", str(cli_out), "--plot-axes", "rank", "--format", "csv"],
                             catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    refused = CliRunner().invoke(cli, ["correlate", "--scores", str(settings_store), "--truth", str(settings_store),
                                       "--plot-axes", "rank"])
    assert refused.exit_code == 2 and "--plot-axes needs --plot DIR" in refused.output


def test_long_file_names_keep_whole_tokens_and_stay_unique(tmp_path):
    acc = np.linspace(10, 90, 30)
    rows = []
    for i, weights in enumerate(["train:asam,rho=2,epochs=5,lr=0.1,momentum=0.9,weight_decay=0.0005,schedule=cosine"
                                 f",holdout={k}" for k in (0, 1)]):
        part = score_rows("p", acc, seed=i)
        for r in part:
            r["weights"] = weights
            r["preset"] = "naslib-reference-preset-with-a-long-name"
        rows += part
    write(tmp_path / "scores" / "a.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc), TRUTH_SCHEMA)
    with open_views(out=tmp_path) as con:
        groups = plot_groups(correlate(con, top_k=()))
    stems = [g.stem for g in groups]
    assert len(set(stems)) == len(stems) == 2
    for group in groups:
        full = _slug("_".join(["scatter", group.dataset, group.metric]
                              + [f"{n}-{v}" for n, v in group.key.items() if n in ("weights", "seed")]))
        head, _, digest = group.stem.rpartition("_")
        assert len(group.stem) <= 120 and len(digest) == 10
        # the kept part is whole tokens of the full name: it ends where a token of the full name ends
        tokens = re.split(r"[_-]", full)
        kept = re.split(r"[_-]", head)
        assert kept == tokens[:len(kept)], (head, full)
