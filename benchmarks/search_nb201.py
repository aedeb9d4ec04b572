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

**Hardware-aware runs.** With a ``latency:<device>`` or ``energy:<device>`` objective, give the
HW-NAS-Bench table with ``--hardware hw_cifar10.csv`` (it is passed to the search as a second
``--truth``). The table then also reports, per method, the **hypervolume ratio**
(:func:`proxybench.search.indicators.hypervolume_ratio`) in the plane (true CIFAR-10 test
error in %, that cost), against the benchmark's true front over all 15,625 cells with a value:

* *HV front*: the points of the run's answer, the archive's non-dominated set under the
  search's own objectives (what the search would hand over), at their true error and cost;
* *HV evaluated*: every architecture the run evaluated (the best front an oracle could pick
  from them).

Both fronts are normalised by the true front's ideal and nadir points; the reference point is
10 % beyond the true front's nadir in each objective, (1.1, 1.1) normalised (pymoo's HV).

    python benchmarks/search_nb201.py --truth DATA/nb201/nats_bench_tss_200ep.csv \
        --hardware DATA/nb201/extra/hw_cifar10.csv --data-dir DATA --out OUT \
        --objectives synflow,latency:edgegpu --seeds 0,1,2 --n-start 30 --iterations 10 --per-iteration 6

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

import numpy as np

from proxybench.search.archive import Archive
from proxybench.search.indicators import hypervolume_ratio
from proxybench.search.loop import run_search
from proxybench.search.measures import read_truth_accuracy, read_truth_values
from proxybench.search.problem import resolve_objectives
from proxybench.search.select import non_dominated
from proxybench.truth import import_truth


def _imported(source: str | Path, directory: Path) -> str | Path:
    """A CSV is imported into ``directory`` once (reused when its Parquet is there); Parquet is used as is."""
    if Path(source).suffix != ".csv":
        return source
    target = directory / "truth" / f"{Path(source).stem}.parquet"
    if not target.is_file():
        import_truth(source, directory)
    return target


def true_points(archs: list[str], accuracy: dict[str, float], cost: dict[str, float]) -> np.ndarray:
    """``(100 − test accuracy, cost)`` of the architectures that have both (minimised)."""
    return np.array([[100.0 - accuracy[a], cost[a]] for a in archs if a in accuracy and a in cost],
                    dtype=np.float64).reshape(-1, 2)


def compare(truth: str | Path, out: str | Path, *, objectives: str = "synflow,flops", seeds: tuple[int, ...] = (0,),
            n_start: int = 100, iterations: int = 30, per_iteration: int = 8, pop_size: int = 40,
            generations: int = 20, data_dir: str | Path | None = None, batch_size: int | None = None,
            dataset: str = "cifar10", surrogate: str = "auto", expensive: list[str] | None = None,
            hardware: str | Path | None = None, threads: int | None = None,
            log: Any = None) -> list[dict[str, Any]]:
    """Run search and random search per seed; one result dict per (seed, method)."""
    out = Path(out)
    truth_src = _imported(truth, out / "truth-import")
    accuracy = read_truth_accuracy(truth_src, dataset, "test_acc")
    objs = resolve_objectives(objectives, expensive=expensive)
    names = [o.name for o in objs]
    hw_metric = next((o.name for o in objs if o.kind == "truth"), None)
    truths: list[str | Path] = [truth_src]
    cost: dict[str, float] = {}
    all_true = np.empty((0, 2))
    if hardware is not None:
        hw_src = _imported(hardware, out / "truth-import")
        truths.append(hw_src)
        if hw_metric is not None:
            cost = read_truth_values(hw_src, dataset, [hw_metric])[hw_metric]
            all_true = true_points(sorted(cost), accuracy, cost)
    # a predictor objective saw the truth of its training architectures: a pick among them is no discovery
    seen: set[str] = set()
    for obj in objs:
        if obj.kind == "predictor":
            from proxybench.combine.predictor import load_predictor

            seen |= set(load_predictor(obj.name.partition(":")[2]).train_archs)
    budget = n_start + iterations * per_iteration
    results = []
    for seed in seeds:
        common = dict(objectives=objectives, seed=seed, top_k=1, data_dir=data_dir, batch_size=batch_size,
                      dataset=dataset, scores_out=out, resume=True, log=log, expensive=expensive,
                      truth=truths if len(truths) > 1 else None, threads=threads)
        for method, kwargs in (
            ("search", dict(n_start=n_start, iterations=iterations, per_iteration=per_iteration, pop_size=pop_size,
                            generations=generations, surrogate=surrogate)),
            ("random", dict(n_start=budget, iterations=0)),
        ):
            started = time.perf_counter()
            res = run_search("nb201", out=out / f"{method}-seed{seed}", **kwargs, **common)
            rows = [r for r in Archive(res.out, names).rows() if r["status"] == "ok"]
            pick = res.picks[0]["arch"] if res.picks else None
            result = {
                "seed": seed, "method": method, "evaluated": res.archive_size, "failed": res.failed, "pick": pick,
                "pick_test_acc": accuracy.get(pick) if pick else None,
                "best_evaluated_test_acc": max((accuracy[r["arch"]] for r in rows if r["arch"] in accuracy),
                                              default=None),
                "seconds": time.perf_counter() - started,
            }
            if seen:
                result["pick_in_predictor_training"] = pick in seen
            if len(all_true):
                F = np.array([[r[f"obj_{n}"] for n in names] for r in rows], dtype=np.float64)
                front = [rows[i]["arch"] for i in non_dominated(F)] if len(F) else []
                result["front_size"] = len(front)
                result["hv_front"] = hypervolume_ratio(true_points(front, accuracy, cost), all_true)
                result["hv_evaluated"] = hypervolume_ratio(true_points([r["arch"] for r in rows], accuracy, cost),
                                                           all_true)
            results.append(result)
    return results


