"""Parquet schema of the long ``scores`` table (DESIGN.md §5).

One row per (architecture, proxy, dataset, settings). Column names are snake_case and
stable: downstream SQL (``proxybench correlate``, ``tables/``) reads them by name.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["SCORES_SCHEMA", "SCORE_COLUMNS", "STATUSES", "RESUME_KEY", "REQUIRED_SCORE_COLUMNS", "check_parquet_schema"]

#: ``ok``: finite score; ``nonfinite``: NaN or ±inf (kept in ``score``); ``error``: the proxy
#: raised (``score`` is NaN and ``error`` holds the message).
STATUSES = ("ok", "nonfinite", "error")

SCORES_SCHEMA = pa.schema(
    [
        pa.field("space", pa.string(), nullable=False),
        pa.field("arch", pa.string(), nullable=False),
        pa.field("arch_uid", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("proxy", pa.string(), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("higher_is_better", pa.bool_(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("batch_size", pa.int64(), nullable=False),
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("preset", pa.string(), nullable=False),
        pa.field("weights", pa.string(), nullable=False),
        pa.field("settings", pa.string(), nullable=False),
        pa.field("settings_hash", pa.string(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("dtype", pa.string(), nullable=False),
        pa.field("seconds", pa.float64(), nullable=False),
        pa.field("proxybench_version", pa.string(), nullable=False),
        pa.field("torch_version", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        # Appended last, so files written before it existed still read (as NULL) through
        # DuckDB's ``union_by_name`` and ``pyarrow.parquet.read_table(schema=...)``.
        pa.field("shared_from", pa.string()),
    ]
)

SCORE_COLUMNS = tuple(SCORES_SCHEMA.names)

#: ``shared_from``: NULL when the row was computed on ``arch`` itself. Otherwise the row is a
#: copy of the computation made on the isomorphic architecture ``shared_from`` (same
#: ``arch_uid``; isomorphism dedup, see :func:`proxybench.scoring.score_architectures`):
#: ``score``, ``status``, ``error``, ``batch_id``, ``seconds``, ``device`` and the versions
#: are that computation's, only ``arch``, ``run_id`` and ``created_at`` are the copy's own.
#: A copy is not an independent draw: count ``shared_from IS NULL`` rows for compute time
#: or for anything that needs independent initialisations.

#: ``seconds``: wall time of the proxy's call on ``arch``. With shared passes (the default;
#: :mod:`proxybench.proxies.passes`) a pass several proxies need, and the prepared network
#: copy that read-only proxies share, are computed by and charged to the first of them in
#: the run's proxy order; the others record only their own work. The sum over an
#: architecture's proxies is the true cost; a single proxy's ``seconds`` depends on which
#: proxies ran before it (``--no-share-passes`` gives each proxy's cost as if alone, with
#: identical scores). Not split among the sharers on purpose: any split is a convention that
#: no single run can check, while the first-user rule is what was measured.

#: Columns that identify one result; ``--resume`` skips rows whose key is already stored.
#: ``settings_hash`` covers seed, batch size, preset, weights, device, dtype and the
#: proxy's own settings, so results under different settings never shadow each other.
RESUME_KEY = ("space", "arch", "dataset", "proxy", "settings_hash")

#: Columns every scores file must have (:func:`check_parquet_schema`): the identity, the value
#: and the settings that group it. Without one, rows would silently drop out of a join or a
#: group; the other columns may be missing in files of older versions (they read as NULL).
REQUIRED_SCORE_COLUMNS = ("space", "arch", "arch_uid", "dataset", "proxy", "score", "status", "higher_is_better",
                          "seed", "batch_size", "preset", "weights", "settings_hash", "run_id", "created_at")


def check_parquet_schema(path: os.PathLike[str] | str, schema: pa.Schema, kind: str, fix: str,
                         required: tuple[str, ...], corrupt: str = "corrupt Parquet file") -> None:
    """Check that the Parquet file ``path`` has the columns of ``schema`` (read from its footer only).

    The ``required`` columns must be there: without them rows would silently drop out of a
    join or a group (a part without ``space`` joins no truth). The others may be missing
    (files of older versions; they read as NULL). ``corrupt`` starts the message for a file
    that is not Parquet at all. Types of the columns present are compared by family (any integer, any
    floating point, any string, any timestamp), since DuckDB and pyarrow cast within one.

    Raises:
        StoreError: The file is not Parquet, or lacks a column, or has one of another type;
            the one-line message names the file, what is wrong and ``fix``.
    """
    from proxybench.errors import StoreError

    try:
        found = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"{corrupt} {path} ({first}); {fix}") from None
    missing = [name for name in required if name not in found.names]
    wrong = [f"{f.name} is {found.field(f.name).type}, not {f.type}" for f in schema
             if f.name in found.names and not _same_family(f, found.field(f.name).type)]
    if missing or wrong:
        problems = (["missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing)] if missing else [])
        problems += wrong
        raise StoreError(f"{path} is not a proxybench {kind} file ({'; '.join(problems)}); {fix}")


def _same_family(expected: pa.Field, actual: pa.DataType) -> bool:
    if pa.types.is_null(actual):
        return expected.nullable
    t = expected.type
    for test in (pa.types.is_integer, pa.types.is_floating, pa.types.is_timestamp, pa.types.is_boolean):
        if test(t):
            return test(actual)
    if pa.types.is_string(t):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual)
    return t.equals(actual)
