"""What a data-free NB201 search spends on exact evaluations (issue 13), in seconds and counts.

Runs the profiled command of issue 13 in-process,

    proxybench search --space nb201 --objectives synflow,flops --n-start 10 --iterations 1 --per-iteration 5

and counts, by wrapping the two places where exact values are computed, how many architectures
were scored by the engine (``score_architectures``: synflow) and how many flops counts were
made (``count_flops``: the cost measure), next to the archive's size. It works on any checkout
(before and after the isomorph cache), so the two numbers compare like with like; runs that
record the search's own counts (``n_exact_computed``/``n_exact_reused`` in ``iterations.parquet``)
print those too.

    nice -n 5 python benchmarks/search_cost.py --out /tmp/search-cost --n-start 10 --iterations 1 --per-iteration 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/search-cost", help="run directory (emptied first)")
    ap.add_argument("--objectives", default="synflow,flops")
    ap.add_argument("--n-start", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--per-iteration", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args()

    import proxybench.proxies.cost as cost
    import proxybench.scoring as scoring
    from proxybench.search.loop import run_search

    counts = {"scored_archs": 0, "score_calls": 0, "flops_counts": 0}
    score, count_flops = scoring.score_architectures, cost.count_flops

    def counted_score(archs, *a, **k):  # noqa: ANN001, ANN002, ANN003
        counts["scored_archs"] += len(list(archs))
        counts["score_calls"] += 1
        return score(archs, *a, **k)

    def counted_flops(*a, **k):  # noqa: ANN002, ANN003
        counts["flops_counts"] += 1
        return count_flops(*a, **k)

    scoring.score_architectures, cost.count_flops = counted_score, counted_flops
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = run_search("nb201", args.objectives, n_start=args.n_start, iterations=args.iterations,
                        per_iteration=args.per_iteration, seed=args.seed, out=out, data_dir=args.data_dir)
    seconds = time.perf_counter() - started
    report = {"seconds": round(seconds, 1), "archive": result.archive_size, **counts}
    try:
        import pyarrow.parquet as pq

        stats = pq.read_table(out / "iterations.parquet").to_pylist()
        for key in ("n_exact_computed", "n_exact_reused"):
            if stats and key in stats[0]:
                report[key] = sum(int(s[key] or 0) for s in stats)
    except (OSError, KeyError):
        pass
    report["summary"] = str(result)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
