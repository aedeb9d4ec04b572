"""How long ``proxybench combine`` takes at full size: 15,625 NB201 architectures × 20 proxies,
7 values of n × 5 splits × 4 models (the grid of NAS-Bench-Suite-Zero's few-shot evaluation).

The time of a predictor does not depend on what the scores mean, so by default the 20 proxy
columns are **synthetic** (each a noisy monotone function of the true accuracy or of an
encoding column, seeded), written as ordinary ``scores`` rows; pass ``--scores DIR`` to time real
stored scores instead. The truth is the benchmark's CSV (``--truth-csv``). Reports the wall
time of the whole grid, the time per model (fit + predict + metrics), and the time to read the
scores (DuckDB pivot).

Usage::

    python benchmarks/combine_speed.py --truth-csv DATA/nb201/nats_bench_tss_200ep.csv [--threads 2]
        [--features proxies] [--features proxies+graf] [--scores DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def synthetic_scores(out: Path, truth_dir: Path, proxies: int, seed: int) -> None:
    """``proxies`` score columns for every architecture with truth, in the scores schema."""
    from datetime import datetime, timezone

    from proxybench.store import SCORES_SCHEMA
    from proxybench.store.views import open_views

    with open_views(truth=[truth_dir]) as con:
        rows = con.execute("SELECT arch, arch_uid, value FROM truth WHERE dataset = 'cifar10' "
                           "AND metric = 'test_acc' ORDER BY arch").fetchall()
    archs, uids, acc = zip(*rows)
    acc = np.asarray(acc)
    rng = np.random.default_rng(seed)
    now = datetime.now(timezone.utc)
    columns: dict[str, list] = defaultdict(list)
    for p in range(proxies):
        noise = rng.normal(scale=acc.std() * (0.5 + p / 10), size=len(acc))
        score = np.exp((acc + noise) / 20.0) if p % 2 else acc + noise
        for arch, uid, value in zip(archs, uids, score):
            for name, v in (("space", "nb201"), ("arch", arch), ("arch_uid", uid), ("dataset", "cifar10"),
                            ("proxy", f"synthetic_{p:02d}"), ("score", float(value)), ("status", "ok"),
                            ("error", None), ("higher_is_better", True), ("seed", 0), ("batch_size", 64),
                            ("batch_id", "synthetic"), ("preset", "synthetic"), ("weights", "none"),
                            ("settings", "{}"), ("settings_hash", f"synthetic-{p}"), ("device", "cpu"),
                            ("dtype", "float64"), ("seconds", 0.0), ("proxybench_version", "bench"),
                            ("torch_version", "none"), ("run_id", "synthetic"), ("created_at", now)):
                columns[name].append(v)
    (out / "scores").mkdir(parents=True, exist_ok=True)
    table = pa.table({name: pa.array(columns[name], type=SCORES_SCHEMA.field(name).type)
                      for name in SCORES_SCHEMA.names if name in columns})
    pq.write_table(table, out / "scores" / "synthetic.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth-csv", type=Path, required=True, help="nats_bench_tss_200ep.csv")
    parser.add_argument("--scores", type=Path, default=None, help="Real stored scores (default: synthetic).")
    parser.add_argument("--proxies", type=int, default=20, help="Synthetic proxy columns.")
    parser.add_argument("--features", action="append", default=None, help="Feature sets (default: proxies).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--n", default="10,20,50,100,200,400,1000")
    parser.add_argument("--out", type=Path, default=None, help="Keep the results here (default: a temp dir).")
    args = parser.parse_args()

    from proxybench.combine import CombineConfig, load_combine_data, parse_feature_sets, run_combine
    from proxybench.truth import import_truth
    from proxybench.store.views import open_views

    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        import_truth(args.truth_csv, work)
        scores = args.scores
        if scores is None:
            t0 = time.perf_counter()
            synthetic_scores(work, work, args.proxies, seed=0)
            print(f"synthetic scores: {args.proxies} proxies written in {time.perf_counter() - t0:.1f} s")
            scores = work
        t0 = time.perf_counter()
        encodings = sorted({t for f in (args.features or ["proxies"]) for t in f.split("+")} & {"onehot", "path", "graf"})
        with open_views(scores=[scores], truth=[work]) as con:
            data = load_combine_data(con, proxies=None, encodings=encodings, score_dataset="cifar10",
                                     truth_dataset="cifar10", metric="test_acc")
        read = time.perf_counter() - t0
        config = CombineConfig(feature_sets=parse_feature_sets(args.features or ["proxies"], data.proxies),
                               ns=tuple(int(v) for v in args.n.split(",")), splits=args.splits, threads=args.threads,
                               save_predictions=True)
        t0 = time.perf_counter()
        result = run_combine(data, config, out=work / "combined")
        total = time.perf_counter() - t0
    per_model: dict[str, list[float]] = defaultdict(list)
    for row in result.metrics:
        per_model[row["model"]].append(row["fit_seconds"] + row["predict_seconds"])
    print(f"{len(data.archs)} architectures x {len(data.proxies)} proxies; feature sets {list(config.feature_sets)}")
    print(f"read + pivot of the scores: {read:.1f} s")
    print(f"{len(result.metrics)} fits ({len(config.ns)} n x {config.splits} splits x {len(config.models)} models "
          f"x {len(config.feature_sets)} feature sets), metrics and Parquet: {total:.1f} s")
    for model, seconds in per_model.items():
        print(f"  {model:6s} fit+predict {sum(seconds):7.1f} s  (largest n: {max(seconds):.1f} s)")


if __name__ == "__main__":
    main()
