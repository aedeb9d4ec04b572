"""proxybench.search: archive, surrogates, NSGA-II operators, the loop, resume and picks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from proxybench.errors import InvalidSettingError, StoreError
from proxybench.search.archive import Archive, archive_schema
from proxybench.search.loop import (
    derived_seed,
    initial_architectures,
    run_search,
    search_report,
)
from proxybench.search.problem import SearchProblem, genomes, resolve_objectives
from proxybench.search.select import (
    compress,
    non_dominated,
    rank_and_crowding,
    trade_off_picks,
)
from proxybench.search.surrogates import (
    SURROGATES,
    Surrogate,
    choose_surrogate,
    cv_kendall,
    fit_quality,
)
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import NB201Space

FAST = dict(pop_size=8, generations=2)


class FakeMeasure:
    """Deterministic top1_error/robustness from the genome; fails for architectures whose first op is avg_pool."""

    quantities = ("top1_error", "robustness")

    def __init__(self, fail_first_op: int | None = 4) -> None:
        self.fail_first_op = fail_first_op
        self.space = get_space("nb201")
        self.calls = 0

    def measure(self, archs):
        self.calls += 1
        out = {}
        for arch in archs:
            g = self.space.encode(arch)
            if self.fail_first_op is not None and g[0] == self.fail_first_op:
                out[arch] = "fake: training diverged"
            else:
                out[arch] = {"top1_error": 5.0 + float(np.sum((g - 3) ** 2)), "robustness": 1.0 + 0.5 * float(g[5])}
        return out

    def describe(self):
        return {"measure": "fake", "fail_first_op": self.fail_first_op}


# ----------------------------------------------------------------------------- objectives


def test_objectives_resolve_orientation_and_expensive_flags():
    objs = {o.name: o for o in resolve_objectives("synflow,params,flops,f_cp,f_ar,flatnas_r")}
    assert objs["synflow"].kind == "proxy" and objs["synflow"].higher_is_better and not objs["synflow"].expensive
    assert objs["synflow"].value({"synflow": 3.0}) == -3.0  # higher is better -> minimise -score
    assert objs["params"].value({"params_m": 1.5}) == 1.5  # cost: minimised as is
    assert objs["flops"].quantities == ("macs_m",)
    assert objs["f_cp"].value({"params_m": 4.0}) == 4.0
    assert objs["f_ar"].expensive and objs["flatnas_r"].expensive
    assert objs["f_ar"].value({"top1_error": 10.0, "robustness": 2.0}, gamma=5.0) == 10.0
    assert resolve_objectives("synflow,params", expensive=["synflow"])[0].expensive
    with pytest.raises(InvalidSettingError, match="at least two"):
        resolve_objectives("synflow")
    with pytest.raises(Exception, match="did you mean"):
        resolve_objectives("synflw,params")
    with pytest.raises(InvalidSettingError, match="cannot be cheap"):
        resolve_objectives("f_ar,params", expensive={"f_ar": False})


# ----------------------------------------------------------------------------- archive


def test_archive_append_read_and_refuses_rewrite(tmp_path):
    archive = Archive(tmp_path, ["a", "b"], {"seed": 1})
    row = {"run_id": "r", "iteration": 0, "candidate": 0, "space": "nb201", "genome": [0, 1, 2, 3, 4, 0],
           "arch": "x", "arch_uid": "u", "status": "ok", "selected": False, "obj_a": 1.0, "obj_b": 2.0}
    archive.append(0, [row, {**row, "candidate": 1, "arch": "y", "status": "failed", "error": "boom",
                             "obj_a": None, "obj_b": None}], [{"run_id": "r", "iteration": 0, "n_new": 2}])
    archive.append(1, [{**row, "candidate": 2, "iteration": 1, "arch": "z"}], [{"run_id": "r", "iteration": 1}])
    assert archive.iterations() == [0, 1]
    rows = archive.rows()
    assert [r["candidate"] for r in rows] == [0, 1, 2]
    assert rows[1]["status"] == "failed" and rows[1]["error"] == "boom" and rows[1]["obj_a"] is None
    assert rows[0]["genome"] == [0, 1, 2, 3, 4, 0]
    assert archive.read().schema.equals(archive_schema(["a", "b"]))
    with pytest.raises(StoreError, match="written already"):
        archive.append(1, [row], [])
    meta = pq.read_schema(archive.parts()[0]).metadata
    assert json.loads(meta[b"proxybench.search.run"]) == {"seed": 1}
    assert pq.read_table(archive.write_iterations()).num_rows == 2
    archive.mark_selected({2: "pick-1"})
    rows = archive.rows()
    assert [r["selected"] for r in rows] == [False, False, True]
    assert [r["arch_label"] for r in rows] == ["c0000", "c0001", "pick-1"]
    assert not list(archive.directory.glob("*.tmp"))
    (archive.directory / archive.part_name(0)).unlink()
    with pytest.raises(StoreError, match="missing"):
        archive.iterations()


# ----------------------------------------------------------------------------- surrogates


def test_every_surrogate_fits_and_predicts_deterministically():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, (30, 6))
    y = X @ np.array([1.0, 2.0, -1.0, 0.5, 0.0, 3.0])
    xl, xu = np.zeros(6), np.full(6, 4)
    for name in SURROGATES:
        a = Surrogate(name, xl, xu, seed=3).fit(X, y).predict(X[:5])
        b = Surrogate(name, xl, xu, seed=3).fit(X, y).predict(X[:5])
        assert a.shape == (5,) and np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)
        assert fit_quality(y[:5], a)["kendall"] > 0.5, name


def test_surrogate_handles_heavy_tailed_targets_and_constant_genes():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 5, (20, 6))
    X[:, 2] = 1  # constant gene (the RBF's linear tail would be singular)
    y = -np.power(10.0, 15 + 4 * X[:, 0] + X[:, 1])  # SynFlow-like, 1e15..1e35
    pred = Surrogate("rbf", np.zeros(6), np.full(6, 4)).fit(X, y).predict(X)
    assert np.all(np.isfinite(pred))
    assert fit_quality(y, pred)["spearman"] > 0.95


def test_auto_picks_the_model_class_that_is_right_by_cv_kendall():
    # a step function of two genes: trees reproduce it (ties included), smooth models cannot
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, (60, 6))
    y = (X[:, 0] >= 2).astype(float) + 2.0 * (X[:, 3] >= 3)
    xl, xu = np.zeros(6), np.full(6, 4)
    choice = choose_surrogate(X, y, xl, xu, seed=0)
    assert choice.name == "cart"
    crit = {n: s["criterion"] for n, s in choice.scores.items()}
    assert set(crit) == set(SURROGATES)
    assert crit["cart"] == max(crit.values()) and crit["cart"] > max(v for n, v in crit.items() if n != "cart") + 0.1
    taus = cv_kendall("cart", X, y, xl, xu, folds=10, seed=0)
    assert len(taus) == 10 and choice.tau_mean == pytest.approx(np.mean(taus))
    # too few points to cross-validate: the first candidate, no CV
    small = choose_surrogate(X[:5], y[:5], xl, xu, seed=0)
    assert small.name == SURROGATES[0] and small.tau_mean is None and small.folds == 0


# ----------------------------------------------------------------------------- selection


def test_rank_and_crowding_keeps_extremes_and_trade_off_picks_knee_first():
    F = np.array([[0.0, 10.0], [1.0, 5.0], [2.0, 2.0], [5.0, 1.0], [10.0, 0.0], [6.0, 6.0], [9.0, 9.0]])
    np.testing.assert_array_equal(non_dominated(F), [0, 1, 2, 3, 4])
    assert set(rank_and_crowding(F, 2).tolist()) == {0, 4}
    assert set(rank_and_crowding(F, 6).tolist()) == {0, 1, 2, 3, 4, 5}
    picks = trade_off_picks(F, 3)
    assert picks[0] == 2 and set(picks[1:].tolist()) == {0, 4}
    G = np.array([[-1e35, 1.0], [-1e20, 0.5], [-1e16, 0.1]])
    assert compress(G)[0, 0] == pytest.approx(-35.0) and compress(G)[0, 1] == 1.0


# ----------------------------------------------------------------------------- NSGA-II operators


def test_nsga2_operators_keep_genes_integer_and_within_per_gene_bounds():
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.evaluator import Evaluator
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.problems.static import StaticProblem

    xl = np.array([0, 0, 0, 0, 0, 0, 0])
    xu = np.array([2, 2, 2, 4, 4, 4, 12])  # e.g. OFA: the last gene (resolution) has its own bound
    problem = SearchProblem(xl, xu, 2)
    algorithm = NSGA2(pop_size=20, sampling=IntegerRandomSampling(),
                      crossover=SBX(prob_var=0.5, eta=15, vtype=float, repair=RoundingRepair()),
                      mutation=PM(prob=0.9, eta=20, vtype=float, repair=RoundingRepair()), eliminate_duplicates=True)
    algorithm.setup(problem, termination=("n_gen", 15), seed=derived_seed(0, 1, 0))
    seen = []
    while algorithm.has_next():
        pop = algorithm.ask()
        X = pop.get("X")
        seen.append(X)
        G = genomes(X)
        F = np.stack([G.sum(1), (xu - G).sum(1)], axis=1).astype(float)
        Evaluator().eval(StaticProblem(problem, F=F), pop)
        algorithm.tell(infills=pop)
    X = np.vstack(seen)
    np.testing.assert_array_equal(X, np.rint(X))
    assert np.all(X >= xl) and np.all(X <= xu)
    assert X[:, -1].max() > 4  # the last gene really uses its own, wider range
    with pytest.raises(InvalidSettingError, match="inconsistent"):
        SearchProblem(np.array([1, 0]), np.array([0, 1]), 2)


# ----------------------------------------------------------------------------- the loop


def test_initial_sample_is_distinct_by_isomorphism_and_uses_extremes():
    space = NB201Space()
    archs = initial_architectures(space, 40, seed=0)
    assert len(archs) == 40 and len({space.uid(a) for a in archs}) == 40
    assert archs == initial_architectures(space, 40, seed=0)

    class WithExtremes(NB201Space):
        def smallest(self):
            return self.decode([0] * 6)

        def largest(self):
            return self.decode([3] * 6)

    ext = initial_architectures(WithExtremes(), 5, seed=0)
    assert ext[:2] == [WithExtremes().decode([0] * 6), WithExtremes().decode([3] * 6)] and len(ext) == 5


def test_failed_candidates_are_recorded_and_search_goes_on_with_flatnas_objectives(tmp_path):
    measure = FakeMeasure(fail_first_op=4)
    res = run_search("nb201", "f_ar,f_cp", n_start=12, iterations=2, per_iteration=3, seed=1, out=tmp_path,
                     measures=[measure], surrogate="gp", top_k=2, **FAST)
    rows = Archive(tmp_path, ["f_ar", "f_cp"]).rows()
    assert len(rows) == 12 + 2 * 3 == res.archive_size
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and res.failed == len(failed)
    for r in rows:  # never misaligned: every row's genome is its arch
        assert get_space("nb201").decode(r["genome"]) == r["arch"]
        if r["status"] == "failed":
            assert r["error"] == "fake: training diverged" and r["obj_f_ar"] is None and r["genome"][0] == 4
        else:
            assert r["top1_error"] == 5.0 + sum((g - 3) ** 2 for g in r["genome"])
            assert r["params_m"] > 0 and r["macs_m"] > 0 and r["obj_f_cp"] == pytest.approx(r["params_m"])
    later = [r for r in rows if r["iteration"] > 0 and r["status"] == "ok"]
    assert all(r["surrogate"] == "f_ar=gp" and r["pred_f_ar"] is not None and r["pred_f_cp"] is None for r in later)
    stats = pq.read_table(tmp_path / "iterations.parquet").to_pylist()
    assert [s["iteration"] for s in stats] == [0, 1, 2]
    assert stats[0]["gamma"] == 1.0 and stats[1]["gamma"] != 1.0 and stats[1]["surrogate"] == "gp"
    # the FlatNAS table's view: selected rows with the table's columns
    from proxybench.store import open_views

    with open_views(archive=[tmp_path / "archive"]) as con:
        got = con.execute("SELECT count(*), count(top1_error), count(params_m) FROM archive WHERE selected").fetchone()
    assert got == (2, 2, 2)
    assert sorted(p.name for p in (tmp_path / "picks").iterdir()) == ["1.json", "2.json"]


def test_offspring_already_in_the_archive_are_dropped(tmp_path):
    # f_cp and params only: cheap and tiny; 30 iterations of 2 on NB201 would repeat archs if not deduplicated
    run_search("nb201", "params,flops", n_start=10, iterations=4, per_iteration=3, seed=2, out=tmp_path, **FAST)
    rows = Archive(tmp_path, ["params", "flops"]).rows()
    assert len(rows) == 22
    assert len({r["arch_uid"] for r in rows}) == len(rows)  # isomorphs count as duplicates


def test_settings_must_match_on_resume_and_existing_run_needs_resume(tmp_path):
    kwargs = dict(n_start=6, iterations=1, per_iteration=2, seed=0, out=tmp_path, **FAST)
    run_search("nb201", "params,flops", **kwargs)
    with pytest.raises(InvalidSettingError, match="--resume"):
        run_search("nb201", "params,flops", **kwargs)
    with pytest.raises(InvalidSettingError, match="made with seed=0"):
        run_search("nb201", "params,flops", **{**kwargs, "seed": 1}, resume=True)
    res = run_search("nb201", "params,flops", **{**kwargs, "iterations": 2}, resume=True)  # extending is fine
    assert res.iterations == 2 and res.archive_size == 10 and res.resumed_from == 1


def _comparable(run_dir: Path, names: list[str]) -> tuple:
    table = Archive(run_dir, names).read().drop_columns(["seconds", "created_at"])
    # seconds and the exact-evaluation counts describe the process's work (a resumed process
    # recomputes what the killed one had cached), not the search's result
    stats = pq.read_table(run_dir / "iterations.parquet").drop_columns(["seconds", "n_exact_computed",
                                                                        "n_exact_reused"])
    picks = [json.loads(p.read_text()) for p in sorted((run_dir / "picks").glob("*.json"))]
    return table.to_pylist(), stats.to_pylist(), picks


class Killed(Exception):
    pass


@pytest.mark.parametrize("expensive", [None, ["synflow"]], ids=["cheap", "synflow-surrogate"])
def test_resume_after_kills_equals_an_uninterrupted_run_bit_for_bit(tmp_path, data_dir, monkeypatch, expensive):
    kwargs = dict(n_start=8, iterations=3, per_iteration=3, seed=5, batch_size=8, data_dir=data_dir,
                  expensive=expensive, run_id="same", top_k=2, **FAST)
    run_search("nb201", "params,synflow", out=tmp_path / "whole", **kwargs)

    original = Archive.append
    for kill_at in (0, 2):  # before the initial sample is committed, then in the middle of the run
        def append(self, iteration, rows, stats, _kill_at=kill_at):
            if iteration == _kill_at:
                raise Killed(f"killed at iteration {iteration}")
            return original(self, iteration, rows, stats)

        monkeypatch.setattr(Archive, "append", append)
        with pytest.raises(Killed):
            run_search("nb201", "params,synflow", out=tmp_path / "killed", resume=True, **kwargs)
        monkeypatch.setattr(Archive, "append", original)
    res = run_search("nb201", "params,synflow", out=tmp_path / "killed", resume=True, **kwargs)
    assert res.resumed_from == 1
    names = ["params", "synflow"]
    assert _comparable(tmp_path / "killed", names) == _comparable(tmp_path / "whole", names)
    # nothing duplicated in the archive, and scores computed before a kill were reused
    rows = Archive(tmp_path / "killed", names).rows()
    assert len(rows) == 8 + 3 * 3 and len({r["candidate"] for r in rows}) == len(rows)


def test_report_lists_picks_with_true_accuracy(tmp_path, nb201_csv):
    run_search("nb201", "params,flops", n_start=6, iterations=1, per_iteration=2, seed=0, out=tmp_path, top_k=2,
               truth=nb201_csv, **FAST)
    assert list((tmp_path / "truth").glob("*.parquet"))
    report = search_report(tmp_path)
    assert [r["label"] for r in report] == [f"pick-{k}" for k in range(1, len(report) + 1)]
    assert all(50.0 < r["true_test_acc"] < 100.0 for r in report)
    pick = json.loads((tmp_path / "picks" / "1.json").read_text())
    assert pick["arch"] == report[0]["arch"] and "proxybench evaluate" in pick["train"]["command"]


def test_top1_error_objective_from_truth_goes_through_surrogates(tmp_path, nb201_csv):
    res = run_search("nb201", "top1_error,params", n_start=10, iterations=1, per_iteration=3, seed=0, out=tmp_path,
                     truth=nb201_csv, surrogate="cart", **FAST)
    rows = Archive(tmp_path, ["top1_error", "params"]).rows()
    assert res.archive_size == 13 and all(r["status"] == "ok" for r in rows)
    assert all(0 < r["obj_top1_error"] < 100 and r["top1_error"] == r["obj_top1_error"] for r in rows)
    assert all(r["pred_top1_error"] is not None for r in rows if r["iteration"] == 1)


@pytest.mark.slow
def test_trained_measure_fills_the_flatnas_columns(tmp_path, data_dir):
    from proxybench.search.measures import TrainedMeasure

    measure = TrainedMeasure(get_space("nb201"), "train:sgd,steps=1,batch_size=16,holdout=64", data_dir=data_dir,
                             eval_images=32, draws=2, mce=True, mce_images=4, cache_dir=tmp_path / "cache")
    res = run_search("nb201", "f_ar,f_cp", n_start=3, iterations=1, per_iteration=1, seed=0, out=tmp_path / "run",
                     measures=[measure], surrogate="cart", **FAST)
    rows = Archive(tmp_path / "run", ["f_ar", "f_cp"]).rows()
    assert res.archive_size == 4 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        assert 0 <= r["top1_error"] <= 100 and r["robustness"] is not None and 0 <= r["mce"] <= 100
    assert json.loads((tmp_path / "run" / "run.json").read_text())["measures"][0]["measure"] == "trained"


def _without_ofa(monkeypatch):
    """Make ``import ofa...`` fail as if the package were not installed."""
    import sys

    for name in [n for n in sys.modules if n == "ofa" or n.startswith("ofa.")] + ["ofa"]:
        monkeypatch.setitem(sys.modules, name, None)


def _count_builds(monkeypatch):
    from proxybench.spaces.ofa import OFASpace

    calls = []
    original = OFASpace.build
    monkeypatch.setattr(OFASpace, "build", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    return calls


@pytest.mark.parametrize("objectives", ["params,flops", "params,synflow"])
def test_ofa_search_without_the_ofa_package_fails_before_the_first_candidate(tmp_path, monkeypatch, objectives):
    from proxybench.errors import ProxybenchError

    _without_ofa(monkeypatch)
    builds = _count_builds(monkeypatch)
    with pytest.raises(ProxybenchError, match=r"needs the 'ofa' package .*: pip install ofa==0\.1\.0\.post202307202001"):
        run_search("ofa", objectives, n_start=4, iterations=1, per_iteration=2, seed=0, out=tmp_path,
                   space_options={"random_init": True, "resolutions": [32, 48]}, **FAST)
    assert builds == [] and not (tmp_path / "run.json").exists() and not (tmp_path / "archive").exists()


def test_ofa_search_without_weights_fails_before_the_first_candidate(tmp_path, monkeypatch):
    builds = _count_builds(monkeypatch)
    with pytest.raises(InvalidSettingError, match="no OFA supernet weights"):
        run_search("ofa", "params,flops", n_start=4, iterations=1, per_iteration=2, seed=0, out=tmp_path, **FAST)
    with pytest.raises(InvalidSettingError, match="weights file 'nowhere.pth' does not exist"):
        run_search("ofa", "params,flops", n_start=4, iterations=1, per_iteration=2, seed=0, out=tmp_path / "b",
                   space_options={"supernet_weights": "nowhere.pth"}, **FAST)
    assert builds == [] and not (tmp_path / "run.json").exists()


def test_search_on_proxies_without_their_dataset_fails_before_the_first_candidate(tmp_path, monkeypatch):
    import proxybench.data
    from proxybench.errors import DataNotFoundError

    asked = []

    def no_data(dataset, split, **kwargs):
        asked.append((dataset, split))
        raise DataNotFoundError(f"{dataset} {split} images not found")

    monkeypatch.setattr(proxybench.data, "load_images", no_data)
    with pytest.raises(DataNotFoundError, match="cifar10 train images not found"):
        run_search("nb201", "flops,snip", n_start=4, iterations=1, per_iteration=2, seed=0, out=tmp_path, **FAST)
    assert asked == [("cifar10", "train")] and not (tmp_path / "run.json").exists()
    # data-free proxies need no dataset at all
    run_search("nb201", "params,synflow", n_start=4, iterations=1, per_iteration=2, seed=0, out=tmp_path / "free",
               **FAST)
    assert asked == [("cifar10", "train")]
