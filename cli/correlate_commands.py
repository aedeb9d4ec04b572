"""``proxybench correlate``: proxy scores against ground truth (thin wrapper over proxybench.stats)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from proxybench_cli._options import LazyChoice, LazyHelpOption, emit, library_errors

# proxybench.stats imports duckdb and numpy: imported when the command runs or shows its help (start-up time).


def _by_columns() -> list[str]:
    from proxybench.stats.correlation import BY_COLUMNS

    return list(BY_COLUMNS)


def _formats() -> tuple[str, ...]:
    from proxybench.stats.render import FORMATS

    return FORMATS

__all__ = ["correlate"]



class TopK(click.ParamType):
    """Comma-separated percentages, e.g. ``1,5,10``; ``none`` for no top-k columns."""

    name = "K,K,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, ...]:
        if isinstance(value, tuple):
            return value
        if str(value).strip().lower() == "none":
            return ()
        from proxybench.stats.correlation import CorrelationError, parse_top_k

        try:
            return parse_top_k(str(value))
        except CorrelationError as exc:
            self.fail(str(exc), param, ctx)


class Columns(click.ParamType):
    """Comma-separated names from a fixed list."""

    name = "COL,COL,..."

    def __init__(self, load: Callable[[], list[str]]) -> None:
        self._load = load

    @property
    def choices(self) -> list[str]:
        return self._load()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = tuple(v.strip() for v in str(value).split(",") if v.strip())
        unknown = [n for n in names if n not in self.choices]
        if unknown:
            self.fail(f"{', '.join(unknown)} is not a grouping column; choose from {', '.join(self.choices)}",
                      param, ctx)
        return names


@click.command(name="correlate")
@click.option("--scores", "scores", multiple=True, required=True, metavar="PATH",
              help="Scores: a results directory (its scores/ parts and the rows still in journals of a live or "
              "killed run), a Parquet file or a quoted glob; repeat for more.")
@click.option("--truth", "truth", multiple=True, required=True, metavar="PATH",
              help="Truth (proxybench truth import): a results directory, a Parquet file or a quoted glob; repeatable.")
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable), e.g. cifar10.")
@click.option("--metric", "metrics", multiple=True, help="Only this truth metric (repeatable), e.g. test_acc.")
@click.option("--proxies", default=None, help="Comma-separated proxy names or wildcards (default: all in the scores).")
@click.option("--by", type=Columns(_by_columns), default="", show_default=False, cls=LazyHelpOption,
              help_from=lambda: "Extra grouping columns, comma-separated: " + ", ".join(_by_columns())
              + ". Proxy, dataset, metric and every scoring/truth setting always group.")
@click.option("--ensemble", "ensembles", multiple=True, metavar="NAME=A+B[+C][:RULE]",
              help="Also correlate a rank ensemble of stored proxies (repeatable); RULE logrank (AZ-NAS, default), "
              "ranksum (TE-NAS), meanrank, geomean (geometric mean of rank/N) or weighted (A*2+B*0.5: a "
              "weighted sum of rank/N). Ranks are taken over the architectures read that have every "
              "component. The papers' own (az_nas, tenas) are added whenever their components are stored.")
@click.option("--top-k", "top_k", type=TopK(), default="1,5,10", show_default=True,
              help="Top-k overlaps to report, in percent of the architectures ('none' for none).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Resamples for 95% bootstrap intervals of Spearman and Kendall (0: none; ~6 ms per resample "
              "per 15,625 pairs).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap resamples.")
@click.option("--format", "fmt", type=LazyChoice(_formats), default="table", show_default=True,
              help="table (terminal), md or latex (paste into a paper), csv or json (every column).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Also write PNGs to DIR (created if missing): per dataset, metric and setting a grid of "
              "scatter plots, each proxy's score against the truth (log x axis where the scores span more than "
              "3 orders of magnitude, reversed for lower-is-better proxies, ρ and τ in the titles), and "
              "heatmap_spearman.png, ρ of every proxy per dataset and metric.")
@click.option("--plot-axes", type=click.Choice(["value", "rank"]), default=None,
              help="What the scatter plots' axes show: the scores and truth as stored (value, the default) or "
              "their ranks (rank: an outlier cannot squash the rest). Needs --plot.")
@library_errors
def correlate(
    scores: tuple[str, ...], truth: tuple[str, ...], datasets: tuple[str, ...], metrics: tuple[str, ...],
    proxies: str | None, ensembles: tuple[str, ...], by: tuple[str, ...], top_k: tuple[float, ...], bootstrap: int, seed: int, fmt: str,
    output: Path | None, plot_dir: Path | None, plot_axes: str | None,
) -> None:
    """How well each proxy's scores predict the truth: Spearman, Kendall tau-b, Pearson, top-k.

    Scores and truth join on (space, architecture, dataset). One row per proxy, dataset,
    metric and setting (preset, weights, seed, batch size, settings hash, truth source), so
    different settings are never pooled. Scores of lower-is-better proxies are negated, and so
    are costs among the truth metrics (latency:*, energy:*), so positive always means the
    proxy ranks better (more accurate, faster, cheaper) architectures higher. Non-finite or
    failed scores are left out and counted (Excl.).

    \b
    Example:
      proxybench correlate --scores results --truth results --dataset cifar10 --metric test_acc
      proxybench correlate --scores results --truth results --format latex --output table.tex
      proxybench correlate --scores 'runs/*/scores/*.parquet' --truth results --by run_id --bootstrap 1000
      proxybench correlate --scores results --truth results --dataset cifar10 --plot plots
      proxybench correlate --scores results --truth results --plot plots --plot-axes rank
      proxybench correlate --scores results --truth results --ensemble "zc=synflow+nwot+jacov:logrank"
    """
    from proxybench.stats import correlate as correlate_scores
    from proxybench.stats import render
    from proxybench.store.views import open_views

    if plot_axes is not None and plot_dir is None:
        raise click.UsageError("--plot-axes needs --plot DIR")
    if plot_dir is not None:
        try:  # fail before the work, not after it
            plot_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.ClickException(f"cannot write plots to {plot_dir}: {exc.strerror or exc}") from None
    from proxybench.ensembles import ENSEMBLES, parse_ensemble

    chosen = {**ENSEMBLES, **{e.name: e for e in map(parse_ensemble, ensembles)}}
    with open_views(scores=list(scores), truth=list(truth), ensembles=chosen.values()) as con:
        result = correlate_scores(
            con, dataset=list(datasets) or None, metric=list(metrics) or None, proxies=proxies, by=by,
            top_k=top_k, bootstrap=bootstrap, seed=seed,
        )
        if plot_dir is not None:
            from proxybench.stats.plots import plot_correlations

            try:
                written = plot_correlations(con, result, plot_dir, axes=plot_axes or "value")
            except OSError as exc:
                raise click.ClickException(f"cannot write plots to {plot_dir}: {exc.strerror or exc}") from None
            click.echo(f"{len(written)} plots written to {plot_dir}", err=True)
    emit(render(result, fmt), output, f"{len(result.rows)} rows")
