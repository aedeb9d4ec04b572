"""Combining proxies: few-shot predictors over stored scores and architecture encodings.

Zero-shot rank ensembles live in :mod:`proxybench.ensembles` (they are recomputed whenever
scores are read); this package trains predictors on the ground truth of n architectures and
measures how well they rank the rest (``proxybench combine``).
"""

from proxybench.combine.data import CombineData, CombineError, load_combine_data, parse_feature_sets
from proxybench.combine.run import CombineConfig, CombineResult, run_combine, summarise

__all__ = ["CombineConfig", "CombineData", "CombineError", "CombineResult", "load_combine_data",
           "parse_feature_sets", "run_combine", "summarise"]
