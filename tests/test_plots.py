"""``proxybench correlate --plot``: scatter grids and the ρ heatmap (proxybench.stats.plots)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from proxybench_cli.main import cli
from builders import score_rows, truth_rows, write

from proxybench.stats import correlate
from proxybench.stats.plots import DPI, iter_figures, plot_correlations, plot_groups, x_scale
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
    assert {f"{row['spearman']:.2f}" for row in result.rows} <= cells
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
