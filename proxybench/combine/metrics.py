"""How good a predictor's ranking of the test architectures is, and intervals over splits.

Kendall τ-b, Spearman ρ and top-k overlap are the ones ``proxybench correlate`` computes
(:func:`proxybench.stats.correlation.correlate_vectors`, the same SQL), so a predictor's τ
and a proxy's τ are the same statistic. Added here:

* **nDCG@k%** — the architectures ranked by prediction; the gain of an architecture is its
  true value minus the test set's smallest (so the gains are ≥ 0 and an offset of the metric
  changes nothing); DCG sums the gains of the first m = ⌈k·n/100⌉ places discounted by
  log2(place + 1), divided by the DCG of the true order. Tied predictions share places: each
  member of a tie group gets the group's mean gain (the expected DCG over the orders the tie
  allows), so a constant predictor scores what a random order scores on average, not what an
  arbitrary tie-break happens to give.
* **Intervals over splits** — the mean over s splits ± t(0.975, s−1)·sd/√s (a 95 % t-interval
  of the mean; splits are independent draws of the training set).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats as scipy_stats

from proxybench.stats.correlation import correlate_vectors, topk_column

__all__ = ["ranking_metrics", "ndcg", "mean_interval"]


def ndcg(predicted: np.ndarray, truth: np.ndarray, k: float) -> float:
    """nDCG of the first ⌈k·n/100⌉ places of the predicted order (see the module docstring)."""
    n = len(truth)
    if n == 0:
        return math.nan
    m = max(1, math.ceil(k * n / 100.0 - 1e-9))
    gains = truth - truth.min()
    order = np.argsort(-predicted, kind="stable")
    sorted_pred = predicted[order]
    group = np.concatenate([[0], np.cumsum(np.diff(sorted_pred) != 0)])
    sorted_gain = (np.bincount(group, weights=gains[order]) / np.bincount(group))[group]
    discounts = 1.0 / np.log2(np.arange(2, m + 2))
    ideal = np.sort(gains)[::-1][:m]
    best = float(ideal @ discounts)
    if best == 0:
        return math.nan
    return float(sorted_gain[:m] @ discounts) / best


def ranking_metrics(predicted: np.ndarray, truth: np.ndarray, top_k: Sequence[float]) -> dict[str, float]:
    """``kendall``, ``spearman``, ``top<k>`` and ``ndcg<k>`` of a prediction of the test set."""
    found = correlate_vectors(predicted, truth, top_k)
    result = {"kendall": found["kendall"], "spearman": found["spearman"]}
    for k in top_k:
        result[topk_column(k)] = found[topk_column(k)]
        result["ndcg" + topk_column(k)[3:]] = ndcg(predicted, truth, k)
    return result


def mean_interval(values: Iterable[float]) -> tuple[float, float, float]:
    """Mean and 95 % t-interval over splits; NaN bounds with fewer than two finite values."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(finite) == 0:
        return math.nan, math.nan, math.nan
    mean = float(finite.mean())
    if len(finite) < 2:
        return mean, math.nan, math.nan
    half = float(scipy_stats.t.ppf(0.975, len(finite) - 1) * finite.std(ddof=1) / math.sqrt(len(finite)))
    return mean, mean - half, mean + half
