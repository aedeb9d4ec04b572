"""Atomic Parquet writes: a temporary file, then a rename, so a glob never sees half a file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from proxybench.errors import StoreError

__all__ = ["write_parquet_atomically"]


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
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}; choose another --out") from None
