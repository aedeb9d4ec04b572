"""The search loop: surrogate-assisted NSGA-II over a search space (MSuNAS / FlatNAS), resumable.

:func:`run_search` does, in a run directory (layout: :mod:`proxybench.search.archive`):

1. **Initial sample** (iteration 0): ``n_start`` architectures: the space's smallest and
   largest when it offers them (``space.smallest()`` / ``space.largest()``), then uniform
   draws (``space.sample``), distinct by isomorphism key. Every one is measured.
2. **Iterations** 1..T, each:

   * every archive objective is taken as measured (``f_ar`` recomputed with γ from the
     archive so far); for each *expensive* objective a surrogate is chosen
     (``surrogate="auto"``: the best of RBF/GP/CART/MLP by K-fold cross-validated Kendall τ,
     mean − std; :mod:`proxybench.search.surrogates`) and fitted on the whole archive;
   * NSGA-II (pymoo, driven by ``ask``/``tell``) runs ``generations`` generations of
     ``pop_size`` on integer genes within the space's per-gene bounds: integer random
     sampling, SBX crossover and polynomial mutation on floats followed by a rounding repair
     (pymoo's recipe for integer variables), duplicate elimination, explicit seed. Its first
     population is the archive's non-dominated front, padded with the next fronts (and, for
     a small archive, random genomes). Offspring get exact values for the cheap objectives
     and surrogate predictions for the expensive ones; archive members get their measured values.
     An objective spanning more than six orders of magnitude in the archive (SynFlow) is
     handed to NSGA-II as a signed log10 (:func:`proxybench.search.select.compress`: the same
     dominance, usable crowding distances); an offspring that cannot be evaluated gets values
     worse than every evaluated one;
   * the *pool* is every offspring evaluated in the run whose isomorphism key is not in the
     archive yet (isomorphs count as duplicates; the first of several isomorphs stays);
     ``per_iteration`` candidates are picked from it by NSGA-II's rank-and-crowding survival
     (:func:`proxybench.search.select.rank_and_crowding`), i.e. spread along the predicted
     front; if the pool is too small, unseen random architectures fill the gap;
   * the candidates are measured for real and appended to the archive as one part, with the
     per-iteration statistics (chosen surrogate, CV τ mean/std, RMSE/ρ/τ of its predictions
     on the new points).

3. **Picks**: the top-k trade-off points of the archive's non-dominated set
   (:func:`proxybench.search.select.trade_off_picks`: closest to the ideal point after
   normalisation, then spread), written to ``RUN/picks/<k>.json`` with how to train them, and
   marked ``selected`` in the archive.

**Resume**: the archive is the state. Every random choice of iteration ``i`` uses seeds
derived from ``(seed, i, purpose)`` (:func:`derived_seed`), never a generator carried over
from earlier iterations, and every measurement is deterministic and cached in the run
directory (proxy scores in ``RUN/scores``), so killing a run anywhere and calling it again
with ``resume=True`` continues after the last complete iteration and produces the same
archive as an uninterrupted run, bit for bit (apart from ``seconds`` and ``created_at``).
The settings must match ``run.json``, except ``iterations`` (a finished run can be extended)
and ``top_k``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from proxybench.errors import (
    InvalidArchitectureError,
    InvalidSettingError,
    ProxybenchError,
)
from proxybench.search.archive import Archive, write_json_atomically
from proxybench.search.measures import (
    CostMeasure,
    Evaluator,
    PredictorMeasure,
    ProxyMeasure,
    TrainedMeasure,
    TruthMeasure,
)
from proxybench.search.objectives import gamma_from_archive
from proxybench.search.problem import (
    FLATNAS_COLUMNS,
    Objective,
    SearchProblem,
    genomes,
    resolve_objectives,
)
from proxybench.search.select import (
    compress,
    log_columns,
    non_dominated,
    rank_and_crowding,
    trade_off_picks,
)
from proxybench.search.surrogates import (
    SURROGATES,
    Surrogate,
    choose_surrogate,
    fit_quality,
)

__all__ = [
    "DEFAULT_OUT",
    "SearchResult",
    "derived_seed",
    "initial_architectures",
    "run_search",
    "search_report",
    "train_recipe",
]

DEFAULT_OUT = "search-results"

#: The FlatNAS evaluator's default training: CNAS fine-tunes each candidate 5 epochs
#: (``--n_epochs 5``), FlatNAS with adaptive SAM (ρ = 2) over SGD lr 0.1, momentum 0.9, batch 128.
DEFAULT_TRAINED = "train:asam,rho=2,epochs=5"

#: What the evaluator measures (objectives ``f_ar`` need the first two, ``mce`` the third).
TRAINED_QUANTITIES = ("top1_error", "robustness", "mce")

#: Seed purposes (the third element of :func:`derived_seed`'s key).
_NSGA, _SURROGATE, _PAD, _FILL = 0, 1, 2, 3

#: run.json keys that a resumed run must share with the stored run.
_FIXED = ("space", "objectives", "n_start", "per_iteration", "seed", "surrogate", "pop_size", "generations",
          "cv_folds", "dataset", "measures", "space_settings")


def derived_seed(seed: int, iteration: int, purpose: int, index: int = 0) -> int:
    """A 32-bit seed from ``(seed, iteration, purpose, index)`` (NumPy ``SeedSequence``)."""
    return int(np.random.SeedSequence([int(seed), int(iteration), int(purpose), int(index)])
               .generate_state(1, dtype=np.uint32)[0])


def initial_architectures(space: Any, n: int, seed: int) -> list[str]:
    """``n`` architectures with distinct isomorphism keys: the space's smallest and largest
    (when it defines ``smallest()``/``largest()``), then ``space.sample`` draws."""
    archs: list[str] = []
    uids: set[str] = set()

    def add(arch: str) -> None:
        arch = space.parse(arch)
        uid = space.uid(arch)
        if uid not in uids and len(archs) < n:
            uids.add(uid)
            archs.append(arch)

    for hook in ("smallest", "largest"):
        fn = getattr(space, hook, None)
        if callable(fn):
            add(fn())
    k = max(n, 1)
    while len(archs) < n:
        try:
            drawn = space.sample(k, seed)
        except InvalidArchitectureError:  # asked for more than the space holds
            break
        for arch in drawn:
            add(arch)
        if len(drawn) < k:
            break
        k *= 2
    return archs


def train_recipe(space: Any, arch: str, dataset: str) -> dict[str, Any]:
    """How to train a pick: the space's own ``train_recipe(arch, dataset)`` when it has one,
    NAS-Bench-201's protocol for ``nb201``, FlatNAS's fine-tuning recipe otherwise."""
    fn = getattr(space, "train_recipe", None)
    if callable(fn):
        return dict(fn(arch, dataset))
    if space.name == "nb201":
        spec = ("train:sgd,epochs=200,batch_size=256,lr=0.1,momentum=0.9,weight_decay=0.0005,nesterov=true,"
                "schedule=cosine,holdout=0")
        note = "NAS-Bench-201's protocol (200 epochs, SGD-Nesterov, cosine, batch 256, wd 5e-4, full training set)"
    else:
        spec = "train:asam,rho=2,epochs=100,batch_size=128,lr=0.1,momentum=0.9,weight_decay=0.0005,schedule=cosine"
        note = "FlatNAS's fine-tuning (adaptive SAM, rho 2, over SGD lr 0.1, momentum 0.9, batch 128, wd 5e-4)"
    return {"dataset": dataset, "weights": spec, "note": note,
            "command": f"proxybench evaluate --space {space.name} --arch '{arch}' --dataset {dataset} "
                       f"--weights '{spec}'{_space_flags(space, arch)}"}


def _space_flags(space: Any, arch: str) -> str:
    """The ``evaluate`` flags that rebuild ``arch`` as the search built it (OFA: resolution, supernet)."""
    from proxybench.batch import input_resolution

    settings = space.settings() if hasattr(space, "settings") else {}
    flags = ""
    resolution = input_resolution(space, arch)
    if resolution is not None:
        flags += f" --resolution {resolution}"
    if settings.get("supernet_weights"):
        flags += f" --supernet-weights '{settings['supernet_weights']}'"
    elif settings.get("random_init"):
        flags += " --random-init"
    return flags


@dataclass
class SearchResult:
    """What a search did; ``str()`` is the CLI's summary line."""

    out: Path
    run_id: str
    iterations: int
    archive_size: int
    failed: int
    picks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None
    #: Exact evaluations the whole run spent, one per (architecture, quantity): measured
    #: (``exact_computed``) and answered from a cache or an isomorph (``exact_reused``),
    #: NSGA-II's offspring included; None for runs stored before they were counted.
    exact_computed: int | None = None
    exact_reused: int | None = None

    def __str__(self) -> str:
        resumed = f" (resumed after iteration {self.resumed_from})" if self.resumed_from is not None else ""
        spent = ("" if self.exact_computed is None else
                 f"; {self.exact_computed} exact evaluations computed, {self.exact_reused} reused")
        return (f"search {self.run_id}: {self.iterations} iterations{resumed}, {self.archive_size} architectures "
                f"archived ({self.failed} failed){spent}, {len(self.picks)} picks in {self.seconds:.1f} s "
                f"-> {self.out}")


