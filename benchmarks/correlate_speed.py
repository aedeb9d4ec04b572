"""How long ``proxybench correlate`` takes for every proxy over the whole NB201 space.

Writes synthetic data into a temporary results directory — 13 proxies × 15,625
architectures × 3 datasets of scores (with ties: half the proxies are rounded to 2
significant digits, as params/flops are; a few non-finite scores) and the matching truth
(3 datasets × test_acc) — then times the library call ``correlate`` (39 groups of 15,625
pairs: Spearman, Kendall τ-b, Pearson, top-1/5/10) and the same through the command line,
and optionally the bootstrap. Checks one group against scipy so a fast wrong answer is caught.

    python benchmarks/correlate_speed.py [--repeat 3] [--bootstrap 0] [--datasets 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from proxybench_cli.main import cli
from scipy.stats import kendalltau, spearmanr

from proxybench.spaces.nb201 import all_archs, arch_uid
from proxybench.stats import correlate
from proxybench.store import SCORES_SCHEMA
from proxybench.store.views import open_views
from proxybench.truth import TRUTH_SCHEMA

PROXIES = ["params", "flops", "synflow", "grasp", "fisher", "grad_norm", "l2_norm", "plain", "nwot", "epe_nas",
           "jacov", "snip", "zen"]
DATASETS = ["cifar10", "cifar100", "ImageNet16-120"]


def build(out: Path, n_datasets: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    archs = list(all_archs())
    n = len(archs)
    uids = [arch_uid(a) for a in archs]
    created = datetime.now(timezone.utc)
    truth = []
    first = None
    for dataset in DATASETS[:n_datasets]:
        acc = np.clip(rng.normal(70, 15, n), 0, 100).round(2)
        truth.append(pa.table({
            "space": ["nb201"] * n, "arch": archs, "arch_uid": uids, "arch_id": np.arange(n), "dataset": [dataset] * n,
            "metric": ["test_acc"] * n, "value": acc, "epochs": [200] * n, "seed": ["mean"] * n,
            "source": ["csv:synthetic.csv"] * n}, schema=TRUTH_SCHEMA))
        parts = []
        for k, proxy in enumerate(PROXIES):
            score = acc + rng.normal(scale=5 + 3 * k, size=n)
            if k % 2 == 0:
                score = np.array([float(f"{s:.2g}") for s in score])  # ties, as params/flops have
            score[rng.choice(n, 5, replace=False)] = np.nan
            if first is None:
                first = (score.copy(), acc.copy())
            parts.append(pa.table({
                "space": ["nb201"] * n, "arch": archs, "arch_uid": uids, "dataset": [dataset] * n,
                "proxy": [proxy] * n, "score": score,
                "status": np.where(np.isfinite(score), "ok", "nonfinite"), "error": [None] * n,
                "higher_is_better": [True] * n, "seed": [0] * n, "batch_size": [64] * n, "batch_id": ["b"] * n,
                "preset": ["proxybench"] * n, "weights": ["init"] * n, "settings": ["{}"] * n,
                "settings_hash": [f"h-{proxy}"] * n, "device": ["cpu"] * n, "dtype": ["float32"] * n,
                "seconds": np.zeros(n), "proxybench_version": ["bench"] * n, "torch_version": ["-"] * n,
                "run_id": ["bench"] * n, "created_at": [created] * n, "shared_from": [None] * n},
                schema=SCORES_SCHEMA))
        (out / "scores").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(parts), out / "scores" / f"part-{dataset}.parquet")
    (out / "truth").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(truth), out / "truth" / "synthetic.parquet")
    assert first is not None
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, default=0, help="also time N bootstrap resamples per group")
    parser.add_argument("--datasets", type=int, default=3, choices=[1, 2, 3])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        score, acc = build(out, args.datasets)
        print(f"synthetic data: {len(PROXIES)} proxies x 15,625 archs x {args.datasets} datasets "
              f"({time.perf_counter() - started:.1f} s to write)")
        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            with open_views(out=out) as con:
                result = correlate(con, top_k="1,5,10")
            timings.append(time.perf_counter() - started)
        row = next(r for r in result.rows if r["proxy"] == "params" and r["dataset"] == "cifar10")
        keep = np.isfinite(score)
        assert abs(row["kendall"] - kendalltau(score[keep], acc[keep]).statistic) < 1e-9
        assert abs(row["spearman"] - spearmanr(score[keep], acc[keep]).statistic) < 1e-9
        print(f"correlate (library): {len(result.rows)} groups, best {min(timings):.2f} s, "
              f"all {', '.join(f'{t:.2f}' for t in timings)} s (checked against scipy)")
        started = time.perf_counter()
        cli_result = CliRunner().invoke(
            cli, ["correlate", "--scores", str(out), "--truth", str(out), "--format", "csv"], catch_exceptions=False)
        assert cli_result.exit_code == 0, cli_result.output
        print(f"proxybench correlate (command line, in process): {time.perf_counter() - started:.2f} s")
        if args.bootstrap:
            started = time.perf_counter()
            with open_views(out=out) as con:
                correlate(con, top_k=None, bootstrap=args.bootstrap)
            print(f"with --bootstrap {args.bootstrap}: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
