"""``proxybench truth import``: benchmark files → ``OUT/truth/*.parquet`` (thin wrapper over proxybench.truth)."""

from __future__ import annotations

from pathlib import Path

import click

from proxybench_cli._options import LazyChoice, LazyHelpOption, library_errors


def _formats() -> dict[str, str]:
    from proxybench.truth.importers import FORMATS  # imports pyarrow: only when the command runs or shows its help

    return FORMATS

__all__ = ["truth"]



@click.group(name="truth")
def truth() -> None:
    """Import ground truth (benchmark accuracies) for `proxybench correlate`.

    \b
    Example:
      proxybench truth import nats_bench_tss_200ep.csv --out results
      proxybench truth import zc_nasbench201.json --out results
    """


@truth.command(name="import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=LazyChoice(lambda: ["auto", *_formats()]), default="auto", show_default=True,
              cls=LazyHelpOption,
              help_from=lambda: "Format of SOURCE (a file, or a directory for directory formats); auto: from its name "
              "or content. " + "; ".join(f"{name}: {text}" for name, text in _formats().items()) + ".")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("proxybench-results"),
              show_default=True, help="Results directory; truth goes to OUT/truth/NAME.parquet, published "
              "scores (suite-zero) to OUT/scores/published-FORMAT-NAME.parquet.")
@click.option("--name", default=None, help="Output file name stem (default: SOURCE's file name without extension).")
@library_errors
def import_command(source: Path, fmt: str, out: Path, name: str | None) -> None:
    """Import SOURCE into OUT/truth/NAME.parquet (the long truth table).

    Accuracies are stored in percent with dataset, metric (test_acc, valid_acc, ...),
    epochs, seed ('mean' for seed means) and source; rows join scores on the canonical
    architecture string. A NAS-Bench-Suite-Zero JSON also yields its published proxy scores
    as a scores file, marked preset 'suite-zero-published', so they can be correlated next
    to your own. Importing the same file again replaces its rows.

    \b
    Example:
      proxybench truth import nats_bench_tss_200ep.csv --out results
      proxybench truth import zc_nasbench201.json --format suite-zero --out results
      proxybench correlate --scores results --truth results
    """
    from proxybench.truth import import_truth

    click.echo(str(import_truth(source, out, format=fmt, name=name)))
