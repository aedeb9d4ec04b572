"""Measuring the quantities objectives are computed from, per architecture.

A *measure* has a ``quantities`` tuple and ``measure(archs) -> {arch: {quantity: value}}``;
an architecture whose measurement failed maps to an error message (a ``str``) instead, and
the search records it as a failed candidate. Measures cache what they measured, so asking
twice costs nothing.

* :class:`CostMeasure`: ``params_m`` and ``macs_m`` of the built network, exactly (no data):
  the ``params`` and ``flops`` proxies' definitions (:mod:`proxybench.proxies.cost`), so
  ``macs_m`` is the torchstat operation count (conv/linear multiply-adds plus BN, ReLU and
  pooling operations), what NASLib calls flops. Input ``1×3×R×R`` with R the space's
  ``input_resolution(arch)`` when it offers one, else 32.
* :class:`ProxyMeasure`: registered proxies through :func:`proxybench.scoring.score_architectures`
  into ``<scores_out>/scores`` (by default the run directory), so every proxy value the search
  ever computed is an ordinary ``scores`` row, and a resumed search reads the stored rows
  instead of scoring again. Scoring runs without isomorph dedup (every architecture is scored
  on its own network, so a stored value never depends on which isomorph was asked for first;
  the search's inner loop shares one value per class, see :class:`Evaluator`). A row
  with status ``error`` or ``nonfinite`` makes the candidate fail.
* :class:`TruthMeasure`: ``top1_error`` = 100 − the benchmark's test accuracy, and hardware
  costs ``latency:<device>``/``energy:<device>`` as HW-NAS-Bench measured them, from truth
  Parquet (an oracle for NB201 experiments: exact objectives without training or devices).
* :class:`TrainedMeasure`: ``top1_error`` (held-out split), ``robustness`` (FlatNAS R(x, σ),
  the ``flatnas_r`` proxy) and optionally ``mce`` (CIFAR-10-C, :func:`proxybench.evaluation.evaluate_ood`)
  of a network trained by a weights provider (``train:asam,epochs=...``); GPU work.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from proxybench.errors import InvalidSettingError, ProxybenchError

__all__ = [
    "CostMeasure",
    "Measure",
    "Measured",
    "PredictorMeasure",
    "ProxyMeasure",
    "TrainedMeasure",
    "TruthMeasure",
    "build_trained",
    "measure_ood",
    "read_truth_accuracy",
    "read_truth_values",
]

#: ``arch -> {quantity: value}`` or ``arch -> error message``.
Measured = dict[str, "dict[str, float] | str"]

_NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


class Measure(Protocol):
    """What the search asks of a measure. A measure may also define ``check()``, which raises a
    :class:`~proxybench.errors.ProxybenchError` when it cannot work at all (a missing package,
    missing weights); :meth:`Evaluator.check` calls it before the first candidate."""

    quantities: tuple[str, ...]

    def measure(self, archs: Sequence[str]) -> Measured: ...

    def describe(self) -> dict[str, Any]: ...


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


class CostMeasure:
    """``params_m`` and ``macs_m`` of ``space.build(arch)`` (see the module docstring)."""

    quantities = ("params_m", "macs_m")
    #: Isomorphs may share one measurement (:class:`Evaluator`).
    isomorph_invariant = True

    def __init__(self, space: Any, dataset: str = "cifar10") -> None:
        self.space = space
        self.num_classes = _NUM_CLASSES.get(dataset, 10)
        self._cache: dict[str, dict[str, float] | str] = {}

    def measure(self, archs: Sequence[str]) -> Measured:
        import torch

        from proxybench.batch import input_resolution
        from proxybench.proxies.cost import count_flops

        for arch in archs:
            if arch in self._cache:
                continue
            try:
                net = self.space.build(arch, self.num_classes)
                res = input_resolution(self.space, arch) or 32
                with torch.no_grad():
                    params = sum(p.numel() for p in net.parameters() if p.requires_grad) / 1e6
                macs = count_flops(net, (1, 3, res, res)) / 1e6
                self._cache[arch] = {"params_m": float(params), "macs_m": float(macs)}
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - recorded as a failed candidate
                self._cache[arch] = f"cost: {_first_line(exc)}"
        return {a: self._cache[a] for a in archs}

    def check(self) -> None:
        self.space.check_build()

    def describe(self) -> dict[str, Any]:
        return {"measure": "cost", "num_classes": self.num_classes}


class ProxyMeasure:
    """Proxy scores via the scoring engine, cached in ``<out>/scores`` (see the module docstring).

    Args:
        space: Registered space name.
        proxies: Proxy names.
        out: Results directory whose ``scores/`` holds the rows (the run directory, or a
            directory shared by several runs with the same settings).
        dataset, preset, seed, batch_size, device, data_dir, weights: As
            :func:`~proxybench.scoring.score_architectures`; ``seed``/``batch_size`` default to
            the preset's. ``weights`` applies to proxies that need trained weights only.
    """

    #: Isomorphs may share one measurement (:class:`Evaluator`).
    isomorph_invariant = True

    def __init__(self, space: str, proxies: Sequence[str], *, out: str | Path, dataset: str = "cifar10",
                 preset: str | None = None, seed: int | None = None, batch_size: int | None = None,
                 device: str | None = "cpu", data_dir: str | Path | None = None, weights: str | None = None,
                 threads: int | None = None, space_options: Mapping[str, Any] | None = None) -> None:
        from proxybench.presets import get_preset
        from proxybench.proxies.registry import get_proxy
        from proxybench.spaces import get_space

        chosen = get_preset(preset)
        self.space = space
        self.space_options = dict(space_options or {})
        self.space_settings = get_space(space, **self.space_options).settings() or None
        self.quantities = tuple(proxies)
        self.out = Path(out)
        self.dataset = dataset
        self.preset = chosen.name
        self.seed = chosen.seed if seed is None else int(seed)
        self.batch_size = chosen.batch_size if batch_size is None else int(batch_size)
        self.device = device or "cpu"
        self.data_dir = data_dir
        self.threads = threads
        self.trained = [p for p in proxies if "trained_weights" in get_proxy(p).needs]
        if self.trained and not weights:
            raise InvalidSettingError(f"objective(s) {self.trained} need trained weights; pass weights "
                                      "(e.g. 'train:asam,epochs=1')")
        self.weights = weights
        self._cache: dict[tuple[str, str], tuple[float, str, str | None]] = {}
        self._loaded = False

    def check(self) -> None:
        """The space can build networks, and the dataset is there when a proxy reads images."""
        from proxybench.data import load_images
        from proxybench.presets import get_preset
        from proxybench.proxies.registry import get_proxy, reads_images
        from proxybench.spaces import get_space

        get_space(self.space, **self.space_options).check_build()
        preset = get_preset(self.preset)
        if any(reads_images(get_proxy(p), preset.proxy_settings.get(p)) for p in self.quantities):
            load_images(self.dataset, "train", data_dir=self.data_dir)

    def describe(self) -> dict[str, Any]:
        return {"measure": "proxies", "proxies": list(self.quantities), "dataset": self.dataset,
                "preset": self.preset, "seed": self.seed, "batch_size": self.batch_size, "device": self.device,
                "weights": self.weights, "scores_out": str(self.out), "space_settings": self.space_settings}

    def _weights_of(self, proxy: str) -> str:
        return (self.weights or "init") if proxy in self.trained else "init"

    def _take(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for r in rows:
            if (r["space"] != self.space or r["dataset"] != self.dataset or r["proxy"] not in self.quantities
                    or int(r["seed"]) != self.seed or int(r["batch_size"]) != self.batch_size
                    or r["preset"] != self.preset):
                continue
            if json.loads(r["settings"]).get("space_settings") != self.space_settings:
                continue  # another configuration of the space (resolutions, supernet weights)
            if self._weights_of(r["proxy"]) == "init" and r["weights"] != "init":
                continue
            if self._weights_of(r["proxy"]) != "init" and r["weights"] == "init":
                continue
            key = (r["arch"], r["proxy"])
            # an ok row wins over an error row of the same key (a later retry)
            if key not in self._cache or (self._cache[key][1] != "ok" and r["status"] == "ok"):
                self._cache[key] = (float(r["score"]) if r["score"] is not None else float("nan"), r["status"],
                                    r.get("error"))

    def _load(self) -> None:
        if self._loaded:
            return
        from proxybench.store import read_scores

        self._take(read_scores(self.out).to_pylist())
        self._loaded = True

    def _score(self, archs: list[str], proxies: list[str], weights: str | None) -> None:
        from proxybench.scoring import score_architectures

        run_id = f"search-{uuid.uuid4().hex[:12]}"
        score_architectures(archs, space=self.space, proxies=proxies, dataset=self.dataset, preset=self.preset,
                            seed=self.seed, batch_size=self.batch_size, device=self.device, data_dir=self.data_dir,
                            out=self.out, resume=True, progress=False, dedup=False, run_id=run_id,
                            weights=weights, threads=self.threads, space_options=self.space_options)
        import pyarrow.parquet as pq

        from proxybench.store.schema import SCORES_SCHEMA

        for part in sorted((self.out / "scores").glob(f"part-{run_id}-*.parquet")):
            self._take(pq.read_table(part, schema=SCORES_SCHEMA).to_pylist())

    def measure(self, archs: Sequence[str]) -> Measured:
        self._load()
        for group, weights in ((self.trained, self.weights),
                               ([p for p in self.quantities if p not in self.trained], None)):
            if not group:
                continue
            missing = list(dict.fromkeys(a for a in archs for p in group if (a, p) not in self._cache))
            if missing:
                self._score(missing, list(group), weights)
        out: Measured = {}
        for arch in archs:
            values: dict[str, float] = {}
            error = None
            for p in self.quantities:
                value, status, message = self._cache.get((arch, p), (float("nan"), "error", "not scored"))
                if status != "ok":
                    error = f"{p}: {status}" + (f" ({message})" if message else "")
                    break
                values[p] = value
            out[arch] = error if error is not None else values
        return out


class PredictorMeasure:
    """The accuracy a saved few-shot predictor predicts (``predictor:FILE`` objectives).

    The candidate's proxies are scored by :class:`ProxyMeasure` under the settings the
    predictor's reference scores were computed with (one measure per settings group, rows
    cached in ``<out>/scores`` like every proxy objective), oriented by the registry, turned
    into quantiles against the predictor's reference distribution, and joined with the
    encodings; a candidate whose proxy fails fails, as for a proxy objective.

    Args:
        name: The objective name, ``predictor:FILE``; also the quantity it provides.
        space: The search space name (must be the predictor's).
        out, dataset, device, data_dir, threads: As :class:`ProxyMeasure`.

    Raises:
        ProxybenchError: Unreadable predictor file, another space or dataset, or proxies that
            need trained weights.
    """

    #: Isomorphs may share one measurement (:class:`Evaluator`).
    isomorph_invariant = True

    def __init__(self, name: str, space: str, *, out: str | Path, dataset: str = "cifar10", device: str | None = "cpu",
                 data_dir: str | Path | None = None, threads: int | None = None) -> None:
        from proxybench.combine.predictor import load_predictor
        from proxybench.proxies.registry import get_proxy

        self.name = name
        self.quantities = (name,)
        self.path = Path(name.partition(":")[2].strip())
        self.predictor = load_predictor(self.path)
        if self.predictor.space != space:
            raise InvalidSettingError(f"predictor {self.path} was trained on the {self.predictor.space} space, "
                                      f"the search runs on {space}")
        groups: dict[tuple[Any, ...], list[str]] = {}
        for proxy in self.predictor.proxies:
            s = self.predictor.proxy_settings[proxy]
            if s.get("weights") not in (None, "init"):
                raise InvalidSettingError(f"predictor {self.path}: proxy {proxy} was scored with weights "
                                          f"{s.get('weights')}; a predictor objective supports proxies at initialisation")
            groups.setdefault((s["preset"], s["seed"], s["batch_size"]), []).append(proxy)
        self.higher = {p: get_proxy(p).higher_is_better for p in self.predictor.proxies}
        self.measures = [ProxyMeasure(space, proxies, out=out, dataset=dataset, preset=preset, seed=seed,
                                      batch_size=batch, device=device, data_dir=data_dir, threads=threads)
                         for (preset, seed, batch), proxies in groups.items()]
        self._cache: dict[str, float] = {}

    def describe(self) -> dict[str, Any]:
        return {"measure": "predictor", "file": str(self.path), **self.predictor.describe(),
                "proxy_measures": [m.describe() for m in self.measures]}

    def measure(self, archs: Sequence[str]) -> Measured:
        todo = [a for a in dict.fromkeys(archs) if a not in self._cache]
        failed: dict[str, str] = {}
        oriented: dict[str, dict[str, float]] = {p: {} for p in self.predictor.proxies}
        for measure in self.measures:
            if not todo:
                break
            for arch, got in measure.measure(todo).items():
                if isinstance(got, str):
                    failed[arch] = got
                    continue
                for proxy, value in got.items():
                    oriented[proxy][arch] = value if self.higher[proxy] else -value
        ready = [a for a in todo if a not in failed]
        if ready:
            for arch, value in zip(ready, self.predictor.predict(ready, oriented)):
                self._cache[arch] = float(value)
        return {a: failed[a] if a in failed else {self.name: self._cache[a]} for a in archs}


def read_truth_values(truth: str | Path | Sequence[str | Path], dataset: str,
                      metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """``metric -> {arch -> value}`` on ``dataset`` from truth Parquet files (or results directories).

    One pass over the files for all ``metrics``. Where several rows exist for an architecture
    and metric, the one with the most epochs is kept (seed ``mean`` preferred).
    """
    import pyarrow.parquet as pq

    from proxybench.store.views import check_view_files, resolve_parquet_files

    paths = [truth] if isinstance(truth, (str, Path)) else list(truth)
    wanted = set(metrics)
    best: dict[str, dict[str, tuple[tuple[int, int], float]]] = {m: {} for m in metrics}
    files = resolve_parquet_files(paths, "truth")
    check_view_files(files, "truth")  # a foreign file is a one-line error, not an Arrow traceback
    for path in files:
        table = pq.read_table(path, columns=["arch", "dataset", "metric", "value", "epochs", "seed"])
        for r in table.to_pylist():
            if r["dataset"] != dataset or r["metric"] not in wanted:
                continue
            found = best[r["metric"]]
            rank = (int(r["epochs"] or 0), int(r["seed"] == "mean"))
            if r["arch"] not in found or rank > found[r["arch"]][0]:
                found[r["arch"]] = (rank, float(r["value"]))
    return {m: {arch: value for arch, (_, value) in found.items()} for m, found in best.items()}


def read_truth_accuracy(truth: str | Path | Sequence[str | Path], dataset: str = "cifar10",
                        metric: str = "test_acc") -> dict[str, float]:
    """``arch -> value`` of ``metric`` on ``dataset`` (:func:`read_truth_values` for one metric)."""
    return read_truth_values(truth, dataset, [metric])[metric]


def _truth_metrics_present(paths: Sequence[str], dataset: str) -> list[str]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from proxybench.store.views import resolve_parquet_files

    present: set[str] = set()
    for path in resolve_parquet_files(list(paths), "truth"):
        table = pq.read_table(path, columns=["dataset", "metric"])
        present.update(pc.unique(table.filter(pc.equal(table["dataset"], dataset))["metric"]).to_pylist())
    return sorted(present)


class TruthMeasure:
    """Quantities looked up in the benchmark's truth (an oracle; see the module docstring).

    ``top1_error`` = 100 − the accuracy ``metric``; any other quantity is the truth metric of
    the same name, as stored (``latency:<device>`` in ms, ``energy:<device>`` in mJ, imported
    from HW-NAS-Bench's ``hw_<dataset>.csv``). An architecture without a value for one of the
    asked quantities is a failed candidate, with a message naming the metric (HW-NAS-Bench
    leaves ``edgetpu`` unmeasured for 4,699 cells).

    Args:
        truth: Truth Parquet file(s) or a results directory holding ``truth/*.parquet``
            (import a CSV first with :func:`proxybench.truth.import_truth`).
        dataset: Truth dataset (the search's).
        metric: Accuracy metric behind ``top1_error`` (``test_acc``; ``valid_acc`` for a
            search that must not see test data).
        quantities: What to provide (default ``("top1_error",)``).

    Raises:
        InvalidSettingError: The truth has no ``dataset`` row of a metric asked for (raised
            here, before the search measures anything).
    """

    def __init__(self, truth: str | Path | Sequence[str | Path], dataset: str = "cifar10",
                 metric: str = "test_acc", *, quantities: Sequence[str] = ("top1_error",)) -> None:
        self.truth = [str(truth)] if isinstance(truth, (str, Path)) else [str(t) for t in truth]
        self.dataset, self.metric = dataset, metric
        self.quantities = tuple(dict.fromkeys(quantities))
        if not self.quantities:
            raise InvalidSettingError("TruthMeasure needs at least one quantity, e.g. top1_error or latency:edgegpu")
        #: quantity -> the truth metric it is read from
        self.sources = {q: (metric if q == "top1_error" else q) for q in self.quantities}
        self._values = read_truth_values(self.truth, dataset, list(dict.fromkeys(self.sources.values())))
        for q, m in self.sources.items():
            if not self._values[m]:
                raise InvalidSettingError(self._missing_metric_message(q, m))

    def _missing_metric_message(self, quantity: str, metric: str) -> str:
        files = ", ".join(Path(t).name for t in self.truth)
        present = _truth_metrics_present(self.truth, self.dataset)
        shown = ", ".join(present[:8]) + (", ..." if len(present) > 8 else "") if present else "none"
        if quantity == "top1_error":
            fix = f"pass the benchmark's accuracies (--truth nats_bench_tss_200ep.csv) for {self.dataset}"
        else:
            fix = (f"pass the hardware table with --truth (HW-NAS-Bench: hw_{self.dataset}.csv) or choose a "
                   "metric the truth has")
        return (f"the truth ({files}) has no {self.dataset} values of {metric} for objective {quantity} "
                f"(its {self.dataset} metrics: {shown}); {fix}")

    def measure(self, archs: Sequence[str]) -> Measured:
        out: Measured = {}
        for a in archs:
            values: dict[str, float] = {}
            for q, m in self.sources.items():
                value = self._values[m].get(a)
                if value is None:
                    out[a] = (f"truth: no {self.dataset} {m} value for {a} (not in the benchmark's table: "
                              "unmeasured there)")
                    break
                values[q] = 100.0 - value if q == "top1_error" else value
            else:
                out[a] = values
        return out

    def describe(self) -> dict[str, Any]:
        described = {"measure": "truth", "truth": self.truth, "dataset": self.dataset, "metric": self.metric}
        if self.quantities != ("top1_error",):  # runs stored before hardware objectives existed still resume
            described["quantities"] = list(self.quantities)
        return described


def build_trained(space: Any, arch: str, provider: Any, dataset: str, *, data_dir: str | Path | None = None,
                  seed: int = 0, device: str | None = "cpu") -> Any:
    """``space.build(arch)`` under ``torch.manual_seed(seed)``, given ``provider``'s weights.

    Shared by :class:`TrainedMeasure` and :func:`proxybench.search.report.evaluate_picks_ood`
    so that a pick is trained from the same initial weights in the search and in its report:
    the ``train`` provider's cache key assumes the network was built under the same seed, so
    both then share one cached training.
    """
    import torch

    torch.manual_seed(int(seed))
    net = space.build(arch, _NUM_CLASSES.get(dataset, 10))
    return provider.prepare(net, arch, space, dataset, data_dir=data_dir, seed=int(seed), device=device)


def measure_ood(net: Any, space: Any, arch: str, provider: Any, dataset: str, *,
                data_dir: str | Path | None = None, n_images: int = 1000, seed: int = 0,
                device: str | None = "cpu", corruptions: str | Sequence[str] | None = None,
                severities: str | Sequence[int] | None = None, source: Any = None,
                label: str | None = None) -> Any:
    """Clean error and CE/mCE of ``net`` on ``dataset``'s test images (an :class:`~proxybench.evaluation.OODResult`).

    The images are resized to the space's ``input_resolution(arch)`` when it has one and
    normalised as ``provider`` trained (its ``normalization(dataset)``; providers without one
    get :func:`~proxybench.evaluation.evaluate_ood`'s default), so the network sees corrupted
    images the way it saw training images. ``source`` reuses already opened test images
    (several networks in a row); ``label`` defaults to ``arch``.
    """
    from proxybench.evaluation import evaluate_ood

    if source is None:
        from proxybench.data import load_images

        source = load_images(dataset, "test", data_dir=data_dir)
    from proxybench.batch import input_resolution

    res = input_resolution(space, arch)
    norm = provider.normalization(dataset) if hasattr(provider, "normalization") else None
    describe = getattr(provider, "describe", None)
    return evaluate_ood(net, source, resolution=res, corruptions=corruptions, severities=severities,
                        n_images=n_images, seed=seed, device=device, normalization=norm,
                        label=label if label is not None else arch,
                        settings={"weights": describe()} if callable(describe) else None)


class TrainedMeasure:
    """Train each candidate with a weights provider, then measure error, R(x, σ) and optionally mCE.

    Args:
        space: A :class:`~proxybench.spaces.SearchSpace`.
        weights: Weights provider spec (``train:asam,epochs=5,rho=2``; FlatNAS fine-tunes with
            ASAM, ρ = 2, over SGD lr 0.1, momentum 0.9, batch 128, wd 5e-4).
        dataset, data_dir, device, seed: Where and how.
        eval_images: Held-out images for ``top1_error`` and ``robustness``.
        sigma, draws: R(x, σ)'s noise scale and number of draws (FlatNAS: 0.05, 20).
        mce: Also measure the mean corruption error (``mce_images`` test images, every
            corruption and severity at the network's input resolution).
        cache_dir: Where the provider caches trained weights (default: its own).
    """

    def __init__(self, space: Any, weights: str = "train:asam,epochs=1", *, dataset: str = "cifar10",
                 data_dir: str | Path | None = None, device: str | None = "cpu", seed: int = 0,
                 eval_images: int = 1280, sigma: float = 0.05, draws: int = 20, mce: bool = False,
                 mce_images: int = 1000, cache_dir: str | Path | None = None) -> None:
        from proxybench.weights import get_weights_provider

        self.space = space
        self.provider = get_weights_provider(weights, cache_dir=cache_dir)
        if self.provider.name == "init":
            raise InvalidSettingError("TrainedMeasure needs trained weights, not 'init'; e.g. 'train:asam,epochs=1'")
        self.dataset, self.data_dir, self.device, self.seed = dataset, data_dir, device or "cpu", int(seed)
        self.eval_images, self.sigma, self.draws = int(eval_images), float(sigma), int(draws)
        self.mce, self.mce_images = bool(mce), int(mce_images)
        self.quantities = ("top1_error", "robustness") + (("mce",) if self.mce else ())
        self._cache: dict[str, dict[str, float] | str] = {}

    def check(self) -> None:
        self.space.check_build()

    def describe(self) -> dict[str, Any]:
        return {"measure": "trained", "weights": self.provider.describe(), "dataset": self.dataset,
                "device": self.device, "seed": self.seed, "eval_images": self.eval_images, "sigma": self.sigma,
                "draws": self.draws, "mce": self.mce, "mce_images": self.mce_images}

    def _one(self, arch: str) -> dict[str, float]:
        import torch

        from proxybench.batch import input_resolution
        from proxybench.proxies.flatness import flatnas_r

        net = build_trained(self.space, arch, self.provider, self.dataset, data_dir=self.data_dir, seed=self.seed,
                            device=self.device)
        batch = (self.provider.held_out_batch(self.dataset, self.data_dir, self.eval_images).to(self.device)
                 .resized(input_resolution(self.space, arch)))
        net.eval()
        with torch.no_grad():
            wrong = sum(int((net(batch.inputs[i:i + 256]).argmax(1) != batch.targets[i:i + 256]).sum())
                        for i in range(0, batch.size, 256))
        values = {"top1_error": 100.0 * wrong / batch.size}
        torch.manual_seed(self.seed)
        values["robustness"] = float(flatnas_r(net, batch, sigma=self.sigma, draws=self.draws,
                                               eval_images=self.eval_images))
        if self.mce:
            result = measure_ood(net, self.space, arch, self.provider, self.dataset, data_dir=self.data_dir,
                                 n_images=self.mce_images, seed=self.seed, device=self.device)
            values["mce"] = float(result.mce)
        return values

    def measure(self, archs: Sequence[str]) -> Measured:
        for arch in archs:
            if arch in self._cache:
                continue
            try:
                self._cache[arch] = self._one(arch)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - a failed training is a failed candidate
                self._cache[arch] = f"trained: {_first_line(exc)}"
        return {a: self._cache[a] for a in archs}


def describe_json(measure: Any) -> str:
    return json.dumps(measure.describe(), sort_keys=True, default=str)


class Evaluator:
    """Routes every quantity to the measure that provides it and merges their results.

    ``measure(archs, quantities)`` returns ``(values, seconds)``: ``values[arch]`` is a dict of
    the asked quantities or an error message; ``seconds[arch]`` is the architecture's share of
    the wall time of the measures that ran.

    **Isomorph sharing** (``measure(..., share_isomorphs=True)``, given ``uid``, the space's
    isomorphism key): for a measure whose ``isomorph_invariant`` is true (cost, proxies,
    predictors), architectures of one isomorphism class are measured once per *scope*, on the
    class's representative (the first member asked for in the scope), and the other members
    get its values, as the scoring engine's dedup does. Isomorphs compute the same function;
    their exact values differ only by the initialisation noise of their own weights (and, on
    NB201, by the parameters of dead edges). The search loop opens a scope per iteration
    (:meth:`new_scope`) and shares only for the NSGA-II offspring, so which member represents a
    class depends on the iteration alone (a resumed run repeats it bit for bit), and the
    candidates written to the archive are measured on their own networks.

    ``counts`` records the exact evaluations, one per (architecture, quantity) asked for:
    ``computed`` (sent to a measure for the first time in this run: measured, or read back
    from a resumed run's stored scores) and ``reused`` (answered from a class
    representative's values or from an earlier request for the same architecture).
    """

    def __init__(self, measures: Sequence[Any], uid: Callable[[str], str] | None = None) -> None:
        self.by_quantity: dict[str, Any] = {}
        for m in measures:
            for q in m.quantities:
                self.by_quantity.setdefault(q, m)
        self.uid = uid
        self.counts = {"computed": 0, "reused": 0}
        self._asked: set[tuple[int, str]] = set()
        self._representative: dict[tuple[int, str], str] = {}

    def new_scope(self) -> None:
        """Forget which architecture represents each isomorphism class (the loop: every iteration)."""
        self._representative.clear()

    def provides(self, quantity: str) -> bool:
        return quantity in self.by_quantity

    def check(self, quantities: Sequence[str]) -> None:
        """Call ``check()`` of every measure that ``quantities`` use (those that define one), once each.

        Raises:
            ProxybenchError: The first measure that cannot work (e.g. the OFA space without the
                ``ofa`` package), so that a search fails before its first candidate.
        """
        checked: set[int] = set()
        for q in quantities:
            m = self.by_quantity.get(q)
            if m is not None and id(m) not in checked:
                checked.add(id(m))
                check = getattr(m, "check", None)
                if check is not None:
                    check()

    def measure(self, archs: Sequence[str], quantities: Sequence[str], *,
                share_isomorphs: bool = False) -> tuple[Measured, dict[str, float]]:
        archs = list(dict.fromkeys(archs))
        values: Measured = {a: {} for a in archs}
        seconds = {a: 0.0 for a in archs}
        missing = [q for q in quantities if q not in self.by_quantity]
        if missing:
            raise ProxybenchError(f"nothing measures {missing}; give the search a measure for them "
                                  "(--truth for top1_error on NB201, or a TrainedMeasure)")
        groups: dict[int, tuple[Any, list[str]]] = {}
        for q in quantities:
            m = self.by_quantity[q]
            groups.setdefault(id(m), (m, []))[1].append(q)
        for m, qs in groups.values():
            todo = [a for a in archs if not isinstance(values[a], str)]
            if not todo:
                break
            shared = share_isomorphs and self.uid is not None and getattr(m, "isomorph_invariant", False)
            source = {a: self._representative.setdefault((id(m), self.uid(a)), a) if shared else a  # type: ignore[misc]
                      for a in todo}
            asked = list(dict.fromkeys(source.values()))
            started = time.perf_counter()
            got = m.measure(asked)
            share = (time.perf_counter() - started) / len(todo)
            for a in todo:
                seconds[a] += share
                result = got[source[a]]
                if source[a] == a and (id(m), a) not in self._asked:
                    self._asked.add((id(m), a))
                    self.counts["computed"] += len(qs)
                else:
                    self.counts["reused"] += len(qs)
                if isinstance(result, str):
                    values[a] = result
                else:
                    values[a].update({q: result[q] for q in qs})  # type: ignore[union-attr]
        return values, seconds
