"""Surrogate models of expensive objectives, and their per-iteration choice by cross-validated Kendall τ.

Four model classes, all from scikit-learn / SciPy (no hand-written numerics), the set used by
MSuNAS / NSGANetV2 and FlatNAS (DESIGN.md §7):

* ``rbf``: :class:`scipy.interpolate.RBFInterpolator`, cubic kernel with a linear tail
  (pySOT's/MSuNAS's RBF), a tiny smoothing for numerical stability; constant input columns
  are dropped first (they would make the linear tail singular).
* ``gp``: :class:`sklearn.gaussian_process.GaussianProcessRegressor`, constant × Matérn-5/2
  with one length scale per gene (ARD) + white noise, 2 optimiser restarts.
* ``cart``: an ensemble of CART trees, :class:`sklearn.ensemble.BaggingRegressor` of 50
  bootstrapped :class:`~sklearn.tree.DecisionTreeRegressor`.
* ``mlp``: :class:`sklearn.neural_network.MLPRegressor`, two hidden layers of 64 ReLUs,
  L-BFGS (small data), weight decay 1e-3.

Every model sees the genome scaled to [0, 1] by the space's bounds (``(x − xl) / (xu − xl)``)
and the target standardised (zero mean, unit variance), after a signed log10 when the
targets span more than six orders of magnitude (SynFlow's scores do;
:func:`proxybench.search.select.compress`); predictions are mapped back. Every
model is seeded (``seed``), so a fit on the same data gives the same predictions.

**Choice** (``surrogate="auto"``, :func:`choose_surrogate`): every candidate class is scored by
K-fold cross-validation (K = 10, fewer when there are few points: at least three points per
held-out fold), Kendall τ between the held-out predictions and the truth per fold, and the
class with the largest ``mean(τ) − std(τ)`` wins (MSuNAS/NSGANetV2's adaptive switching);
ties go to the earlier name in :data:`SURROGATES`. A fold whose τ is undefined (constant
predictions or targets) counts as τ = 0. Below six points there is nothing to
cross-validate and the first candidate is used.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from proxybench.errors import InvalidSettingError

__all__ = [
    "SURROGATES",
    "Surrogate",
    "SurrogateChoice",
    "choose_surrogate",
    "cv_kendall",
    "fit_quality",
    "make_surrogate",
]

#: Model classes, in tie-break order.
SURROGATES: tuple[str, ...] = ("rbf", "gp", "cart", "mlp")


class Surrogate:
    """A seeded regression model on integer genomes; see the module docstring.

    Args:
        name: One of :data:`SURROGATES`.
        xl: Lower bound per gene.
        xu: Upper bound per gene.
        seed: Seed of the model's randomness (GP restarts, bagging, MLP initialisation).
    """

    def __init__(self, name: str, xl: Sequence[float] | np.ndarray, xu: Sequence[float] | np.ndarray,
                 seed: int = 0) -> None:
        if name not in SURROGATES:
            raise InvalidSettingError(f"unknown surrogate '{name}'; choose auto or one of {', '.join(SURROGATES)}")
        self.name = name
        self.xl = np.asarray(xl, dtype=float)
        self.xu = np.asarray(xu, dtype=float)
        self.seed = int(seed)
        self._model = None
        self._keep: np.ndarray | None = None
        self._mean = 0.0
        self._std = 1.0
        self._log = False

    def _scale(self, X: np.ndarray) -> np.ndarray:
        span = np.where(self.xu > self.xl, self.xu - self.xl, 1.0)
        return (np.asarray(X, dtype=float) - self.xl) / span

    def fit(self, X: np.ndarray, y: np.ndarray) -> Surrogate:
        """Fit on genomes ``X`` (n × n_var) and targets ``y`` (n,)."""
        Z = self._scale(X)
        y = np.asarray(y, dtype=float).reshape(-1)
        if Z.shape[0] != y.size or y.size == 0:
            raise InvalidSettingError(f"surrogate needs as many targets as genomes (got {Z.shape[0]} and {y.size})")
        from proxybench.search.select import log_columns

        self._log = bool(log_columns(y[:, None])[0])
        if self._log:
            y = np.sign(y) * np.log10(1.0 + np.abs(y))
        self._mean = float(np.mean(y))
        std = float(np.std(y))
        self._std = std if std > 0 else 1.0
        t = (y - self._mean) / self._std
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter of GP/MLP on small data
            self._model = getattr(self, f"_fit_{self.name}")(Z, t)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted targets of genomes ``X``."""
        if self._model is None:
            raise InvalidSettingError("surrogate used before fit")
        Z = self._scale(np.atleast_2d(X))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = self._predict(Z)
        y = np.asarray(t, dtype=float).reshape(-1) * self._std + self._mean
        if self._log:
            y = np.sign(y) * (np.power(10.0, np.minimum(np.abs(y), 300.0)) - 1.0)
        return y

    # -- the four classes ------------------------------------------------------------------
    def _fit_rbf(self, Z: np.ndarray, t: np.ndarray):
        from scipy.interpolate import RBFInterpolator

        keep = np.ptp(Z, axis=0) > 0 if len(Z) > 1 else np.zeros(Z.shape[1], dtype=bool)
        self._keep = keep
        if not keep.any() or len(Z) < 2:
            return ("constant", float(np.mean(t)))
        Zk = Z[:, keep]
        degree = 1 if len(Zk) > Zk.shape[1] + 1 else 0
        for smoothing in (1e-8, 1e-3, 1e-1):
            try:
                return RBFInterpolator(Zk, t, kernel="cubic", degree=degree, smoothing=smoothing)
            except (np.linalg.LinAlgError, ValueError):
                continue
        return ("constant", float(np.mean(t)))

    def _fit_gp(self, Z: np.ndarray, t: np.ndarray):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.ones(Z.shape[1]), (1e-2, 1e2), nu=2.5)
                  + WhiteKernel(1e-3, (1e-8, 1e1)))
        return GaussianProcessRegressor(kernel=kernel, normalize_y=False, n_restarts_optimizer=1,
                                        random_state=self.seed).fit(Z, t)

    def _fit_cart(self, Z: np.ndarray, t: np.ndarray):
        from sklearn.ensemble import BaggingRegressor
        from sklearn.tree import DecisionTreeRegressor

        return BaggingRegressor(estimator=DecisionTreeRegressor(random_state=self.seed), n_estimators=50,
                                random_state=self.seed).fit(Z, t)

    def _fit_mlp(self, Z: np.ndarray, t: np.ndarray):
        from sklearn.neural_network import MLPRegressor

        return MLPRegressor(hidden_layer_sizes=(64, 64), solver="lbfgs", alpha=1e-3, max_iter=500,
                            random_state=self.seed).fit(Z, t)

    def _predict(self, Z: np.ndarray) -> np.ndarray:
        model = self._model
        if isinstance(model, tuple):  # constant fallback of the RBF
            return np.full(len(Z), model[1])
        if self.name == "rbf":
            return model(Z[:, self._keep])
        return model.predict(Z)


