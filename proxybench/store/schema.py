"""Parquet schema of the long ``scores`` table (DESIGN.md §5).

One row per (architecture, proxy, dataset, settings). Column names are snake_case and
stable: downstream SQL (``proxybench correlate``, ``tables/``) reads them by name.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["SCORES_SCHEMA", "SCORE_COLUMNS", "STATUSES", "RESUME_KEY"]

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

#: Columns that identify one result; ``--resume`` skips rows whose key is already stored.
#: ``settings_hash`` covers seed, batch size, preset, weights, device, dtype and the
#: proxy's own settings, so results under different settings never shadow each other.
RESUME_KEY = ("space", "arch", "dataset", "proxy", "settings_hash")
