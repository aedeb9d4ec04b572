"""The correlation engine: SQL statistics against scipy, grouping, orientation, exclusions, rendering."""

from __future__ import annotations

import csv
import io
import json
import math
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import kendalltau, pearsonr, spearmanr

from proxybench.errors import StoreError
from proxybench.spaces.nb201 import from_naslib_tuple
from proxybench.stats import CorrelationError, correlate, correlate_vectors, parse_top_k, render
from proxybench.stats.bootstrap import bootstrap_ci, group_rng, weighted_kendall, weighted_spearman
from proxybench.store import SCORES_SCHEMA
from proxybench.store.views import open_views, resolve_parquet_files
from proxybench.truth import TRUTH_SCHEMA, import_truth

from builders import ARCHS, NOW, score_rows, truth_rows, write  # noqa: F401  (re-exported for other tests)


def scipy_stats(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spearmanr(x, y).statistic, kendalltau(x, y).statistic, pearsonr(x, y).statistic


# ----------------------------------------------------------------------------- SQL equals scipy


def random_vectors(seed):
    """Vectors with many ties (few distinct values), some continuous, some mixed, sizes 3..400."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 400))
    kind = seed % 4
    if kind == 0:
        x, y = rng.integers(0, 4, n), rng.integers(0, 6, n)
    elif kind == 1:
        x, y = rng.normal(size=n), rng.integers(0, 3, n)
    elif kind == 2:
        x = rng.normal(size=n).round(1)
        y = x + rng.normal(size=n).round(1)
    else:
        x, y = rng.integers(0, n, n) * -1.5, rng.normal(size=n)
    return x.astype(float), y.astype(float)


@pytest.mark.parametrize("seed", range(40))
def test_sql_statistics_equal_scipy_with_ties(seed):
    x, y = random_vectors(seed)
    ours = correlate_vectors(x, y)
    rho, tau, r = scipy_stats(x, y)
    assert ours["n"] == len(x)
    assert ours["spearman"] == pytest.approx(rho, abs=1e-9)
    assert ours["kendall"] == pytest.approx(tau, abs=1e-9)
    assert ours["pearson"] == pytest.approx(r, abs=1e-9)


def test_sql_kendall_on_a_large_continuous_vector():
    rng = np.random.default_rng(5)
    x = rng.normal(size=15625)
    y = x + 2 * rng.normal(size=15625)
    ours = correlate_vectors(x, y)
    rho, tau, _ = scipy_stats(x, y)
    assert ours["kendall"] == pytest.approx(tau, abs=1e-9) and ours["spearman"] == pytest.approx(rho, abs=1e-9)


@pytest.mark.parametrize(
    ("x", "y"),
    [([], []), ([1.0], [2.0]), ([1.0, 2.0], [2.0, 1.0]), ([3.0, 3.0, 3.0, 3.0], [1.0, 2.0, 3.0, 4.0]),
     ([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0])],
)
def test_degenerate_vectors_give_nan_not_a_crash(x, y):
    ours = correlate_vectors(x, y)
    assert math.isnan(ours["spearman"]) and math.isnan(ours["kendall"]) and math.isnan(ours["pearson"])


def test_non_finite_input_is_refused():
    with pytest.raises(CorrelationError, match="must be finite"):
        correlate_vectors([1.0, math.nan, 2.0], [1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------- top-k


def test_top_k_overlap_definition():
    y = np.arange(100.0)
    assert correlate_vectors(y, y, top_k=[10])["top10"] == 1.0
    assert correlate_vectors(-y, y, top_k=[10])["top10"] == 0.0
    # a constant proxy shares every place: chance level k/100
    assert correlate_vectors(np.zeros(100), y, top_k=[10])["top10"] == pytest.approx(0.10)
    # best 2 of 10 by truth: items 9, 8; the proxy's best 2: item 9, then a three-way tie (8, 0, 1) for one
    # place, each a third in: overlap (1 + 1/3) / 2
    truth = np.arange(10.0)
    proxy = np.array([5, 5, 1, 1, 1, 1, 1, 1, 5, 9], dtype=float)
    assert correlate_vectors(proxy, truth, top_k=[20])["top20"] == pytest.approx((1 + 1 / 3) / 2)
    # m = ceil(k n / 100), at least 1
    assert correlate_vectors(y[:10], y[:10], top_k=[1])["top1"] == 1.0


def test_parse_top_k():
    assert parse_top_k("1, 5,10,5") == (1.0, 5.0, 10.0)
    assert parse_top_k([0.5]) == (0.5,)
    for bad, message in (("0", "top-k 0 is not a percentage in (0, 100]"),
                         ("1,x", "top-k 'x' is not a number; give percentages such as 1,5,10")):
        with pytest.raises(CorrelationError) as info:
            parse_top_k(bad)
        assert str(info.value) == message


# ----------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("seed", range(12))
def test_weighted_resample_statistics_equal_scipy_on_the_expanded_resample(seed):
    x, y = random_vectors(seed)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(x), size=(6, len(x)))
    weights = np.stack([np.bincount(d, minlength=len(x)) for d in drawn]).astype(float)
    rho, tau = weighted_spearman(x, y, weights), weighted_kendall(x, y, weights)
    for i, d in enumerate(drawn):
        expected = scipy_stats(x[d], y[d])
        for ours, theirs in ((rho[i], expected[0]), (tau[i], expected[1])):
            if math.isnan(theirs):
                assert math.isnan(ours)
            else:
                assert ours == pytest.approx(theirs, abs=1e-9)


def test_bootstrap_is_seeded_per_group_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = x + rng.normal(size=500)
    first = bootstrap_ci(x, y, 200, group_rng(1, ("synflow", "cifar10")))
    assert first == bootstrap_ci(x, y, 200, group_rng(1, ("synflow", "cifar10")))
    assert first != bootstrap_ci(x, y, 200, group_rng(2, ("synflow", "cifar10")))
    rho, tau, _ = scipy_stats(x, y)
    assert first["spearman"][0] < rho < first["spearman"][1]
    assert first["kendall"][0] < tau < first["kendall"][1]


# ----------------------------------------------------------------------------- correlate over the views

@pytest.fixture()
def store(tmp_path):
    """A results directory: 3 proxies on 60 archs (one lower-is-better, one with failures), two truths."""
    rng = np.random.default_rng(0)
    acc = rng.uniform(10, 95, 60).round(2)
    good = acc + rng.normal(scale=10, size=60)
    rows = score_rows("good", good)
    rows += score_rows("lower", -good, higher=False)  # same ranking, declared lower-is-better
    broken = good.copy()
    broken[[3, 4, 5]] = [math.nan, math.inf, -1.0]
    rows += score_rows("broken", broken, statuses={5: "error"})
    write(tmp_path / "scores" / "part-1.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc) + truth_rows(acc * 0.5, dataset="cifar100"),
          TRUTH_SCHEMA)
    return tmp_path, good, acc


def run(store_dir, **kwargs):
    with open_views(out=store_dir) as con:
        return correlate(con, **kwargs)


def test_correlate_orients_counts_and_matches_scipy(store):
    directory, good, acc = store
    result = run(directory, top_k="10")
    rows = {r["proxy"]: r for r in result.rows}
    assert set(rows) == {"good", "lower", "broken"}  # cifar100 truth has no cifar100 scores: not joined
    rho, tau, r = scipy_stats(good, acc)
    for proxy in ("good", "lower"):
        assert rows[proxy]["spearman"] == pytest.approx(rho, abs=1e-9)
        assert rows[proxy]["kendall"] == pytest.approx(tau, abs=1e-9)
        assert rows[proxy]["pearson"] == pytest.approx(r, abs=1e-9)
        assert rows[proxy]["n"] == 60 and rows[proxy]["excluded"] == 0
    assert rows["good"]["orientation"] == "higher" and rows["lower"]["orientation"] == "lower (negated)"
    kept = [i for i in range(60) if i not in (3, 4, 5)]
    assert rows["broken"]["n"] == 57 and rows["broken"]["excluded"] == 3
    assert rows["broken"]["kendall"] == pytest.approx(scipy_stats(good[kept], acc[kept])[1], abs=1e-9)
    assert rows["good"]["top10"] == correlate_vectors(good, acc, top_k=[10])["top10"]
    assert result.columns[:13] == ["proxy", "dataset", "metric", "orientation", "truth_orientation", "n", "excluded",
                                   "spearman", "kendall", "pearson", "top10", "space", "preset"]


def test_lower_is_better_truth_is_negated_like_a_proxy(tmp_path):
    """latency: positive ρ = the proxy ranks faster architectures higher; top-k counts the fastest k %."""
    rng = np.random.default_rng(3)
    latency = rng.uniform(1, 20, 80).round(3)
    acc = rng.uniform(10, 95, 80).round(2)
    fast = -latency + rng.normal(scale=2, size=80)  # higher score = predicted faster
    size = latency + rng.normal(scale=2, size=80)  # like params/flops: higher = bigger = slower
    intensity = rng.uniform(0, 5, 80)
    rows = score_rows("fast", fast) + score_rows("size", size) + score_rows("size_low", size, higher=False)
    write(tmp_path / "scores" / "a.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet",
          truth_rows(acc) + truth_rows(latency, metric="latency:edgegpu")
          + truth_rows(intensity, metric="arithmetic_intensity:eyeriss"), TRUTH_SCHEMA)
    result = run(tmp_path, top_k="10", bootstrap=30)
    rows = {(r["proxy"], r["metric"]): r for r in result.rows}
    for proxy, x in (("fast", fast), ("size", size), ("size_low", -size)):
        row = rows[(proxy, "latency:edgegpu")]
        rho, tau, r = scipy_stats(x, -latency)
        assert row["truth_orientation"] == "lower (negated)"
        assert row["spearman"] == pytest.approx(rho, abs=1e-9)
        assert row["kendall"] == pytest.approx(tau, abs=1e-9)
        assert row["pearson"] == pytest.approx(r, abs=1e-9)
        assert row["spearman_lo"] < row["spearman"] < row["spearman_hi"]
        # top-k: the fastest 8 (= 10 % of 80) against the proxy's best 8
        fastest = set(np.argsort(latency)[:8])
        assert row["top10"] == pytest.approx(len(fastest & set(np.argsort(-x)[:8])) / 8)
    assert rows[("fast", "latency:edgegpu")]["spearman"] > 0.8  # ranks faster networks higher: positive
    assert rows[("size", "latency:edgegpu")]["spearman"] < -0.8  # favours slow, big networks: negative
    assert rows[("fast", "latency:edgegpu")]["top10"] > rows[("size", "latency:edgegpu")]["top10"]
    accuracy = rows[("fast", "test_acc")]
    assert accuracy["truth_orientation"] == "higher"
    assert accuracy["spearman"] == pytest.approx(scipy_stats(fast, acc)[0], abs=1e-9)
    unoriented = rows[("fast", "arithmetic_intensity:eyeriss")]
    assert unoriented["truth_orientation"] == "none" and math.isnan(unoriented["top10"])
    assert unoriented["spearman"] == pytest.approx(scipy_stats(fast, intensity)[0], abs=1e-9)
    assert unoriented["note"] == "arithmetic_intensity:eyeriss has no better direction: top-k undefined"
    assert math.isfinite(unoriented["spearman_lo"])
    md = render(result, "md")
    assert "| fast | cifar10 | latency:edgegpu (↓, negated) | higher |" in md
    assert "a positive value means the proxy ranks faster/cheaper architectures higher" in md
    assert "arithmetic_intensity:eyeriss (no direction)" in md
    assert not any("**" in line for line in md.splitlines() if "(no direction)" in line)  # no "best" there
    assert any("**" in line for line in md.splitlines() if "latency:edgegpu" in line)
    assert "latency:edgegpu ($\\downarrow$, negated)" in render(result, "latex")
    records = {(r["proxy"], r["metric"]): r for r in json.loads(render(result, "json"))}
    assert records[("size", "latency:edgegpu")]["truth_orientation"] == "lower (negated)"


def test_settings_are_never_pooled(tmp_path):
    acc = np.linspace(10, 90, 30)
    rows = score_rows("p", acc, seed=0) + score_rows("p", acc[::-1], seed=1)
    write(tmp_path / "scores" / "a.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc), TRUTH_SCHEMA)
    result = run(tmp_path)
    assert [(r["seed"], r["spearman"]) for r in result.rows] == [(0, 1.0), (1, -1.0)]


def test_duplicates_are_an_error_unless_grouped_apart(tmp_path):
    acc = np.linspace(10, 90, 30)
    write(tmp_path / "scores" / "a.parquet", score_rows("p", acc, run_id="r1"), SCORES_SCHEMA)
    write(tmp_path / "scores" / "b.parquet", score_rows("p", acc, run_id="r2"), SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc), TRUTH_SCHEMA)
    with pytest.raises(CorrelationError) as info:
        run(tmp_path)
    assert str(info.value) == (
        f"{min(ARCHS[:30])} appears 2 times for proxy p, dataset cifar10, metric test_acc under one setting: pass each "
        "scores/truth file once, or add --by run_id to keep runs apart, or (two runs of one command into one OUT) "
        "remove the later copies with proxybench repair OUT")
    assert [r["run_id"] for r in run(tmp_path, by=["run_id"]).rows] == ["r1", "r2"]


def test_small_and_constant_groups_explain_their_nan(tmp_path):
    acc = np.linspace(10, 90, 10)
    rows = score_rows("two", [1.0, 2.0] + [math.nan] * 8) + score_rows("flat", np.ones(10))
    write(tmp_path / "scores" / "a.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc), TRUTH_SCHEMA)
    rows = {r["proxy"]: r for r in run(tmp_path, top_k="50").rows}
    assert rows["two"]["note"] == "only 2 usable pair(s); correlations need at least 3"
    assert rows["two"]["excluded"] == 8 and math.isnan(rows["two"]["kendall"]) and math.isnan(rows["two"]["top50"])
    assert rows["flat"]["note"] == "the proxy's scores are all equal" and math.isnan(rows["flat"]["spearman"])
    assert rows["flat"]["top50"] == pytest.approx(0.5)  # chance level, still defined


def test_filters_and_their_messages(store):
    directory, _, _ = store
    assert {r["proxy"] for r in run(directory, proxies="go*,low*").rows} == {"good", "lower"}
    assert {r["metric"] for r in run(directory, metric="test_acc", dataset="cifar10").rows} == {"test_acc"}
    cases = [
        ({"proxies": "synflw"}, "no proxy in the scores matches 'synflw'; present: broken, good, lower"),
        ({"dataset": "imagenet"}, "no scores rows with dataset 'imagenet'; present: cifar10"),
        ({"metric": "valid_acc"}, "no truth rows with metric 'valid_acc'; present: test_acc"),
        ({"dataset": "cifar10", "metric": "test_acc", "by": ["colour"]},
         ("cannot group by colour; choose from run_id, device, dtype, batch_id, proxybench_version, torch_version, "
         "truth_arch_id_known")),
    ]
    for kwargs, message in cases:
        with pytest.raises(CorrelationError) as info:
            run(directory, **kwargs)
        assert str(info.value) == message


def test_no_common_architectures(tmp_path):
    write(tmp_path / "scores" / "a.parquet", score_rows("p", [1.0, 2.0, 3.0], archs=ARCHS[:3]), SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows([1.0, 2.0, 3.0], archs=ARCHS[10:13]), TRUTH_SCHEMA)
    with pytest.raises(CorrelationError, match="^the scores and the truth have no .* in common"):
        run(tmp_path)


def test_bootstrap_columns(store):
    directory, _, _ = store
    result = run(directory, bootstrap=50, seed=3, top_k=None, proxies="good")
    row = result.rows[0]
    assert row["spearman_lo"] < row["spearman"] < row["spearman_hi"]
    assert row["kendall_lo"] < row["kendall"] < row["kendall_hi"]
    assert run(directory, bootstrap=50, seed=3, top_k=None, proxies="good").rows == result.rows


# ----------------------------------------------------------------------------- views


def test_views_resolve_directories_files_and_globs(store):
    directory, _, _ = store
    part = directory / "scores" / "part-1.parquet"
    assert resolve_parquet_files([directory], "scores") == [part.resolve()]
    assert resolve_parquet_files([directory / "scores", part, str(directory / "scores" / "*.parquet")],
                                 "scores") == [part.resolve()]
    with pytest.raises(StoreError, match=r"^scores path .*nowhere does not exist$"):
        resolve_parquet_files([directory / "nowhere"], "scores")
    with pytest.raises(StoreError, match=r"matches no Parquet file"):
        resolve_parquet_files([str(directory / "*.nothing")], "scores")
    (directory / "empty").mkdir()
    with pytest.raises(StoreError, match=r"^no truth Parquet files in .*empty; create them with proxybench truth"):
        resolve_parquet_files([directory / "empty"], "truth")
    (directory / "bad.parquet").write_text("not parquet")
    with pytest.raises(StoreError, match=r"^cannot read the scores files \(1 given\)"):
        open_views(scores=[directory / "bad.parquet"])


def test_views_union_by_name_tolerates_older_files(tmp_path):
    rows = score_rows("p", [1.0, 2.0, 3.0])
    old = pa.Table.from_pylist(rows, schema=SCORES_SCHEMA).drop_columns(["torch_version", "batch_id"])
    pq.write_table(old, tmp_path / "old.parquet")
    write(tmp_path / "new.parquet", score_rows("q", [1.0, 2.0, 3.0]), SCORES_SCHEMA)
    with open_views(scores=[tmp_path]) as con:
        assert con.execute("SELECT proxy, count(torch_version) FROM scores GROUP BY 1 ORDER BY 1").fetchall() == [
            ("p", 0), ("q", 3)]


# ----------------------------------------------------------------------------- rendering


def test_renderers(store):
    directory, _, _ = store
    result = run(directory, top_k="10", bootstrap=20)
    md = render(result, "md")
    assert md.startswith("| Proxy | Dataset | Metric | Better | n | Excl. | ρ | τ | r | Top-10% |\n")
    assert "| lower | cifar10 | test_acc | lower | 60 | 0 |" in md and "**" in md
    assert "Orientation: positive means the proxy ranks better architectures higher" in md
    assert "Scores: proxybench, init, seed 0, batch 64." in md
    latex = render(result, "latex")
    assert "\\begin{tabular}{llllrrrrrr}" in latex and "test\\_acc" in latex and "\\textbf{" in latex
    assert "$\\rho$ & $\\tau$ & $r$ & Top-10\\%" in latex
    table = render(result, "table")
    assert table.splitlines()[0].split() == ["Proxy", "Dataset", "Metric", "Better", "n", "Excl.", "ρ", "τ", "r",
                                             "Top-10%"]
    parsed = list(csv.DictReader(io.StringIO(render(result, "csv"))))
    assert [r["proxy"] for r in parsed] == ["broken", "good", "lower"]
    assert float(parsed[1]["spearman"]) == result.rows[1]["spearman"]
    records = json.loads(render(result, "json"))
    assert records[1]["kendall"] == result.rows[1]["kendall"] and records[0]["note"] == ""


def test_render_shows_settings_when_rows_differ(tmp_path):
    acc = np.linspace(10, 90, 30)
    rows = score_rows("p", acc, seed=0) + score_rows("p", acc, seed=1, settings_hash="other")
    write(tmp_path / "scores" / "a.parquet", rows, SCORES_SCHEMA)
    write(tmp_path / "truth" / "t.parquet", truth_rows(acc), TRUTH_SCHEMA)
    md = render(run(tmp_path), "md")
    assert "| Settings |" in md and "proxybench, init, seed 1, batch 64" in md


# ----------------------------------------------------------------------------- the shared files


def test_published_scores_against_shared_truth_equal_scipy(nb201_csv, reference_json, tmp_path):
    import_truth(nb201_csv, tmp_path)
    import_truth(reference_json, tmp_path)
    with open_views(out=tmp_path) as con:
        result = correlate(con, dataset="cifar10", metric="test_acc", proxies="synflow,nwot,jacov,params")
    rows = {r["proxy"]: r for r in result.rows}
    entries = json.loads(reference_json.read_text())["cifar10"]
    with open(nb201_csv, newline="") as fh:
        test_acc = {r["ArchitectureString"]: float(r["CIFAR10TestAccuracy200Epochs"]) for r in csv.DictReader(fh)}
    for proxy in ("synflow", "nwot", "jacov", "params"):
        pairs = [(e[proxy]["score"], test_acc[from_naslib_tuple(k)]) for k, e in entries.items()
                 if math.isfinite(e[proxy]["score"]) and e[proxy]["score"] != -1e8]
        x, y = map(np.array, zip(*pairs))
        rho, tau, _ = scipy_stats(x, y)
        assert rows[proxy]["n"] == len(pairs) and rows[proxy]["excluded"] == len(entries) - len(pairs)
        assert rows[proxy]["spearman"] == pytest.approx(rho, abs=1e-9)
        assert rows[proxy]["kendall"] == pytest.approx(tau, abs=1e-9)
        assert rows[proxy]["preset"] == "suite-zero-published"
    assert rows["synflow"]["spearman"] > 0.7 and rows["nwot"]["excluded"] == 1