def make_surrogate(name: str, xl: np.ndarray, xu: np.ndarray, seed: int = 0) -> Surrogate:
    """An unfitted :class:`Surrogate` (raises :class:`InvalidSettingError` for an unknown name)."""
    return Surrogate(name, xl, xu, seed)


def _tau(truth: np.ndarray, pred: np.ndarray) -> float:
    from scipy import stats

    if len(truth) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = stats.kendalltau(truth, pred).statistic
    return float(value) if np.isfinite(value) else 0.0


def _n_folds(n: int, folds: int) -> int:
    return int(min(folds, n // 3))


def cv_kendall(name: str, X: np.ndarray, y: np.ndarray, xl: np.ndarray, xu: np.ndarray, *, folds: int = 10,
               seed: int = 0) -> list[float]:
    """Kendall τ of ``name`` per fold of a shuffled K-fold split (K = min(folds, n // 3)).

    Returns:
        One τ per fold (undefined τ counted as 0); empty when there are fewer than 6 points.
    """
    from sklearn.model_selection import KFold

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    k = _n_folds(len(y), folds)
    if k < 2:
        return []
    taus = []
    for train, test in KFold(n_splits=k, shuffle=True, random_state=seed).split(X):
        model = Surrogate(name, xl, xu, seed).fit(X[train], y[train])
        taus.append(_tau(y[test], model.predict(X[test])))
    return taus


@dataclass
class SurrogateChoice:
    """The model chosen for one objective at one iteration, with every candidate's CV score."""

    name: str
    tau_mean: float | None
    tau_std: float | None
    folds: int
    scores: dict[str, dict[str, float]] = field(default_factory=dict)


def choose_surrogate(X: np.ndarray, y: np.ndarray, xl: np.ndarray, xu: np.ndarray, *,
                     candidates: Sequence[str] = SURROGATES, folds: int = 10, seed: int = 0) -> SurrogateChoice:
    """Pick the candidate with the largest ``mean(τ) − std(τ)`` over K-fold CV (see the module docstring).

    With a single candidate the CV is still run (its τ is logged).

    Example:
        >>> choice = choose_surrogate(X, y, space.xl, space.xu, seed=0)  # doctest: +SKIP
        >>> choice.name, choice.tau_mean
        ('gp', 0.71)
    """
    candidates = list(candidates)
    for name in candidates:
        if name not in SURROGATES:
            raise InvalidSettingError(f"unknown surrogate '{name}'; choose auto or one of {', '.join(SURROGATES)}")
    scores: dict[str, dict[str, float]] = {}
    best, best_value = candidates[0], -np.inf
    for name in candidates:
        taus = cv_kendall(name, X, y, xl, xu, folds=folds, seed=seed)
        if not taus:
            return SurrogateChoice(candidates[0], None, None, 0, {})
        mean, std = float(np.mean(taus)), float(np.std(taus))
        scores[name] = {"tau_mean": mean, "tau_std": std, "criterion": mean - std}
        if mean - std > best_value:
            best, best_value = name, mean - std
    return SurrogateChoice(best, scores[best]["tau_mean"], scores[best]["tau_std"],
                           _n_folds(len(np.asarray(y)), folds), scores)


def fit_quality(truth: Sequence[float], pred: Sequence[float]) -> dict[str, float | None]:
    """RMSE, Spearman ρ and Kendall τ of predictions against measured values (None when undefined)."""
    from scipy import stats

    t = np.asarray(truth, dtype=float)
    p = np.asarray(pred, dtype=float)
    keep = np.isfinite(t) & np.isfinite(p)
    t, p = t[keep], p[keep]
    if t.size == 0:
        return {"rmse": None, "spearman": None, "kendall": None}
    rmse = float(np.sqrt(np.mean((t - p) ** 2)))
    if t.size < 2:
        return {"rmse": rmse, "spearman": None, "kendall": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = stats.spearmanr(t, p).statistic
        tau = stats.kendalltau(t, p).statistic
    return {"rmse": rmse, "spearman": float(rho) if np.isfinite(rho) else None,
            "kendall": float(tau) if np.isfinite(tau) else None}
