"""``proxybench supernet train``: train or resume a one-shot supernet (thin wrapper over proxybench.weights.supernet)."""

from __future__ import annotations

from pathlib import Path

import click
from proxybench_cli._options import CONTEXT_SETTINGS, data_dir_option, library_errors

__all__ = ["supernet"]


@click.group(name="supernet", context_settings=CONTEXT_SETTINGS)
def supernet() -> None:
    """Train one-shot supernets whose paths give weights to score (--weights supernet:PATH).

    \b
    Example:
      proxybench supernet train --dataset cifar10 --data-dir ~/data --epochs 250 --out supernet.pt
      proxybench score --sample 100 --proxies genas --weights supernet:supernet.pt --data-dir ~/data
    """


@supernet.command(name="train", context_settings=CONTEXT_SETTINGS)
@click.option("--space", type=click.Choice(["nb201"]), default=None, help="Search space. [default: nb201]")
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100"]), default=None,
              help="Dataset; trains on its training split minus the held-out part. [default: cifar10]")
@data_dir_option
@click.option("--epochs", type=click.FloatRange(min=0), default=None,
              help="Length of the schedule in epochs (GeNAS: 250). Give this or --steps.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Length of the schedule in steps (with --epochs 0 or without --epochs).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Images per step. [default: 64]")
@click.option("--lr", type=click.FloatRange(min=0), default=None,
              help="Initial learning rate, cosine-decayed per step to --lr-min. [default: 0.025]")
@click.option("--lr-min", type=click.FloatRange(min=0), default=None, help="Final learning rate. [default: 0.001]")
@click.option("--momentum", type=click.FloatRange(min=0), default=None, help="SGD momentum. [default: 0.9]")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=None, help="L2 weight decay. [default: 3e-4]")
@click.option("--grad-clip", type=click.FloatRange(min=0), default=None,
              help="Gradient norm clip (0: none). [default: 5]")
@click.option("--holdout", type=click.IntRange(min=0), default=None,
              help="Last images of the training split never trained on (scored on by genas). [default: 25000]")
@click.option("--augment/--no-augment", default=None, help="Pad-4 crop + flip. [default: augment]")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the initialisation, the sampled paths and the batches. [default: 0]")
@click.option("--device", default="cpu", show_default=True, help="Torch device (cpu, cuda, cuda:1...).")
@click.option("--save-every", type=click.IntRange(min=1), default=None,
              help="Write the checkpoint every N steps (and at the end). [default: once per epoch]")
@click.option("--stop-at", type=click.IntRange(min=1), default=None,
              help="Stop after this step of the schedule and save; run again without it to continue.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch intra-op threads.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar on stderr.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Checkpoint file; if it exists, training continues from its last saved step.")
@library_errors
def train_command(space: str | None, dataset: str | None, data_dir: Path | None, epochs: float | None,
                  steps: int | None, batch_size: int | None, lr: float | None, lr_min: float | None,
                  momentum: float | None, weight_decay: float | None, grad_clip: float | None, holdout: int | None,
                  augment: bool | None, seed: int | None, device: str, save_every: int | None, stop_at: int | None,
                  threads: int | None, progress: bool, out: Path) -> None:  # fmt: skip
    """Train an NB201 one-shot supernet with uniform single-path sampling (SPOS, as GeNAS).

    Every step trains one path: an op drawn uniformly for each edge, the same cell in every
    position. SGD with GeNAS's defaults (lr 0.025 cosine to 0.001, momentum 0.9, weight
    decay 3e-4, batch 64, gradient clip 5). The checkpoint holds the weights, optimizer,
    schedule, RNG state, step and settings; rerunning with the same --out continues it
    (options left out take the checkpoint's values).

    \b
    Example:
      proxybench supernet train --dataset cifar10 --data-dir ~/data --epochs 250 --device cuda --out supernet.pt
      proxybench supernet train --out supernet.pt --data-dir ~/data --device cuda    # resume
    """
    if epochs is not None and epochs > 0 and steps is not None:
        raise click.UsageError("give --epochs or --steps, not both (--epochs 0 --steps S is allowed)")
    if (epochs is None or epochs == 0) and steps is None and not out.exists():
        raise click.UsageError("give the training length: --epochs E (GeNAS: 250) or --steps S")
    import torch

    from proxybench.weights.supernet import train_supernet

    if threads is not None:
        torch.set_num_threads(threads)
    if epochs == 0:
        epochs = None  # --epochs 0 --steps S: the length is in steps
    elif epochs is not None and float(epochs).is_integer():
        epochs = int(epochs)
    result = train_supernet(
        out, data_dir=data_dir, device=device, save_every=save_every, stop_at=stop_at, progress=progress,
        space=space, dataset=dataset, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, lr_min=lr_min,
        momentum=momentum, weight_decay=weight_decay, grad_clip=grad_clip, holdout=holdout, augment=augment,
        seed=seed,
    )  # fmt: skip
    state = "finished" if result.finished else f"stopped at step {result.step}; run again to continue"
    click.echo(f"{result.path}: step {result.step}/{result.total_steps} ({state}), started at step "
               f"{result.resumed_from}, mean loss {result.final_loss:.4f}, {result.seconds:.1f} s")
