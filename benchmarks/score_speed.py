"""Seconds per NB201 architecture for the proxy suite, per proxy, next to the floor.

The floor is one forward + backward pass of the cross-entropy on the same network and
batch: no proxy that needs a gradient can be cheaper. Run:

    python benchmarks/score_speed.py --data-dir DATA --n 20 --csv speed.csv

Prints a table and optionally writes it as CSV. Timings are wall-clock on whatever
machine runs it; the README and the issue notes quote the machine.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from proxybench.data import BatchProvider, load_images
from proxybench.presets import get_preset
from proxybench.scoring import score_architectures
from proxybench.spaces import get_space
from proxybench.store import read_scores


def floor_seconds(archs: list[str], data_dir: str | None, batch_size: int, seed: int) -> list[float]:
    space = get_space("nb201")
    source = load_images("cifar10", "train", data_dir=data_dir)
    batch, _ = BatchProvider(source, get_preset(None), seed=seed, batch_size=batch_size).batch_for(archs[0])
    times = []
    for arch in archs:
        torch.manual_seed(seed)
        net = space.build(arch, source.num_classes)
        start = time.perf_counter()
        loss = F.cross_entropy(net(batch.inputs), batch.targets)
        loss.backward()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n", type=int, default=20, help="architectures (seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--proxies", default="all")
    parser.add_argument("--csv", default=None, help="write the table here")
    args = parser.parse_args()

    archs = get_space("nb201").sample(args.n, seed=args.seed)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        score_architectures(archs, proxies=args.proxies, data_dir=args.data_dir, batch_size=args.batch_size,
                            seed=args.seed, out=out, progress=False)
        wall = (time.perf_counter() - t0) / len(archs)
        rows = read_scores(out).to_pylist()
    per_proxy: dict[str, list[float]] = {}
    for row in rows:
        per_proxy.setdefault(row["proxy"], []).append(row["seconds"])
    floor = floor_seconds(archs, args.data_dir, args.batch_size, args.seed)
    table = [{"what": name, "mean_s": statistics.fmean(v), "median_s": statistics.median(v)}
             for name, v in sorted(per_proxy.items())]
    table.append({"what": "suite (sum of proxies)", "mean_s": sum(r["mean_s"] for r in table),
                  "median_s": float("nan")})
    table.append({"what": "suite (wall per arch, incl. build)", "mean_s": wall, "median_s": float("nan")})
    table.append({"what": "floor: 1 fwd+bwd", "mean_s": statistics.fmean(floor), "median_s": statistics.median(floor)})
    print(f"{len(archs)} NB201 architectures, batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"{'what':<38}{'mean s':>10}{'median s':>10}")
    for r in table:
        print(f"{r['what']:<38}{r['mean_s']:>10.3f}{r['median_s']:>10.3f}")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["what", "mean_s", "median_s"])
            writer.writeheader()
            writer.writerows(table)


if __name__ == "__main__":
    main()
