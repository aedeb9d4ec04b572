"""Spearman ρ and Kendall τ of each proxy against NAS-Bench-201 test accuracy.

Scores a seeded random sample of NB201 architectures (resumable, into ``--out``) and
correlates every proxy with the CIFAR-10 (or -100) test accuracy of the NATS-Bench CSV
export (``nats_bench_tss_200ep.csv`` layout). Architectures whose network output does not
depend on the input still get a score; non-finite scores are counted and left out.
This is a stop-gap until ``proxybench correlate`` (DuckDB) exists.

    python benchmarks/truth_correlation.py --truth nats_bench_tss_200ep.csv --data-dir DATA \
        --out results/sample1000 --n 1000 --seed 0
"""

from __future__ import annotations

import argparse
import csv
import math

from scipy.stats import kendalltau, spearmanr

from proxybench.proxies import get_proxy
from proxybench.scoring import score_architectures
from proxybench.spaces import get_space
from proxybench.store import read_scores

COLUMNS = {"cifar10": "CIFAR10TestAccuracy200Epochs", "cifar100": "CIFAR100TestAccuracy200Epochs"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--truth", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dataset", default="cifar10", choices=sorted(COLUMNS))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--proxies", default="all")
    parser.add_argument("--score-only", action="store_true")
    args = parser.parse_args()

    archs = get_space("nb201").sample(args.n, seed=args.seed)
    if not args.score_only:
        score_architectures(archs, proxies=args.proxies, dataset=args.dataset, preset=args.preset, seed=args.seed,
                            data_dir=args.data_dir, out=args.out)
    with open(args.truth, newline="") as fh:
        truth = {row["ArchitectureString"]: float(row[COLUMNS[args.dataset]]) for row in csv.DictReader(fh)}
    wanted = set(archs)
    scores: dict[str, dict[str, float]] = {}
    for row in read_scores(args.out).to_pylist():
        if row["arch"] in wanted and row["dataset"] == args.dataset:
            scores.setdefault(row["proxy"], {})[row["arch"]] = row["score"]
    print(f"{len(archs)} sampled architectures (seed {args.seed}), {args.dataset} test accuracy (200 epochs)")
    print(f"{'proxy':<12}{'n':>6}{'dropped':>8}{'spearman':>10}{'kendall':>10}   (proxy oriented: higher = better)")
    for proxy in sorted(scores):
        sign = 1.0 if get_proxy(proxy).higher_is_better else -1.0
        pairs = [(sign * s, truth[a]) for a, s in scores[proxy].items() if math.isfinite(s)]
        x, y = zip(*pairs)
        dropped = len(scores[proxy]) - len(pairs)
        print(f"{proxy:<12}{len(pairs):>6}{dropped:>8}{spearmanr(x, y)[0]:>10.3f}{kendalltau(x, y)[0]:>10.3f}")


if __name__ == "__main__":
    main()
