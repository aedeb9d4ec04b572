"""Search: problem definition, objectives (F_AR, F_CP, any proxy), surrogates, NSGA-II loop, archive.

Public API::

    from proxybench.search import run_search, search_report

    result = run_search("nb201", "synflow,flops", n_start=100, iterations=30, per_iteration=8,
                        seed=0, out="RUN", data_dir="data")
    search_report("RUN", truth="nats_bench_tss_200ep.csv")

Modules: :mod:`~proxybench.search.objectives` (F_AR, γ, F_CP), :mod:`~proxybench.search.problem`
(objective names, the pymoo adapter), :mod:`~proxybench.search.measures` (what is measured and
how), :mod:`~proxybench.search.surrogates` (RBF/GP/CART/MLP and their choice by CV Kendall τ),
:mod:`~proxybench.search.select` (front, K-pick and top-k rules), :mod:`~proxybench.search.archive`
(the Parquet archive) and :mod:`~proxybench.search.loop` (the loop, resume, picks, report).
"""

from proxybench.search.loop import SearchResult, run_search, search_report
from proxybench.search.objectives import f_ar, f_cp, gamma_from_archive

__all__ = ["SearchResult", "f_ar", "f_cp", "gamma_from_archive", "run_search", "search_report"]
