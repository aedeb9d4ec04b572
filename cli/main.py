"""The ``proxybench`` command line: thin click commands over the library."""

from __future__ import annotations

import csv
import signal
import sys
from pathlib import Path

import click

import proxybench
from proxybench.presets import list_presets
from proxybench_cli._options import (
    CONTEXT_SETTINGS,
    ProxybenchGroup,
    command_line,
    signals_as_interrupts,
    data_dir_option,
    library_errors,
    seed_option,
    space_options,
    space_options_from,
)
from proxybench_cli.combine_commands import combine as combine_command
from proxybench_cli.correlate_commands import correlate as correlate_command
from proxybench_cli.evaluate_commands import evaluate as evaluate_command
from proxybench_cli.report_commands import report as report_command
from proxybench_cli.search_commands import search as search_group
from proxybench_cli.supernet_commands import supernet as supernet_group
from proxybench_cli.tables_commands import tables as tables_group
from proxybench_cli.truth_commands import truth as truth_group

@click.group(cls=ProxybenchGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(proxybench.__version__, "--version", prog_name="proxybench")
def cli() -> None:
    """Score NAS architectures with zero-cost proxies and store the scores as Parquet.

    \b
    Typical session:
      proxybench proxies                          # what can be computed
      proxybench space nb201 --sample 5           # some architectures
      proxybench score --space nb201 --sample 100 --data-dir ~/data
    """


@cli.command(name="proxies")
@click.argument("pattern", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True,
              help="Output format.")
def proxies_command(pattern: str | None, fmt: str) -> None:
    """List the registered proxies: name, orientation, needs, passes and paper.

    PATTERN is an optional shell-style wildcard, e.g. 'grad*'.

    \b
    Example:
      proxybench proxies
      proxybench proxies 'syn*' --format csv
    """
    from proxybench.catalog import proxy_infos  # the registry's metadata without importing torch

    rows = []
    for info in proxy_infos(pattern):
        rows.append({
            "name": info.name,
            "family": info.family,
            "better": "higher" if info.higher_is_better else "lower",
            "needs": ",".join(info.needs) or "-",
            "passes": ",".join(info.passes) or "-",
            "paper": info.paper,
            "description": info.description,
        })
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["name"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    if not rows:
        click.echo(f"no proxy matches '{pattern}'", err=True)
        return
    columns = ["name", "family", "better", "needs", "passes", "paper"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        click.echo("  ".join(r[c].ljust(widths[c]) for c in columns).rstrip())


@cli.command(name="presets")
def presets_command() -> None:
    """List the settings presets that reproduce each reference's scoring setup.

    \b
    Example:
      proxybench presets
    """
    from proxybench.presets import PRESETS

    for preset in PRESETS.values():
        click.echo(f"{preset.name:<11} {preset.description}")


@cli.command(name="space")
@click.argument("name", required=False)
@click.option("--sample", type=click.IntRange(min=1), default=None, help="Print N random architectures instead of all.")
@seed_option
@library_errors
def space_command(name: str | None, sample: int | None, seed: int | None) -> None:
    """Print the architectures of search space NAME as CSV (arch,uid).

    uid is the isomorphism key: architectures with equal uids compute the same function.
    Without NAME, list the registered spaces.

    \b
    Example:
      proxybench space nb201 > nb201.csv
      proxybench space nb201 --sample 100 --seed 1 > archs.csv
      proxybench score --space nb201 --archs archs.csv
    """
    from proxybench.spaces import get_space, list_spaces

    if name is None:
        for space_name in list_spaces():
            click.echo(space_name)
        return
    space = get_space(name)
    archs = space.sample(sample, seed=seed or 0) if sample else list(space)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["arch", "uid"])
    for arch in archs:
        out.writerow([arch, space.uid(arch)])


@cli.command(name="score")
@click.option("--space", "space_name", default="nb201", show_default=True, help="Search space (see: proxybench space).")
@click.option("--proxies", default="zero-cost", show_default=True,
              help="Comma-separated proxy names or wildcards; 'all' (every proxy scored at initialisation: the "
              "zero-cost suite, croze and the modern proxies), 'zero-cost' (the suite of Abdelfattah et al. / "
              "NAS-Bench-Suite-Zero) or 'modern' (ZiCo, GradSign, MeCo, SWAP, AZ-NAS, TE-NAS and VKDNW components). "
              "See: proxybench proxies.")
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100", "ImageNet16-120"]), default="cifar10",
              show_default=True,
              help="Dataset of the proxy batch and size of the network's head (ImageNet16-120: 16x16 images, 120 "
              "classes, local files only).")
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Score N architectures drawn at random with --sample-seed (default: 100).")
@click.option("--sample-seed", type=click.IntRange(min=0), default=None,
              help="Seed of the --sample draw [default: --seed, else 0]. Independent of --seed, which seeds the "
              "scoring, so the same architectures can be scored under several seeds. Recorded in the run record "
              "(OUT/runs/RUN.json), not in the rows' settings.")
@click.option("--all", "all_archs", is_flag=True, help="Score every architecture of the space.")
@click.option("--archs", "archs_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File with one architecture per line, or the CSV of 'proxybench space' (first column); a header "
              "line, a byte-order mark and # comments are skipped, NB201 lines may be NASLib tuples (0, 1, 2, 3, 4, 1).")
@click.option("--preset", type=click.Choice(list_presets()), default=None,
              help="Settings preset [default: proxybench]; the others reproduce a reference's protocol "
              "(see: proxybench presets).")
@seed_option
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Images per proxy batch (default: the preset's).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@data_dir_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("proxybench-results"),
              show_default=True, help="Results directory; scores go to OUT/scores/*.parquet.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Skip results already in OUT. --no-resume refuses an OUT that already holds scores.")
@click.option("--no-download", is_flag=True, help="Never download the dataset; fail if no local copy is found.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads (default: one per core). When running several jobs on one machine, "
              "give each cores/jobs: oversubscribed threads make every job many times slower.")
@click.option("--dedup/--no-dedup", default=True, show_default=True,
              help="Score each isomorphism class once and copy its rows to the other requested members "
              "(column shared_from names the architecture computed). --no-dedup computes every architecture.")
@click.option("--shard", default=None, metavar="I/N",
              help="Score only shard I of N (0 <= I < N): the isomorphism classes whose sha256 mod N is I. "
              "N shards may write into the same OUT at once (e.g. a SLURM job array).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes splitting the architectures; each gets max(1, THREADS // N) torch threads "
              "(THREADS: --threads, else one per core) and writes its own parts.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process (or --workers processes). ray: chunks of classes as Ray tasks with --threads "
              "CPUs each (default 1), writing straight into OUT, which every node must reach (shared file system "
              "with flock). Needs pip install 'proxybench[ray]'.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="With --executor ray: the cluster for ray.init(address=...), e.g. auto or HOST:PORT; "
              "default: start a local Ray instance for this run.")
@click.option("--weights", "weights", default="init", show_default=True, metavar="SPEC",
              help="Where the weights come from, for every proxy of the run: init (seeded initialisation), or "
              "train[:epochs=N,optimizer=sgd|sam|asam,lr=...,rho=...] (short training on the training split minus a "
              "held-out part, cached on disk). flatnas_r needs trained weights. Recorded in the weights column.")
@click.option("--share-passes/--no-share-passes", default=True, show_default=True,
              help="Proxies that need the same pass share it (grad_norm/snip/plain/fisher one loss pass, "
              "jacov/epe_nas one input Jacobian); scores are identical either way. --no-share-passes runs each "
              "proxy on its own passes, as the references do (for speed comparisons).")
@space_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@library_errors
def score_command(
    space_name: str, proxies: str, dataset: str, sample: int | None, sample_seed: int | None, all_archs: bool,
    archs_file: Path | None,
    preset: str | None, seed: int | None, batch_size: int | None, device: str, data_dir: Path | None, out: Path,
    resume: bool, no_download: bool, threads: int | None, dedup: bool, shard: str | None, workers: int,
    executor: str, ray_address: str | None, weights: str, share_passes: bool, resolution: str | None,
    supernet_weights: str | None, random_init: bool, quiet: bool,
) -> None:
    """Score architectures with proxies and append the rows to OUT/scores/*.parquet.

    Every row records the architecture, its isomorphism key, the proxy, the score, a status
    (ok | nonfinite | error, with the message) and every setting (seed, batch, preset,
    weights, device, dtype, versions). Killing a run loses at most the architecture in
    flight; running the same command again resumes it. Stopped by Ctrl-C, SIGTERM (exit
    code 130 / 143) or a full disk, it says how many rows it saved and the command that
    resumes.

    \b
    Example:
      proxybench score --space nb201 --sample 100 --data-dir ~/data
      proxybench score --space nb201 --all --proxies synflow,nwot,jacov --out results
      proxybench score --space nb201 --archs archs.csv --preset suite-zero
      proxybench score --space nb201 --all --shard 0/8 --workers 4 --threads 16 --out results
      proxybench score --space nb201 --all --executor ray --ray-address auto --out /shared/results
    """
    from proxybench.archs import read_archs
    from proxybench.errors import ScoringInterrupted, ScoringStoppedError
    from proxybench.scoring import score_architectures
    from proxybench.sharding import parse_shard
    from proxybench.spaces import get_space

    shard_spec = parse_shard(shard)  # a malformed I/N fails before anything is loaded

    chosen = [flag for flag, given in (("--sample", sample is not None), ("--all", all_archs),
                                       ("--archs", archs_file is not None)) if given]
    if len(chosen) > 1:
        raise click.UsageError(f"choose one of --sample, --all, --archs (got {' and '.join(chosen)})")
    options = space_options_from(resolution, supernet_weights, random_init)
    space = get_space(space_name, **options)
    if sample_seed is not None and (all_archs or archs_file is not None):
        raise click.UsageError("--sample-seed draws the --sample; it does nothing with --all or --archs")
    drawn = None
    if all_archs:
        archs = list(space)
    elif archs_file is not None:
        archs = read_archs(archs_file, space)
    else:
        # The sample's seed defaults to --seed (else 0), as before --sample-seed existed.
        drawn = {"n": sample or 100, "seed": sample_seed if sample_seed is not None else (seed or 0)}
        archs = space.sample(drawn["n"], seed=drawn["seed"])
    resume_command = command_line(drop=("--no-resume",))  # the rerun must not refuse the rows saved
    with signals_as_interrupts() as caught:
        try:
            summary = score_architectures(
                archs, space=space_name, proxies=proxies, dataset=dataset, preset=preset, seed=seed,
                batch_size=batch_size, device=device, data_dir=data_dir, out=out, resume=resume,
                progress=not quiet, download=not no_download, threads=threads, dedup=dedup, shard=shard_spec,
                workers=workers, share_passes=share_passes, executor=executor, ray_address=ray_address,
                weights=weights, space_options=options, sample=drawn,
            )
        except ScoringStoppedError as exc:
            raise click.ClickException(exc.describe(resume_command)) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (signals_as_interrupts)
            if isinstance(exc, ScoringInterrupted):
                message = exc.describe(resume_command)
            else:  # before the run opened OUT for writing
                message = f"{getattr(exc, 'reason', 'interrupted')} before any row was written; run again with: " \
                          f"{resume_command}"
            click.echo(f"Aborted: {message}", err=True)
            raise SystemExit(128 + (caught[0] if caught else signal.SIGINT)) from None
    click.echo(str(summary))


@cli.command(name="status")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
@library_errors
def status_command(out: Path, fmt: str) -> None:
    """What results directory OUT holds: its runs and, per proxy, what is scored.

    Runs are finished, running (the writer is alive), killed (it died without closing: rerun
    its command to resume; nothing but the architecture in flight is lost) or interrupted;
    a killed or interrupted run whose requested rows are all stored now says which run
    completed its work. Per proxy: architectures scored of those the runs requested
    (requested) and of the space's total when it can be enumerated (archs), isomorphism
    classes, rows by status, and worker hours of the computed rows. Reads the
    Parquet parts and the journals of live runs, so it works while a run is going. Rows
    stored twice (two runs of one command before runs claimed classes) are reported with
    their proxies; proxybench repair OUT removes them.

    \b
    Example:
      proxybench status results
      proxybench status results --format json | jq '.runs[] | select(.state == "killed")'
    """
    import json

    from proxybench.store.status import results_status

    status = results_status(out)
    click.echo(json.dumps(status.to_dict(), indent=2) if fmt == "json" else str(status))


@cli.command(name="repair")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only say what would be removed; write nothing.")
@library_errors
def repair_command(out: Path, dry_run: bool) -> None:
    """Remove duplicate score rows from results directory OUT (proxybench status reports them).

    Two runs of one command into one OUT before runs claimed classes (a requeued job, a
    second terminal) stored rows twice, and correlate and tables refuse such a folder. Per
    (space, arch, dataset, proxy, settings hash) the EARLIEST row by created_at is kept
    (ties: the smaller run id) and every later copy is removed; the copies were computed
    under identical settings. Refused while a run is writing into OUT. Interrupted, it
    loses nothing; run it again to finish.

    \b
    Example:
      proxybench status results      # "duplicates: 87 extra rows ..."
      proxybench repair results --dry-run
      proxybench repair results
    """
    from proxybench.store.repair import repair_results

    click.echo(str(repair_results(out, dry_run=dry_run)))


# Commands of other modules register themselves here (one line each).
cli.add_command(truth_group)
cli.add_command(correlate_command)
cli.add_command(combine_command)
cli.add_command(tables_group)
cli.add_command(evaluate_command)
cli.add_command(supernet_group)
cli.add_command(search_group)
cli.add_command(report_command)


def main() -> None:  # pragma: no cover - console entry point
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