# ----------------------------------------------------------------------------- helpers


def _objective_matrix(rows: Sequence[Mapping[str, Any]], objectives: Sequence[Objective],
                      gamma: float) -> np.ndarray:
    """Measured, minimised values of ``rows`` (``f_ar`` recomputed with ``gamma``)."""
    F = np.empty((len(rows), len(objectives)))
    for j, obj in enumerate(objectives):
        for i, r in enumerate(rows):
            if obj.kind == "f_ar":
                F[i, j] = obj.value(r, gamma)
            else:
                F[i, j] = r[f"obj_{obj.name}"]
    return F


def _gamma(rows: Sequence[Mapping[str, Any]], objectives: Sequence[Objective]) -> float | None:
    """F_AR's γ over the measured archive (None without ``f_ar``; 1 when empty or every R is 0)."""
    if not any(o.kind == "f_ar" for o in objectives):
        return None
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return 1.0
    try:
        return gamma_from_archive([r["top1_error"] for r in ok], [r["robustness"] for r in ok])
    except InvalidSettingError:  # every R so far is 0: γ is undefined, keep the initial sample's 1
        return 1.0


def _check_resume(stored: Mapping[str, Any], settings: Mapping[str, Any], run_json: Path) -> None:
    for key in _FIXED:
        if json.dumps(stored.get(key), sort_keys=True, default=str) != json.dumps(settings.get(key), sort_keys=True,
                                                                                   default=str):
            raise InvalidSettingError(
                f"{run_json} was made with {key}={json.dumps(stored.get(key), default=str)}, not "
                f"{json.dumps(settings.get(key), default=str)}; resume with the stored settings or choose another --out")


