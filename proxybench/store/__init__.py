"""Parquet storage of scores: schema, crash-safe writer, readers."""

from proxybench.store.schema import RESUME_KEY, SCORE_COLUMNS, SCORES_SCHEMA, STATUSES
from proxybench.store.views import open_views
from proxybench.store.scores import ScoreWriter, read_scores, scores_dir, stored_keys, stored_rows

__all__ = [
    "RESUME_KEY",
    "SCORE_COLUMNS",
    "SCORES_SCHEMA",
    "STATUSES",
    "open_views",
    "ScoreWriter",
    "read_scores",
    "scores_dir",
    "stored_keys",
    "stored_rows",
]
