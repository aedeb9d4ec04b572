"""GeNAS on an NB201 one-shot supernet: Kendall τ of the score with CIFAR test accuracy, α = 1 and α = 0.

Trains (or resumes) an NB201 supernet with the given budget into ``--checkpoint`` (default
``OUT/supernet.pt``), then scores a seeded sample of ``--n`` architectures with ``genas`` on
the inherited, BN-recalibrated weights twice -- depth + flatness (α = 1, GeNAS's code) and
flatness alone (α = 0) -- into ``OUT/alpha1`` and ``OUT/alpha0`` (resumable), and prints Kendall
τ and Spearman ρ against the test accuracy of a NATS-Bench CSV (``proxybench correlate``'s
SQL, orientation applied), with the budget spent.

    python benchmarks/genas_demo.py --data-dir DATA --truth-csv nats_bench_tss_200ep.csv \
        --out results/genas --epochs 250 --device cuda --n 200

Smoke test (seconds): ``--epochs 0 --steps 2 --n 4 --batch-size 8 --recalibrate 2 --eval-images 64``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from proxybench.scoring import score_architectures
from proxybench.spaces import get_space
from proxybench.stats import correlate
from proxybench.store import open_views
from proxybench.truth import import_truth
from proxybench.weights.supernet import load_supernet_checkpoint, train_supernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--truth-csv", required=True, help="NATS-Bench TSS CSV (nats_bench_tss_200ep.csv layout)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True, help="results directory")
    parser.add_argument("--checkpoint", default=None, help="supernet checkpoint (default: OUT/supernet.pt)")
    parser.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100"])
    parser.add_argument("--epochs", type=float, default=None, help="supernet schedule in epochs (GeNAS: 250)")
    parser.add_argument("--steps", type=int, default=None, help="supernet schedule in steps (with --epochs 0)")
    parser.add_argument("--batch-size", type=int, default=None, help="supernet batch size (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="supernet seed and scoring seed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n", type=int, default=100, help="architectures to score")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--eval-images", type=int, default=1280, help="held-out images per noise level")
    parser.add_argument("--recalibrate", type=int, default=None,
                        help="BN recalibration batches (default: GeNAS's ceil(850 / batch size))")
    args = parser.parse_args()

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    checkpoint = Path(args.checkpoint) if args.checkpoint else out / "supernet.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    epochs = None if args.epochs == 0 else args.epochs
    if epochs is not None and float(epochs).is_integer():
        epochs = int(epochs)
    trained = train_supernet(checkpoint, data_dir=args.data_dir, device=args.device, progress=True,
                             dataset=args.dataset, epochs=epochs, steps=args.steps, batch_size=args.batch_size,
                             seed=args.seed)
    blob = load_supernet_checkpoint(checkpoint)
    spec = f"supernet:{checkpoint}" + (f",recalibrate={args.recalibrate}" if args.recalibrate is not None else "")
    archs = get_space("nb201").sample(args.n, seed=args.sample_seed)

    seconds: dict[float, float] = {}
    for alpha in (1.0, 0.0):
        started = time.perf_counter()
        score_architectures(archs, proxies="genas", dataset=args.dataset, weights=spec, seed=args.seed,
                            device=args.device, data_dir=args.data_dir, out=out / f"alpha{alpha:g}",
                            threads=args.threads,
                            proxy_settings={"genas": {"alpha": alpha, "eval_images": args.eval_images}})
        seconds[alpha] = time.perf_counter() - started

    s = trained.settings
    print(f"supernet {checkpoint}: {trained.step}/{trained.total_steps} steps "
          f"({trained.step / blob['meta']['steps_per_epoch']:.2f} epochs of {blob['meta']['steps_per_epoch']} steps, "
          f"batch {s['batch_size']}, lr {s['lr']}->{s['lr_min']}, holdout {s['holdout']}), "
          f"{blob['meta']['seconds']:.1f} s of training in all ({trained.seconds:.1f} s this session), "
          f"device {args.device}")
    print(f"scored {len(archs)} NB201 archs (sample seed {args.sample_seed}) with genas, eval_images "
          f"{args.eval_images}, weights {spec}")
    print()
    print("| alpha | n | excluded | Kendall tau | Spearman rho | scoring s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as truth_dir:
        import_truth(args.truth_csv, truth_dir)
        for alpha in (1.0, 0.0):
            with open_views(scores=[out / f"alpha{alpha:g}"], truth=[truth_dir]) as con:
                result = correlate(con, dataset=args.dataset, metric="test_acc", proxies="genas", top_k=())
            for row in result.rows:
                note = f" ({row['note']})" if row.get("note") else ""
                print(f"| {alpha:g} | {row['n']} | {row['excluded']} | {row['kendall']:.4f} | {row['spearman']:.4f} "
                      f"| {seconds[alpha]:.1f}{note} |")


if __name__ == "__main__":
    main()
