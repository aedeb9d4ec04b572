"""The search problem: objectives (all minimised) and the thin pymoo adapter.

An objective is named on the command line (``--objectives synflow,flops``) and resolved here
into an :class:`Objective`: which measured *quantities* it is computed from, how (one named
helper, :meth:`Objective.value`, turns quantities into the minimised value), and whether it is
*expensive* (predicted by a surrogate during the NSGA-II generations and measured only for the
candidates picked each iteration) or *cheap* (computed exactly for every offspring).

==================  ===========================================  ==========  ==========
name                value (minimised)                            quantities  expensive
==================  ===========================================  ==========  ==========
``params``          parameters in millions                       params_m    no
``flops``           the ``flops`` proxy's count in millions      macs_m      no
``f_cp``            FlatNAS F_CP(params_m, P̄, p)                  params_m    no
any proxy           score, or −score when higher is better       the proxy   if it needs
                    (the registry's ``higher_is_better``)                    trained weights
``top1_error``      top-1 error in percent                       top1_error  yes
``robustness``      FlatNAS R(x, σ) in percentage points         robustness  yes
``mce``             mean corruption error in percent             mce         yes
``f_ar``            FlatNAS F_AR(top1_error, R; α, γ)            both        yes
``predictor:FILE``  −(accuracy a few-shot predictor predicts)    its own     no
``latency:DEV``     the benchmark's latency on DEV, ms (truth)   its own     no
``energy:DEV``      the benchmark's energy on DEV, mJ (truth)    its own     no
==================  ===========================================  ==========  ==========

``latency:<device>`` and ``energy:<device>`` (kind ``truth``; any metric
:func:`proxybench.truth.schema.metric_higher_is_better` calls a cost) are looked up, exactly,
in the imported ground truth of the search's dataset (``--truth hw_cifar10.csv``, HW-NAS-Bench's
devices ``edgegpu``, ``raspi4``, ``edgetpu``, ``pixel3``, ``eyeriss``, ``fpga``) by
:class:`proxybench.search.measures.TruthMeasure`; they are cheap and minimised as stored.

A ``predictor:FILE`` objective reads a predictor saved by ``proxybench combine
--save-predictor`` (:mod:`proxybench.combine.predictor`); its measure
(:class:`proxybench.search.measures.PredictorMeasure`) scores the candidate with the
predictor's proxies under the settings they were trained with, computes its encodings, and
predicts. It is cheap (exact for every offspring) like a proxy objective.

``params`` and ``flops`` are costs here (minimised), although the registry orients the
``params``/``flops`` *proxies* as higher-is-better predictors of accuracy. The expensive flag
can be overridden per objective (``expensive={"synflow": True}`` sends a cheap proxy through
the surrogates, e.g. to test them on NB201 at no cost). ``f_ar``'s γ is refreshed from the
archive before every iteration (:func:`proxybench.search.objectives.gamma_from_archive`: mean
error / mean R over every candidate measured so far, 1 for the initial sample), and every
archive entry's F_AR is recomputed with it before the surrogate is fitted, as the CNAS code does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from proxybench.errors import InvalidSettingError
from proxybench.search.objectives import f_ar, f_cp
from proxybench.truth.schema import LOWER_IS_BETTER_PREFIXES

__all__ = [
    "FLATNAS_COLUMNS",
    "MEASURED",
    "Objective",
    "SearchProblem",
    "genomes",
    "minimised",
    "resolve_objectives",
]

#: Quantities that need a trained network (or the benchmark's ground truth): measured by a
#: ``measure`` given to the search, never by the proxy engine.
MEASURED: tuple[str, ...] = ("top1_error", "robustness", "mce")

#: The FlatNAS-table columns of the archive (``tables/flatnas-search.sql``).
FLATNAS_COLUMNS: tuple[str, ...] = ("top1_error", "robustness", "mce", "params_m", "macs_m")

_COSTS = {"params": "params_m", "flops": "macs_m"}


def minimised(value: float, higher_is_better: bool) -> float:
    """The value an optimiser minimises: ``-value`` when higher is better, else ``value``."""
    return -float(value) if higher_is_better else float(value)


@dataclass(frozen=True)
class Objective:
    """One minimised objective; see the module docstring.

    Attributes:
        name: As given (``obj_<name>``/``pred_<name>`` archive columns).
        kind: ``cost``, ``proxy``, ``measured``, ``f_cp``, ``f_ar``, ``predictor`` or ``truth``
            (a hardware cost looked up in the benchmark's truth).
        quantities: The measured quantities it is computed from.
        expensive: Predicted by a surrogate in the inner loop.
        higher_is_better: For ``proxy``: the registry's orientation (the value is negated).
        settings: ``f_ar``: ``alpha``; ``f_cp``: ``p_bar``, ``penalty``.
    """

    name: str
    kind: str
    quantities: tuple[str, ...]
    expensive: bool
    higher_is_better: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)

    def value(self, q: Mapping[str, float], gamma: float = 1.0) -> float:
        """The minimised value from measured quantities ``q`` (NaN when one is missing)."""
        try:
            values = [float(q[name]) for name in self.quantities]
        except (KeyError, TypeError):
            return float("nan")
        if self.kind == "f_ar":
            return float(f_ar(values[0], values[1], alpha=self.settings.get("alpha", 0.5), gamma=gamma))
        if self.kind == "f_cp":
            return float(f_cp(values[0], p_bar=self.settings.get("p_bar", 5.0),
                              penalty=self.settings.get("penalty", 1e10)))
        return minimised(values[0], self.higher_is_better)

    def describe(self) -> dict[str, Any]:
        """JSON form recorded in ``run.json``."""
        return {"name": self.name, "kind": self.kind, "quantities": list(self.quantities),
                "expensive": self.expensive, "higher_is_better": self.higher_is_better,
                "settings": dict(self.settings)}


def resolve_objectives(
    names: str | Sequence[str],
    *,
    expensive: Mapping[str, bool] | Sequence[str] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Objective]:
    """Turn ``"synflow,flops"`` (or a list) into :class:`Objective` objects.

    Args:
        names: Comma-separated names or a list; see the module docstring.
        expensive: Override the expensive flag: a mapping name → bool, or a list of names
            to make expensive.
        settings: Per-objective settings (``{"f_ar": {"alpha": 0.5}, "f_cp": {"p_bar": 5}}``).

    Raises:
        InvalidSettingError: Fewer than two objectives, a duplicate, or a name that is neither
            a known objective nor a registered proxy (the message lists the closest proxies).
    """
    from proxybench.proxies.registry import get_proxy

    items = [s.strip() for s in names.split(",")] if isinstance(names, str) else [str(s).strip() for s in names]
    items = [s for s in items if s]
    if len(items) < 2:
        raise InvalidSettingError(f"a search needs at least two objectives, got {items or 'none'}; "
                                  "e.g. --objectives synflow,flops")
    if len(set(items)) != len(items):
        raise InvalidSettingError(f"objective listed twice in {items}")
    overrides: dict[str, bool] = {}
    if isinstance(expensive, Mapping):
        overrides = {str(k): bool(v) for k, v in expensive.items()}
    elif expensive is not None:
        overrides = {str(k): True for k in expensive}
    unknown = set(overrides) - set(items)
    if unknown:
        raise InvalidSettingError(f"expensive names {sorted(unknown)} are not among the objectives {items}")
    settings = {k: dict(v) for k, v in (settings or {}).items()}
    out = []
    for name in items:
        s = settings.get(name, {})
        if name in _COSTS:
            obj = Objective(name, "cost", (_COSTS[name],), False)
        elif name == "f_cp":
            _check(s, ("p_bar", "penalty"), name)
            obj = Objective(name, "f_cp", ("params_m",), False, settings={"p_bar": 5.0, "penalty": 1e10, **s})
        elif name == "f_ar":
            _check(s, ("alpha",), name)
            alpha = float(s.get("alpha", 0.5))
            if not 0.0 <= alpha <= 1.0:
                raise InvalidSettingError(f"f_ar alpha must be in [0, 1], got {alpha}")
            obj = Objective(name, "f_ar", ("top1_error", "robustness"), True, settings={"alpha": alpha})
        elif name in MEASURED:
            obj = Objective(name, "measured", (name,), True)
        elif name.startswith(LOWER_IS_BETTER_PREFIXES):
            device = name.partition(":")[2].strip()
            if not device or device != name.partition(":")[2]:
                raise InvalidSettingError(f"objective '{name}' needs a device: {name.partition(':')[0]}:DEVICE, e.g. "
                                          f"{name.partition(':')[0]}:edgegpu (HW-NAS-Bench, --truth hw_cifar10.csv)")
            obj = Objective(name, "truth", (name,), False)
        elif name.startswith("predictor:"):
            if not name.partition(":")[2].strip():
                raise InvalidSettingError("objective 'predictor:' needs a file: predictor:FILE, written by "
                                          "proxybench combine --save-predictor FILE")
            obj = Objective(name, "predictor", (name,), False, higher_is_better=True)
        else:
            spec = get_proxy(name)  # UnknownProxyError names the closest proxies
            obj = Objective(name, "proxy", (name,), "trained_weights" in spec.needs,
                            higher_is_better=spec.higher_is_better)
        if name in overrides:
            if not overrides[name] and obj.kind in ("measured", "f_ar"):
                raise InvalidSettingError(f"objective '{name}' needs a trained network; it cannot be cheap")
            obj = Objective(obj.name, obj.kind, obj.quantities, overrides[name], obj.higher_is_better, obj.settings)
        out.append(obj)
    return out


def _check(given: Mapping[str, Any], allowed: Sequence[str], name: str) -> None:
    bad = sorted(set(given) - set(allowed))
    if bad:
        raise InvalidSettingError(f"objective '{name}' has no setting {bad}; its settings are {list(allowed)}")


def genomes(X: np.ndarray) -> np.ndarray:
    """pymoo's float decision vectors as int64 genomes (rounded; the repair already rounds)."""
    return np.rint(np.asarray(X, dtype=float)).astype(np.int64)


try:  # pymoo is a core dependency; the import is kept local to this adapter
    from pymoo.core.problem import Problem as _Problem
except ImportError:  # pragma: no cover
    _Problem = object  # type: ignore[assignment,misc]


class SearchProblem(_Problem):  # type: ignore[misc,valid-type]
    """pymoo's view of the search: integer genes with per-gene bounds, every objective minimised.

    ``_evaluate`` only fills ``out["F"]`` with ``evaluate(genomes) -> (n, n_obj)``; the search
    loop drives NSGA-II with ``ask``/``tell`` and calls the same function itself, so archive
    writes, surrogates and measurements stay outside pymoo.

    Args:
        xl: Lower bound per gene (the space's ``xl``).
        xu: Upper bound per gene (the space's ``xu``; may differ per gene, e.g. OFA's resolution).
        n_obj: Number of objectives.
        evaluate: ``(n × n_var int64) -> (n × n_obj float)``.
    """

    def __init__(self, xl: np.ndarray, xu: np.ndarray, n_obj: int,
                 evaluate: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        xl = np.asarray(xl, dtype=float)
        xu = np.asarray(xu, dtype=float)
        if xl.shape != xu.shape or np.any(xl > xu):
            raise InvalidSettingError(f"space bounds are inconsistent: xl={xl.tolist()} xu={xu.tolist()}")
        super().__init__(n_var=xl.size, n_obj=int(n_obj), xl=xl, xu=xu, vtype=int)
        self._evaluate_genomes = evaluate

    def _evaluate(self, x: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        if self._evaluate_genomes is None:
            raise InvalidSettingError("SearchProblem has no evaluate function; the loop evaluates via ask/tell")
        out["F"] = np.asarray(self._evaluate_genomes(genomes(x)), dtype=float)
