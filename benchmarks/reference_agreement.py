"""Rank agreement of proxybench's proxies with the published NAS-Bench-Suite-Zero scores.

For the architectures of the NAS-Bench-Suite-Zero sample (``zc_nasbench201.json`` layout),
score them with proxybench (``--preset suite-zero`` by default, the settings that file was
made with) and report, per proxy, Spearman ρ across architectures between our score and the
published one. Scores are written to ``--out`` (resumable), so the script can be stopped
and rerun.

    python benchmarks/reference_agreement.py --reference REF.json --data-dir DATA \
        --out results/reference --dataset cifar10 [--n 100]
"""

from __future__ import annotations

import argparse
import json
import math

from proxybench.scoring import score_architectures
from proxybench.spaces.nb201 import from_naslib_tuple
from proxybench.stats.correlation import correlate_vectors
from proxybench.store import read_scores

DATASET_KEYS = {"cifar10": "cifar10", "cifar100": "cifar100"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dataset", default="cifar10", choices=sorted(DATASET_KEYS))
    parser.add_argument("--preset", default="suite-zero")
    parser.add_argument("--n", type=int, default=None, help="only the first N architectures of the file")
    parser.add_argument("--proxies", default="all")
    args = parser.parse_args()

    entries = json.load(open(args.reference))[DATASET_KEYS[args.dataset]]
    items = list(entries.items())[: args.n] if args.n else list(entries.items())
    reference = {from_naslib_tuple(key): value for key, value in items}
    score_architectures(list(reference), proxies=args.proxies, dataset=args.dataset, preset=args.preset,
                        data_dir=args.data_dir, out=args.out)
    ours: dict[str, dict[str, float]] = {}
    for row in read_scores(args.out).to_pylist():
        if row["preset"] == args.preset and row["dataset"] == args.dataset and row["arch"] in reference:
            ours.setdefault(row["proxy"], {})[row["arch"]] = row["score"]
    print(f"{len(reference)} architectures, {args.dataset}, preset {args.preset}")
    print(f"{'proxy':<12}{'n':>6}{'spearman':>10}{'kendall':>10}   (ours vs NAS-Bench-Suite-Zero)")
    for proxy in sorted(ours):
        pairs = [(ours[proxy][a], reference[a][proxy]["score"]) for a in ours[proxy]
                 if proxy in reference[a] and math.isfinite(ours[proxy][a])]
        if len(pairs) < 3:
            print(f"{proxy:<12}{len(pairs):>6}{'-':>10}{'-':>10}   (not in the reference)")
            continue
        x, y = zip(*pairs)
        stats = correlate_vectors(x, y)
        print(f"{proxy:<12}{len(pairs):>6}{stats['spearman']:>10.3f}{stats['kendall']:>10.3f}")


if __name__ == "__main__":
    main()
