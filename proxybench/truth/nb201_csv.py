"""Importer for CSV exports of NAS-Bench-201 / NATS-Bench (topology search space).

The layout is that of ``nats_bench_tss_200ep.csv``: one row per architecture, and **row i
(0-based, header excluded) is benchmark index i**, so the row number becomes ``arch_id``
(an explicit ``index``/``arch_id``/``ArchitectureIndex`` column, or pandas' unnamed index
column, takes precedence when present). Columns:

* ``ArchitectureString`` (required): the canonical NB201 string. Every one goes through
  :func:`proxybench.spaces.nb201.parse_arch`, so a malformed row stops the import with one
  line naming the row and column instead of producing a truth row that joins nothing.
* ``<Dataset><Split>Accuracy<N>Epochs`` (at least one): e.g. ``CIFAR10TestAccuracy200Epochs``.
  ``CIFAR10`` → ``cifar10``, ``CIFAR100`` → ``cifar100``, ``ImageNet``/``ImageNet16-120`` →
  ``ImageNet16-120``; ``Test``/``Valid``/``Train`` → metric ``test_acc``/``valid_acc``/
  ``train_acc``; ``N`` → ``epochs``. Values are percent and are the mean over the
  benchmark's seeds, so ``seed`` is ``mean``.
* anything else (``UniqueString``: the benchmark's isomorphism key, which ``arch_uid``
  reproduces) is ignored and listed in the file's metadata.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pyarrow as pa

from proxybench.errors import InvalidArchitectureError
from proxybench.spaces.nb201 import arch_uid, format_arch, parse_arch
from proxybench.truth._common import ReadOutput, SourceInfo, TruthImportError, read_head
from proxybench.truth.schema import TRUTH_SCHEMA

__all__ = ["IMPORTER_VERSION", "ARCH_COLUMN", "INDEX_COLUMNS", "parse_metric_column", "read_nb201_csv"]

#: Bumped whenever the importer's output for the same input changes.
IMPORTER_VERSION = "1"

ARCH_COLUMN = "ArchitectureString"

#: Column names taken as an explicit benchmark index ("" is pandas' unnamed index column).
INDEX_COLUMNS = ("", "index", "arch_id", "ArchitectureIndex")

_METRIC_COLUMN = re.compile(
    r"^(?P<dataset>CIFAR100|CIFAR10|ImageNet16-120|ImageNet16120|ImageNet)"
    r"(?P<split>Test|Valid|Validation|Train)Accuracy(?P<epochs>\d+)Epochs?$"
)
_DATASETS = {"CIFAR10": "cifar10", "CIFAR100": "cifar100", "ImageNet": "ImageNet16-120",
             "ImageNet16-120": "ImageNet16-120", "ImageNet16120": "ImageNet16-120"}
_SPLITS = {"Test": "test_acc", "Valid": "valid_acc", "Validation": "valid_acc", "Train": "train_acc"}


def parse_metric_column(name: str) -> tuple[str, str, int] | None:
    """``(dataset, metric, epochs)`` of an accuracy column name, or ``None`` for other columns.

    Example:
        >>> parse_metric_column("ImageNetTestAccuracy200Epochs")
        ('ImageNet16-120', 'test_acc', 200)
    """
    match = _METRIC_COLUMN.match(name.strip())
    if match is None:
        return None
    return _DATASETS[match["dataset"]], _SPLITS[match["split"]], int(match["epochs"])


def read_nb201_csv(path: Path, source: str) -> tuple[pa.Table, dict[str, str]]:
    """Read a NATS-Bench/NB201 CSV export into truth rows.

    Args:
        path: The CSV file.
        source: Value of the ``source`` column (``csv:<file name>``).

    Returns:
        The truth table (:data:`~proxybench.truth.schema.TRUTH_SCHEMA`, one row per
        architecture and accuracy column) and metadata entries describing the mapping.

    Raises:
        TruthImportError: Not a CSV of this layout, or a row whose architecture string, index
            or accuracy is malformed (the message names the line, row and column).
    """
    name = path.name
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise TruthImportError(f"{name} is empty; expected a CSV with an {ARCH_COLUMN} column")
            header = [column.strip() for column in header]
            layout = _layout(name, header)
            records = [(reader.line_num, row) for row in reader if row]
    except UnicodeDecodeError:
        raise TruthImportError(f"{name} is not a UTF-8 text file; expected a CSV export of NAS-Bench-201") from None
    except csv.Error as exc:
        raise TruthImportError(f"{name} is not a readable CSV: {exc}") from None
    arch_col, index_col, metric_cols = layout
    if not records:
        raise TruthImportError(f"{name} has a header but no rows")

    archs: list[str] = []
    uids: list[str] = []
    ids: list[int] = []
    values: dict[int, list[float]] = {col: [] for col, _ in metric_cols}
    seen: dict[str, int] = {}
    seen_ids: dict[int, int] = {}
    for row_number, (line, row) in enumerate(records):
        where = f"{name} line {line} (row {row_number})"
        if len(row) != len(header):
            raise TruthImportError(f"{where}: {len(row)} fields, the header has {len(header)}")
        try:
            arch = format_arch(parse_arch(row[arch_col]))
        except InvalidArchitectureError as exc:
            raise TruthImportError(f"{where}, column {ARCH_COLUMN}: {exc}") from None
        if arch in seen:
            raise TruthImportError(
                f"{where}, column {ARCH_COLUMN}: {arch} already appears in row {seen[arch]}; "
                "each architecture must appear once per file"
            )
        seen[arch] = row_number
        arch_id = row_number if index_col is None else _parse_index(row[index_col], where, header[index_col])
        if arch_id in seen_ids:
            column = header[index_col] or "(index)" if index_col is not None else "(index)"
            raise TruthImportError(f"{where}, column {column}: index {arch_id} already used in row {seen_ids[arch_id]}")
        seen_ids[arch_id] = row_number
        archs.append(arch)
        uids.append(arch_uid(arch))
        ids.append(arch_id)
        for col, _ in metric_cols:
            values[col].append(_parse_accuracy(row[col], where, header[col]))

    for col, _ in metric_cols:
        largest = max(values[col])
        if largest <= 1.0:
            raise TruthImportError(
                f"{name}, column {header[col]}: every value is <= 1 (largest {largest:g}); "
                "these look like fractions, but the importer expects percent (0-100)"
            )

    n = len(archs)
    columns: dict[str, list[object]] = {c: [] for c in TRUTH_SCHEMA.names}
    for col, (dataset, metric, epochs) in metric_cols:
        columns["space"] += ["nb201"] * n
        columns["arch"] += archs
        columns["arch_uid"] += uids
        columns["arch_id"] += ids
        columns["dataset"] += [dataset] * n
        columns["metric"] += [metric] * n
        columns["value"] += values[col]
        columns["epochs"] += [epochs] * n
        columns["seed"] += ["mean"] * n
        columns["source"] += [source] * n
    table = pa.Table.from_pydict(columns, schema=TRUTH_SCHEMA)
    used = {arch_col, *(col for col, _ in metric_cols)} | ({index_col} if index_col is not None else set())
    metadata = {
        "columns": ";".join(f"{header[col]}={d}/{m}/{e}" for col, (d, m, e) in metric_cols),
        "arch_id_from": "row number" if index_col is None else f"column {header[index_col] or '(unnamed)'}",
        "ignored_columns": ";".join(header[i] for i in range(len(header)) if i not in used),
    }
    return table, metadata


def _layout(name: str, header: list[str]) -> tuple[int, int | None, list[tuple[int, tuple[str, str, int]]]]:
    if ARCH_COLUMN not in header:
        raise TruthImportError(
            f"{name} has no {ARCH_COLUMN} column (columns: {', '.join(header[:8]) or 'none'}); "
            "expected the NATS-Bench CSV layout, e.g. nats_bench_tss_200ep.csv"
        )
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise TruthImportError(f"{name} repeats the column(s) {', '.join(repr(c) for c in duplicated)}")
    metric_cols = []
    for col, column in enumerate(header):
        parsed = parse_metric_column(column)
        if parsed is not None:
            metric_cols.append((col, parsed))
    if not metric_cols:
        raise TruthImportError(
            f"{name} has no accuracy column such as CIFAR10TestAccuracy200Epochs "
            f"(columns: {', '.join(header[:8])})"
        )
    index_cols = [i for i, c in enumerate(header) if c in INDEX_COLUMNS]
    if len(index_cols) > 1:
        names = ", ".join(header[i] or "(unnamed)" for i in index_cols)
        raise TruthImportError(f"{name} has several index columns ({names}); keep one")
    return header.index(ARCH_COLUMN), (index_cols[0] if index_cols else None), metric_cols


def _parse_index(text: str, where: str, column: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise TruthImportError(f"{where}, column {column or '(index)'}: {text!r} is not an integer index") from None
    if value < 0:
        raise TruthImportError(f"{where}, column {column or '(index)'}: index {value} is negative")
    return value


def _parse_accuracy(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TruthImportError(f"{where}, column {column}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise TruthImportError(f"{where}, column {column}: {text!r} is not a finite accuracy")
    if not 0.0 <= value <= 100.0:
        raise TruthImportError(f"{where}, column {column}: {value:g} is outside 0..100 (percent expected)")
    return value


def claims(path: Path) -> bool:
    """``auto`` detection: a ``.csv`` name, or a first line naming the architecture column."""
    return path.suffix.lower() == ".csv" or ARCH_COLUMN in read_head(path).split("\n", 1)[0]


def read(path: Path, info: SourceInfo) -> ReadOutput:
    """The :class:`~proxybench.truth.importers.Reader` entry point (see :func:`read_nb201_csv`)."""
    truth, metadata = read_nb201_csv(path, info.label)
    return ReadOutput(truth=truth, metadata=metadata)
