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
        truth: Rows with :data:`~proxybench.truth.schema.TRUTH_SCHEMA`.
        scores: Published proxy scores with :data:`~proxybench.store.schema.SCORES_SCHEMA`, or None.
        metadata: Extra provenance for the Parquet key-value metadata (keys without the prefix).
    """

    truth: pa.Table
    scores: pa.Table | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportResult:
    """What one ``import_truth`` call wrote.

    Attributes:
        source: The file that was read.
        format: The importer that read it (``csv``, ``suite-zero``).
        truth_path: The truth Parquet file written.
        truth_rows: Rows in it.
        scores_path: The scores Parquet file written (published proxy scores), if any.
        scores_rows: Rows in it.
        counts: Truth rows per ``(dataset, metric)``.
        score_statuses: Published score rows per status (``ok``, ``nonfinite``).
    """

    source: Path
    format: str
    truth_path: Path
    truth_rows: int
    scores_path: Path | None = None
    scores_rows: int = 0
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    score_statuses: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = ", ".join(f"{dataset}/{metric}: {n}" for (dataset, metric), n in sorted(self.counts.items()))
        text = f"{self.truth_rows} truth rows ({parts}) -> {self.truth_path}"
        if self.scores_path is not None:
            statuses = ", ".join(f"{n} {status}" for status, n in sorted(self.score_statuses.items()))
            text += f"\n{self.scores_rows} published score rows ({statuses}) -> {self.scores_path}"
        return text


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
