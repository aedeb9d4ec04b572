"""Atomic Parquet writes: a temporary file, then a rename, so a glob never sees half a file."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from proxybench.errors import StoreError

__all__ = ["not_writable", "os_errno", "os_reason", "write_parquet_atomically"]


def os_reason(exc: OSError) -> str:
    """The system's short reason for ``exc`` ("Read-only file system"), also for pyarrow's
    errors, which carry the errno only inside their text ("... Detail: [errno 30] ...")."""
    found = re.search(r"\[errno (\d+)\]", str(exc))
    if found:
        return os.strerror(int(found.group(1)))
    return exc.strerror or str(exc)


def not_writable(out: os.PathLike[str] | str, exc: OSError) -> StoreError:
    """The one-line error for a results directory ``out`` that cannot be written (read-only, forbidden)."""
    return StoreError(f"cannot write into results directory {out} ({os_reason(exc)}); make it writable or "
                      "choose another --out")


def os_errno(exc: OSError) -> int | None:
    """``exc.errno``, or the errno inside the text of a pyarrow error (see :func:`os_reason`)."""
    found = re.search(r"\[errno (\d+)\]", str(exc))
    return int(found.group(1)) if found else exc.errno


def write_parquet_atomically(table: pa.Table, path: Path, metadata: Mapping[str, str]) -> None:
    """Write ``table`` with ``metadata`` to ``path`` through a temporary file and a rename.

    An import that is interrupted never leaves a half-written file that the ``*.parquet``
    glob would pick up, and importing the same source again replaces its file instead of
    adding a second copy of every row.

    Raises:
        StoreError: The directory cannot be created or written.
    """
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # read-only file system: there is no temporary file to remove
            pass
        raise StoreError(f"cannot write {path}: {os_reason(exc)}; make {path.parent} writable or choose "
                         "another --out") from None
