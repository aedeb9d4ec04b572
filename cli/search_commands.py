"""``proxybench search``: surrogate-assisted NSGA-II (thin wrapper over proxybench.search.loop)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click
from proxybench_cli._options import CONTEXT_SETTINGS, data_dir_option, library_errors

__all__ = ["search"]


def _drop_none(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


@click.group(name="search", context_settings=CONTEXT_SETTINGS, invoke_without_command=True)
@click.option("--space", "space_name", default=None, help="Search space (see: proxybench space). [default: nb201]")
@click.option("--objectives", default=None, metavar="A,B[,...]",
              help="Objectives to minimise: any proxy (higher-is-better ones are negated), params, flops, f_cp, "
              "and with a trained measure or --truth: top1_error, robustness, mce, f_ar.")
@click.option("--n-start", type=click.IntRange(min=1), default=None, help="Initial random sample. [default: 100]")
@click.option("--iterations", type=click.IntRange(min=0), default=None,
              help="Iterations after the initial sample. [default: 30]")
@click.option("--per-iteration", type=click.IntRange(min=1), default=None,
              help="Candidates measured per iteration. [default: 8]")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the search's random choices (not of the proxies). [default: 0]")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory: archive/, iterations.parquet, picks/, run.json. [default: search-results]")
@click.option("--resume", is_flag=True, help="Continue the run in OUT after its last complete iteration.")
@click.option("--surrogate", type=click.Choice(["auto", "rbf", "gp", "cart", "mlp"]), default=None,
              help="Surrogate of the expensive objectives; auto picks one per iteration by cross-validated "
              "Kendall tau. [default: auto]")
@click.option("--expensive", default=None, metavar="A[,B]",
              help="Objectives to predict with surrogates although they are cheap (e.g. synflow, to exercise "
              "the surrogates on NB201). [default: those that need trained weights or accuracy]")
@click.option("--top-k", type=click.IntRange(min=0), default=None, help="Trade-off picks written to OUT/picks. [default: 3]")
@click.option("--pop-size", type=click.IntRange(min=2), default=None, help="NSGA-II population. [default: 40]")
@click.option("--generations", type=click.IntRange(min=1), default=None,
              help="NSGA-II generations per iteration. [default: 20]")
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100"]), default=None,
              help="Dataset of the proxies (and of --truth). [default: cifar10]")
@data_dir_option
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Proxy batch size. [default: the preset's]")
@click.option("--preset", type=click.Choice(["proxybench", "zc-nas", "suite-zero"]), default=None,
              help="Proxy settings preset. [default: proxybench]")
@click.option("--device", default=None, help="cpu, cuda or cuda:N. [default: cpu]")
@click.option("--weights", default=None, metavar="SPEC",
              help="Weights for proxy objectives that need trained weights (flatnas_r), e.g. train:asam,epochs=1.")
@click.option("--truth", type=click.Path(exists=True, path_type=Path), default=None,
              help="NB201 ground truth (the benchmark CSV, a truth Parquet or directory): imported into OUT/truth; "
              "gives top1_error as an objective and the picks' true accuracy in 'search report'.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads for proxy scoring.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@click.pass_context
@library_errors
def search(ctx: click.Context, space_name: str | None, objectives: str | None, n_start: int | None,
           iterations: int | None, per_iteration: int | None, seed: int | None, out: Path | None, resume: bool,
           surrogate: str | None, expensive: str | None, top_k: int | None, pop_size: int | None,
           generations: int | None, dataset: str | None, data_dir: Path | None, batch_size: int | None,
           preset: str | None, device: str | None, weights: str | None, truth: Path | None, threads: int | None,
           quiet: bool) -> None:
    """Search a space with surrogate-assisted NSGA-II and write the archive and the top-k picks.

    Every evaluated architecture goes to OUT/archive/iter-NNNN.parquet (one part per
    iteration, written atomically), so a killed run continues with --resume and ends where an
    uninterrupted one would.

    \b
    Example:
      proxybench search --space nb201 --objectives synflow,flops --n-start 20 --iterations 3 \\
          --per-iteration 4 --seed 0 --out RUN --data-dir ~/data
      proxybench search --out RUN --objectives synflow,flops --resume
      proxybench search report RUN --truth nats_bench_tss_200ep.csv
    """
    if ctx.invoked_subcommand is not None:
        return
    if objectives is None:
        raise click.UsageError("give --objectives, e.g. --objectives synflow,flops")
    from proxybench.search.loop import run_search

    log = None if quiet else (lambda line: click.echo(line, err=True))
    kwargs = _drop_none(space=space_name, n_start=n_start, iterations=iterations, per_iteration=per_iteration,
                        seed=seed, out=out, surrogate=surrogate, top_k=top_k, pop_size=pop_size,
                        generations=generations, dataset=dataset, data_dir=data_dir, batch_size=batch_size,
                        preset=preset, device=device, weights=weights, truth=truth, threads=threads)
    if expensive:
        kwargs["expensive"] = [s.strip() for s in expensive.split(",") if s.strip()]
    result = run_search(objectives=objectives, resume=resume, log=log, **kwargs)
    click.echo(str(result))


@search.command(name="report", context_settings=CONTEXT_SETTINGS)
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--truth", type=click.Path(exists=True, path_type=Path), default=None,
              help="Ground truth (CSV, Parquet or directory) for the picks' true accuracy. [default: RUN/truth]")
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100", "ImageNet16-120"]), default=None,
              help="Truth dataset. [default: the run's]")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format.")
@library_errors
def report(run: Path, truth: Path | None, dataset: str | None, fmt: str) -> None:
    """Print the picks of the search in RUN: objectives, cost and (with truth) true test accuracy.

    \b
    Example:
      proxybench search report RUN
      proxybench search report RUN --truth nats_bench_tss_200ep.csv --format csv
    """
    from proxybench.search.loop import search_report

    rows = search_report(run, truth=truth, dataset=dataset)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo(f"no picks in {run} (did the search finish?)", err=True)
        return
    columns = [c for c in rows[0] if any(r[c] is not None for r in rows)]
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "-" if value is None else str(value)

    table = [[cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for t in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip())
