"""``proxybench search report``: the Pareto plot (proxybench.search.report) and the picks' OOD check (--ood)."""

from __future__ import annotations

import json
import math

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from proxybench_cli.search_commands import search

from proxybench.errors import InvalidSettingError, StoreError
from proxybench.search.archive import Archive
from proxybench.search.loop import run_search
from proxybench.search.measures import CostMeasure
from proxybench.search.problem import resolve_objectives
from proxybench.search.report import axis_label, evaluate_picks_ood, pareto_figure, plot_pareto
from proxybench.spaces import get_space

SMALL = dict(n_start=8, iterations=2, per_iteration=2, seed=0, top_k=2, pop_size=8, generations=2)
PNG = b"\x89PNG\r\n\x1a\n"


class FailingCost:
    """``params_m``/``macs_m`` as :class:`CostMeasure`, but a candidate whose first gene is 3 or 4 fails."""

    quantities = ("params_m", "macs_m")

    def __init__(self) -> None:
        self.space = get_space("nb201")
        self.cost = CostMeasure(self.space)

    def measure(self, archs):
        got = self.cost.measure(archs)
        return {a: ("fake: diverged" if self.space.encode(a)[0] in (3, 4) else got[a]) for a in archs}

    def describe(self):
        return {"measure": "failing-cost"}


@pytest.fixture(scope="module")
def cost_run(tmp_path_factory):
    """A finished params,flops search with failed candidates (no data needed)."""
    out = tmp_path_factory.mktemp("cost") / "run"
    run_search("nb201", "params,flops", out=out, measures=[FailingCost()], **SMALL)
    return out


def test_plot_is_a_png_that_is_byte_identical_when_drawn_twice(cost_run, tmp_path):
    first = plot_pareto(cost_run)
    assert first == cost_run / "pareto.png"
    again = plot_pareto(cost_run, tmp_path / "again.png")
    data = first.read_bytes()
    assert data.startswith(PNG) and data == again.read_bytes()
    assert not list(cost_run.glob("*.tmp"))


def test_plot_draws_ok_candidates_by_iteration_and_counts_the_failed(cost_run):
    rows = Archive(cost_run, ["params", "flops"]).rows()
    ok = [r for r in rows if r["status"] == "ok"]
    failed = len(rows) - len(ok)
    assert failed > 0 and ok
    figure = pareto_figure(cost_run)
    assert f"{len(ok)} candidates drawn, {failed} failed (not drawn)" in figure.get_suptitle()
    ax = figure.axes[0]
    points = ax.collections[0]
    assert len(points.get_offsets()) == len(ok)
    assert sorted(points.get_array().tolist()) == sorted(float(r["iteration"]) for r in ok)
    picks = [t.get_text() for t in ax.texts]
    assert sorted(picks) == sorted(r["arch_label"] for r in ok if r["selected"]) and picks
    assert ax.get_xlabel() == "params [M], lower is better" and not ax.xaxis_inverted()
    assert figure.axes[-1].get_ylabel().startswith("iteration")  # the colour bar


def test_plot_grid_of_pairs_and_objective_checks(tmp_path):
    out = tmp_path / "three"
    run_search("nb201", "params,flops,f_cp", out=out, **{**SMALL, "iterations": 1})
    figure = pareto_figure(out, ["params", "flops", "f_cp"])
    panels = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3  # (params, flops), (params, f_cp), (flops, f_cp)
    name = lambda label: label.split(",")[0].split(" [")[0]  # noqa: E731 - "params [M], lower is better"
    assert {(name(ax.get_xlabel()), name(ax.get_ylabel())) for ax in panels} == {
        ("params", "flops"), ("params", "f_cp"), ("flops", "f_cp")}
    assert plot_pareto(out, objectives="params,f_cp").read_bytes().startswith(PNG)
    with pytest.raises(InvalidSettingError, match="has no objective"):
        pareto_figure(out, ["params", "synflow"])
    with pytest.raises(InvalidSettingError, match="at least two"):
        pareto_figure(out, ["params"])
    with pytest.raises(StoreError, match="holds no search"):
        plot_pareto(tmp_path / "nothing")


def test_axis_labels_say_the_orientation():
    synflow, params = resolve_objectives("synflow,params")
    assert synflow.higher_is_better
    assert axis_label(synflow) == "synflow, higher is better (axis inverted)"
    assert axis_label(params) == "params [M], lower is better"


def test_report_writes_the_plot_unless_told_not_to(cost_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(cost_run, run)
    (run / "pareto.png").unlink(missing_ok=True)
    result = CliRunner().invoke(search, ["report", str(run), "--format", "csv", "--no-plot"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not (run / "pareto.png").exists()
    result = CliRunner().invoke(search, ["report", str(run), "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("label,arch,candidate,iteration,obj_params,obj_flops")
    assert result.stderr == f"Pareto plot written to {run / 'pareto.png'}\n"
    assert (run / "pareto.png").read_bytes().startswith(PNG)


def test_ood_needs_weights_and_its_options_need_ood(cost_run):
    result = CliRunner().invoke(search, ["report", str(cost_run), "--ood", "--no-plot"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: --ood needs --weights SPEC") and result.output.count("\n") == 1
    with pytest.raises(InvalidSettingError, match="--weights"):
        evaluate_picks_ood(cost_run)
    result = CliRunner().invoke(search, ["report", str(cost_run), "--n-images", "20", "--weights", "train"])
    assert result.exit_code == 2 and "Error: --weights, --n-images only apply with --ood" in result.output
    with pytest.raises(Exception, match="gaussian_nois"):  # checked before anything is trained
        evaluate_picks_ood(cost_run, weights="train:sgd,steps=1", corruptions="gaussian_nois")


def test_ood_trains_each_pick_and_adds_clean_error_and_mce(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("PROXYBENCH_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    run_search("nb201", "synflow,params", out=run, data_dir=data_dir, batch_size=8,
               **{**SMALL, "n_start": 6, "iterations": 1})
    # a higher-is-better proxy is drawn as its raw score on an inverted axis
    ax = pareto_figure(run).axes[0]
    assert ax.xaxis_inverted() and ax.get_xlabel() == "synflow, higher is better (axis inverted)"
    assert min(x for x, _ in ax.collections[0].get_offsets()) >= 0  # raw SynFlow scores, not negated

    args = ["report", str(run), "--ood", "--weights", "train:sgd,steps=2,batch_size=16,holdout=64",
            "--data-dir", str(data_dir), "--n-images", "20", "--corruptions", "gaussian_noise", "--severities", "1",
            "--format", "json"]
    result = CliRunner().invoke(search, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    picks = sorted(p.name for p in (run / "picks").glob("*.json"))
    assert len(rows) == len(picks) >= 1
    for r in rows:
        assert math.isfinite(r["ood_clean_error"]) and 0 <= r["ood_clean_error"] <= 100
        assert math.isfinite(r["ood_mce"]) and 0 <= r["ood_mce"] <= 100
        assert r["ood_mce_sum"] == pytest.approx(r["ood_mce"])  # one severity: sum = mean
    stored = pq.read_table(run / "ood.parquet").to_pylist()
    assert [s["label"] for s in stored] == [r["label"] for r in rows]
    assert [s["mce"] for s in stored] == [r["ood_mce"] for r in rows]
    assert all(s["n_images"] == 20 and s["corruptions"] == "gaussian_noise" and s["severities"] == "1"
               and s["weights"].startswith("train:sgd,steps=2") for s in stored)
    assert (run / "pareto.png").is_file()
