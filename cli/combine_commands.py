"""``proxybench combine``: few-shot predictors over stored proxy scores and architecture encodings."""

from __future__ import annotations

from pathlib import Path

import click

from proxybench_cli._options import library_errors

__all__ = ["combine"]

_MODELS = ("lgbm", "rf", "ridge", "gp")


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: write integers separated by commas, e.g. 10,100,400",
                                 param_hint=flag) from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"{text!r}: every value must be >= 1", param_hint=flag)
    return values


@click.command(name="combine")
@click.option("--scores", "scores", multiple=True, metavar="PATH",
              help="Stored scores (proxybench score or published ones from proxybench truth import): a results "
              "directory, a Parquet file or a quoted glob; repeatable. Leave out for encodings only.")
@click.option("--truth", "truth", multiple=True, required=True, metavar="PATH",
              help="Ground truth (proxybench truth import): a results directory, a Parquet file or a glob.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write predictions/, predictor_metrics/ and predictor_importance/ Parquet files here.")
@click.option("--proxies", default="all", show_default=True,
              help="Comma-separated proxies to use as features; 'all' = every proxy stored for --dataset "
              "(rank ensembles excluded), 'none' = architecture encodings only.")
@click.option("--features", "features", multiple=True, metavar="SET",
              help="A feature set: '+'-joined 'proxies' (every selected proxy), encodings 'onehot', 'path', "
              "'graf', or proxy names; repeatable. [default: proxies, graf, proxies+graf; "
              "without proxies: onehot, path, graf]")
@click.option("--models", default=",".join(_MODELS), show_default=True,
              help="Comma-separated: lgbm (LightGBM boosted trees), rf (random forest), ridge, gp.")
@click.option("--n", "ns", default="10,20,50,100,200,400,1000", show_default=True,
              help="Training-set sizes (architectures with known truth), comma-separated.")
@click.option("--splits", type=click.IntRange(min=1), default=5, show_default=True,
              help="Random training sets per n (the same ones for every model and feature set).")
@click.option("--split", "split", type=click.Choice(["class", "arch", "both"]), default="class", show_default=True,
              help="class: train on n isomorphism classes, test on every architecture of another class; "
              "arch: n random strings, isomorphs of them in the test set (inflates every number; 'both' "
              "measures by how much).")
@click.option("--dataset", default="cifar10", show_default=True, help="Dataset the proxies were scored on.")
@click.option("--truth-dataset", default=None,
              help="Dataset of the target [default: --dataset], e.g. cifar100 or ImageNet16-120 with proxies "
              "scored on cifar10.")
@click.option("--metric", default="test_acc", show_default=True, help="Truth metric to predict.")
@click.option("--preset", default=None, help="Use only scores of this preset (when a proxy has several).")
@click.option("--truth-source", default=None, help="Use only truth rows of this source (when there are several).")
@click.option("--space", default="nb201", show_default=True, help="Search space.")
@click.option("--top-k", "top_k", default="1,5,10", show_default=True,
              help="Top-k%% overlap and nDCG@k%% cut-offs, comma-separated percentages.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the splits and the models.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for LightGBM and the random forest [default: the CPUs available].")
@click.option("--no-predictions", is_flag=True, default=False,
              help="Do not write the per-architecture predictions (metrics and importances still are).")
@click.option("--save-predictor", "save_predictor", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also save the predictor fitted on the first class-split training set to this file, for "
              "'proxybench search --objectives predictor:FILE,...'; needs one --models, one --features and one --n.")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "csv"]), default="table", show_default=True,
              help="Format of the summary printed at the end.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw the learning curves (Kendall τ against n per model and feature set) into this PNG.")