def render(results: list[dict[str, Any]]) -> str:
    hv = any("hv_front" in r for r in results)
    head = "| method | seeds | evaluated | pick test acc (mean ± sd) | best evaluated test acc |"
    rule = "|---|---|---|---|---|"
    if hv:
        head += " HV ratio front (mean ± sd) | HV ratio evaluated (mean ± sd) | front size |"
        rule += "---|---|---|"
    lines = [head + " s/run |", rule + "---|"]

    def mean_sd(values: list[float], digits: int) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"

    for method in ("search", "random"):
        rs = [r for r in results if r["method"] == method]
        acc = [r["pick_test_acc"] for r in rs if r["pick_test_acc"] is not None]
        best = [r["best_evaluated_test_acc"] for r in rs if r["best_evaluated_test_acc"] is not None]
        if not acc:
            lines.append(f"| {method} | {len(rs)} | - | - | - |" + (" - | - | - |" if hv else "") + " - |")
            continue
        line = (f"| {method} | {len(rs)} | {rs[0]['evaluated']} | {mean_sd(acc, 2)} | "
                f"{statistics.mean(best):.2f} |")
        if hv:
            line += (f" {mean_sd([r['hv_front'] for r in rs], 3)} | {mean_sd([r['hv_evaluated'] for r in rs], 3)} | "
                     f"{statistics.mean(r['front_size'] for r in rs):.1f} |")
        lines.append(line + f" {statistics.mean(r['seconds'] for r in rs):.0f} |")
    seen = [r for r in results if "pick_in_predictor_training" in r]
    if seen:
        lines.append("")
        lines.append("Picks that were among the predictor's training architectures (their truth was known): "
                     + ", ".join(f"{m} {sum(r['pick_in_predictor_training'] for r in seen if r['method'] == m)}"
                                 f"/{sum(r['method'] == m for r in seen)}" for m in ("search", "random")))
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
    parser.add_argument("--hardware", default=None,
                        help="HW-NAS-Bench table (hw_cifar10.csv) or its truth Parquet, for latency:/energy: "
                        "objectives and the hypervolume ratio")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for proxy scoring")
    parser.add_argument("--json", action="store_true", help="print the per-run results as JSON too")
    args = parser.parse_args()
    results = compare(args.truth, args.out, objectives=args.objectives,
                      seeds=tuple(int(s) for s in args.seeds.split(",")), n_start=args.n_start,
                      iterations=args.iterations, per_iteration=args.per_iteration, pop_size=args.pop_size,
                      generations=args.generations, data_dir=args.data_dir, batch_size=args.batch_size,
                      surrogate=args.surrogate, hardware=args.hardware, threads=args.threads,
                      expensive=args.expensive.split(",") if args.expensive else None, log=print)
    print(render(results))
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
