"""``proxybench tables``: list and render the benchmark tables of ``tables/`` (thin wrapper over proxybench.tables)."""

from __future__ import annotations

from pathlib import Path

import click

from proxybench_cli._options import LazyChoice, emit, library_errors


def _formats() -> tuple[str, ...]:
    from proxybench.tables.layout import FORMATS  # imports duckdb: only when the command runs or shows its help

    return FORMATS

__all__ = ["tables"]

_TABLES_DIR_HELP = ("Another folder of table definitions (*.sql, see tables/README.md); a file there "
                    "replaces the built-in table of the same name. Repeatable.")


@click.group(name="tables")
def tables() -> None:
    """Benchmark tables for papers: one SQL definition per table, rendered from your Parquet files.

    \b
    Example:
      proxybench tables list
      proxybench tables render zero-cost --scores results --truth results --format latex
    """


@tables.command(name="list")
@click.option("--tables-dir", "tables_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help=_TABLES_DIR_HELP)
@library_errors
def list_command(tables_dirs: tuple[Path, ...]) -> None:
    """List the tables: name, what they need, title."""
    from proxybench.tables import list_tables

    definitions = list_tables(list(tables_dirs))
    width = max(len(d.name) for d in definitions)
    for definition in definitions:
        needs = ", ".join(f"--{view}" for view in definition.needs)
        click.echo(f"{definition.name.ljust(width)}  needs {needs}: {definition.title}")


@tables.command(name="render")
@click.argument("name")
@click.option("--scores", "scores", multiple=True, metavar="PATH",
              help="Scores: a results directory (its scores/ parts and the rows still in journals of a live or "
              "killed run), a Parquet file or a quoted glob; repeatable.")
@click.option("--truth", "truth", multiple=True, metavar="PATH",
              help="Truth (proxybench truth import): a results directory, a Parquet file or a glob; repeatable.")
@click.option("--archive", "archive", multiple=True, metavar="PATH",
              help="Search archives (proxybench search): a results directory, a Parquet file or a glob; repeatable.")
@click.option("--predictions", "predictions", multiple=True, metavar="PATH",
              help="Few-shot predictor results (proxybench combine --out): a results directory (its "
              "predictor_metrics/), a Parquet file or a glob; repeatable.")
@click.option("--format", "fmt", type=LazyChoice(_formats), default="md", show_default=True,
              help="md (Markdown), latex (booktabs, paste into a paper), csv (long rows, full precision) or "
              "table (terminal).")
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable), e.g. cifar10.")
@click.option("--metric", "metrics", multiple=True,
              help="Only this truth metric (repeatable), e.g. test_acc; must be one the table shows.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Bootstrap resamples for the 95% intervals a table may show (0: none).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap resamples.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@click.option("--tables-dir", "tables_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help=_TABLES_DIR_HELP)
@library_errors
def render_command(
    name: str, scores: tuple[str, ...], truth: tuple[str, ...], archive: tuple[str, ...],
    predictions: tuple[str, ...], fmt: str,
    datasets: tuple[str, ...], metrics: tuple[str, ...], bootstrap: int, seed: int, output: Path | None, tables_dirs: tuple[Path, ...],
) -> None:
    """Compute table NAME from the given files and print it.

    Correlations come from the same engine as 'proxybench correlate' (DuckDB over the
    Parquet files), so a table never disagrees with it. Best values are in bold and second
    best underlined, per column; a cell without ground truth shows "—".

    \b
    Example:
      proxybench tables render zero-cost --scores results --truth results
      proxybench tables render zero-cost --scores results --truth results --format latex --output zc.tex
      proxybench tables render zero-cost --scores results --truth results --dataset cifar10 --metric test_acc
    """
    from proxybench.tables import build_table, get_table, render_table

    definition = get_table(name, list(tables_dirs))
    data = build_table(definition, scores=list(scores) or None, truth=list(truth) or None,
                       archive=list(archive) or None, predictions=list(predictions) or None,
                       bootstrap=bootstrap, seed=seed,
                       datasets=list(datasets) or None, metrics=list(metrics) or None)
    emit(render_table(data, fmt), output, f"table {name} ({len(data.rows)} rows x {len(data.columns)} columns)")
