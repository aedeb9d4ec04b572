"""Choosing among evaluated points: the front, K candidates per iteration, and the final top-k picks.

All functions take an ``(n, m)`` array of minimised objective values and return row indices;
they are deterministic (ties go to the lower index), so a search is reproducible.

* :func:`non_dominated`: the first front (pymoo's non-dominated sorting).
* :func:`rank_and_crowding` (**the K-pick rule** of every iteration, and the rule that trims
  the initial population): NSGA-II's survival. Whole fronts are taken in rank order; the
  front that does not fit is thinned by repeatedly dropping the point with the smallest
  crowding distance (pymoo's ``calc_crowding_distance``, recomputed after every drop), so the
  picks spread along the front and its extremes (infinite crowding distance) stay. Crowding
  is measured after :func:`compress`.
* :func:`trade_off_picks` (**the top-k rule**): on the non-dominated set, every objective is
  first compressed when it spans more than six orders of magnitude (:func:`compress`, a
  signed log10: SynFlow's scores do), then normalised to [0, 1] by the set's own minimum (ideal point) and maximum (nadir); pick 1 is
  the point closest to the ideal point (Euclidean), the knee of the front in the usual
  compromise-programming sense and "the search's own criterion" for a single answer; each
  further pick is the point farthest (in normalised space) from the picks so far, so k = 3 on
  two objectives gives the knee and the two extremes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "compress",
    "fronts",
    "log_columns",
    "non_dominated",
    "normalised",
    "rank_and_crowding",
    "trade_off_picks",
]

#: A column whose non-zero magnitudes span more than this ratio is compressed (see :func:`compress`).
LOG_RATIO = 1e6


def log_columns(F: np.ndarray) -> np.ndarray:
    """Which columns span more than six orders of magnitude (e.g. SynFlow, 1e15..1e36)."""
    F = np.atleast_2d(np.asarray(F, dtype=float))
    mask = np.zeros(F.shape[1], dtype=bool)
    for j in range(F.shape[1]):
        a = np.abs(F[:, j][np.isfinite(F[:, j])])
        a = a[a > 0]
        mask[j] = a.size > 0 and a.max() / a.min() > LOG_RATIO
    return mask


def compress(F: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``sign(f) log10(1 + |f|)`` on the columns in ``mask`` (default :func:`log_columns`).

    A monotone map per objective changes no dominance relation, but it keeps a heavy-tailed
    objective from squashing the others in crowding distances and normalisations.
    """
    F = np.asarray(F, dtype=float)
    mask = log_columns(F) if mask is None else np.asarray(mask, dtype=bool)
    out = F.copy()
    if out.ndim == 1:
        out = out[None, :]
    out[:, mask] = np.sign(out[:, mask]) * np.log10(1.0 + np.abs(out[:, mask]))
    return out.reshape(F.shape)


def fronts(F: np.ndarray) -> list[np.ndarray]:
    """Non-dominated fronts (indices), best first; every index sorted."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return []
    return [np.sort(np.asarray(f, dtype=int)) for f in NonDominatedSorting().do(F)]


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (duplicates of a non-dominated row included)."""
    found = fronts(F)
    return found[0] if found else np.zeros(0, dtype=int)


def _crowding(F: np.ndarray) -> np.ndarray:
    from pymoo.operators.survival.rank_and_crowding.metrics import (
        calc_crowding_distance,
    )

    if len(F) <= 2:
        return np.full(len(F), np.inf)
    return np.asarray(calc_crowding_distance(F), dtype=float)


def rank_and_crowding(F: np.ndarray, n: int) -> np.ndarray:
    """``n`` indices by NSGA-II's rank-and-crowding survival with iterative pruning (see the module doc)."""
    F = compress(np.asarray(F, dtype=float))
    chosen: list[int] = []
    for front in fronts(F):
        if len(chosen) + len(front) <= n:
            chosen.extend(front.tolist())
            if len(chosen) == n:
                break
            continue
        keep = list(front.tolist())
        while len(chosen) + len(keep) > n:
            cd = _crowding(F[keep])
            # smallest crowding distance goes first; ties: the higher index goes
            worst = min(range(len(keep)), key=lambda i: (cd[i], -keep[i]))
            keep.pop(worst)
        chosen.extend(keep)
        break
    return np.asarray(chosen, dtype=int)


def normalised(F: np.ndarray) -> np.ndarray:
    """``(F − min) / (max − min)`` per column over the rows given (0 for a constant column)."""
    F = np.asarray(F, dtype=float)
    lo, hi = F.min(axis=0), F.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (F - lo) / span


def trade_off_picks(F: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` indices of the non-dominated rows of ``F``: closest to the ideal point first,
    then farthest-point spread (see the module docstring)."""
    F = np.asarray(F, dtype=float)
    front = non_dominated(F)
    if len(front) == 0 or k < 1:
        return np.zeros(0, dtype=int)
    Z = normalised(compress(F[front]))
    dist = np.linalg.norm(Z, axis=1)
    picks = [int(np.argmin(dist))]
    while len(picks) < min(k, len(front)):
        gap = np.min(np.linalg.norm(Z[:, None, :] - Z[None, picks, :], axis=2), axis=1)
        gap[picks] = -1.0
        best = int(np.argmax(gap))
        if gap[best] <= 0:  # only duplicates of picks are left
            break
        picks.append(best)
    return front[picks]
