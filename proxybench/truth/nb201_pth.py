"""Importer for the NAS-Bench-201 benchmark files (``NAS-Bench-201-v1_0-e61699.pth``, ``-v1_1-096897.pth``).

Layout (``nas_201_api``, AutoDL-Projects ``exps/NAS-Bench-201/statistics.py``): a ``torch.save``
of ``{"meta_archs": [arch string per index], "total_archs": 15625, "arch2infos": {index:
{"less": ArchResults state, "full": ArchResults state}}, "evaluated_indexes": [...]}``.
``less`` is the 12-epoch schedule (``hp="12"`` in the API; in v1.0 only ``cifar10-valid``),
``full`` the 200-epoch one (``hp="200"``). An ArchResults state is ``{"arch_index",
"arch_str", "all_results": {(training set, seed): ResultsCount state}, "dataset_seed":
{training set: [seeds]}, ...}``; a ResultsCount state holds ``epochs``, ``train_acc1es``
(``{epoch: acc}``) and ``eval_acc1es`` (``{"<eval set>@<epoch>": acc}``), accuracies in percent.

Rows (one per architecture, schedule and row of the table below; ``seed`` ``mean``):

==================  ============  ==============  =========  ====================================
NB201 training set  eval set      dataset         metric     what it is
==================  ============  ==============  =========  ====================================
``cifar10-valid``   ``x-valid``   cifar10         valid_acc  trained on half the train set,
                                                             evaluated on the other half
``cifar10``         ``ori-test``  cifar10         test_acc   trained on the full train set,
                                                             evaluated on the CIFAR-10 test set
``cifar10``         ``train``     cifar10         train_acc  the same run, on its training data
``cifar100``        ``x-valid``   cifar100        valid_acc  half of the test set (NB201 valid)
``cifar100``        ``x-test``    cifar100        test_acc   the other half
``cifar100``        ``train``     cifar100        train_acc
``ImageNet16-120``  ``x-valid``   ImageNet16-120  valid_acc  half of the test set
``ImageNet16-120``  ``x-test``    ImageNet16-120  test_acc   the other half
``ImageNet16-120``  ``train``     ImageNet16-120  train_acc
==================  ============  ==============  =========  ====================================

This is what ``api.get_more_info(index, training set, hp=..., is_random=False)`` returns as
``valid-accuracy`` / ``test-accuracy`` / ``train-accuracy`` and what the API's own
``remap_dataset_set_names`` picks for ``(cifar10, valid)`` etc. Not imported: ``cifar10-valid``'s
``train`` and ``ori-test`` (another training run than the ``cifar10`` rows, which would share
their dataset/metric), and ``ori-test`` of cifar100/ImageNet16-120 (valid and test halves
together, the API's ``valtest-accuracy``).

* Value: the accuracy after the **last epoch** of the schedule (``eval set@epochs-1``,
  ``train_acc1es[epochs-1]``), averaged over the seeds the benchmark lists for that training
  set (``sum / n``, the API's ``is_random=False``); ``seed`` is ``mean``.
* ``epochs``: the ResultsCount's own ``epochs`` (200 for ``full``, 12 for ``less``); both
  schedules are imported as separate rows.
* ``arch_id``: the benchmark index (the ``arch2infos`` key); ``arch`` is ``meta_archs[index]``
  in canonical form (checked against the ArchResults' ``arch_str``).
* A metric missing from every seed of an architecture is skipped (counted in the
  ``skipped_metrics`` metadata); missing from only some seeds is an error.

Safe loading. The file is read with ``torch.load(path, weights_only=True)`` — never
``weights_only=False`` — inside a :func:`torch.serialization.safe_globals` block that adds
exactly what these files need beyond torch's defaults (dicts, lists, sets, OrderedDict): the
ResultsCount ``params`` field is a ``numpy.float64`` (AutoDL's ``count_parameters`` divides
``np.prod`` sums), pickled as ``numpy.core.multiarray.scalar(numpy.dtype("f8"), bytes)``. The
allow-list is therefore ``numpy.dtype``, the float64 dtype class and a wrapper of
``numpy.core.multiarray.scalar`` (under both its numpy-1 and numpy-2 names) that refuses
non-numeric dtypes; every other field (accuracies, losses, times, FLOPs, latencies, seeds)
is a plain float, int, str, list, tuple or dict. The block is scoped to this one call: the
process-wide allow-list is unchanged afterwards. Any other class in the file stops the import
with a one-line :class:`TruthImportError`. Needs torch >= 2.6.

Memory and time. ``torch.load`` has to materialise the whole object graph: the v1.1 file
(4.7 GB on disk) needs about **28 GB of RAM at peak**. torch's weights-only unpickler is
written in Python, about 10x slower than a plain unpickle: on a synthetic file with full
200-epoch histories it took ~60 ms and ~2 MB of heap per architecture (0.5 MB per
architecture on disk; the real file has ~0.3 MB), i.e. roughly 10-15 minutes for v1.1. The
importer never keeps a second copy: each architecture's entry is popped from the loaded dict
and dropped as soon as its rows are extracted, so memory only falls after the load. On a
small-memory machine use NATS-Bench's per-architecture directory instead
(``NATS-tss-v1_0-3ffb9-simple``, format ``nats``, :mod:`proxybench.truth.nats_dir`): the same
search space and state layout, one small file at a time. Either way, extract once: the
Parquet file is the extract, so the slow API is never needed again.
"""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from proxybench.errors import InvalidArchitectureError
from proxybench.spaces.nb201 import arch_uid, format_arch, parse_arch
from proxybench.truth._common import ReadOutput, SourceInfo, TruthImportError
from proxybench.truth.schema import TRUTH_SCHEMA

