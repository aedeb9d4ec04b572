"""The modern proxies on NB201, each under its paper's protocol, into one results folder; then ρ/τ.

Every paper fixes its own run-level protocol (batch, seed, normalisation), so each is one
``proxybench score`` run with that paper's preset (``proxybench presets``); all write into
the same OUT, and the ensembles (az_nas, tenas, vkdnw_agg) are recomputed from the stored
components when the results are read. Resumable: rerun the same command after a kill and
it continues where it stopped (each run skips the rows already stored).

    python benchmarks/modern_nb201.py --data-dir DATA --truth nats_bench_tss_200ep.csv --out OUT --all
    python benchmarks/modern_nb201.py --data-dir DATA --truth ... --out OUT --sample 200 --protocols az-nas,meco

Then ``proxybench tables render modern-proxies --scores OUT --truth OUT`` renders the table
with the published values beside the measured ones. Cost per isomorphism class on one CPU
core, measured here: az-nas (AZ-NAS components, VKDNW, jacov_kaiming) ≈ 1 s + 1.5 s,
meco ≈ 0.1 s, zico ≈ 2 s, gradsign ≈ 3 s, swap ≈ 4 s, tenas ≈ 12 s (the NTK's 216
per-sample backward passes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: preset -> the proxies scored under it (the paper's protocol; the rest is in each proxy's defaults).
PROTOCOLS: dict[str, tuple[str, ...]] = {
    "az-nas": ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity", "vkdnw", "vkdnw_dim",
               "vkdnw_single", "jacov_kaiming", "gradsign_mean", "params"),
    "meco": ("meco", "meco_opt"),
    "zico": ("zico",),
    "gradsign": ("gradsign",),
    "swap": ("swap", "swap_reg"),
    "tenas": ("tenas_ntk", "tenas_lr"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--truth", required=True, help="nats_bench_tss_200ep.csv (or any proxybench truth source)")
    parser.add_argument("--out", required=True)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="all 15,625 architectures (6,466 classes computed)")
    which.add_argument("--sample", type=int, help="a seeded sample of N architectures")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated presets to run")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()

    from proxybench import get_space, score_architectures
    from proxybench.stats import correlate, render
    from proxybench.store.views import open_views
    from proxybench.truth import import_truth

    space = get_space("nb201")
    archs = list(space) if args.all else space.sample(args.sample, seed=args.sample_seed)
    out = Path(args.out)
    if not (out / "truth").is_dir():
        import_truth(args.truth, out=out)
    for preset in [p.strip() for p in args.protocols.split(",") if p.strip()]:
        if preset not in PROTOCOLS:
            raise SystemExit(f"unknown protocol {preset!r}; choose from {', '.join(PROTOCOLS)}")
        print(f"== {preset}: {', '.join(PROTOCOLS[preset])}", file=sys.stderr, flush=True)
        summary = score_architectures(archs, proxies=list(PROTOCOLS[preset]), preset=preset, data_dir=args.data_dir,
                                      out=out, download=False, workers=args.workers, threads=args.threads,
                                      device=args.device)
        print(summary, file=sys.stderr, flush=True)
    with open_views(out=out) as con:
        result = correlate(con, dataset="cifar10", metric="test_acc", top_k=(), bootstrap=args.bootstrap, seed=0)
    print(render(result, "md"))


if __name__ == "__main__":
    main()
