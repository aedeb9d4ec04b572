"""Exact evaluations of a search: isomorph sharing in the inner loop and the counts it records (issue 13)."""

from __future__ import annotations

import pyarrow.parquet as pq

from proxybench.search.loop import run_search
from proxybench.search.measures import CostMeasure, Evaluator
from proxybench.spaces import get_space


class Recording:
    """Returns len(arch) as ``q``; records what it measured (caching, like every measure)."""

    quantities = ("q",)

    def __init__(self, invariant: bool) -> None:
        self.isomorph_invariant = invariant
        self.asked: list[str] = []

    def measure(self, archs):
        self.asked += [a for a in dict.fromkeys(archs) if a not in self.asked]
        return {a: {"q": float(len(a))} for a in archs}

    def describe(self):
        return {"measure": "recording"}


def _uid(arch: str) -> str:  # "a1", "a22" and "a333" are isomorphs; "b1" is not
    return arch[0]


def test_isomorphs_share_the_representatives_value_within_a_scope_and_are_counted():
    m = Recording(invariant=True)
    ev = Evaluator([m], uid=_uid)
    values, _ = ev.measure(["a22", "a1", "b1"], ["q"], share_isomorphs=True)
    assert m.asked == ["a22", "b1"]  # one measurement per class, on the first member asked
    assert values == {"a22": {"q": 3.0}, "a1": {"q": 3.0}, "b1": {"q": 2.0}}
    assert ev.counts == {"computed": 2, "reused": 1}
    ev.measure(["a333"], ["q"], share_isomorphs=True)
    assert m.asked == ["a22", "b1"] and ev.counts == {"computed": 2, "reused": 2}
    ev.new_scope()  # a new iteration: the class gets its first member asked there
    values, _ = ev.measure(["a333", "a22"], ["q"], share_isomorphs=True)
    assert m.asked[-1:] == ["a333"] and values["a22"] == {"q": 4.0}
    assert ev.counts == {"computed": 3, "reused": 3}


def test_without_sharing_or_for_a_measure_that_is_not_invariant_each_arch_is_measured():
    for invariant, share in ((True, False), (False, True)):
        m = Recording(invariant=invariant)
        ev = Evaluator([m], uid=_uid)
        values, _ = ev.measure(["a22", "a1"], ["q"], share_isomorphs=share)
        assert m.asked == ["a22", "a1"] and values["a1"] == {"q": 2.0}
        assert ev.counts == {"computed": 2, "reused": 0}


def test_search_measures_each_isomorphism_class_once_per_iteration_and_reports_the_spend(tmp_path, monkeypatch):
    space = get_space("nb201")
    asked: list[list[str]] = []
    original = CostMeasure.measure

    def measure(self, archs):
        asked.append([a for a in dict.fromkeys(archs) if a not in self._cache])  # what it computes
        return original(self, archs)

    monkeypatch.setattr(CostMeasure, "measure", measure)
    res = run_search("nb201", "params,flops", n_start=6, iterations=2, per_iteration=3, seed=1, out=tmp_path,
                     pop_size=24, generations=6, top_k=1)
    stats = {s["iteration"]: s for s in pq.read_table(tmp_path / "iterations.parquet").to_pylist()}
    computed = sum(s["n_exact_computed"] for s in stats.values())
    reused = sum(s["n_exact_reused"] for s in stats.values())
    assert stats[0]["n_exact_computed"] == 6 * 2 and stats[0]["n_exact_reused"] == 0  # params_m, macs_m
    measured = [a for call in asked for a in call]
    # what was measured is what was counted (two quantities per architecture), never more than once
    assert computed == 2 * len(measured) == 2 * len(set(measured))
    assert reused > 0  # NSGA-II's offspring repeat isomorphs; their values were shared
    # within the inner loop of an iteration, no two measured architectures are isomorphs
    for call in asked:
        assert len({space.uid(a) for a in call}) == len(call)
    assert (res.exact_computed, res.exact_reused) == (computed, reused)
    assert f"{computed} exact evaluations computed, {reused} reused" in str(res)