__all__ = [
    "HP_LABELS",
    "IMPORTER_VERSION",
    "SPLITS",
    "TruthRows",
    "arch_results_rows",
    "canonical_arch",
    "claims",
    "numpy_scalar",
    "read",
    "read_nb201_pth",
]

#: Bumped whenever the importer's output for the same input changes.
IMPORTER_VERSION = "1"

#: ``(NB201 training set, eval set, dataset, metric)``: which accuracies become which rows.
SPLITS: tuple[tuple[str, str, str, str], ...] = (
    ("cifar10-valid", "x-valid", "cifar10", "valid_acc"),
    ("cifar10", "ori-test", "cifar10", "test_acc"),
    ("cifar10", "train", "cifar10", "train_acc"),
    ("cifar100", "x-valid", "cifar100", "valid_acc"),
    ("cifar100", "x-test", "cifar100", "test_acc"),
    ("cifar100", "train", "cifar100", "train_acc"),
    ("ImageNet16-120", "x-valid", "ImageNet16-120", "valid_acc"),
    ("ImageNet16-120", "x-test", "ImageNet16-120", "test_acc"),
    ("ImageNet16-120", "train", "ImageNet16-120", "train_acc"),
)

#: NB201 ``arch2infos`` keys → the API's ``hp`` names.
HP_LABELS = {"less": "12", "full": "200"}

_TOP_KEYS = ("meta_archs", "arch2infos", "evaluated_indexes")
_MIN_TORCH = (2, 6)