class _Run:
    """One search run's resolved pieces (kept out of :func:`run_search` for readability)."""

    def __init__(self, space: Any, objectives: list[Objective], evaluator: Evaluator, archive: Archive,
                 settings: dict[str, Any], log: Callable[[str], None]) -> None:
        self.space = space
        self.objectives = objectives
        self.evaluator = evaluator
        self.archive = archive
        self.settings = settings
        self.log = log
        self.seed = int(settings["seed"])
        self.run_id = settings["run_id"]
        self.cheap_q = list(dict.fromkeys(q for o in objectives if not o.expensive for q in o.quantities))
        self.all_q = list(dict.fromkeys(q for o in objectives for q in o.quantities))
        # FlatNAS-table columns no objective needs: measured when a measure offers them, and
        # a failure there leaves the column null instead of failing the candidate
        self.optional_q = [q for q in FLATNAS_COLUMNS if evaluator.provides(q) and q not in self.all_q]

    # -- measuring candidates for real ----------------------------------------------------------
    def evaluate(self, iteration: int, archs: Sequence[str], first_candidate: int, gamma: float | None,
                 preds: Mapping[str, Mapping[str, float]] | None = None,
                 surrogate_label: str | None = None) -> list[dict[str, Any]]:
        values, seconds = self.evaluator.measure(archs, self.all_q)
        measured = [a for a in archs if not isinstance(values[a], str)]
        if self.optional_q and measured:
            extra, extra_seconds = self.evaluator.measure(measured, self.optional_q)
            for a in measured:
                seconds[a] += extra_seconds[a]
                if not isinstance(extra[a], str):
                    values[a] = {**extra[a], **values[a]}  # type: ignore[dict-item]
        now = datetime.now(timezone.utc)
        rows = []
        for k, arch in enumerate(archs):
            got = values[arch]
            row: dict[str, Any] = {
                "run_id": self.run_id, "iteration": iteration, "candidate": first_candidate + k,
                "space": self.space.name, "genome": [int(v) for v in self.space.encode(arch)], "arch": arch,
                "arch_uid": self.space.uid(arch), "surrogate": surrogate_label, "seconds": seconds[arch],
                "created_at": now, "arch_label": f"c{first_candidate + k:04d}", "selected": False,
            }
            if isinstance(got, str):
                row.update(status="failed", error=got)
            else:
                row.update(status="ok", error=None)
                row.update({q: got.get(q) for q in FLATNAS_COLUMNS if q in got})
                for obj in self.objectives:
                    value = obj.value(got, gamma if gamma is not None else 1.0)
                    row[f"obj_{obj.name}"] = value
                    if not np.isfinite(value):
                        row.update(status="failed", error=f"{obj.name}: non-finite value {value}")
            for obj in self.objectives:
                if preds is not None and obj.expensive and arch in preds:
                    row[f"pred_{obj.name}"] = preds[arch][obj.name]
            rows.append(row)
        return rows

    def exact_since(self, counted: Mapping[str, int]) -> dict[str, int]:
        """``n_exact_computed``/``n_exact_reused``: the evaluator's counts since ``counted``."""
        return {f"n_exact_{k}": self.evaluator.counts[k] - counted[k] for k in ("computed", "reused")}

    # -- one iteration ------------------------------------------------------------------------
    def iterate(self, iteration: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        started = time.perf_counter()
        self.evaluator.new_scope()
        counted = dict(self.evaluator.counts)
        s = self.settings
        all_rows = self.archive.rows()
        ok = [r for r in all_rows if r["status"] == "ok"]
        if not ok:
            raise ProxybenchError(f"every candidate so far failed (see the error column of {self.archive.directory}); "
                                  "nothing to search from")
        gamma = _gamma(all_rows, self.objectives)
        Y = _objective_matrix(ok, self.objectives, gamma if gamma is not None else 1.0)
        X = np.array([r["genome"] for r in ok], dtype=np.int64)
        xl, xu = np.asarray(self.space.xl), np.asarray(self.space.xu)

        # surrogates for the expensive objectives
        models: dict[int, Surrogate] = {}
        stats: list[dict[str, Any]] = []
        for j, obj in enumerate(self.objectives):
            if not obj.expensive:
                continue
            seed_j = derived_seed(self.seed, iteration, _SURROGATE, j)
            candidates = SURROGATES if s["surrogate"] == "auto" else (s["surrogate"],)
            choice = choose_surrogate(X, Y[:, j], xl, xu, candidates=candidates, folds=s["cv_folds"], seed=seed_j)
            models[j] = Surrogate(choice.name, xl, xu, seed_j).fit(X, Y[:, j])
            stats.append({"objective": obj.name, "surrogate": choice.name, "cv_folds": choice.folds,
                          "cv_tau_mean": choice.tau_mean, "cv_tau_std": choice.tau_std,
                          "cv_scores": json.dumps(choice.scores, sort_keys=True)})
        label = ",".join(f"{st['objective']}={st['surrogate']}" for st in stats) or None

        known = {r["arch"]: Y[i] for i, r in enumerate(ok)}
        failed_archs = {r["arch"] for r in all_rows if r["status"] != "ok"}
        archive_uids = {r["arch_uid"] for r in all_rows}
        pool: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}  # uid -> (arch, genome, F)

        def evaluate_F(G: np.ndarray) -> np.ndarray:
            F = np.full((len(G), len(self.objectives)), np.nan)
            archs: list[str | None] = []
            for g in G:
                try:
                    archs.append(self.space.decode(g))
                except InvalidArchitectureError:
                    archs.append(None)
            new = [a for a in archs if a is not None and a not in known and a not in failed_archs]
            cheap, _ = (self.evaluator.measure(new, self.cheap_q, share_isomorphs=True) if (new and self.cheap_q)
                        else ({}, {}))
            preds = {j: m.predict(G) for j, m in models.items()}
            for i, arch in enumerate(archs):
                if arch is None or arch in failed_archs:
                    continue
                if arch in known:
                    F[i] = known[arch]
                    continue
                q = cheap.get(arch, {})
                if isinstance(q, str):
                    continue
                row = np.empty(len(self.objectives))
                for j, obj in enumerate(self.objectives):
                    row[j] = preds[j][i] if obj.expensive else obj.value(q, gamma if gamma is not None else 1.0)
                if not np.all(np.isfinite(row)):
                    continue
                F[i] = row
                uid = self.space.uid(arch)
                if uid not in archive_uids and uid not in pool:
                    pool[uid] = (arch, G[i].copy(), row.copy())
            return F

        # NSGA-II, ask/tell
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.evaluator import Evaluator as PymooEvaluator
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.problems.static import StaticProblem

        pop_size = int(s["pop_size"])
        start = X[rank_and_crowding(Y, min(pop_size, len(Y)))]
        if len(start) < pop_size:
            rng = np.random.default_rng(derived_seed(self.seed, iteration, _PAD))
            seen = {tuple(g) for g in start}
            extra = []
            for _ in range(50 * pop_size):
                g = tuple(int(v) for v in rng.integers(xl, xu + 1))
                if g not in seen:
                    seen.add(g)
                    extra.append(g)
                if len(start) + len(extra) >= pop_size:
                    break
            if extra:
                start = np.vstack([start, np.array(extra, dtype=np.int64)])
        problem = SearchProblem(xl, xu, len(self.objectives))
        algorithm = NSGA2(pop_size=pop_size, sampling=start.astype(float),
                          crossover=SBX(prob_var=0.5, eta=15, vtype=float, repair=RoundingRepair()),
                          mutation=PM(prob=0.9, eta=20, vtype=float, repair=RoundingRepair()),
                          eliminate_duplicates=True)
        algorithm.setup(problem, termination=("n_gen", int(s["generations"])),
                        seed=derived_seed(self.seed, iteration, _NSGA), verbose=False)
        mask = log_columns(Y)
        while algorithm.has_next():
            population = algorithm.ask()
            F = compress(evaluate_F(genomes(population.get("X"))), mask)
            bad = ~np.all(np.isfinite(F), axis=1)
            if bad.any():  # unevaluable offspring: worse than every evaluated one in every objective
                worst = np.max(F[~bad], axis=0) if (~bad).any() else np.zeros(F.shape[1])
                F[bad] = worst + 1.0 + np.abs(worst)
            PymooEvaluator().eval(StaticProblem(problem, F=F), population)
            algorithm.tell(infills=population)

        # K candidates spread along the predicted front
        K = int(s["per_iteration"])
        entries = list(pool.values())
        chosen = [entries[i] for i in rank_and_crowding(np.array([e[2] for e in entries]), K)] if entries else []
        if len(chosen) < K:  # pool exhausted: unseen random architectures fill the budget
            taken = archive_uids | {self.space.uid(a) for a, _, _ in chosen}
            for arch in initial_architectures(self.space, len(taken) + K, derived_seed(self.seed, iteration, _FILL)):
                if len(chosen) >= K:
                    break
                if self.space.uid(arch) not in taken:
                    g = self.space.encode(arch)
                    taken.add(self.space.uid(arch))
                    chosen.append((arch, g, evaluate_F(g[None, :])[0]))
        preds = {arch: {o.name: float(Fc[j]) for j, o in enumerate(self.objectives)} for arch, _, Fc in chosen}
        rows = self.evaluate(iteration, [a for a, _, _ in chosen], len(all_rows), gamma, preds, label)

        # how the chosen surrogates did on the new points
        n_failed = sum(r["status"] != "ok" for r in rows)
        common = {"run_id": self.run_id, "iteration": iteration, "gamma": gamma, "n_archive": len(all_rows),
                  "n_pool": len(pool), "n_new": len(rows), "n_failed": n_failed,
                  "seconds": time.perf_counter() - started, **self.exact_since(counted)}
        good = [r for r in rows if r["status"] == "ok"]
        for st in stats:
            name = st["objective"]
            q = fit_quality([r[f"obj_{name}"] for r in good], [r[f"pred_{name}"] for r in good])
            st.update({"new_rmse": q["rmse"], "new_spearman": q["spearman"], "new_kendall": q["kendall"], **common})
        if not stats:
            stats = [dict(common)]
        return rows, stats


