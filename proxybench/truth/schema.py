"""Parquet schema of the long ``truth`` table (DESIGN.md §5) and its writer.

One row per (architecture, dataset, metric, epochs, seed, source): what an architecture
really achieves, as published by a benchmark. ``proxybench correlate`` joins it to the
``scores`` table on ``(space, arch, dataset)``; the canonical architecture string is the
join key, so isomorphic duplicates keep their own rows (each was trained on its own).

Column conventions, shared by every importer:

* ``dataset`` is the dataset the *proxies* see (``cifar10``, ``cifar100``,
  ``ImageNet16-120``), so a score row of dataset ``cifar10`` joins truth of dataset
  ``cifar10``. Which split the number was measured on lives in ``metric``:
  NAS-Bench-201's ``cifar10-valid`` training (train on half the training set, evaluate on the
  other half) is dataset ``cifar10``, metric ``valid_acc``; its ``cifar10`` training (full
  training set, evaluated on the test set) is dataset ``cifar10``, metric ``test_acc``.
* ``metric``: ``test_acc``, ``valid_acc``, ``train_acc`` (percent), robustness metrics
  such as ``fgsm@8`` or ``cc:gaussian_noise@3`` (percent), and hardware costs
  ``latency:<device>``, ``energy:<device>``, ``arithmetic_intensity:<device>``
  (:mod:`proxybench.truth.arch_table`). Accuracies are higher-is-better; latency and energy
  are costs, lower is better, and are stored as measured (never negated: they are exact
  search objectives). :func:`metric_higher_is_better` says which is which, so a consumer
  that orients correlations by the truth (today ``correlate`` assumes accuracies) can ask.
* ``value``: float64; accuracies in percent (0-100), never fractions. Units of other
  metrics (ms, mJ) are in the file's key-value metadata, ``proxybench.truth.units``
  (:func:`proxybench.truth.arch_table.read_units`): a unit belongs to a metric within one
  file, so it needs no column repeated on every row.
* ``epochs``: the training schedule's length the value belongs to (NB201: 200 or 12).
* ``seed``: a string: ``mean`` for a mean over the benchmark's seeds, a seed number, or
  ``unknown`` when the source does not say.
* ``source``: ``<format>:<file name>``, e.g. ``csv:nats_bench_tss_200ep.csv``, so rows from
  two files never look alike.
* ``arch_id``: the benchmark's own index where the source gives it (the NB201 CSV's row
  number), otherwise null (the index is not derivable from the ops, DESIGN.md §4).

Each file also carries its provenance in the Parquet key-value metadata
(:data:`METADATA_PREFIX` keys: source path, format, importer version, SHA-256, row count).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from proxybench.store.atomic import write_parquet_atomically

__all__ = [
    "TRUTH_SCHEMA",
    "TRUTH_COLUMNS",
    "METADATA_PREFIX",
    "truth_dir",
    "metric_higher_is_better",
    "write_parquet_atomically",
]

TRUTH_SCHEMA = pa.schema(
    [
        pa.field("space", pa.string(), nullable=False),
        pa.field("arch", pa.string(), nullable=False),
        pa.field("arch_uid", pa.string(), nullable=False),
        pa.field("arch_id", pa.int64()),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("epochs", pa.int64()),
        pa.field("seed", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)

TRUTH_COLUMNS = tuple(TRUTH_SCHEMA.names)

#: Prefix of the Parquet key-value metadata keys an importer writes.
METADATA_PREFIX = "proxybench.truth."


def truth_dir(out: str | os.PathLike[str]) -> Path:
    """``<out>/truth``: where truth files go (the ``truth`` view reads ``truth/*.parquet``)."""
    return Path(out) / "truth"


#: Metric prefixes of costs (lower is better).
LOWER_IS_BETTER_PREFIXES = ("latency:", "energy:")

#: Metric prefixes with no better direction (a property of the network, not a goal).
UNORIENTED_PREFIXES = ("arithmetic_intensity:",)


def metric_higher_is_better(metric: str) -> bool | None:
    """Whether a larger value of truth ``metric`` is better: True for accuracies, False for
    latency and energy (costs), None for descriptive metrics such as arithmetic intensity.

    Example:
        >>> metric_higher_is_better("fgsm@8"), metric_higher_is_better("latency:pixel3")
        (True, False)
    """
    if metric.startswith(LOWER_IS_BETTER_PREFIXES):
        return False
    if metric.startswith(UNORIENTED_PREFIXES):
        return None
    return True
