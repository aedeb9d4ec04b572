"""Time and size of ``proxybench report`` for a whole-space result: 15,625 NB201 architectures × 14 proxies.

The scores are synthetic (no GPU needed) but shaped like the real ones: each proxy is the
real CIFAR-10 test accuracy's rank plus noise, mapped to the proxy's typical range (SynFlow
spans ~20 decades, jacov is negative, tenas_ntk lower-is-better, a few non-finite and failed
rows), so every axis rule and every table is exercised. The truth is the real one:

    proxybench truth import /work/shared/data/nb201/nats_bench_tss_200ep.csv --out DIR

Usage::

    python benchmarks/report_whole_space.py --truth-csv /work/shared/data/nb201/nats_bench_tss_200ep.csv \\
        --out /tmp/report-bench

prints the build time of the scores, then runs ``proxybench report`` (in this process, timed)
and prints the report's time and size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: (proxy, higher_is_better, how the score is made from a standard-normal "quality" q)
PROXIES = {
    "grad_norm": (True, lambda q: np.exp(1.5 + 0.4 * q)),
    "snip": (True, lambda q: np.exp(3.0 + 0.5 * q)),
    "grasp": (True, lambda q: 5.0 * q),
    "fisher": (True, lambda q: np.exp(-6 + 1.5 * q)),
    "synflow": (True, lambda q: 10 ** (25 + 4 * q)),
    "jacov": (True, lambda q: -300 + 20 * q),
    "nwot": (True, lambda q: 700 + 40 * q),
    "epe_nas": (True, lambda q: np.exp(4 + 0.3 * q)),
    "params": (True, lambda q: np.exp(-0.5 + 0.7 * q)),
    "flops": (True, lambda q: np.exp(3.5 + 0.7 * q)),
    "l2_norm": (True, lambda q: 150 + 30 * q),
    "plain": (True, lambda q: 0.05 * q),
    "meco": (True, lambda q: np.exp(2 + q)),
    "tenas_ntk": (False, lambda q: np.exp(6 - 1.2 * q)),
}


def build(out: Path, truth_csv: Path) -> None:
    from proxybench.spaces.nb201 import all_archs, arch_uid
    from proxybench.store.schema import SCORES_SCHEMA

    if not (out / "truth").is_dir():
        subprocess.run([sys.executable, "-m", "proxybench_cli.main", "truth", "import", str(truth_csv), "--out", str(out)],
                       check=True)
    truth = pq.read_table(out / "truth").to_pylist()
    acc = {r["arch"]: r["value"] for r in truth if r["dataset"] == "cifar10" and r["metric"] == "test_acc"}
    archs = list(all_archs())
    uids = [arch_uid(a) for a in archs]
    y = np.array([acc[a] for a in archs])
    rank = (np.argsort(np.argsort(y)) + 0.5) / len(y)
    base = np.sqrt(2) * _erfinv(2 * rank - 1)  # normal scores of the accuracy ranks
    rng = np.random.default_rng(0)
    now = datetime.now(timezone.utc)
    columns: dict[str, list] = {name: [] for name in SCORES_SCHEMA.names}
    for p, (proxy, (higher, make)) in enumerate(PROXIES.items()):
        q = base + rng.normal(0, 0.8 + 0.1 * p, len(archs))
        score = make(q if higher else q)
        status = np.array(["ok"] * len(archs), dtype=object)
        error = [None] * len(archs)
        failed = rng.choice(len(archs), 5, replace=False)
        for k, i in enumerate(failed):
            if k < 2:
                score[i], status[i] = np.inf, "nonfinite"
            else:
                score[i], status[i], error[i] = np.nan, "error", "RuntimeError: CUDA out of memory (synthetic)"
        n = len(archs)
        columns["space"] += ["nb201"] * n
        columns["arch"] += archs
        columns["arch_uid"] += uids
        columns["dataset"] += ["cifar10"] * n
        columns["proxy"] += [proxy] * n
        columns["score"] += score.tolist()
        columns["status"] += status.tolist()
        columns["error"] += error
        columns["higher_is_better"] += [higher] * n
        for name, value in (("seed", 0), ("batch_size", 64), ("batch_id", "b0"), ("preset", "proxybench"),
                            ("weights", "init"), ("settings", "{}"), ("settings_hash", f"synthetic-{proxy}"),
                            ("device", "cuda:0"), ("dtype", "float32"), ("proxybench_version", "bench"),
                            ("torch_version", "bench"), ("run_id", "bench"), ("created_at", now), ("shared_from", None)):
            columns[name] += [value] * n
        columns["seconds"] += rng.uniform(0.01, 0.2, n).tolist()
    (out / "scores").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=SCORES_SCHEMA), out / "scores" / "part-bench-00000.parquet")
    (out / "runs").mkdir(exist_ok=True)
    (out / "runs" / "bench.json").write_text(json.dumps({
        "run_id": "bench", "status": "finished", "started_at": now.isoformat(), "updated_at": now.isoformat(),
        "archs_requested": len(archs), "proxybench_version": "bench", "torch_version": "bench",
        "settings": {"preset": "proxybench", "dataset": "cifar10", "note": "synthetic scores"}}))


def _erfinv(x: np.ndarray) -> np.ndarray:
    from scipy.special import erfinv

    return erfinv(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth-csv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    if not (args.out / "scores").is_dir():
        build(args.out, args.truth_csv)
        print(f"built {args.out} in {time.perf_counter() - started:.1f} s")
    from proxybench.report import write_report

    summary = write_report(args.out, args.output)
    print(summary)


if __name__ == "__main__":
    main()
