"""``proxybench search``: surrogate-assisted NSGA-II (thin wrapper over proxybench.search.loop)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click
from proxybench_cli._options import (
    CONTEXT_SETTINGS,
    data_dir_option,
    library_errors,
    space_options,
    space_options_from,
)

__all__ = ["search"]


def _drop_none(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


def trained_spec(*, epochs: float | None = None, optimizer: str | None = None, train_size: int | None = None,
                 val_size: int | None = None) -> str:
    """The FlatNAS evaluator's weights spec for the command's flags (unset ones: the defaults of
    ``proxybench.search.loop.DEFAULT_TRAINED``: adaptive SAM, rho 2, 5 epochs)."""
    optimizer = optimizer or "asam"
    parts = [f"train:{optimizer}", f"epochs={epochs if epochs is not None else 5:g}"]
    if optimizer == "asam":
        parts.append("rho=2")
    if train_size is not None:
        parts.append(f"train_images={train_size}")
    if val_size is not None:
        parts.append(f"holdout={val_size}")
    return ",".join(parts)


@click.group(name="search", context_settings=CONTEXT_SETTINGS, invoke_without_command=True)
@click.option("--space", "space_name", default=None, help="Search space (see: proxybench space). [default: nb201]")
@click.option("--objectives", default=None, metavar="A,B[,...]",
              help="Objectives to minimise: any proxy (higher-is-better ones are negated), params, flops, f_cp, "
              "and with a trained measure or --truth: top1_error, robustness, mce, f_ar; with --truth "
              "hw_<dataset>.csv: latency:<device>, energy:<device>.")
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
@click.option("--truth", type=click.Path(exists=True, path_type=Path), multiple=True,
              help="NB201 ground truth (the benchmark CSV, HW-NAS-Bench's hw_<dataset>.csv, a truth Parquet or "
              "directory; repeatable): imported into OUT/truth; gives top1_error, latency:<device> and "
              "energy:<device> as objectives and the picks' true accuracy in 'search report'.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads for proxy scoring.")
@space_options
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="FlatNAS evaluator (objectives top1_error, robustness, f_ar, mce): fine-tuning epochs per "
              "candidate. [default: 5, as CNAS]")
@click.option("--optimizer", type=click.Choice(["sgd", "sam", "asam"]), default=None,
              help="FlatNAS evaluator's optimizer (asam: adaptive SAM, rho 2). [default: asam]")
@click.option("--train-size", type=click.IntRange(min=1), default=None,
              help="FlatNAS evaluator: train on the first N training images only (small CPU runs). [default: all]")
@click.option("--val-size", type=click.IntRange(min=1), default=None,
              help="FlatNAS evaluator: validation images held out of the training split (never the test set); "
              "error and R(x, sigma) are measured on them. [default: 1280 of 5000 held out]")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@click.pass_context
@library_errors
def search(ctx: click.Context, space_name: str | None, objectives: str | None, n_start: int | None,
           iterations: int | None, per_iteration: int | None, seed: int | None, out: Path | None, resume: bool,
           surrogate: str | None, expensive: str | None, top_k: int | None, pop_size: int | None,
           generations: int | None, dataset: str | None, data_dir: Path | None, batch_size: int | None,
           preset: str | None, device: str | None, weights: str | None, truth: tuple[Path, ...],
           threads: int | None, resolution: str | None, supernet_weights: str | None, random_init: bool,
           epochs: float | None, optimizer: str | None, train_size: int | None, val_size: int | None,
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
      proxybench search --space ofa --objectives f_ar,f_cp --supernet-weights zoo --out RUN   # FlatNAS
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
                        preset=preset, device=device, weights=weights, truth=list(truth) or None,
                        threads=threads)
    if expensive:
        kwargs["expensive"] = [s.strip() for s in expensive.split(",") if s.strip()]
    kwargs["space_options"] = space_options_from(resolution, supernet_weights, random_init)
    if any(v is not None for v in (epochs, optimizer, train_size, val_size)):
        kwargs["trained"] = trained_spec(epochs=epochs, optimizer=optimizer, train_size=train_size,
                                         val_size=val_size)
    if val_size is not None:
        kwargs["eval_images"] = val_size
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
@click.option("--plot/--no-plot", default=True, show_default=True,
              help="Write RUN/pareto.png: the candidates by iteration, the non-dominated front and the picks.")
@click.option("--ood", is_flag=True,
              help="Train each pick with --weights and add its clean error and mCE on corrupted test images "
              "(ood_clean_error, ood_mce, ood_mce_sum); also written to RUN/ood.parquet.")
@click.option("--weights", default=None, metavar="SPEC",
              help="With --ood (required): the picks' weights, e.g. train:sgd,steps=50 (the picks' own recipe is "
              "a full training).")
@data_dir_option
@click.option("--n-images", type=click.IntRange(min=1), default=None,
              help="With --ood: test images per corruption. [default: 1000]")
@click.option("--corruptions", default=None, metavar="NAMES",
              help="With --ood: corruptions or groups (noise, blur, weather, digital), comma-separated. [default: all 15]")
@click.option("--severities", default=None, metavar="1,..,5", help="With --ood: severities. [default: 1,2,3,4,5]")
@click.option("--device", default=None, help="With --ood: cpu, cuda or cuda:N. [default: cpu]")
@library_errors
def report(run: Path, truth: Path | None, dataset: str | None, fmt: str, plot: bool, ood: bool, weights: str | None,
           data_dir: Path | None, n_images: int | None, corruptions: str | None, severities: str | None,
           device: str | None) -> None:
    """Print the picks of the search in RUN: objectives, cost and (with truth) true test accuracy.

    Also draws RUN/pareto.png (unless --no-plot); with --ood, trains each pick briefly
    (--weights) and adds its error on clean and corrupted test images.

    \b
    Example:
      proxybench search report RUN
      proxybench search report RUN --truth nats_bench_tss_200ep.csv --format csv
      proxybench search report RUN --ood --weights train:sgd,steps=50 --n-images 500 --corruptions noise
    """
    from proxybench.search.loop import search_report

    ood_only = {"--weights": weights, "--n-images": n_images, "--corruptions": corruptions,
                "--severities": severities, "--device": device}
    given = [flag for flag, value in ood_only.items() if value is not None]
    if given and not ood:
        raise click.UsageError(f"{', '.join(given)} only appl{'y' if len(given) > 1 else 'ies'} with --ood")

    rows = search_report(run, truth=truth, dataset=dataset)
    if ood:
        from proxybench.search.report import evaluate_picks_ood

        measured = evaluate_picks_ood(run, weights=weights, **_drop_none(
            data_dir=data_dir, n_images=n_images, corruptions=corruptions, severities=severities, device=device))
        by_label = {m["label"]: m for m in measured}
        for r in rows:
            m = by_label.get(r["label"], {})
            # prefixed: the report's own mce column is the search's measurement (other settings)
            r.update({"ood_clean_error": m.get("clean_error"), "ood_mce": m.get("mce"), "ood_mce_sum": m.get("mce_sum")})
    _print_report(rows, fmt, run)
    sys.stdout.flush()  # the csv writer buffers: the report first, then the stderr line
    if plot:
        from proxybench.search.report import plot_pareto

        click.echo(f"Pareto plot written to {plot_pareto(run)}", err=True)


def _print_report(rows: list[dict[str, Any]], fmt: str, run: Path) -> None:
    """The picks as JSON, CSV or an aligned table (columns that are empty for every pick left out)."""
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