class TruthRows:
    """Truth columns being built, with a check that each (arch, dataset, metric, epochs) is unique."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.columns: dict[str, list[Any]] = {name: [] for name in TRUTH_SCHEMA.names}
        self._seen: dict[tuple[int | str, str, str, int], str] = {}

    def add(self, arch: str, uid: str, arch_id: int | None, dataset: str, metric: str, value: float,
            epochs: int, where: str) -> None:
        key = (arch_id if arch_id is not None else arch, dataset, metric, epochs)
        if key in self._seen:
            raise TruthImportError(
                f"{where}: {dataset}/{metric} after {epochs} epochs already came from {self._seen[key]}; "
                "each architecture may have one value per schedule"
            )
        self._seen[key] = where
        for column, item in (("space", "nb201"), ("arch", arch), ("arch_uid", uid), ("arch_id", arch_id),
                             ("dataset", dataset), ("metric", metric), ("value", value), ("epochs", epochs),
                             ("seed", "mean"), ("source", self.source)):
            self.columns[column].append(item)

    def __len__(self) -> int:
        return len(self.columns["arch"])

    def table(self) -> pa.Table:
        return pa.Table.from_pydict(self.columns, schema=TRUTH_SCHEMA)


def canonical_arch(text: Any, where: str) -> str:
    """``text`` as the canonical NB201 string, or a :class:`TruthImportError` naming ``where``."""
    if not isinstance(text, str):
        raise TruthImportError(f"{where}: architecture {text!r} is not a string")
    try:
        return format_arch(parse_arch(text))
    except InvalidArchitectureError as exc:
        raise TruthImportError(f"{where}: {exc}") from None


def arch_results_rows(state: Any, *, rows: TruthRows, arch: str, uid: str, arch_id: int, hp: str,
                      where: str, skipped: dict[str, int]) -> None:
    """Append the rows of one ArchResults state (one architecture, one schedule) to ``rows``.

    Args:
        state: The ArchResults ``state_dict`` (``all_results``, ``dataset_seed``, ``arch_str``).
        rows: Where the rows go.
        arch: Canonical architecture string (from the benchmark's index list).
        uid: Its isomorphism key.
        arch_id: Benchmark index.
        hp: Schedule label (``12``, ``200``), only for messages.
        where: ``<file>, arch <index>``, only for messages.
        skipped: Counts of ``<training set>/<eval set>`` metrics missing from every seed.

    Raises:
        TruthImportError: The state is not an ArchResults state, its ``arch_str`` disagrees
            with ``arch``, or an accuracy is missing for some seeds, not a number or outside
            0..100.
    """
    where = f"{where}, hp {hp}"
    if not isinstance(state, Mapping) or not isinstance(state.get("all_results"), Mapping) \
            or not isinstance(state.get("dataset_seed"), Mapping):
        raise TruthImportError(
            f"{where}: expected an ArchResults state with all_results and dataset_seed, got "
            f"{_describe(state)}"
        )
    if "arch_str" in state and canonical_arch(state["arch_str"], f"{where}, arch_str") != arch:
        raise TruthImportError(f"{where}: its arch_str {state['arch_str']!r} is not {arch}, the index's architecture")
    all_results, dataset_seed = state["all_results"], state["dataset_seed"]
    for train_set, eval_set, dataset, metric in SPLITS:
        seeds = dataset_seed.get(train_set)
        if not seeds:
            continue
        if not isinstance(seeds, (list, tuple)):
            raise TruthImportError(f"{where}: dataset_seed[{train_set!r}] is {_describe(seeds)}, expected a list")
        values: list[float] = []
        missing: list[Any] = []
        epochs_seen: set[int] = set()
        for seed in seeds:
            at = f"{where}, {train_set} seed {seed}"
            result = all_results.get((train_set, seed))
            if not isinstance(result, Mapping):
                raise TruthImportError(f"{at}: all_results has no ResultsCount for ({train_set!r}, {seed!r})")
            epochs = result.get("epochs")
            if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
                raise TruthImportError(f"{at}: epochs is {epochs!r}, expected a positive integer")
            epochs = int(epochs)
            epochs_seen.add(epochs)
            accuracy = _final_accuracy(result, eval_set, epochs, at)
            if accuracy is None:
                missing.append(seed)
            else:
                values.append(accuracy)
        if len(epochs_seen) > 1:
            raise TruthImportError(f"{where}, {train_set}: the seeds ran different schedules ({sorted(epochs_seen)} epochs)")
        if not values:
            key = f"{train_set}/{eval_set}"
            skipped[key] = skipped.get(key, 0) + 1
            continue
        if missing:
            raise TruthImportError(
                f"{where}, {train_set}: {eval_set} accuracy after the last epoch is missing for seed(s) "
                f"{', '.join(map(str, missing))} but present for the others"
            )
        rows.add(arch, uid, arch_id, dataset, metric, sum(values) / len(values), epochs_seen.pop(),
                 f"{where}, {train_set}/{eval_set}")


def _final_accuracy(result: Mapping[str, Any], eval_set: str, epochs: int, where: str) -> float | None:
    """Accuracy on ``eval_set`` after the last epoch, None when the result does not have it."""
    last = epochs - 1
    if eval_set == "train":
        accs, key, field = result.get("train_acc1es"), last, "train_acc1es"
        if isinstance(accs, (list, tuple)):
            value = accs[last] if len(accs) > last else None
        elif isinstance(accs, Mapping):
            value = accs.get(last)
        elif accs is None:
            return None
        else:
            raise TruthImportError(f"{where}: train_acc1es is {_describe(accs)}, expected a dict or list")
    else:
        accs, key, field = result.get("eval_acc1es"), f"{eval_set}@{last}", "eval_acc1es"
        if accs is None:
            return None
        if not isinstance(accs, Mapping):
            raise TruthImportError(f"{where}: eval_acc1es is {_describe(accs)}, expected a dict")
        value = accs.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TruthImportError(f"{where}: {field}[{key!r}] is {_describe(value)}, not a number")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise TruthImportError(f"{where}: {field}[{key!r}] = {value!r} is not an accuracy in percent (0..100)")
    return value


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


# ----------------------------------------------------------------------------- safe loading


def _numpy_scalar_constructor() -> Any:
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 1.26
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return scalar


_SCALAR = _numpy_scalar_constructor()


def numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar`` restricted to numeric dtypes (what a pickled np.float64 calls).

    An object dtype would hand back an arbitrary object; no benchmark field needs that.
    """
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or not isinstance(data, bytes):
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype!r} is not allowed")
    return _SCALAR(dtype, data)