# ----------------------------------------------------------------------------- public


def run_search(
    space: str | Any = "nb201",
    objectives: str | Sequence[str] = "synflow,flops",
    *,
    n_start: int = 100,
    iterations: int = 30,
    per_iteration: int = 8,
    seed: int = 0,
    out: str | Path = DEFAULT_OUT,
    resume: bool = False,
    surrogate: str = "auto",
    top_k: int = 3,
    pop_size: int = 40,
    generations: int = 20,
    cv_folds: int = 10,
    expensive: Mapping[str, bool] | Sequence[str] | None = None,
    objective_settings: Mapping[str, Mapping[str, Any]] | None = None,
    measures: Sequence[Any] | None = None,
    dataset: str = "cifar10",
    data_dir: str | Path | None = None,
    batch_size: int | None = None,
    preset: str | None = None,
    score_seed: int | None = None,
    device: str | None = "cpu",
    weights: str | None = None,
    truth: str | Path | Sequence[str | Path] | None = None,
    scores_out: str | Path | None = None,
    threads: int | None = None,
    run_id: str | None = None,
    log: Callable[[str], None] | None = None,
    space_options: Mapping[str, Any] | None = None,
    trained: str | None = None,
    eval_images: int = 1280,
) -> SearchResult:
    """Search ``space`` for architectures that minimise ``objectives``; see the module docstring.

    Args:
        space: Registered space name, or a :class:`~proxybench.spaces.SearchSpace` instance
            (proxy objectives need a registered one: the scoring engine looks it up by name).
        objectives: At least two names (:mod:`proxybench.search.problem`): proxies, ``params``,
            ``flops``, ``f_cp``, ``f_ar``, ``top1_error``, ``robustness``, ``mce``,
            ``latency:<device>``, ``energy:<device>`` (from ``truth``).
        n_start: Initial sample size (FlatNAS: 100).
        iterations: Iterations after the initial sample (FlatNAS: 30).
        per_iteration: Candidates measured per iteration (FlatNAS: 8).
        seed: Seed of every random choice of the search (not of the proxies: ``score_seed``).
        out: Run directory.
        resume: Continue the run in ``out``. Without it ``out`` must not hold a search yet.
        surrogate: ``auto`` (per-iteration choice by CV Kendall τ) or ``rbf``/``gp``/``cart``/``mlp``.
        top_k: Number of trade-off picks written at the end.
        pop_size: NSGA-II population (MSuNAS/CNAS: 40).
        generations: NSGA-II generations per iteration (MSuNAS/CNAS: 20).
        cv_folds: Folds of the surrogate choice (10; fewer when the archive is small).
        expensive: Override which objectives go through surrogates (name → bool, or names).
        objective_settings: ``{"f_ar": {"alpha": .5}, "f_cp": {"p_bar": 5, "penalty": 1e10}}``.
        measures: Extra measures (e.g. :class:`~proxybench.search.measures.TrainedMeasure`) for
            quantities the proxy engine cannot compute (``top1_error``, ``robustness``, ``mce``).
        dataset, data_dir, batch_size, preset, score_seed, device, threads: Proxy scoring settings
            (:func:`~proxybench.scoring.score_architectures`; ``score_seed`` is its ``seed``).
        weights: Weights spec for proxy objectives that need trained weights (``flatnas_r``).
        truth: NB201 ground truth, one source or several (the benchmark CSV, HW-NAS-Bench's
            ``hw_<dataset>.csv``, a truth Parquet or a results directory): imported into
            ``out/truth``; gives ``top1_error`` (an oracle) when no measure does, the hardware
            objectives ``latency:<device>``/``energy:<device>``, and the true accuracy of the
            picks in :func:`search_report`.
        scores_out: Where proxy scores are cached (default ``out``); several runs with the same
            proxy settings may share one.
        run_id: Id of the run (default: UTC time and random hex); kept on resume.
        space_options: Options of a registered space (:func:`~proxybench.spaces.get_space`;
            OFA: ``resolutions``, ``supernet_weights``, ``random_init``), recorded in ``run.json``.
        trained: Weights spec of the FlatNAS evaluator (a :class:`TrainedMeasure`), made when an
            objective needs ``top1_error``, ``robustness`` or ``mce`` and no given measure
            provides them; default :data:`DEFAULT_TRAINED` (CNAS: 5 epochs; adaptive SAM, ρ 2).
            ``top1_error`` then comes from it, not from ``truth``.
        eval_images: Held-out training images the evaluator measures error and R(x, σ) on.
        log: Called with one line per step (the CLI prints them on stderr).

    Returns:
        A :class:`SearchResult`.

    Raises:
        ProxybenchError: Unknown space/objective/surrogate, settings that differ from the stored
            run on resume, an existing run without ``resume``, no measure for a quantity.

    Example:
        >>> run_search("nb201", "synflow,flops", n_start=20, iterations=3, per_iteration=4, seed=0,
        ...            out="run", data_dir="data")  # doctest: +SKIP
    """
    from proxybench import __version__
    from proxybench.spaces import SearchSpace, get_space

    started = time.perf_counter()
    log = log or (lambda line: None)
    options = dict(space_options or {})
    if isinstance(space, SearchSpace) and options:
        raise InvalidSettingError("give space_options with a space name, not with a SearchSpace instance")
    search_space = space if isinstance(space, SearchSpace) else get_space(space, **options)
    space = search_space.name
    objs = resolve_objectives(objectives, expensive=expensive, settings=objective_settings)
    if surrogate != "auto" and surrogate not in SURROGATES:
        raise InvalidSettingError(f"unknown surrogate '{surrogate}'; choose auto or one of {', '.join(SURROGATES)}")
    for name, value, low in (("n_start", n_start, 1), ("iterations", iterations, 0), ("per_iteration", per_iteration, 1),
                             ("top_k", top_k, 0), ("pop_size", pop_size, 2), ("generations", generations, 1),
                             ("cv_folds", cv_folds, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidSettingError(f"{name} must be an integer >= {low}, got {value!r}")
    out = Path(out)
    run_json = out / "run.json"
    stored = json.loads(run_json.read_text()) if run_json.is_file() else None
    if stored is not None and not resume:
        raise InvalidSettingError(f"{out} already holds a search ({stored.get('run_id')}); pass --resume to continue "
                                  "it or choose another --out")

    # truth: imported once into the run directory
    truth_paths: list[str] = []
    for source in ([] if truth is None else [truth] if isinstance(truth, (str, Path)) else list(truth)):
        truth_paths += _import_truth(source, out)

    # measures
    measure_list: list[Any] = list(measures or [])
    for obj in objs:
        if obj.kind == "predictor":
            measure_list.append(PredictorMeasure(obj.name, space, out=scores_out or out, dataset=dataset,
                                                 device=device, data_dir=data_dir, threads=threads))
    proxies = [o.name for o in objs if o.kind == "proxy"]
    if proxies:
        measure_list.append(ProxyMeasure(space, proxies, out=scores_out or out, dataset=dataset, preset=preset,
                                         seed=score_seed, batch_size=batch_size, device=device, data_dir=data_dir,
                                         weights=weights, threads=threads, space_options=options))
    measure_list.append(CostMeasure(search_space, dataset))
    provided = {q for m in measure_list for q in m.quantities}
    needed = {q for o in objs for q in o.quantities}
    to_train = (needed & set(TRAINED_QUANTITIES)) - provided
    # NB201 with truth and only top1_error wanted: the benchmark's accuracy (TruthMeasure, below)
    if to_train and not (to_train == {"top1_error"} and truth_paths and trained is None):
        measure_list.append(TrainedMeasure(search_space, trained or DEFAULT_TRAINED, dataset=dataset,
                                           data_dir=data_dir, device=device, seed=score_seed or 0,
                                           eval_images=eval_images, mce="mce" in needed))
        provided = {q for m in measure_list for q in m.quantities}
    from_truth = [q for o in objs if o.kind == "truth" for q in o.quantities]
    if "top1_error" in needed - provided and truth_paths:
        from_truth.insert(0, "top1_error")
    if from_truth:
        if not truth_paths:
            raise InvalidSettingError(
                f"objective {from_truth[0]} is looked up in the benchmark's ground truth: pass --truth "
                f"(HW-NAS-Bench's hw_{dataset}.csv for latency/energy)")
        measure_list.append(TruthMeasure(truth_paths, dataset, quantities=from_truth))
    evaluator = Evaluator(measure_list, uid=search_space.uid)
    missing = [q for o in objs for q in o.quantities if not evaluator.provides(q)]
    if missing:
        raise InvalidSettingError(
            f"nothing measures {sorted(set(missing))}: for NB201 pass --truth (top1_error from the benchmark); for "
            "trained measurements give measures=[TrainedMeasure(...)] (proxybench.search.measures)")
    # A space or objective that cannot work (the ofa package missing, no supernet weights) fails here,
    # once, before anything is written or measured, instead of failing every candidate.
    evaluator.check([q for o in objs for q in o.quantities])

    settings: dict[str, Any] = {
        "command": "search", "space": space, "objectives": [o.describe() for o in objs], "n_start": n_start,
        "iterations": iterations, "per_iteration": per_iteration, "seed": int(seed), "surrogate": surrogate,
        "top_k": top_k, "pop_size": pop_size, "generations": generations, "cv_folds": cv_folds, "dataset": dataset,
        "measures": [m.describe() for m in measure_list], "truth": truth_paths,
        "space_settings": search_space.settings() or None,
        "proxybench_version": __version__,
    }
    if stored is not None:
        _check_resume(stored, settings, run_json)
        settings["run_id"] = stored["run_id"]
        settings["created_at"] = stored.get("created_at")
    else:
        settings["run_id"] = run_id or (datetime.now(timezone.utc).strftime("search-%Y%m%dT%H%M%S-")
                                        + uuid.uuid4().hex[:6])
        settings["created_at"] = datetime.now(timezone.utc).isoformat()
    _versions(settings)
    write_json_atomically(settings, run_json)

    archive = Archive(out, [o.name for o in objs], settings)
    run = _Run(search_space, objs, evaluator, archive, settings, log)
    done = archive.iterations()
    resumed_from = done[-1] if done else None
    if resumed_from is not None:
        log(f"resuming {settings['run_id']} after iteration {resumed_from}")

    if 0 not in done:
        t0 = time.perf_counter()
        counted = dict(evaluator.counts)
        archs = initial_architectures(search_space, n_start, int(seed))
        log(f"iteration 0: measuring {len(archs)} initial architectures")
        rows = run.evaluate(0, archs, 0, 1.0 if _gamma([], objs) is not None else None)
        n_failed = sum(r["status"] != "ok" for r in rows)
        archive.append(0, rows, [{"run_id": settings["run_id"], "iteration": 0, "n_archive": 0, "n_pool": None,
                                  "n_new": len(rows), "n_failed": n_failed,
                                  "gamma": 1.0 if _gamma([], objs) is not None else None,
                                  "seconds": time.perf_counter() - t0, **run.exact_since(counted)}])
        archive.write_iterations()
    for iteration in range(1, iterations + 1):
        if iteration in done:
            continue
        rows, stats = run.iterate(iteration)
        archive.append(iteration, rows, stats)
        archive.write_iterations()
        chosen = ", ".join(f"{st['objective']}={st['surrogate']} (τ {st['cv_tau_mean']:.2f}±{st['cv_tau_std']:.2f})"
                           if st.get("cv_tau_mean") is not None else f"{st.get('objective')}={st.get('surrogate')}"
                           for st in stats if st.get("objective"))
        log(f"iteration {iteration}/{iterations}: {chosen + ', ' if chosen else ''}pool {stats[0]['n_pool']}, "
            f"+{len(rows)} ({stats[0]['n_failed']} failed), exact evaluations {stats[0]['n_exact_computed']} computed, "
            f"{stats[0]['n_exact_reused']} reused, {stats[0]['seconds']:.1f} s")

    picks = _write_picks(run, top_k, dataset)
    rows = archive.rows()
    spent = {}
    for st in archive.iteration_stats():  # one count per iteration (its rows repeat them per objective)
        spent[st["iteration"]] = (st.get("n_exact_computed"), st.get("n_exact_reused"))
    known = [v for v in spent.values() if v[0] is not None]
    return SearchResult(out=out, run_id=settings["run_id"], iterations=max(archive.iterations()),
                        archive_size=len(rows), failed=sum(r["status"] != "ok" for r in rows), picks=picks,
                        seconds=time.perf_counter() - started, resumed_from=resumed_from,
                        exact_computed=sum(int(c) for c, _ in known) if known else None,
                        exact_reused=sum(int(r or 0) for _, r in known) if known else None)


def _versions(settings: dict[str, Any]) -> None:
    import pymoo
    import sklearn

    settings["pymoo_version"] = pymoo.__version__
    settings["sklearn_version"] = sklearn.__version__


def _import_truth(truth: str | Path, out: Path) -> list[str]:
    """A truth CSV/file becomes ``out/truth/<stem>.parquet``; Parquet files and directories are used in place."""
    path = Path(truth)
    if path.is_dir() or path.suffix == ".parquet":
        return [str(path)]
    from proxybench.truth import import_truth

    result = import_truth(path, out)
    return [str(result.truth_path)]


def _write_picks(run: _Run, top_k: int, dataset: str) -> list[dict[str, Any]]:
    rows = run.archive.rows()
    ok = [r for r in rows if r["status"] == "ok"]
    picks: list[dict[str, Any]] = []
    labels: dict[int, str] = {}
    if ok and top_k > 0:
        gamma = _gamma(rows, run.objectives)
        F = _objective_matrix(ok, run.objectives, gamma if gamma is not None else 1.0)
        for rank, i in enumerate(trade_off_picks(F, top_k), start=1):
            r = ok[int(i)]
            labels[r["candidate"]] = f"pick-{rank}"
            picks.append({
                "rank": rank, "label": f"pick-{rank}", "run_id": r["run_id"], "space": r["space"], "arch": r["arch"],
                "arch_uid": r["arch_uid"], "genome": r["genome"], "candidate": r["candidate"],
                "iteration": r["iteration"],
                "objectives": {o.name: float(F[int(i), j]) for j, o in enumerate(run.objectives)},
                "measured": {q: r[q] for q in FLATNAS_COLUMNS if r.get(q) is not None},
                "gamma": gamma,
                "rule": "closest to the ideal point of the normalised non-dominated set, then farthest-point spread",
                "train": train_recipe(run.space, r["arch"], dataset),
            })
    run.archive.mark_selected(labels)
    picks_dir = run.archive.run_dir / "picks"
    for stale in picks_dir.glob("*.json") if picks_dir.is_dir() else []:
        if stale.stem not in {str(p["rank"]) for p in picks}:
            stale.unlink()
    for p in picks:
        write_json_atomically(p, picks_dir / f"{p['rank']}.json")
    front = non_dominated(_objective_matrix(ok, run.objectives, 1.0)) if ok else []
    run.log(f"{len(front)} non-dominated architectures; picks: "
            + ", ".join(f"{p['label']} (c{p['candidate']:04d})" for p in picks))
    return picks


def search_report(out: str | Path, truth: str | Path | Sequence[str | Path] | None = None,
                  dataset: str | None = None, metric: str = "test_acc") -> list[dict[str, Any]]:
    """The picks of a finished search, one dict per pick (rank order).

    Each has ``label, arch, candidate, iteration``, every ``obj_<name>``, the measured FlatNAS
    columns and, when truth is available (``truth``, else the run's imported ``out/truth``),
    ``true_<metric>`` of the pick on ``dataset`` (default: the run's).

    Raises:
        StoreError: ``out`` holds no search.
    """
    from proxybench.errors import StoreError
    from proxybench.search.measures import read_truth_accuracy

    out = Path(out)
    run_json = out / "run.json"
    if not run_json.is_file():
        raise StoreError(f"{out} holds no search (no run.json); run proxybench search --out {out} first")
    settings = json.loads(run_json.read_text())
    names = [o["name"] for o in settings["objectives"]]
    rows = [r for r in Archive(out, names).rows() if r["selected"]]
    rows.sort(key=lambda r: (int(r["arch_label"].rsplit("-", 1)[-1]) if (r["arch_label"] or "").startswith("pick-")
                             else 10**9, r["candidate"]))
    dataset = dataset or settings.get("dataset", "cifar10")
    accuracy: dict[str, float] = {}
    sources: list[Any] = []
    if truth is not None:
        sources = [truth] if isinstance(truth, (str, Path)) else list(truth)
        resolved = []
        for t in sources:
            p = Path(t)
            resolved.extend(_import_truth(p, out) if p.suffix == ".csv" else [str(p)])
        sources = resolved
    elif (out / "truth").is_dir() and any((out / "truth").glob("*.parquet")):
        sources = [str(out / "truth")]
    if sources:
        accuracy = read_truth_accuracy(sources, dataset, metric)
    report = []
    for r in rows:
        item = {"label": r["arch_label"], "arch": r["arch"], "candidate": r["candidate"], "iteration": r["iteration"]}
        item.update({f"obj_{n}": r[f"obj_{n}"] for n in names})
        item.update({q: r[q] for q in FLATNAS_COLUMNS})
        if sources:
            item[f"true_{metric}"] = accuracy.get(r["arch"])
        report.append(item)
    return report
