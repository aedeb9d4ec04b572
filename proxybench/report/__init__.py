"""One self-contained HTML report of a results directory (``proxybench report``).

See :mod:`proxybench.report.build` for what the page holds and where each number comes
from, and :mod:`proxybench.report.svg` for why the figures are inline SVG.
"""

from proxybench.report.build import ReportSummary, build_report, write_report

__all__ = ["ReportSummary", "build_report", "write_report"]
