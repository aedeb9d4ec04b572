"""Bootstrap 95 % confidence intervals of Spearman ρ and Kendall τ-b, in numpy.

The point estimates are SQL (:mod:`proxybench.stats._sql`); the bootstrap runs in numpy on
the joined vectors that DuckDB hands back, because N resamples of every group would be N
copies of the pairs in SQL. It is still exact and fast, because a resample is the original
pairs with multiplicities w (``bincount`` of the drawn indices), so nothing is re-sorted:

* Spearman: in a resample, an x tie group g with total multiplicity W_g, preceded by groups
  of total multiplicity C_g, has average rank C_g + (W_g + 1)/2; ρ is the w-weighted Pearson
  correlation of those ranks, i.e. the Pearson correlation over the expanded resample.
* Kendall τ-b: copies of one pair are tied in x and y; discordant pairs between distinct
  pairs count w_i·w_j. The weighted inversion count uses the same bit decomposition as the
  SQL (order by (x, y), dense rank r of y; per level b, parts r >> (b+1)), with the running
  sums taken along a per-level permutation fixed once, over a block of resamples at a time.
  Tie counts are Σ W_g(W_g − 1)/2 over tie groups of x, of y and of (x, y).

Both equal scipy on the explicitly expanded resample (see ``tests/test_correlate.py``).
The interval is the percentile interval (2.5 %, 97.5 %) of the resampled statistics. Each
group draws from its own generator, seeded from ``seed`` and the group's key, so a group's
interval does not depend on which other groups are in the same call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = ["bootstrap_ci", "group_rng", "weighted_spearman", "weighted_kendall"]

_BLOCK_ELEMENTS = 1_000_000  # resamples per block × pairs: bounds memory (8 MB per array)


def group_rng(seed: int, key: Sequence[object]) -> np.random.Generator:
    """A generator seeded from ``seed`` and a group key (stable across runs and platforms)."""
    digest = hashlib.sha256(repr(tuple(key)).encode()).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


def _tie_groups(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Index of each value's tie group, groups numbered in increasing value order."""
    uniques, inverse = np.unique(values, return_inverse=True)
    return inverse.reshape(-1), len(uniques)


def _group_totals(weights: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Per resample (row), the summed weight of each group: shape (rows, n_groups)."""
    rows = weights.shape[0]
    flat = (np.arange(rows)[:, None] * n_groups + groups[None, :]).ravel()
    return np.bincount(flat, weights=weights.ravel(), minlength=rows * n_groups).reshape(rows, n_groups)


def _average_ranks(weights: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    totals = _group_totals(weights, groups, n_groups)
    before = np.cumsum(totals, axis=1) - totals
    ranks = before + (totals + 1.0) / 2.0
    return np.take_along_axis(ranks, np.broadcast_to(groups, weights.shape), axis=1)


def weighted_spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman ρ of each resample given as multiplicities (rows of ``weights``).

    Args:
        x, y: The n original pairs.
        weights: (rows, n) non-negative integer multiplicities, each row summing to the
            resample size.

    Returns:
        ρ per row (NaN where x or y is constant within the resample).
    """
    gx, kx = _tie_groups(x)
    gy, ky = _tie_groups(y)
    rx = _average_ranks(weights, gx, kx)
    ry = _average_ranks(weights, gy, ky)
    total = weights.sum(axis=1, keepdims=True)
    mx = (weights * rx).sum(axis=1, keepdims=True) / total
    my = (weights * ry).sum(axis=1, keepdims=True) / total
    dx, dy = rx - mx, ry - my
    cov = (weights * dx * dy).sum(axis=1)
    var = (weights * dx * dx).sum(axis=1) * (weights * dy * dy).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)


def _pairs_within(weights: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    totals = _group_totals(weights, groups, n_groups)
    return (totals * (totals - 1) / 2).sum(axis=1)


def weighted_kendall(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Kendall τ-b of each resample given as multiplicities (rows of ``weights``).

    Same arguments as :func:`weighted_spearman`; NaN where x or y is constant.
    """
    order = np.lexsort((y, x))  # by x, then y
    # Integer arithmetic: running sums stay below n and products below n·max(w), exact in int64.
    w = weights[:, order].astype(np.int64)
    r = np.unique(y[order], return_inverse=True)[1].reshape(-1).astype(np.int64)
    nd = np.zeros(w.shape[0], dtype=np.int64)
    for b in range(int(r.max()).bit_length() if len(r) else 0):
        part = r >> (b + 1)
        perm = np.argsort(part, kind="stable")  # parts contiguous, positions kept in order
        part_sorted = part[perm]
        bit = ((r >> b) & 1)[perm].astype(bool)
        starts = np.flatnonzero(np.r_[True, part_sorted[1:] != part_sorted[:-1]])
        start_of = np.repeat(starts, np.diff(np.r_[starts, len(r)]))
        wp = w[:, perm]
        ones = wp * bit
        before = np.cumsum(ones, axis=1) - ones  # ones strictly before, over all parts
        ones_before = before - before[:, start_of]  # ... within the element's own part
        nd += (wp[:, ~bit] * ones_before[:, ~bit]).sum(axis=1)
    total = weights.sum(axis=1).astype(np.float64)
    n0 = total * (total - 1) / 2
    gx, kx = _tie_groups(x)
    gy, ky = _tie_groups(y)
    gxy, kxy = _tie_groups(gx.astype(np.int64) * (ky + 1) + gy)
    n1 = _pairs_within(weights, gx, kx)
    n2 = _pairs_within(weights, gy, ky)
    n3 = _pairs_within(weights, gxy, kxy)
    den = (n0 - n1) * (n0 - n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (n0 - n1 - n2 + n3 - 2 * nd) / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)


def bootstrap_ci(
    x: np.ndarray, y: np.ndarray, resamples: int, rng: np.random.Generator
) -> dict[str, tuple[float, float]]:
    """Percentile 95 % intervals of Spearman ρ and Kendall τ-b over ``resamples`` resamples.

    Args:
        x, y: The joined, oriented scores and true values of one group (n ≥ 3).
        resamples: Number of resamples of n pairs drawn with replacement.
        rng: The group's generator (:func:`group_rng`).

    Returns:
        ``{"spearman": (lo, hi), "kendall": (lo, hi)}``; NaN bounds when every resample
        was degenerate.
    """
    n = len(x)
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    rho: list[np.ndarray] = []
    tau: list[np.ndarray] = []
    done = 0
    while done < resamples:
        rows = min(block, resamples - done)
        drawn = rng.integers(0, n, size=(rows, n))
        flat = (np.arange(rows)[:, None] * n + drawn).ravel()
        weights = np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)
        rho.append(weighted_spearman(x, y, weights))
        tau.append(weighted_kendall(x, y, weights))
        done += rows
    result = {}
    for name, values in (("spearman", np.concatenate(rho)), ("kendall", np.concatenate(tau))):
        finite = values[np.isfinite(values)]
        if len(finite) == 0:
            result[name] = (float("nan"), float("nan"))
        else:
            lo, hi = np.percentile(finite, [2.5, 97.5])
            result[name] = (float(lo), float(hi))
    return result