@click.option("-q", "--quiet", is_flag=True, default=False, help="No progress bar.")
@library_errors
def combine(
    scores: tuple[str, ...], truth: tuple[str, ...], out: Path | None, proxies: str, features: tuple[str, ...],
    models: str, ns: str, splits: int, split: str, dataset: str, truth_dataset: str | None, metric: str,
    preset: str | None, truth_source: str | None, space: str, top_k: str, seed: int, threads: int | None,
    no_predictions: bool, save_predictor: Path | None, fmt: str, plot: Path | None, quiet: bool,
) -> None:
    """Train few-shot predictors on n architectures' truth and measure how they rank the rest.

    Features are stored proxy scores (each as its quantile over the architectures, oriented
    so that higher is better) and architecture encodings (one-hot ops, BANANAS path encoding,
    GRAF-style graph features). For every n and split one training set is drawn, by
    isomorphism class unless --split says otherwise, and shared by every model and feature
    set; each model predicts every other architecture, and the printed summary gives the
    mean over splits with a 95% t-interval of Kendall tau, Spearman rho, top-k overlap and
    nDCG.

    \b
    Example:
      proxybench combine --scores results --truth results --out results --plot curves.png
      proxybench combine --scores results --truth results --truth-dataset cifar100 --n 100,400
      proxybench combine --truth results --proxies none --features graf --features onehot+path
      proxybench combine --scores results --truth results --split both --models lgbm --n 400
      proxybench combine --truth results --proxies none --features graf --models rf --n 100 \\
          --save-predictor graf-rf-100.pkl
    """
    from proxybench._threads import available_cpus
    from proxybench.combine import CombineConfig, load_combine_data, parse_feature_sets, run_combine, summarise
    from proxybench.combine.run import metric_columns
    from proxybench.combine.report import plot_learning_curves, render_summary
    from proxybench.stats.correlation import parse_top_k
    from proxybench.store.views import open_views

    model_list = tuple(m.strip() for m in models.split(",") if m.strip())
    n_list = _int_list(ns, "--n")
    if save_predictor is not None and (len(model_list) != 1 or len(features) != 1 or len(n_list) != 1):
        raise click.UsageError("--save-predictor saves one predictor: give one --models, one --features and one --n")
    ks = parse_top_k(top_k)
    wanted = None if proxies.strip() == "all" else [] if proxies.strip() == "none" else \
        [p.strip() for p in proxies.split(",") if p.strip()]
    use_proxies = bool(scores) and wanted != []
    if not features:
        features = ("proxies", "graf", "proxies+graf") if use_proxies else ("onehot", "path", "graf")
    with open_views(scores=list(scores) or None, truth=list(truth)) as con:
        data = load_combine_data(con, proxies=wanted if use_proxies else [], encodings=_encodings_in(features),
                                 score_dataset=dataset, truth_dataset=truth_dataset or dataset, metric=metric,
                                 space=space, preset=preset, truth_source=truth_source)
    config = CombineConfig(
        feature_sets=parse_feature_sets(features, data.proxies), models=model_list, ns=n_list, splits=splits,
        seed=seed, split_kinds=("class", "arch") if split == "both" else (split,), top_k=ks,
        threads=threads or available_cpus(), save_predictions=not no_predictions)
    experiments = len(config.split_kinds) * len(n_list) * splits * len(config.feature_sets) * len(model_list)
    click.echo(f"{len(data.archs)} architectures with {data.truth['dataset']} {metric} truth"
               + (f" and scores of {len(data.proxies)} proxies on {dataset}" if data.proxies else "")
               + (f" ({data.dropped} architectures with truth left out: they lack a stored row of some proxy)"
                  if data.dropped else "") + "; "
               f"{experiments} fits", err=True)
    from tqdm import tqdm

    with tqdm(total=experiments, disable=quiet, unit="fit", dynamic_ncols=True) as bar:
        result = run_combine(data, config, out=out, progress=bar.update)
    columns = metric_columns(ks)
    summary = summarise(result.metrics, columns)
    caption = (f"Few-shot predictors, {space} {data.truth['dataset']} {metric}"
               f"{' (proxies scored on ' + dataset + ')' if data.proxies and dataset != data.truth['dataset'] else ''}: "
               f"mean over {splits} splits [95% t-interval]")
    click.echo(render_summary(summary, columns, fmt, caption), nl=False)
    if plot is not None:
        plot_learning_curves(summary, plot, title=caption.split(":")[0])
        click.echo(f"learning curves -> {plot}", err=True)
    if save_predictor is not None:
        from proxybench.combine.predictor import fit_predictor

        blocks = next(iter(config.feature_sets.values()))
        fitted = fit_predictor(data, model_list[0], blocks, n_list[0], seed=seed, threads=config.threads)
        fitted.save(save_predictor)
        click.echo(f"predictor ({model_list[0]} on {features[0]}, n = {n_list[0]}) -> {save_predictor}; use it with "
                   f"proxybench search --objectives predictor:{save_predictor},flops", err=True)
    if out is not None:
        click.echo(f"run {result.run_id}: {experiments} fits in {result.seconds:.1f} s -> "
                   + ", ".join(str(p) for p in result.files), err=True)


def _encodings_in(feature_texts: tuple[str, ...]) -> list[str]:
    from proxybench.combine.encodings import ENCODINGS

    tokens = {t.strip() for text in feature_texts for t in text.split("+")}
    return [name for name in ENCODINGS if name in tokens]
