"""FlatNAS's search objectives: F_AR (accuracy + robustness) and F_CP (constrained parameters).

From the paper (Gambella, Pittorino, Roveri 2024, arXiv:2402.19102) and its code
(AI-Tech-Research-Lab/CNAS), both minimised by NSGA-II:

* ``F_AR(x, α, σ) = α (1 − F_A(x)) + γ (1 − α) R(x, σ)``, with ``R`` the robustness to weight
  noise (:mod:`proxybench.proxies.flatness`) and ``γ`` a scale that puts R on the error's
  scale. In the code (``cnas.py``: ``compute_alpha_norm`` and the archive refresh in
  ``search``), ``1 − F_A`` is the top-1 **error in percent** (the ``top1`` field of every
  ``.stats`` file is an error: ``explainability.py`` plots it as "1-top1 (%)" and drops
  failed networks by ``err_top1 == 100``), R is in percentage points, and

      γ = mean(top-1 error) / mean(R)

  over every network evaluated so far (``get_archive`` globs every ``iter_*`` up to the
  previous iteration), ``γ = 1`` for the initial sample; every archive entry's F_AR is
  recomputed with the new γ before the surrogate is fitted. The paper writes
  ``γ = Σ F_A(x_i) / Σ R(x_i, σ)`` with F_A the *accuracy*. The two differ (error vs
  accuracy in the numerator); :func:`gamma_from_archive` follows the code by default
  (``numerator="error"``) and offers the printed formula (``numerator="accuracy"``,
  accuracy = 100 − error). Mean/mean equals Σ/Σ over the same networks.
* ``F_CP(x, P̄, p) = F_P(x) + p · max(0, F_P(x) − P̄)``, F_P the parameters in millions,
  ``P̄ = 5``, ``p = 1e10`` (``scripts/search_flatnas.sh``: ``sec_obj=tiny_ml``, ``pmax=5``,
  ``wp=1``). Note: the code's ``tiny_ml`` (``utils.py``) also adds
  ``wm·(MACs + p·max(0, MACs − mmax)) + wa·(activations + p·max(0, activations − amax))``
  with ``cnas.py``'s defaults ``wm = 1/40``, ``wa = 1`` unless the script sets them to 0,
  which ``search_flatnas.sh`` does not; the paper's F_CP, implemented here, has the
  parameter term only.

All three functions take scalars or NumPy arrays (element-wise) and return the same kind.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from proxybench.errors import InvalidSettingError

__all__ = ["f_ar", "gamma_from_archive", "f_cp"]

_Num = float | np.ndarray


def f_ar(error: _Num | Sequence[float], robustness: _Num | Sequence[float], alpha: float = 0.5,
         gamma: float = 1.0) -> _Num:
    """``α · error + γ (1 − α) · R`` (minimise).

    Args:
        error: Top-1 error ``1 − F_A`` -- in the same unit as ``robustness`` (percent, as the
            CNAS code, with R in percentage points).
        robustness: R(x, σ).
        alpha: Weight of the error in [0, 1] (FlatNAS: 0.5).
        gamma: Scale of R (:func:`gamma_from_archive`; 1 for the initial sample).

    Raises:
        InvalidSettingError: ``alpha`` outside [0, 1].

    Example:
        >>> f_ar(10.0, 2.0, alpha=0.5, gamma=5.0)
        10.0
    """
    if not 0.0 <= alpha <= 1.0:
        raise InvalidSettingError(f"alpha must be in [0, 1], got {alpha}")
    out = alpha * np.asarray(error, dtype=float) + gamma * (1.0 - alpha) * np.asarray(robustness, dtype=float)
    return float(out) if out.ndim == 0 else out


def gamma_from_archive(errors: Sequence[float] | np.ndarray, robustness: Sequence[float] | np.ndarray, *,
                       numerator: str = "error", scale: float = 100.0) -> float:
    """γ from everything evaluated so far: ``mean(error) / mean(R)`` (the CNAS code).

    Args:
        errors: Top-1 errors of the archive (percent).
        robustness: Their R(x, σ), same order.
        numerator: ``"error"`` (code) or ``"accuracy"`` (the paper's Σ F_A / Σ R, with
            accuracy = ``scale`` − error).
        scale: 100 for errors in percent, 1 for fractions (only used for ``"accuracy"``).

    Returns:
        γ; 1.0 when the archive is empty (the code's value for the initial sample). Pairs
        with a non-finite value (failed evaluations) are left out.

    Raises:
        InvalidSettingError: Lengths differ, unknown ``numerator``, or every R is 0 (γ undefined).

    Example:
        >>> gamma_from_archive([10.0, 30.0], [1.0, 3.0])
        10.0
    """
    e = np.asarray(errors, dtype=float).reshape(-1)
    r = np.asarray(robustness, dtype=float).reshape(-1)
    if e.shape != r.shape:
        raise InvalidSettingError(f"errors and robustness differ in length ({e.size} vs {r.size})")
    if numerator not in ("error", "accuracy"):
        raise InvalidSettingError(f"numerator must be 'error' or 'accuracy', got {numerator!r}")
    keep = np.isfinite(e) & np.isfinite(r)
    e, r = e[keep], r[keep]
    if e.size == 0:
        return 1.0
    top = (scale - e) if numerator == "accuracy" else e
    if float(np.sum(r)) == 0.0:
        raise InvalidSettingError("gamma is undefined: every robustness value in the archive is 0")
    return float(np.mean(top) / np.mean(r))


def f_cp(params_m: _Num | Sequence[float], p_bar: float = 5.0, penalty: float = 1e10) -> _Num:
    """``F_P + p · max(0, F_P − P̄)`` with F_P in millions of parameters (minimise).

    Example:
        >>> f_cp(4.0), f_cp(5.5, p_bar=5.0, penalty=10.0)
        (4.0, 10.5)
    """
    p = np.asarray(params_m, dtype=float)
    out = p + penalty * np.maximum(0.0, p - p_bar)
    return float(out) if out.ndim == 0 else out
