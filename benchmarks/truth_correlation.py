"""Spearman ρ and Kendall τ of each proxy against NAS-Bench-201 test accuracy.

Scores a seeded random sample of NB201 architectures (resumable, into ``--out``) and
correlates every proxy with the CIFAR-10 (or -100) test accuracy of the NATS-Bench CSV
export (``nats_bench_tss_200ep.csv`` layout). Architectures whose network output does not
depend on the input still get a score; non-finite scores are counted and left out.
The correlation is ``proxybench correlate``'s (DuckDB SQL, orientation applied).

    python benchmarks/truth_correlation.py --truth nats_bench_tss_200ep.csv --data-dir DATA \
        --out results/sample1000 --n 1000 --seed 0
"""

from __future__ import annotations

import argparse
import tempfile

from proxybench.scoring import score_architectures
from proxybench.spaces import get_space
from proxybench.stats import correlate, render
from proxybench.store import open_views
from proxybench.truth import import_truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--truth", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100"])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--proxies", default="all")
    parser.add_argument("--score-only", action="store_true", help="do not score, correlate what --out holds")
    args = parser.parse_args()

    if not args.score_only:
        archs = get_space("nb201").sample(args.n, seed=args.seed)
        score_architectures(archs, proxies=args.proxies, dataset=args.dataset, preset=args.preset, seed=args.seed,
                            data_dir=args.data_dir, out=args.out)
    with tempfile.TemporaryDirectory() as truth_dir:
        import_truth(args.truth, truth_dir)
        with open_views(scores=[args.out], truth=[truth_dir]) as con:
            result = correlate(con, dataset=args.dataset, metric="test_acc", top_k=(10,))
    print(render(result, "md"))


if __name__ == "__main__":
    main()
