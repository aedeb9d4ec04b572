"""How good a found front is: hypervolume and its ratio to the benchmark's true front.

On NAS-Bench-201 every architecture's true accuracy and hardware cost are known, so a
search's answer can be judged against the best possible answer. Both fronts are taken in the
same minimised objective space — e.g. (test error in %, latency in ms) — and normalised with
the **true front's** ideal (per-objective minimum) and nadir (per-objective maximum) points,
so that both objectives weigh alike and the result has no unit:

    z' = (z − ideal) / (nadir − ideal)

The **reference point** is ``(1 + margin, ..., 1 + margin)`` in that normalised space,
``margin = 0.1`` by default: 10 % beyond the true front's nadir, the usual choice in the
multi-objective literature (it keeps the true front's extreme points contributing). Points
beyond the reference point in any objective contribute nothing. The hypervolume is pymoo's
(:class:`pymoo.indicators.hv.HV`, exact in two and three objectives), and

    HV ratio = HV(found) / HV(true front)  ∈ [0, 1]

1 means the found set dominates as much as the benchmark's whole Pareto front does. The
found set is any set of points: dominated points add nothing to a hypervolume, so passing
every evaluated architecture gives the HV of their non-dominated subset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from proxybench.errors import InvalidSettingError

__all__ = ["REFERENCE_MARGIN", "hypervolume", "hypervolume_ratio", "normalise_by_front"]

#: Reference point = true front's nadir + this fraction of its range, per objective.
REFERENCE_MARGIN = 0.1


def _as_points(points: Sequence[Sequence[float]] | np.ndarray, name: str) -> np.ndarray:
    F = np.asarray(points, dtype=np.float64)
    if F.ndim != 2 or (F.size and not np.isfinite(F).all()):
        raise InvalidSettingError(f"{name} must be a 2-D array of finite minimised objective values, got shape "
                                  f"{F.shape}")
    return F


def hypervolume(points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]) -> float:
    """The hypervolume dominated by ``points`` (minimised) up to ``reference``; 0 for no point.

    Example:
        >>> hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4])  # a staircase of three 1x1 steps plus 3
        6.0
    """
    from pymoo.indicators.hv import HV

    F = _as_points(points, "points")
    ref = np.asarray(reference, dtype=np.float64)
    if F.size == 0:
        return 0.0
    if F.shape[1] != ref.shape[0]:
        raise InvalidSettingError(f"points have {F.shape[1]} objectives but the reference point has {ref.shape[0]}")
    inside = F[np.all(F < ref, axis=1)]
    return float(HV(ref_point=ref)(inside)) if len(inside) else 0.0


def normalise_by_front(points: np.ndarray, front: np.ndarray) -> np.ndarray:
    """``(points − ideal) / (nadir − ideal)`` with the ideal and nadir points of ``front``."""
    ideal, nadir = front.min(axis=0), front.max(axis=0)
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    return (points - ideal) / span


def hypervolume_ratio(found: Sequence[Sequence[float]] | np.ndarray,
                      true_points: Sequence[Sequence[float]] | np.ndarray, margin: float = REFERENCE_MARGIN) -> float:
    """HV(found) / HV(true front), both normalised by the true front (see the module docstring).

    Args:
        found: The search's points, minimised, shape ``(n, m)``.
        true_points: Every point of the benchmark (or just its Pareto front), same objectives.
        margin: Reference point = nadir + ``margin`` × range of the true front.

    Raises:
        InvalidSettingError: Empty truth, mismatched shapes or non-finite values.
    """
    from proxybench.search.select import non_dominated

    truth = _as_points(true_points, "true_points")
    if len(truth) == 0:
        raise InvalidSettingError("true_points is empty; the ratio needs the benchmark's points")
    F = _as_points(found, "found")
    if F.size and F.shape[1] != truth.shape[1]:
        raise InvalidSettingError(f"found has {F.shape[1]} objectives, true_points {truth.shape[1]}")
    front = truth[non_dominated(truth)]
    reference = np.full(truth.shape[1], 1.0 + float(margin))
    best = hypervolume(normalise_by_front(front, front), reference)
    return hypervolume(normalise_by_front(F, front), reference) / best if F.size else 0.0
