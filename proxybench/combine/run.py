"""The few-shot experiment grid: feature sets × models × n × splits, written to Parquet.

Protocol (White et al. 2021; NAS-Bench-Suite-Zero, Krishnakumar et al. 2022), with the
split by isomorphism class as the default (:mod:`proxybench.combine.splits`): for every n and
split index one training set is drawn and **shared by every model and feature set**, so
their differences are paired comparisons. Each model is fitted on the n training
architectures and predicts every test architecture; the test ranking is scored with τ, ρ,
top-k overlap and nDCG (:mod:`proxybench.combine.metrics`).

Written under ``OUT`` (each file one run, named by its run id; the run's configuration in
every file's key-value metadata and in the ``settings`` column):

* ``predictions/<run>.parquet`` — one row per (experiment, architecture): features, model, n,
  split, split_kind, arch, arch_uid, role (``train``, ``test``, or ``train_isomorph`` for the
  other members of a training class, which a class split keeps out of the test set), truth,
  predicted;
* ``predictor_metrics/<run>.parquet`` — one row per experiment: the metrics, n_train, n_test,
  fit and predict seconds, the model's settings;
* ``predictor_importance/<run>.parquet`` — one row per (experiment, feature): importance
  (normalised to sum 1 per experiment where the model has one).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from proxybench.combine.data import CombineData, CombineError
from proxybench.combine.metrics import mean_interval, ranking_metrics
from proxybench.combine.models import MODELS, make_model, model_settings
from proxybench.combine.splits import SPLIT_KINDS, make_split
from proxybench.store.atomic import write_parquet_atomically

__all__ = ["CombineConfig", "CombineResult", "run_combine", "summarise", "DEFAULT_NS", "metric_columns"]

DEFAULT_NS = (10, 20, 50, 100, 200, 400, 1000)


@dataclass(frozen=True)
class CombineConfig:
    """What to run (recorded with every result)."""

    feature_sets: dict[str, list[str]]
    models: tuple[str, ...] = MODELS
    ns: tuple[int, ...] = DEFAULT_NS
    splits: int = 5
    seed: int = 0
    split_kinds: tuple[str, ...] = ("class",)
    top_k: tuple[float, ...] = (1.0, 5.0, 10.0)
    threads: int = 1
    save_predictions: bool = True

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise CombineError(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
        bad = [k for k in self.split_kinds if k not in SPLIT_KINDS]
        if bad:
            raise CombineError(f"unknown split {bad[0]!r}; choose from {', '.join(SPLIT_KINDS)}")
        if self.splits < 1 or not self.ns or min(self.ns) < 1:
            raise CombineError("need at least one split and every n >= 1")
        if not self.feature_sets:
            raise CombineError("no feature set given; e.g. --features proxies --features proxies+graf")


@dataclass
class CombineResult:
    """The metrics of every experiment and where the files went."""

    run_id: str
    metrics: list[dict[str, Any]]
    importances: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def metric_columns(top_k: Sequence[float]) -> list[str]:
    """The metric columns of ``predictor_metrics`` for these k."""
    from proxybench.stats.correlation import topk_column

    columns = ["kendall", "spearman"]
    for k in top_k:
        columns += [topk_column(k), "ndcg" + topk_column(k)[3:]]
    return columns



def run_combine(data: CombineData, config: CombineConfig, out: Path | None = None,
                progress: Callable[[int], None] | None = None) -> CombineResult:
    """Run every experiment of ``config`` on ``data``; write the Parquet files when ``out`` is given.

    Args:
        data: From :func:`proxybench.combine.data.load_combine_data`.
        config: The grid.
        out: Results directory (the three subfolders above are created in it).
        progress: Called with 1 after each experiment (a progress bar's ``update``).

    Raises:
        CombineError: An n the architectures cannot supply (checked before any fit).
    """
    started = time.perf_counter()
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    matrices = {label: data.matrix(blocks) for label, blocks in config.feature_sets.items()}
    splits = {(kind, n, i): make_split(data.uids, n, i, config.seed, kind)
              for kind in config.split_kinds for n in config.ns for i in range(config.splits)}
    settings = _settings(data, config)
    metrics: list[dict[str, Any]] = []
    importances: list[dict[str, Any]] = []
    predictions: list[pa.Table] = []
    for (kind, n, index), split in splits.items():
        for label, (x, names) in matrices.items():
            for model_name in config.models:
                row, importance, predicted = _one(data, x, names, split, model_name, n, config)
                key = {"run_id": run_id, "features": label, "model": model_name, "n": n, "split": index,
                       "split_kind": kind}
                metrics.append({**key, **row})
                importances.extend({**key, "feature": f, "importance": float(v)} for f, v in zip(names, importance))
                if config.save_predictions:
                    predictions.append(_prediction_table(data, split, predicted, key))
                if progress is not None:
                    progress(1)
    result = CombineResult(run_id, metrics, importances, seconds=time.perf_counter() - started)
    if out is not None:
        result.files = _write(out, run_id, settings, data, metrics, importances, predictions)
    return result


def _one(data: CombineData, x: np.ndarray, names: list[str], split: Any, model_name: str, n: int,
         config: CombineConfig) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    model = make_model(model_name, n, config.seed, config.threads)
    t0 = time.perf_counter()
    model.fit(x[split.train], data.y[split.train])
    t1 = time.perf_counter()
    predicted = model.predict(x)
    t2 = time.perf_counter()
    test_pred = predicted[split.test]
    if np.isfinite(test_pred).all():
        found = ranking_metrics(test_pred, data.y[split.test], config.top_k)
    else:
        found = {c: float("nan") for c in metric_columns(config.top_k)}
    row = {**found, "n_train": len(split.train), "n_test": len(split.test), "fit_seconds": t1 - t0,
           "predict_seconds": t2 - t1, "model_settings": json.dumps(model_settings(model_name, n), sort_keys=True)}
    return row, model.importances(), predicted


def _prediction_table(data: CombineData, split: Any, predicted: np.ndarray, key: dict[str, Any]) -> pa.Table:
    rows = len(data.archs)
    roles = np.full(rows, "train_isomorph", dtype=object)  # class split: the training classes' other members
    roles[split.train] = "train"
    roles[split.test] = "test"
    columns = {k: pa.array([v] * rows) for k, v in key.items() if k != "run_id"}
    return pa.table({
        **columns,
        "arch": pa.array(data.archs),
        "arch_uid": pa.array(data.uids.tolist()),
        "role": pa.array(roles.tolist()),
        "truth": pa.array(data.y),
        "predicted": pa.array(predicted),
    })


def _settings(data: CombineData, config: CombineConfig) -> dict[str, Any]:
    return {"config": {**asdict(config), "ns": list(config.ns)}, "truth": data.truth,
            "proxy_settings": data.proxy_settings, "architectures": len(data.archs),
            "dropped_without_scores": data.dropped}


def _write(out: Path, run_id: str, settings: dict[str, Any], data: CombineData, metrics: list[dict[str, Any]],
           importances: list[dict[str, Any]], predictions: list[pa.Table]) -> list[Path]:
    text = json.dumps(settings, sort_keys=True, default=str)
    metadata = {"proxybench.combine": text}
    common = {"space": data.truth["space"], "dataset": data.truth["dataset"], "metric": data.truth["metric"],
              "truth_source": str(data.truth.get("source")), "settings": text}
    files = []
    for folder, rows in (("predictor_metrics", metrics), ("predictor_importance", importances)):
        table = pa.Table.from_pylist([{**common, **row} for row in rows])
        path = out / folder / f"{run_id}.parquet"
        write_parquet_atomically(table, path, metadata)
        files.append(path)
    if predictions:
        table = pa.concat_tables(predictions)
        table = table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.string()))
        for name, value in reversed(list(common.items())):
            if name != "settings":
                table = table.add_column(0, name, pa.array([value] * table.num_rows, pa.string()))
        path = out / "predictions" / f"{run_id}.parquet"
        write_parquet_atomically(table, path, metadata)
        files.append(path)
    return files


def summarise(metrics: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Mean and 95 % interval over splits per (split_kind, features, model, n), in first-seen order."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in metrics:
        groups.setdefault((row["split_kind"], row["features"], row["model"], row["n"]), []).append(row)
    summary = []
    for (kind, features, model, n), rows in groups.items():
        entry: dict[str, Any] = {"split_kind": kind, "features": features, "model": model, "n": n,
                                 "splits": len(rows)}
        for column in columns:
            entry[column], entry[column + "_lo"], entry[column + "_hi"] = mean_interval(r[column] for r in rows)
        summary.append(entry)
    return summary
