"""Surrogate-assisted NSGA-II vs random search on NAS-Bench-201, at equal budget.

For every seed, two runs with the same objectives (proxies and/or costs) and the same number
of evaluated architectures (``n_start + iterations × per_iteration``):

* **search**: :func:`proxybench.search.run_search` as configured;
* **random**: the same function with ``n_start`` = the whole budget and no iterations, i.e.
  uniform random architectures (distinct isomorphism classes), same measurements.

Both pick their answer by the same rule (pick 1 of :func:`proxybench.search.select.trade_off_picks`:
closest to the ideal point of the normalised non-dominated set), and the table reports the
*true* CIFAR-10 test accuracy (NB201, 200 epochs, mean over seeds) of that pick, plus the best
true accuracy among everything each run evaluated (what an oracle would have picked).
Proxy scores are cached in ``OUT/scores`` and shared by every run (same proxy settings), so
each architecture is scored once.

    python benchmarks/search_nb201.py --truth ../shared/data/nb201/nats_bench_tss_200ep.csv \\
        --data-dir /work/shared/data --out results/search-bench --objectives synflow,flops \\
        --seeds 0,1,2,3,4 --n-start 100 --iterations 30 --per-iteration 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from proxybench.search.loop import run_search
from proxybench.search.measures import read_truth_accuracy
from proxybench.truth import import_truth


def compare(truth: str | Path, out: str | Path, *, objectives: str = "synflow,flops", seeds: tuple[int, ...] = (0,),
            n_start: int = 100, iterations: int = 30, per_iteration: int = 8, pop_size: int = 40,
            generations: int = 20, data_dir: str | Path | None = None, batch_size: int | None = None,
            dataset: str = "cifar10", surrogate: str = "auto", expensive: list[str] | None = None,
            log: Any = None) -> list[dict[str, Any]]:
    """Run search and random search per seed; one result dict per (seed, method)."""
    out = Path(out)
    truth_dir = out / "truth-import"
    if Path(truth).suffix == ".csv":
        import_truth(truth, truth_dir)
        truth_src: str | Path = truth_dir
    else:
        truth_src = truth
    accuracy = read_truth_accuracy(truth_src, dataset, "test_acc")
    budget = n_start + iterations * per_iteration
    results = []
    for seed in seeds:
        common = dict(objectives=objectives, seed=seed, top_k=1, data_dir=data_dir, batch_size=batch_size,
                      dataset=dataset, scores_out=out, resume=True, log=log, expensive=expensive)
        for method, kwargs in (
            ("search", dict(n_start=n_start, iterations=iterations, per_iteration=per_iteration, pop_size=pop_size,
                            generations=generations, surrogate=surrogate)),
            ("random", dict(n_start=budget, iterations=0)),
        ):
            started = time.perf_counter()
            res = run_search("nb201", out=out / f"{method}-seed{seed}", **kwargs, **common)
            from proxybench.search.archive import Archive

            names = [o.strip() for o in objectives.split(",")]
            rows = [r for r in Archive(res.out, names).rows() if r["status"] == "ok"]
            pick = res.picks[0]["arch"] if res.picks else None
            results.append({
                "seed": seed, "method": method, "evaluated": res.archive_size, "pick": pick,
                "pick_test_acc": accuracy.get(pick) if pick else None,
                "best_evaluated_test_acc": max((accuracy[r["arch"]] for r in rows if r["arch"] in accuracy),
                                              default=None),
                "seconds": time.perf_counter() - started,
            })
    return results


def render(results: list[dict[str, Any]]) -> str:
    lines = ["| method | seeds | evaluated | pick test acc (mean ± sd) | best evaluated test acc | s/run |",
             "|---|---|---|---|---|---|"]
    for method in ("search", "random"):
        rs = [r for r in results if r["method"] == method]
        acc = [r["pick_test_acc"] for r in rs if r["pick_test_acc"] is not None]
        best = [r["best_evaluated_test_acc"] for r in rs if r["best_evaluated_test_acc"] is not None]
        if not acc:
            lines.append(f"| {method} | {len(rs)} | - | - | - | - |")
            continue
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        lines.append(f"| {method} | {len(rs)} | {rs[0]['evaluated']} | {statistics.mean(acc):.2f} ± {sd:.2f} | "
                     f"{statistics.mean(best):.2f} | {statistics.mean(r['seconds'] for r in rs):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--truth", required=True, help="NB201 truth CSV (nats_bench_tss_200ep.csv) or Parquet")
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--objectives", default="synflow,flops")
    parser.add_argument("--expensive", default=None, help="objectives to route through surrogates")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n-start", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--per-iteration", type=int, default=8)
    parser.add_argument("--pop-size", type=int, default=40)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--surrogate", default="auto")
    parser.add_argument("--json", action="store_true", help="print the per-run results as JSON too")
    args = parser.parse_args()
    results = compare(args.truth, args.out, objectives=args.objectives,
                      seeds=tuple(int(s) for s in args.seeds.split(",")), n_start=args.n_start,
                      iterations=args.iterations, per_iteration=args.per_iteration, pop_size=args.pop_size,
                      generations=args.generations, data_dir=args.data_dir, batch_size=args.batch_size,
                      surrogate=args.surrogate,
                      expensive=args.expensive.split(",") if args.expensive else None, log=print)
    print(render(results))
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
