"""Correlation of proxy scores with ground truth, in DuckDB SQL (DESIGN.md §6).

Spearman ρ, Kendall τ-b, Pearson r, top-k overlap per (proxy, dataset, metric, settings)
from :func:`correlate`; bootstrap intervals in numpy; renderers for terminals and papers.
"""

from proxybench.stats.correlation import (
    BY_COLUMNS,
    GROUP_COLUMNS,
    CorrelationError,
    CorrelationResult,
    correlate,
    correlate_vectors,
    parse_top_k,
)
from proxybench.stats.render import FORMATS, render

__all__ = [
    "BY_COLUMNS",
    "FORMATS",
    "GROUP_COLUMNS",
    "CorrelationError",
    "CorrelationResult",
    "correlate",
    "correlate_vectors",
    "parse_top_k",
    "render",
]
