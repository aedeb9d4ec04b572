"""Few-shot predictors (proxybench.combine): encodings, splits, metrics, data loading, the run and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scipy import stats

from proxybench.combine import CombineConfig, CombineError, load_combine_data, parse_feature_sets, run_combine
from proxybench.combine.encodings import encode, encoding_names
from proxybench.combine.metrics import mean_interval, ndcg, ranking_metrics
from proxybench.combine.run import metric_columns, summarise
from proxybench.combine.splits import make_split
from proxybench.errors import ProxybenchError
from proxybench.spaces.nb201 import arch_uid, format_arch
from proxybench.store import SCORES_SCHEMA
from proxybench.store.views import open_views
from proxybench.truth import TRUTH_SCHEMA
from proxybench_cli.main import cli

from builders import ARCHS, score_rows, truth_rows, write

ALL_CONV3 = format_arch(["nor_conv_3x3"] * 6)


def _column(name: str, arch: str, column: str) -> float:
    return float(encode(name, [arch])[0][encoding_names(name).index(column)])


# ----------------------------------------------------------------------------- encodings


def test_onehot_marks_one_op_per_edge():
    row = encode("onehot", [ALL_CONV3])[0]
    assert row.sum() == 6
    assert _column("onehot", ALL_CONV3, "onehot:e03=nor_conv_3x3") == 1
    assert _column("onehot", ALL_CONV3, "onehot:e03=none") == 0


def test_path_encoding_counts_the_four_input_output_paths():
    assert _column("path", ALL_CONV3, "path:conv3") == 1            # 0->3
    assert _column("path", ALL_CONV3, "path:conv3>conv3") == 2      # 0->1->3, 0->2->3
    assert _column("path", ALL_CONV3, "path:conv3>conv3>conv3") == 1
    assert encode("path", [ALL_CONV3]).sum() == 4
    # e01 = none cuts 0->1->3 and 0->1->2->3; e02 skip, e23 pool: 0->2->3 is skip>pool
    arch = "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    row = dict(zip(encoding_names("path"), encode("path", [arch])[0]))
    assert {k: v for k, v in row.items() if v} == {"path:conv3": 1.0, "path:skip>pool": 1.0}


def test_graf_features_on_hand_checked_cells():
    assert _column("graf", ALL_CONV3, "graf:count[conv3]") == 6
    assert _column("graf", ALL_CONV3, "graf:min_path[conv3]") == 1
    assert _column("graf", ALL_CONV3, "graf:max_on_path[conv3]") == 3
    assert _column("graf", ALL_CONV3, "graf:in_degree[conv3]") == 3
    assert _column("graf", ALL_CONV3, "graf:out_degree[conv]") == 3
    assert _column("graf", ALL_CONV3, "graf:count[skip]") == 0
    assert _column("graf", ALL_CONV3, "graf:min_path[skip]") == 0  # no all-skip path
    # only path 0->1->2->3 (skip, conv1, conv3); e03, e13, e02 are none
    chain = "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|"
    assert _column("graf", chain, "graf:min_path[any]") == 3
    assert _column("graf", chain, "graf:min_path[conv]") == 0
    assert _column("graf", chain, "graf:max_on_path[conv]") == 2
    assert _column("graf", chain, "graf:in_degree[any]") == 1
    # a dead cell: nothing reaches the output
    dead = format_arch(["none"] * 6)
    assert encode("graf", [dead]).sum() == 0 and encode("path", [dead]).sum() == 0


def test_encoding_errors_are_one_line():
    with pytest.raises(ProxybenchError, match="unknown encoding 'bogus'"):
        encode("bogus", [ALL_CONV3])
    with pytest.raises(ProxybenchError, match="nb201 space only"):
        encode("graf", ["x"], space="ofa")


# ----------------------------------------------------------------------------- splits


def test_class_split_keeps_isomorphs_out_of_the_test_set_and_is_reproducible():
    archs = ARCHS[:3000]
    uids = np.array([arch_uid(a) for a in archs])
    split = make_split(uids, 100, 0, seed=3)
    assert len(split.train) == 100 and len(set(uids[split.train])) == 100
    assert not set(uids[split.train]) & set(uids[split.test])
    assert len(split.train) + len(split.test) < len(archs)  # the training classes' other members are out
    again = make_split(uids, 100, 0, seed=3)
    assert np.array_equal(split.train, again.train) and np.array_equal(split.test, again.test)
    other = make_split(uids, 100, 1, seed=3)
    assert not np.array_equal(split.train, other.train)


def test_arch_split_tests_on_every_other_string_isomorphs_included():
    archs = ARCHS[:3000]
    uids = np.array([arch_uid(a) for a in archs])
    split = make_split(uids, 200, 0, seed=0, kind="arch")
    assert len(split.train) + len(split.test) == len(archs)
    assert set(uids[split.train]) & set(uids[split.test])  # the leak the class split removes


def test_split_n_too_large_names_the_limit():
    uids = np.array([arch_uid(a) for a in ARCHS[:50]])
    with pytest.raises(ProxybenchError, match=r"n = 5000 needs at least 5001 isomorphism classes"):
        make_split(uids, 5000, 0, seed=0)


# ----------------------------------------------------------------------------- metrics


def test_ndcg_perfect_reversed_and_ties():
    truth = np.array([90.0, 80.0, 70.0, 60.0, 50.0])
    assert ndcg(truth, truth, 100) == pytest.approx(1.0)
    assert ndcg(-truth, truth, 40) < 0.5
    # a constant prediction: every place gets the mean gain
    gains = truth - truth.min()
    discounts = 1 / np.log2(np.arange(2, 4))
    expected = gains.mean() * discounts.sum() / (np.sort(gains)[::-1][:2] @ discounts)
    assert ndcg(np.zeros(5), truth, 40) == pytest.approx(expected)
    # hand value: m = 2, predicted order 70, 90 -> gains 20, 40
    assert ndcg(np.array([2.0, 0.0, 3.0, 1.0, -1.0]), truth, 40) == pytest.approx(
        (20 + 40 / np.log2(3)) / (40 + 30 / np.log2(3)))


def test_ranking_metrics_equal_scipy():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=300)
    predicted = truth + rng.normal(size=300)
    found = ranking_metrics(predicted, truth, (5.0,))
    assert found["kendall"] == pytest.approx(stats.kendalltau(predicted, truth).statistic, abs=1e-9)
    assert found["spearman"] == pytest.approx(stats.spearmanr(predicted, truth).statistic, abs=1e-9)
    top = set(np.argsort(-truth)[:15])
    assert found["top5"] == pytest.approx(len(top & set(np.argsort(-predicted)[:15])) / 15)


def test_mean_interval_is_the_t_interval():
    values = [0.6, 0.65, 0.7, 0.62, 0.66]
    mean, lo, hi = mean_interval(values)
    expected = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values)) and (lo, hi) == pytest.approx(expected)
    assert math.isnan(mean_interval([0.5])[1])


# ----------------------------------------------------------------------------- data and runs

N = 600
SPREAD = ARCHS[::26][:N]  # every 26th string: hundreds of isomorphism classes (the first 600 hold 25)


def _results(tmp_path, *, extra_rows=(), truth_source="csv:t.csv", lower=False):
    """600 architectures; accuracy = a noisy function of proxy 'good'; 'noise' is unrelated."""
    rng = np.random.default_rng(0)
    good = rng.normal(size=N)
    accuracy = 70 + 5 * good + rng.normal(scale=0.5, size=N)
    rows = score_rows("good", -good if lower else good, higher=not lower, archs=SPREAD) \
        + score_rows("noise", rng.normal(size=N), archs=SPREAD)
    write(tmp_path / "scores" / "part-1.parquet", rows + list(extra_rows), SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(accuracy, archs=SPREAD, source=truth_source), TRUTH_SCHEMA)
    return good, accuracy


def test_proxy_features_are_oriented_quantiles_and_nonfinite_ranks_lowest(tmp_path):
    good, _ = _results(tmp_path, lower=True)
    with open_views(out=tmp_path) as con:
        data = load_combine_data(con, proxies=["good"], encodings=[], score_dataset="cifar10",
                                 truth_dataset="cifar10", metric="test_acc")
    index = {a: i for i, a in enumerate(SPREAD)}
    x = data.blocks["good"][:, 0]
    expected = stats.rankdata([good[index[a]] for a in data.archs]) / N  # stored negated, lower is better
    assert np.allclose(x, expected)
    assert data.proxy_settings["good"]["covered"] == N


def test_nonfinite_row_is_the_lowest_quantile(tmp_path):
    _results(tmp_path)
    rows = score_rows("third", [float(i) for i in range(N)], archs=SPREAD)
    rows[5]["score"], rows[5]["status"] = float("nan"), "nonfinite"
    rows[6]["status"], rows[6]["error"] = "error", "boom"
    write(tmp_path / "scores" / "part-2.parquet", rows, SCORES_SCHEMA)
    with open_views(out=tmp_path) as con:
        data = load_combine_data(con, proxies=["third"], encodings=[], score_dataset="cifar10",
                                 truth_dataset="cifar10", metric="test_acc")
    q = dict(zip(data.archs, data.blocks["third"][:, 0]))
    assert q[SPREAD[5]] == q[SPREAD[6]] == pytest.approx(1.5 / N)
    assert q[SPREAD[N - 1]] == 1.0


def test_bad_input_gets_one_line_errors(tmp_path):
    _results(tmp_path, extra_rows=score_rows("good", np.zeros(N), settings_hash="other", archs=SPREAD))
    with open_views(out=tmp_path) as con:
        kwargs = dict(encodings=[], score_dataset="cifar10", truth_dataset="cifar10", metric="test_acc")
        with pytest.raises(CombineError, match="proxy 'good' has 2 settings groups"):
            load_combine_data(con, proxies=["good"], **kwargs)
        with pytest.raises(CombineError, match="no stored cifar10 scores of proxy 'bogus'"):
            load_combine_data(con, proxies=["bogus"], **kwargs)
        with pytest.raises(CombineError, match="no nb201 truth for dataset 'cifar10', metric 'valid_acc'"):
            load_combine_data(con, proxies=["noise"], **{**kwargs, "metric": "valid_acc"})
    with pytest.raises(CombineError, match="neither an encoding"):
        parse_feature_sets(["noise+bogus"], ["noise"])


def test_proxy_without_scores_for_the_truth_architectures(tmp_path):
    _results(tmp_path)
    write(tmp_path / "scores" / "part-2.parquet", score_rows("late", np.ones(3), archs=ARCHS[1:]), SCORES_SCHEMA)
    with open_views(out=tmp_path) as con:
        with pytest.raises(CombineError, match="proxy 'late' has no stored scores for the 600 architectures"):
            load_combine_data(con, proxies=["late"], encodings=[], score_dataset="cifar10",
                              truth_dataset="cifar10", metric="test_acc")


def test_several_truth_sources_must_be_chosen(tmp_path):
    _results(tmp_path)
    write(tmp_path / "truth" / "u.parquet", truth_rows(np.ones(N), archs=SPREAD, source="other"), TRUTH_SCHEMA)
    with open_views(out=tmp_path) as con:
        with pytest.raises(CombineError, match="choose one with --truth-source"):
            load_combine_data(con, proxies=["good"], encodings=[], score_dataset="cifar10",
                              truth_dataset="cifar10", metric="test_acc")
        data = load_combine_data(con, proxies=["good"], encodings=[], score_dataset="cifar10",
                                 truth_dataset="cifar10", metric="test_acc", truth_source="other")
    assert data.truth["source"] == "other"


def _data(tmp_path):
    _results(tmp_path)
    with open_views(out=tmp_path) as con:
        return load_combine_data(con, proxies=None, encodings=["graf"], score_dataset="cifar10",
                                 truth_dataset="cifar10", metric="test_acc")


def test_predictors_learn_the_informative_proxy_and_say_so(tmp_path):
    data = _data(tmp_path)
    config = CombineConfig(feature_sets=parse_feature_sets(["good", "noise", "proxies"], data.proxies),
                           models=("lgbm", "rf", "ridge", "gp"), ns=(100,), splits=2, seed=0)
    result = run_combine(data, config)
    tau = {(r["features"], r["model"]): r["kendall"] for r in summarise(result.metrics, ["kendall"])}
    for model in ("lgbm", "rf", "ridge", "gp"):
        assert tau[("good", model)] > 0.75, model
        assert abs(tau[("noise", model)]) < 0.15, model
    importance = {}
    for row in result.importances:
        if row["features"] == "noise+good" or row["features"] == "good+noise" or row["features"] == "proxies":
            importance.setdefault((row["model"], row["feature"]), []).append(row["importance"])
    for model in ("lgbm", "rf", "ridge"):
        assert np.mean(importance[(model, "good")]) > np.mean(importance[(model, "noise")])


def test_run_writes_parquet_consistent_with_its_metrics_and_is_deterministic(tmp_path):
    data = _data(tmp_path)
    config = CombineConfig(feature_sets=parse_feature_sets(["proxies+graf"], data.proxies),
                           models=("lgbm", "ridge"), ns=(50,), splits=2, seed=4, top_k=(5.0,))
    out = tmp_path / "combined"
    result = run_combine(data, config, out=out)
    predictions = pq.read_table(next((out / "predictions").glob("*.parquet"))).to_pandas()
    metrics = pq.read_table(next((out / "predictor_metrics").glob("*.parquet"))).to_pandas()
    assert len(metrics) == 4 and set(metrics.columns) >= set(metric_columns((5.0,)))
    assert len(predictions) == 4 * len(data.archs)
    for _, row in metrics.iterrows():
        part = predictions[(predictions.model == row.model) & (predictions.split == row.split)]
        test = part[part.role == "test"]
        assert len(part[part.role == "train"]) == 50 and len(test) == row.n_test
        assert stats.kendalltau(test.predicted, test.truth).statistic == pytest.approx(row.kendall, abs=1e-9)
    settings = json.loads(metrics.settings[0])
    assert settings["proxy_settings"]["good"]["settings_hash"] == "hash-good-0"
    again = run_combine(data, config)
    assert [r["kendall"] for r in again.metrics] == [r["kendall"] for r in result.metrics]


def test_n_larger_than_the_classes_fails_before_any_fit(tmp_path):
    data = _data(tmp_path)
    config = CombineConfig(feature_sets={"graf": ["graf"]}, models=("gp",), ns=(10, 100000), splits=1)
    with pytest.raises(ProxybenchError, match="n = 100000 needs at least"):
        run_combine(data, config)


# ----------------------------------------------------------------------------- CLI


def test_cli_help_teaches():
    result = CliRunner().invoke(cli, ["combine", "--help"])
    assert result.exit_code == 0
    assert "isomorphism" in result.output and "Example" in result.output


def test_cli_runs_writes_and_plots(tmp_path):
    _results(tmp_path)
    plot = tmp_path / "curves.png"
    result = CliRunner().invoke(cli, ["combine", "--scores", str(tmp_path), "--truth", str(tmp_path), "--out",
                                      str(tmp_path), "--n", "20,50", "--splits", "2", "--models", "ridge,lgbm",
                                      "--plot", str(plot), "-q", "--format", "md", "--split", "both"])
    assert result.exit_code == 0, result.output
    assert "| class | proxies | ridge | 20 | 2 |" in result.output
    assert "| arch | proxies+graf | lgbm | 50 | 2 |" in result.output
    assert plot.stat().st_size > 10_000
    assert len(list((tmp_path / "predictor_metrics").glob("*.parquet"))) == 1


def test_cli_errors_are_one_line(tmp_path):
    _results(tmp_path)
    base = ["combine", "--scores", str(tmp_path), "--truth", str(tmp_path), "-q"]
    for extra, message in (
        (["--n", "10,5000"], "n = 5000 needs at least"),
        (["--proxies", "bogus"], "no stored cifar10 scores of proxy 'bogus'"),
        (["--features", "proxies+wat"], "'wat' in 'proxies+wat' is neither"),
        (["--models", "xgb"], "unknown model 'xgb'"),
        (["--n", "ten"], "write integers separated by commas"),
    ):
        result = CliRunner().invoke(cli, base + extra)
        assert result.exit_code != 0
        assert message in result.output, result.output
        assert "Traceback" not in result.output


def test_few_shot_table_shows_the_mean_tau_per_n(tmp_path):
    from proxybench.tables import build_table, get_table, render_table

    data = _data(tmp_path)
    config = CombineConfig(feature_sets={"proxies": data.proxies}, models=("ridge",), ns=(20, 50), splits=3,
                           save_predictions=False)
    result = run_combine(data, config, out=tmp_path / "c")
    table = build_table(get_table("few-shot"), predictions=[tmp_path / "c"])
    for n in (20, 50):
        cell = table.value(("nb201 cifar10 test_acc", "ridge · proxies"), ("Kendall τ", f"n = {n}"))
        assert cell.value == pytest.approx(np.mean([r["kendall"] for r in result.metrics if r["n"] == n]))
    assert "n = 20" in render_table(table, "md")
    assert not (tmp_path / "c" / "predictions").exists()


# ----------------------------------------------------------------------------- saved predictors and search


def test_saved_predictor_reproduces_its_training_features_and_predictions(tmp_path):
    from proxybench.combine.predictor import fit_predictor, load_predictor

    data = _data(tmp_path)
    blocks = data.proxies + ["graf"]
    fitted = fit_predictor(data, "ridge", blocks, 100, seed=0)
    path = fitted.save(tmp_path / "p.pkl")
    loaded = load_predictor(path)
    oriented = {p: dict(zip(data.archs, data.oriented[p])) for p in data.proxies}
    x, _ = data.matrix(blocks)
    assert np.allclose(loaded.features(data.archs, oriented), x)  # reference quantiles equal training ones
    assert np.allclose(loaded.predict(data.archs, oriented), fitted.model.predict(x))
    assert len(loaded.train_archs) == 100
    # a new value between two reference scores gets the quantile between theirs
    ref = np.sort(data.oriented["good"])
    q = loaded.quantile("good", np.array([(ref[9] + ref[10]) / 2, -np.inf, np.nan, ref[-1] + 1]))
    assert q[0] == pytest.approx(10.5 / N) and q[1] == q[2] == pytest.approx(0.5 / N) and q[3] == pytest.approx(1 + 0.5 / N)


def test_predictor_file_errors_are_one_line(tmp_path):
    from proxybench.combine.predictor import load_predictor

    with pytest.raises(CombineError, match="does not exist; write one with"):
        load_predictor(tmp_path / "missing.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(CombineError, match="is not a readable proxybench predictor"):
        load_predictor(tmp_path / "junk.pkl")


def test_published_scores_cannot_make_a_search_predictor(tmp_path):
    from proxybench.combine.predictor import fit_predictor

    data = _data(tmp_path)
    data.proxy_settings["good"]["preset"] = "suite-zero-published"
    with pytest.raises(CombineError, match="published scores"):
        fit_predictor(data, "ridge", ["good"], 50)


@pytest.mark.slow
def test_search_with_a_predictor_objective_uses_its_predictions(tmp_path):
    """An encodings-only predictor (no data needed) drives an NB201 search; archive values equal its predictions."""
    import pyarrow.parquet as pq_

    from proxybench.combine.predictor import load_predictor
    from proxybench.search.loop import run_search

    rng = np.random.default_rng(0)
    archs = ARCHS[::7]
    convs = np.array([a.count("conv") for a in archs], dtype=float)
    write(tmp_path / "truth" / "t.parquet", truth_rows(60 + 4 * convs + rng.normal(size=len(archs)), archs=archs),
          TRUTH_SCHEMA)
    file = tmp_path / "graf.pkl"
    result = CliRunner().invoke(cli, ["combine", "--truth", str(tmp_path), "--proxies", "none", "--features", "graf",
                                      "--models", "rf", "--n", "100", "--splits", "1", "-q", "--save-predictor",
                                      str(file)])
    assert result.exit_code == 0, result.output
    predictor = load_predictor(file)
    run_search("nb201", objectives=f"predictor:{file},params", out=tmp_path / "s", n_start=12, iterations=1,
               per_iteration=4, pop_size=8, generations=2, seed=0)
    rows = [r for part in sorted((tmp_path / "s" / "archive").glob("*.parquet")) for r in pq_.read_table(part).to_pylist()]
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 16
    predicted = predictor.predict([r["arch"] for r in ok])
    assert [r[f"obj_predictor:{file}"] for r in ok] == pytest.approx(list(-predicted))
