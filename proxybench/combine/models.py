"""The few-shot regressors: gradient-boosted trees (LightGBM), random forest, ridge and a GP.

Each model maps a feature matrix to the truth value and reports a per-feature importance.
Settings are fixed here and recorded in every result row (:func:`model_settings`), so a
number in a table says exactly what produced it; none is tuned per n on the test set.

* ``lgbm`` — LightGBM's gradient-boosted trees. Chosen over XGBoost because its wheel is
  3.4 MB with no GPU libraries (XGBoost's is > 100 MB), it handles the 15,625-row prediction
  fastest on two cores, and ``deterministic=True`` with a fixed thread count makes fits
  reproducible bit for bit. 400 trees, learning rate 0.05, 31 leaves; because a leaf of 20
  samples (LightGBM's default) would forbid any split at n = 10–20, ``min_child_samples`` is
  ``clip(n // 20, 2, 20)``.
  NAS-Bench-Suite-Zero used XGBoost with its defaults; both are boosted trees.
* ``rf`` — scikit-learn's random forest, 300 trees, half the features per split, one thread.
* ``ridge`` — standardised features, ridge with the penalty chosen by efficient
  leave-one-out over 10⁻³…10³ on the training set.
* ``gp`` — scikit-learn's GP on standardised features, constant × RBF (one length scale) +
  white noise, the kernel's hyperparameters fitted by marginal likelihood, targets
  normalised; one optimiser start (the fit is deterministic).

Importance: split gain (lgbm), mean impurity decrease (rf), |coefficient| on standardised
features (ridge); the GP reports none (NaN) — an isotropic kernel weighs every feature alike.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import numpy as np

from proxybench.errors import ProxybenchError

__all__ = ["MODELS", "Model", "make_model", "model_settings"]

MODELS = ("lgbm", "rf", "ridge", "gp")


class Model(Protocol):
    def fit(self, x: np.ndarray, y: np.ndarray) -> Model: ...
    def predict(self, x: np.ndarray) -> np.ndarray: ...
    def importances(self) -> np.ndarray: ...


def model_settings(name: str, n: int) -> dict[str, Any]:
    """The fixed settings of model ``name`` at ``n`` training architectures (recorded per row)."""
    if name == "lgbm":
        return {"library": "lightgbm", "n_estimators": 400, "learning_rate": 0.05, "num_leaves": 31,
                "min_child_samples": int(np.clip(n // 20, 2, 20)), "subsample": 0.8, "subsample_freq": 1,
                "colsample_bytree": 0.8, "deterministic": True}
    if name == "rf":
        return {"library": "sklearn", "n_estimators": 300, "max_features": 0.5, "min_samples_leaf": 1}
    if name == "ridge":
        return {"library": "sklearn", "scaler": "standard", "alphas": "logspace(-3, 3, 13)", "cv": "efficient LOO"}
    if name == "gp":
        return {"library": "sklearn", "scaler": "standard", "kernel": "C*RBF(iso)+White", "normalize_y": True,
                "n_restarts_optimizer": 0}
    raise ProxybenchError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def make_model(name: str, n: int, seed: int, threads: int) -> Model:
    """A fresh, unfitted model (see the module docstring for each one's settings)."""
    settings = model_settings(name, n)
    if name == "lgbm":
        return _LightGBM(settings, seed, threads)
    if name == "rf":
        return _Forest(settings, seed)
    if name == "ridge":
        return _Ridge()
    return _GaussianProcess(seed)


class _LightGBM:
    def __init__(self, settings: Mapping[str, Any], seed: int, threads: int) -> None:
        try:
            import lightgbm
        except ImportError:
            raise ProxybenchError("model 'lgbm' needs LightGBM: pip install lightgbm") from None
        params = {k: v for k, v in settings.items() if k != "library"}
        self.model = lightgbm.LGBMRegressor(**params, random_state=seed, n_jobs=threads, verbose=-1)

    def fit(self, x: np.ndarray, y: np.ndarray) -> _LightGBM:
        self.model.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x), dtype=np.float64)

    def importances(self) -> np.ndarray:
        gain = np.asarray(self.model.booster_.feature_importance(importance_type="gain"), dtype=np.float64)
        return gain / gain.sum() if gain.sum() > 0 else gain


class _Forest:
    def __init__(self, settings: Mapping[str, Any], seed: int) -> None:
        from sklearn.ensemble import RandomForestRegressor

        params = {k: v for k, v in settings.items() if k != "library"}
        # one thread: joblib's thread pool costs more than it saves on these small forests
        self.model = RandomForestRegressor(**params, random_state=seed, n_jobs=1)

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Forest:
        with _quiet_joblib():
            self.model.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        with _quiet_joblib():
            return np.asarray(self.model.predict(x), dtype=np.float64)

    def importances(self) -> np.ndarray:
        return np.asarray(self.model.feature_importances_, dtype=np.float64)


@contextlib.contextmanager
def _quiet_joblib() -> Iterator[None]:
    """Silence scikit-learn's per-tree warning about joblib's ``delayed`` (one line per tree, no fault)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*sklearn.utils.parallel.delayed.*")
        yield


class _Scaled:
    """Standardise with the training set's mean and std (constant columns left at 0)."""

    def _scale_fit(self, x: np.ndarray) -> np.ndarray:
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        return self._scale(x)

    def _scale(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


class _Ridge(_Scaled):
    def fit(self, x: np.ndarray, y: np.ndarray) -> _Ridge:
        from sklearn.linear_model import RidgeCV

        self.model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(self._scale_fit(x), y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(self._scale(x)), dtype=np.float64)

    def importances(self) -> np.ndarray:
        weights = np.abs(np.asarray(self.model.coef_, dtype=np.float64))
        return weights / weights.sum() if weights.sum() > 0 else weights


class _GaussianProcess(_Scaled):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> _GaussianProcess:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.sqrt(max(x.shape[1], 1)), (1e-2, 1e3)) \
            + WhiteKernel(0.1, (1e-6, 1e1))
        self.model = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0,
                                              random_state=self.seed)
        with warnings.catch_warnings():
            # a bound reached by the optimiser is a fact about the data, not a failure
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(self._scale_fit(x), y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(self._scale(x)), dtype=np.float64)

    def importances(self) -> np.ndarray:
        return np.full(len(self.mean), np.nan)
