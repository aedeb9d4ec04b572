"""``proxybench report``: one self-contained HTML page of a results directory (thin wrapper over proxybench.report)."""

from __future__ import annotations

from pathlib import Path

import click

from proxybench_cli._options import CONTEXT_SETTINGS, library_errors
from proxybench_cli.correlate_commands import TopK

__all__ = ["report"]


@click.command(name="report", context_settings=CONTEXT_SETTINGS)
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--truth", "truth", multiple=True, metavar="PATH",
              help="Truth (proxybench truth import): a results directory, a Parquet file or a quoted glob; "
              "repeatable. Default: OUT's truth/ when it exists.")
@click.option("--archive", "archives", multiple=True, metavar="RUN",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A search run directory (proxybench search --out RUN) whose objective space, non-dominated front "
              "and picks to draw; repeatable.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The HTML file to write [default: OUT/report.html].")
@click.option("--top-k", "top_k", type=TopK(), default="1,5,10", show_default=True,
              help="Top-k overlaps of the correlation tables, in percent ('none' for none).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Resamples for 95% intervals of Spearman and Kendall (0: none).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap resamples.")
@click.option("--scatter-metric", default=None, metavar="METRIC",
              help="Truth metric of the scatter plots [default: test_acc where a dataset has it, else its first "
              "metric]; 'all' for every metric (a larger file).")
@click.option("--title", default=None, help="Page title [default: the folder's name].")
@library_errors
def report(out: Path, truth: tuple[str, ...], archives: tuple[Path, ...], output: Path | None,
           top_k: tuple[float, ...], bootstrap: int, seed: int, scatter_metric: str | None, title: str | None) -> None:
    """Write one self-contained HTML report of results directory OUT (opens offline, no server).

    It holds the runs and their provenance (proxybench status), every row that is not ok
    grouped by message, the correlation tables of proxybench correlate (sortable), one
    scatter per proxy against the truth (hover a point for its architecture), the few-shot
    predictor results when OUT/predictor_metrics exists, and for each --archive the search's
    objective space with its non-dominated front and picks.

    \b
    Example:
      proxybench report results
      proxybench report results --truth truth/nb201 --output results.html --bootstrap 200
      proxybench report results --archive runs/search1 --archive runs/search2
    """
    from proxybench.report import write_report

    summary = write_report(out, output, truth=list(truth) or None, archives=list(archives), top_k=top_k,
                           bootstrap=bootstrap, seed=seed, scatter_metric=scatter_metric, title=title)
    click.echo(str(summary), err=True)