def _safe_globals() -> list[Any]:
    """The allow-list added to torch's defaults while a benchmark file is loaded."""
    return [
        (numpy_scalar, "numpy.core.multiarray.scalar"),   # written by numpy 1.x (the released files)
        (numpy_scalar, "numpy._core.multiarray.scalar"),  # written by numpy 2.x
        np.dtype,
        type(np.dtype("float64")),  # numpy.dtypes.Float64DType: the dtype object's state is BUILT
    ]


def _torch_version() -> tuple[int, int]:
    import torch

    match = re.match(r"(\d+)\.(\d+)", torch.__version__)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def load_benchmark(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` with the benchmark's allow-list, scoped to this call.

    Raises:
        TruthImportError: torch is too old, the file is not a torch file, or it needs a class
            outside the allow-list (one line, naming the class).
    """
    import torch

    name = path.name
    if _torch_version() < _MIN_TORCH:
        raise TruthImportError(
            f"reading {name} safely (weights_only=True with an allow-list) needs torch >= 2.6, found "
            f"{torch.__version__}; upgrade torch, or import NATS-Bench's directory (--format nats)"
        )
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text) or re.search(
            r"but got <class '([^']+)'>", text)
        if found:
            raise TruthImportError(
                f"{name} needs {found[1]}, which a NAS-Bench-201 benchmark file does not contain; refused to "
                "load it (weights_only=True); this is not the NAS-Bench-201 .pth, or it was modified"
            ) from None
        raise TruthImportError(f"{name} is not a loadable torch file: {_first_line(text)}") from None
    except MemoryError:
        raise TruthImportError(
            f"out of memory loading {name}: the whole file must be unpickled (about 28 GB for v1.1); use a machine "
            "with more RAM, or import NATS-Bench's per-architecture directory instead (--format nats)"
        ) from None
    except Exception as exc:  # noqa: BLE001  (a damaged file can make the unpickler raise anything)
        raise TruthImportError(
            f"{name} is not a readable torch file ({type(exc).__name__}: {_first_line(str(exc))}); "
            "expected NAS-Bench-201-v1_0-e61699.pth or NAS-Bench-201-v1_1-096897.pth"
        ) from None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no message"


# ----------------------------------------------------------------------------- reader


def read_nb201_pth(path: Path, source: str) -> tuple[pa.Table, dict[str, str]]:
    """Read a NAS-Bench-201 ``.pth`` benchmark file into truth rows (see the module docstring).

    Args:
        path: The ``.pth`` file.
        source: Value of the ``source`` column (``nb201-pth:<file name>``).

    Returns:
        The truth table and metadata entries (schedules, skipped metrics).

    Raises:
        TruthImportError: Not loadable safely, not this layout, or a malformed entry (the
            message names the architecture index, schedule, training set and seed).
    """
    name = path.name
    data = load_benchmark(path)
    if not isinstance(data, dict) or any(key not in data for key in _TOP_KEYS):
        keys = ", ".join(map(repr, list(data)[:6])) if isinstance(data, dict) else _describe(data)
        raise TruthImportError(
            f"{name} is not a NAS-Bench-201 benchmark file: expected a dict with {', '.join(_TOP_KEYS)}, got {keys}"
        )
    meta_archs = data["meta_archs"]
    arch2infos = data.pop("arch2infos")
    del data
    if not isinstance(meta_archs, (list, tuple)) or not isinstance(arch2infos, dict):
        raise TruthImportError(f"{name}: meta_archs must be a list and arch2infos a dict")
    if not arch2infos:
        raise TruthImportError(f"{name} holds no evaluated architectures (arch2infos is empty)")

    rows = TruthRows(source)
    skipped: dict[str, int] = {}
    hp_epochs: dict[str, set[int]] = {}
    bad = next((k for k in arch2infos if isinstance(k, bool) or not isinstance(k, int)
                or not 0 <= k < len(meta_archs)), None)
    if bad is not None:
        raise TruthImportError(f"{name}: arch2infos key {bad!r} is not an index in 0..{len(meta_archs) - 1} (meta_archs)")
    for index in sorted(arch2infos):
        where = f"{name}, arch {index}"
        entry = arch2infos.pop(index)  # drop each architecture as soon as it is converted
        if not isinstance(entry, dict) or not entry:
            raise TruthImportError(f"{where}: expected {{'less': ..., 'full': ...}}, got {_describe(entry)}")
        arch = canonical_arch(meta_archs[index], f"{where}, meta_archs")
        uid = arch_uid(arch)
        for key, state in entry.items():
            hp = HP_LABELS.get(key, str(key))
            before = len(rows)
            arch_results_rows(state, rows=rows, arch=arch, uid=uid, arch_id=index, hp=hp, where=where,
                              skipped=skipped)
            hp_epochs.setdefault(hp, set()).update(rows.columns["epochs"][before:])
        del entry
    if not len(rows):
        raise TruthImportError(f"{name} holds no accuracies (no known training set in any architecture)")
    metadata = {
        "schedules": ";".join(f"hp={hp}:{'/'.join(map(str, sorted(e)))} epochs" for hp, e in sorted(hp_epochs.items())),
        "splits": ";".join(f"{t}/{e}={d}/{m}" for t, e, d, m in SPLITS),
        "seed": "mean over the benchmark's seeds (is_random=False), last epoch of each schedule",
        "skipped_metrics": ";".join(f"{k}:{n}" for k, n in sorted(skipped.items())),
    }
    return rows.table(), metadata


def claims(path: Path) -> bool:
    """``auto`` detection: a ``.pth`` file."""
    return path.suffix.lower() == ".pth"


def read(path: Path, info: SourceInfo) -> ReadOutput:
    """The :class:`~proxybench.truth.importers.Reader` entry point (see :func:`read_nb201_pth`)."""
    truth, metadata = read_nb201_pth(path, info.label)
    return ReadOutput(truth=truth, metadata=metadata)
