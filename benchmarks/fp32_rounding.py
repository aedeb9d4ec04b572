"""How much of each float32 zero-cost score is rounding? float32 vs float64 on the CPU, per proxy.

The CPU-vs-CUDA tolerances of :mod:`proxybench.agreement` rest on this measurement: a float32
score on the CPU and one on CUDA each differ from the exact value by their rounding, of about
the size float32 differs from float64 here; so the two differ by at most about twice that.
For each architecture (seeded isomorphism classes, as ``device_steps.py agreement`` draws
them) and proxy, the engine's network and batch are scored once as prepared (float32) and
once cast to float64, each proxy on its own passes. Reported per proxy: the largest relative
difference (``pair``: to the larger ``|score|``; ``mixed``: at least the median ``|score|``)
and the Spearman correlation between the two across architectures.

Left out: params and flops (counts), synflow/synflow_bn (float64 already), zen (its Gaussian
draws differ between dtypes, so the two runs are different draws, not roundings).

    python benchmarks/fp32_rounding.py --data-dir DATA --n 48 --json fp32.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from device_steps import class_sample  # noqa: E402

from proxybench.agreement import _spearman  # noqa: E402
from proxybench.data import BatchProvider, load_images  # noqa: E402
from proxybench.presets import get_preset  # noqa: E402
from proxybench.proxies.registry import resolve_proxies  # noqa: E402
from proxybench.scoring import _prepare_network  # noqa: E402
from proxybench.spaces import get_space  # noqa: E402

SKIP = {"params", "flops", "synflow", "synflow_bn", "zen"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    archs, _ = class_sample(args.n, args.seed)
    space, preset = get_space("nb201"), get_preset(None)
    source = load_images("cifar10", "train", data_dir=args.data_dir)
    batches = BatchProvider(source, preset, seed=args.seed, batch_size=args.batch_size)
    specs = [s for s in resolve_proxies("zero-cost") if s.name not in SKIP]
    pairs: dict[str, list[tuple[float, float]]] = {s.name: [] for s in specs}
    for arch in archs:
        batch, _ = batches.batch_for(arch)
        torch.manual_seed(args.seed)
        base = space.build(arch, source.num_classes)
        for spec in specs:
            values = []
            for dtype in (torch.float32, torch.float64):
                net = _prepare_network(space, arch, spec, base, source.num_classes, preset, torch.device("cpu"))
                net = net.to(dtype)
                torch.manual_seed(args.seed)
                try:
                    values.append(float(spec.fn(net, batch.to(dtype=dtype), **dict(spec.defaults))))
                except Exception:  # noqa: BLE001 -- an error row on both devices; not a rounding
                    values.append(math.nan)
            if all(math.isfinite(v) for v in values):
                pairs[spec.name].append((values[0], values[1]))
    result = {"archs": len(archs), "seed": args.seed, "batch_size": args.batch_size, "proxies": {}}
    for name, v in pairs.items():
        med = statistics.median(abs(b) for _, b in v)
        result["proxies"][name] = {
            "n": len(v),
            "max_rel_pair": max(abs(a - b) / max(abs(a), abs(b)) for a, b in v),
            "max_rel_mixed": max(abs(a - b) / max(abs(a), abs(b), med) for a, b in v),
            "spearman": _spearman([a for a, _ in v], [b for _, b in v]),
        }
        r = result["proxies"][name]
        print(f"{name:10s} n={r['n']:3d}  max rel pair {r['max_rel_pair']:.2e}  mixed {r['max_rel_mixed']:.2e}  "
              f"Spearman {r['spearman']:.5f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
