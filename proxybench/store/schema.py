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
    ]
)

SCORE_COLUMNS = tuple(SCORES_SCHEMA.names)

#: Columns that identify one result; ``--resume`` skips rows whose key is already stored.
#: ``settings_hash`` covers seed, batch size, preset, weights, device, dtype and the
#: proxy's own settings, so results under different settings never shadow each other.
RESUME_KEY = ("space", "arch", "dataset", "proxy", "settings_hash")
