"""Ground truth: importers that turn benchmark files into the long ``truth`` Parquet table.

See :mod:`proxybench.truth.schema` for the columns and their conventions and
:mod:`proxybench.truth.importers` for the formats.
"""

from proxybench.truth._common import ImportResult, TruthImportError
from proxybench.truth.importers import FORMATS, detect_format, import_truth
from proxybench.truth.schema import TRUTH_COLUMNS, TRUTH_SCHEMA, truth_dir

__all__ = [
    "FORMATS",
    "ImportResult",
    "TRUTH_COLUMNS",
    "TRUTH_SCHEMA",
    "TruthImportError",
    "detect_format",
    "import_truth",
    "truth_dir",
]
