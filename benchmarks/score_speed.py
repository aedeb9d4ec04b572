"""Seconds per NB201 architecture for the proxy suite: naive loop vs shared passes vs the floor.

* naive loop: every proxy on its own passes (``share_passes=False``), as the reference
  implementations run them; its per-proxy seconds are printed too;
* proxybench: the same proxies with shared passes (the scores are checked to be identical);
* the floor: one forward + backward pass of the cross-entropy on the same network and
  batch: no proxy that needs a gradient can be cheaper.

Run (on a quiet machine: other jobs on the same cores distort every number):

    python benchmarks/score_speed.py --data-dir DATA --n 20 --csv speed.csv
    python benchmarks/score_speed.py --data-dir DATA --device cuda --json speed.json

On CUDA every timed section ends with ``torch.cuda.synchronize()``, one architecture is
scored before the timed runs (CUDA context, cuDNN and allocator start-up would otherwise
be charged to the naive loop), and the floor runs under the determinism settings the
engine applies (:mod:`proxybench.device`), so all three see the same kernels.

Prints a table and optionally writes it as CSV. Timings are wall-clock on whatever
machine runs it; the README and the issue notes quote the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from proxybench.data import BatchProvider, load_images
from proxybench.device import configure_cuda_determinism
from proxybench.presets import get_preset
from proxybench.scoring import score_architectures
from proxybench.spaces import get_space
from proxybench.store import read_scores


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def floor_seconds(archs: list[str], data_dir: str | None, batch_size: int, seed: int,
                  device: str = "cpu") -> list[float]:
    """One forward + backward of the cross-entropy per architecture (network on the device, untimed build)."""
    where = torch.device(device)
    if where.type == "cuda":
        configure_cuda_determinism()
    space = get_space("nb201")
    source = load_images("cifar10", "train", data_dir=data_dir)
    batch, _ = BatchProvider(source, get_preset(None), seed=seed, batch_size=batch_size).batch_for(archs[0])
    batch = batch.to(where)
    times = []
    for i, arch in enumerate([archs[0], *archs]):  # the first pass warms up (kernels, allocator)
        torch.manual_seed(seed)
        net = space.build(arch, source.num_classes).to(where)
        _sync(where)
        start = time.perf_counter()
        loss = F.cross_entropy(net(batch.inputs), batch.targets)
        loss.backward()
        _sync(where)
        if i:
            times.append(time.perf_counter() - start)
    return times


def _same_scores(a: list[dict], b: list[dict]) -> bool:
    """Bit-identical scores and equal statuses (NaN rows, e.g. errors, compare equal)."""
    def key(rows: list[dict]) -> dict:
        return {(r["arch"], r["proxy"]): (r["status"], None if math.isnan(r["score"]) else r["score"]) for r in rows}
    return key(a) == key(b)


def timed_run(archs: list[str], args: argparse.Namespace, share: bool) -> tuple[float, list[dict]]:
    """Score ``archs`` once; (wall seconds per architecture incl. network build, the rows)."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        score_architectures(archs, proxies=args.proxies, data_dir=args.data_dir, batch_size=args.batch_size,
                            seed=args.seed, out=out, progress=False, dedup=False, share_passes=share,
                            threads=args.threads, device=args.device)
        _sync(torch.device(args.device))
        wall = (time.perf_counter() - t0) / len(archs)
        return wall, read_scores(out).to_pylist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n", type=int, default=20, help="architectures (seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--proxies", default="zero-cost", help="proxy selection (default: the zero-cost suite)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--csv", default=None, help="write the table here")
    parser.add_argument("--json", default=None, help="write the table and the ratios here (JSON)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    archs = get_space("nb201").sample(args.n, seed=args.seed)
    if torch.device(args.device).type == "cuda":  # start-up (context, cuDNN, allocator) is not the loop's
        timed_run(archs[:1], args, share=True)
    # dedup off in both runs: this measures seconds per *computed* architecture.
    naive_wall, naive_rows = timed_run(archs, args, share=False)
    shared_wall, shared_rows = timed_run(archs, args, share=True)
    same = _same_scores(naive_rows, shared_rows)
    per_proxy: dict[str, list[float]] = {}
    for row in naive_rows:
        per_proxy.setdefault(row["proxy"], []).append(row["seconds"])
    floor = floor_seconds(archs, args.data_dir, args.batch_size, args.seed, device=args.device)
    table = [{"what": f"{name} (own passes)", "mean_s": statistics.fmean(v), "median_s": statistics.median(v)}
             for name, v in sorted(per_proxy.items())]
    table.append({"what": "naive loop (wall per arch)", "mean_s": naive_wall, "median_s": float("nan")})
    table.append({"what": "proxybench, shared passes (wall per arch)", "mean_s": shared_wall,
                  "median_s": float("nan")})
    table.append({"what": "floor: 1 fwd+bwd", "mean_s": statistics.fmean(floor), "median_s": statistics.median(floor)})
    print(f"{len(archs)} NB201 architectures, batch {args.batch_size}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}, dedup off")
    print(f"{'what':<44}{'mean s':>10}{'median s':>10}")
    for r in table:
        print(f"{r['what']:<44}{r['mean_s']:>10.3f}{r['median_s']:>10.3f}")
    print(f"shared/naive: {naive_wall / shared_wall:.2f}x faster; shared/floor: "
          f"{shared_wall / statistics.fmean(floor):.1f}x the floor; identical scores: {same}")
    print("With dedup, a whole-space run computes 6,466 of the 15,625 architectures (2.42x fewer).")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["what", "mean_s", "median_s"])
            writer.writeheader()
            writer.writerows(table)
    if args.json:
        floor_mean = statistics.fmean(floor)
        result = {"archs": len(archs), "batch_size": args.batch_size, "device": args.device,
                  "proxies": args.proxies, "torch_threads": torch.get_num_threads(),
                  "naive_s_per_arch": naive_wall, "shared_s_per_arch": shared_wall, "floor_s": floor_mean,
                  "shared_speedup": naive_wall / shared_wall, "floors_per_arch": shared_wall / floor_mean,
                  "identical_scores": same, "errors": sum(r["status"] == "error" for r in shared_rows),
                  "table": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                            for r in table]}
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
