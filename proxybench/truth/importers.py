"""``import_truth``: read a benchmark file, write ``truth`` (and published ``scores``) Parquet.

Formats (:data:`FORMATS`):

* ``csv`` — NATS-Bench / NAS-Bench-201 CSV exports (:mod:`proxybench.truth.nb201_csv`).
* ``suite-zero`` — NAS-Bench-Suite-Zero ``zc_nasbench201.json`` (:mod:`proxybench.truth.suite_zero`):
  accuracies to truth, the published proxy scores to ``scores``.

``auto`` picks one from the file name (``.csv``, ``.json``) or, failing that, from the first
bytes. The other sources of DESIGN.md §2 (NB201 ``.pth``, NATS-Bench directories, the
robustness dataset, nas-bench-x11) have no importer yet; :data:`FORMATS` lists only what
exists, and a file that looks like one of them gets an error saying so.

Output, under ``out``:

* ``truth/<name>.parquet`` (``name`` defaults to the source's file stem);
* for ``suite-zero`` also ``scores/published-suite-zero-<name>.parquet``, beside the
  ``part-*.parquet`` files of ``proxybench score``, so ``OUT/scores/*.parquet`` holds both.

Files are written atomically and carry their provenance in the Parquet key-value metadata
(``proxybench.truth.source``, ``.format``, ``.importer_version``, ``.sha256``, ...). Importing
the same source again replaces its files; importing a *different* source whose name would
overwrite them is refused (pass another ``name``).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import proxybench
from proxybench.store.scores import scores_dir
from proxybench.truth import nb201_csv, suite_zero
from proxybench.truth._common import ImportResult, TruthImportError, file_sha256, safe_stem
from proxybench.truth.schema import METADATA_PREFIX, truth_dir, write_parquet_atomically

__all__ = ["FORMATS", "detect_format", "import_truth"]

#: Importable formats and what they read.
FORMATS: dict[str, str] = {
    "csv": "NATS-Bench / NAS-Bench-201 CSV export (nats_bench_tss_200ep.csv layout)",
    "suite-zero": "NAS-Bench-Suite-Zero JSON (zc_nasbench201.json layout): accuracies and published scores",
}

_NOT_YET = {".pth": "a NAS-Bench-201 .pth file", ".pickle": "a pickled benchmark",
            ".pickle.pbz2": "a NATS-Bench archive", ".pbz2": "a NATS-Bench archive", ".tar": "an archive"}


def detect_format(path: Path) -> str:
    """The format of ``path`` from its extension, else from its first bytes.

    Raises:
        TruthImportError: The format cannot be told, or it is one without an importer.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "suite-zero"
    for ending, what in _NOT_YET.items():
        if path.name.lower().endswith(ending):
            raise TruthImportError(
                f"{path.name} looks like {what}, which has no importer yet; formats: {', '.join(FORMATS)}"
            )
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise TruthImportError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        return "suite-zero"
    if nb201_csv.ARCH_COLUMN in text.split("\n", 1)[0]:
        return "csv"
    raise TruthImportError(
        f"cannot tell the format of {path.name} from its name or content; pass --format "
        f"({', '.join(FORMATS)})"
    )


def import_truth(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    format: str = "auto",
    name: str | None = None,
) -> ImportResult:
    """Import one ground-truth file into ``<out>/truth`` (and ``<out>/scores`` for published scores).

    Args:
        source: The benchmark file.
        out: Results directory (the one ``proxybench score --out`` uses, so ``correlate``
            finds scores and truth side by side).
        format: ``auto`` or a key of :data:`FORMATS`.
        name: Output file stem; defaults to the source's stem.

    Returns:
        What was written (:class:`~proxybench.truth._common.ImportResult`).

    Raises:
        TruthImportError: Unknown format, unreadable or malformed source, or an output
            name already used by another source.
        StoreError: The output cannot be written.

    Example:
        >>> import_truth("nats_bench_tss_200ep.csv", "results")  # doctest: +SKIP
        46875 truth rows (ImageNet16-120/test_acc: 15625, ...) -> results/truth/nats_bench_tss_200ep.parquet
    """
    path = Path(source)
    if not path.is_file():
        raise TruthImportError(f"{path} is not a file")
    if format == "auto":
        format = detect_format(path)
    elif format not in FORMATS:
        raise TruthImportError(f"unknown truth format {format!r}; formats: auto, {', '.join(FORMATS)}")
    stem = safe_stem(name if name is not None else path.name.split(".")[0])
    digest = file_sha256(path)
    label = f"{format}:{path.name}"
    target = truth_dir(out) / f"{stem}.parquet"
    _refuse_foreign(target, path)
    metadata = {
        f"{METADATA_PREFIX}source": str(path.resolve()),
        f"{METADATA_PREFIX}format": format,
        f"{METADATA_PREFIX}sha256": digest,
        f"{METADATA_PREFIX}proxybench_version": proxybench.__version__,
    }

    if format == "csv":
        truth, extra = nb201_csv.read_nb201_csv(path, label)
        metadata[f"{METADATA_PREFIX}importer_version"] = f"csv/{nb201_csv.IMPORTER_VERSION}"
        scores = None
    else:
        truth, scores, extra = suite_zero.read_suite_zero(path, label, digest, proxybench.__version__)
        metadata[f"{METADATA_PREFIX}importer_version"] = f"suite-zero/{suite_zero.IMPORTER_VERSION}"
    metadata.update({f"{METADATA_PREFIX}{key}": value for key, value in extra.items()})
    metadata[f"{METADATA_PREFIX}rows"] = str(truth.num_rows)

    counts = Counter(zip(truth.column("dataset").to_pylist(), truth.column("metric").to_pylist()))
    result = ImportResult(source=path, format=format, truth_path=target, truth_rows=truth.num_rows,
                          counts=dict(counts))
    if scores is not None:
        scores_path = scores_dir(out) / f"published-suite-zero-{stem}.parquet"
        _refuse_foreign(scores_path, path)
        write_parquet_atomically(scores, scores_path, {**metadata, f"{METADATA_PREFIX}rows": str(scores.num_rows)})
        result.scores_path, result.scores_rows = scores_path, scores.num_rows
        result.score_statuses = dict(Counter(scores.column("status").to_pylist()))
    write_parquet_atomically(truth, target, metadata)
    return result


def _refuse_foreign(target: Path, source: Path) -> None:
    """Refuse to replace ``target`` when it was imported from another file than ``source``."""
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
