"""Short training and evaluation loops, and the deterministic batches they read.

What FlatNAS trains with (AI-Tech-Research-Lab/CNAS ``train_utils.py``: ``get_optimizer``,
``train``; ``scripts/search_flatnas.sh``): SGD, lr 0.1, momentum 0.9, weight decay 5e-4 on
every parameter, batch 128, wrapped in adaptive SAM with rho 2 (``--optim SAM``), one epoch
per candidate (``n_epochs=1``), cross-entropy, the perturbed pass with BatchNorm momentum 0.
:func:`train` reproduces those choices with ``optimizer="asam"``; its defaults are those
values with plain SGD.

**Data.** :func:`holdout_split` keeps the *last* ``holdout`` images of a training source
(in file order) out of training, for every seed alike, so a trained network can be
evaluated -- its error and the FlatNAS robustness R(x, σ) -- on images it never saw, and
networks trained with different seeds are compared on the same images. (The shared CIFAR-10
Parquet copy is row-shuffled, so its last rows are a random sample; torchvision's files end
with ``data_batch_5``.) :class:`ImageBatches` draws mini-batches from a subset with
``numpy.random.default_rng([seed, epoch])``: the order, crops and flips of an epoch depend
only on the seed and the epoch number. Augmentation is the CIFAR one both references use
(zero-pad 4, random 32×32 crop, horizontal flip with p = 0.5), the same code as the proxy
batches (:mod:`proxybench.data.batches`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch, resize_images
from proxybench.data.batches import _augment, _normalise
from proxybench.data.sources import ImageSource
from proxybench.errors import InvalidSettingError
from proxybench.train.sam import ASAM, SAM, frozen_bn_stats

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "DEFAULT_RHO",
    "Split",
    "ImageBatches",
    "TrainResult",
    "holdout_split",
    "held_out_batch",
    "make_optimizer",
    "train",
    "evaluate",
]

#: Optimizers :func:`train` knows.
OPTIMIZERS: tuple[str, ...] = ("sgd", "sam", "asam")
#: Learning-rate schedules :func:`train` knows (per step, no warm-up).
SCHEDULES: tuple[str, ...] = ("cosine", "constant")
#: rho when none is given: SAM's CIFAR value (arXiv:2010.01412), FlatNAS's ASAM value.
DEFAULT_RHO: dict[str, float] = {"sam": 0.05, "asam": 2.0}


@dataclass(frozen=True)
class Split:
    """Which images of a source train and which are held out.

    Attributes:
        train: Indices used for training.
        held_out: Indices never trained on (the last ``holdout`` of the source).
        n_images: Size of the source.
    """

    train: np.ndarray
    held_out: np.ndarray
    n_images: int

    def describe(self) -> str:
        return f"train: first {len(self.train)} of {self.n_images}; held out: last {len(self.held_out)}"


def holdout_split(n_images: int, holdout: int) -> Split:
    """Hold out the last ``holdout`` of ``n_images`` (file order; the same for every seed).

    Raises:
        InvalidSettingError: ``holdout`` is negative or leaves nothing to train on.
    """
    holdout = int(holdout)
    if holdout < 0 or holdout >= n_images:
        raise InvalidSettingError(
            f"holdout must be in 0..{n_images - 1} for a source of {n_images} images, got {holdout}")
    idx = np.arange(n_images, dtype=np.int64)
    return Split(train=idx[: n_images - holdout], held_out=idx[n_images - holdout:], n_images=n_images)


class ImageBatches:
    """Deterministic mini-batches over a subset of an :class:`ImageSource`.

    Iterating gives epoch 0; :meth:`epoch` gives any epoch. Each item is ``(inputs, targets)``:
    float32 ``(B, 3, H, W)`` normalised like ``torchvision`` ``ToTensor`` + ``Normalize``, and
    int64 labels.

    Args:
        source: The images.
        indices: Which of them (e.g. :attr:`Split.train`).
        batch_size: Images per batch.
        mean: Per-channel mean of [0, 1] pixels.
        std: Per-channel std.
        augment: Pad-4 random crop + horizontal flip.
        seed: Seeds order and augmentation (``default_rng([seed, epoch])``).
        shuffle: Draw a new order every epoch (else file order).
        drop_last: Drop a final batch smaller than ``batch_size``.
        resolution: Resize every batch to ``resolution``² after augmentation
            (:func:`proxybench.batch.resize_images`); None keeps the images' size.

    Raises:
        InvalidSettingError: ``batch_size`` < 1 or larger than the subset with ``drop_last``.
    """

    def __init__(self, source: ImageSource, indices: Sequence[int] | np.ndarray, *, batch_size: int,
                 mean: Sequence[float], std: Sequence[float], augment: bool = False, seed: int = 0,
                 shuffle: bool = True, drop_last: bool = True, resolution: int | None = None) -> None:
        self.source = source
        self.resolution = resolution
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise InvalidSettingError(f"batch_size must be at least 1, got {batch_size}")
        if drop_last and self.batch_size > len(self.indices):
            raise InvalidSettingError(
                f"batch_size {self.batch_size} is larger than the {len(self.indices)} images to train on")
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.epoch(0)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, int(epoch)])
        order = self.indices[rng.permutation(len(self.indices))] if self.shuffle else self.indices
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            images = self.source.images(idx)
            if self.augment:
                images = _augment(images, rng)
            inputs = _normalise(images, self.mean, self.std)
            if self.resolution is not None and tuple(inputs.shape[-2:]) != (self.resolution, self.resolution):
                inputs = resize_images(inputs, self.resolution)
            yield inputs, torch.from_numpy(self.source.labels[idx].astype(np.int64, copy=True))


def held_out_batch(source: ImageSource, split: Split, n_images: int, *, mean: Sequence[float],
                   std: Sequence[float]) -> ProxyBatch:
    """The first ``n_images`` held-out images as one normalised, unaugmented :class:`ProxyBatch`.

    What ``flatnas_r`` evaluates on (:mod:`proxybench.proxies.flatness`).

    Raises:
        InvalidSettingError: Fewer than ``n_images`` images are held out.
    """
    if n_images < 1 or n_images > len(split.held_out):
        raise InvalidSettingError(
            f"asked for {n_images} held-out images but only {len(split.held_out)} are held out; "
            "raise the holdout setting or ask for fewer")
    idx = split.held_out[:n_images]
    inputs = _normalise(source.images(idx), mean, std)
    targets = torch.from_numpy(source.labels[idx].astype(np.int64, copy=True))
    return ProxyBatch(inputs=inputs, targets=targets, num_classes=source.num_classes)


@dataclass(frozen=True)
class TrainResult:
    """What a training run did.

    Attributes:
        steps: Optimizer updates made.
        epochs: Passes over the data (fractional when stopped by ``steps``).
        final_loss: Mean training loss (at ``w``) over the last epoch, or the last
            ``len(data)`` steps.
        seconds: Wall time.
        settings: The resolved training settings.
    """

    steps: int
    epochs: float
    final_loss: float
    seconds: float
    settings: dict[str, Any]


def make_optimizer(net: nn.Module, optimizer: str = "sgd", *, lr: float = 0.1, momentum: float = 0.9,
                   weight_decay: float = 5e-4, nesterov: bool = False, rho: float | None = None,
                   eta: float = 0.0) -> torch.optim.Optimizer | SAM:
    """SGD over every parameter of ``net``, wrapped in SAM or ASAM when asked.

    Raises:
        InvalidSettingError: Unknown optimizer, or ``rho``/``eta`` given to plain SGD.
    """
    name = str(optimizer).lower()
    if name not in OPTIMIZERS:
        raise InvalidSettingError(f"unknown optimizer '{optimizer}'; choose one of {', '.join(OPTIMIZERS)}")
    if name == "sgd" and rho is not None:
        raise InvalidSettingError("rho applies to optimizer 'sam' or 'asam', not 'sgd'")
    if name != "asam" and eta:
        raise InvalidSettingError("eta applies to optimizer 'asam' only")
    base = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov)
    if name == "sgd":
        return base
    if name == "sam":
        return SAM(base, rho=rho, model=net)
    return ASAM(base, rho=rho, eta=eta, model=net)


def _items(data: Any, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    items = data.epoch(epoch) if hasattr(data, "epoch") else iter(data)
    for item in items:
        if isinstance(item, ProxyBatch):
            yield item.inputs, item.targets
        else:
            x, y = item
            yield x, y


def train(
    net: nn.Module,
    data: ImageBatches | Iterable[Any],
    *,
    epochs: float | None = None,
    steps: int | None = None,
    optimizer: str = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    nesterov: bool = False,
    rho: float | None = None,
    eta: float = 0.0,
    schedule: str = "cosine",
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train ``net`` in place with cross-entropy.

    Args:
        net: The network; moved to ``device`` and left in training mode.
        data: :class:`ImageBatches` (each epoch its own seeded order) or any re-iterable of
            ``(inputs, targets)`` pairs or :class:`ProxyBatch` es (same order every epoch).
        epochs: Passes over ``data`` (exactly one of ``epochs``/``steps``).
        steps: Optimizer updates.
        optimizer: ``"sgd"``, ``"sam"`` or ``"asam"`` (SGD wrapped in :mod:`~proxybench.train.sam`).
        lr: Peak learning rate.
        momentum: SGD momentum.
        weight_decay: L2 on every parameter (as NB201 and CNAS train).
        nesterov: Nesterov momentum.
        rho: SAM/ASAM radius; ``None`` takes :data:`DEFAULT_RHO`.
        eta: ASAM's ``|w| + eta``.
        schedule: ``"cosine"`` (per step, from ``lr`` at step 0 towards 0 at the end) or
            ``"constant"``.
        seed: Seeds torch (dropout-like randomness) inside a forked RNG, so the caller's
            global RNG is untouched; data order is the data's own seed.
        device: Where to train (default: where ``net`` is).
        progress: Show a tqdm bar.

    Returns:
        A :class:`TrainResult`.

    Raises:
        InvalidSettingError: Bad settings (both or neither of epochs/steps, unknown schedule...).
        FloatingPointError: The loss became non-finite (lower ``lr`` or ``rho``).

    Example:
        >>> result = train(net, batches, epochs=1, optimizer="asam", rho=2.0)  # doctest: +SKIP
    """
    if (epochs is None) == (steps is None):
        raise InvalidSettingError("give exactly one of epochs or steps")
    if schedule not in SCHEDULES:
        raise InvalidSettingError(f"unknown schedule '{schedule}'; choose one of {', '.join(SCHEDULES)}")
    name = str(optimizer).lower()
    if name in DEFAULT_RHO and rho is None:
        rho = DEFAULT_RHO[name]
    try:
        per_epoch = len(data)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    if steps is None:
        if per_epoch is None:
            raise InvalidSettingError("data has no length; give steps instead of epochs")
        total = int(round(float(epochs) * per_epoch))
    else:
        total = int(steps)
    if total < 1:
        raise InvalidSettingError(f"training needs at least one step, got {total}")

    device = torch.device(device) if device is not None else next(net.parameters()).device
    net.to(device).train()
    opt = make_optimizer(net, name, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                         rho=rho, eta=eta)
    base = opt.base_optimizer if isinstance(opt, SAM) else opt
    settings = {"optimizer": name, "epochs": epochs, "steps": steps, "lr": lr, "momentum": momentum,
                "weight_decay": weight_decay, "nesterov": nesterov, "rho": rho,
                "eta": eta if name == "asam" else None, "schedule": schedule, "seed": seed,
                "total_steps": total}

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"train {name}", leave=False)
    fork_devices = [device] if device.type == "cuda" else []
    started = time.perf_counter()
    recent: list[float] = []
    window = per_epoch or total
    step = 0
    epoch = 0
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(int(seed))
        while step < total:
            seen = 0
            for x, y in _items(data, epoch):
                if step >= total:
                    break
                seen += 1
                current = lr * 0.5 * (1.0 + math.cos(math.pi * step / total)) if schedule == "cosine" else lr
                for group in base.param_groups:
                    group["lr"] = current
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                opt.zero_grad()
                loss = F.cross_entropy(net(x), y)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"training loss is {loss.item()} at step {step} ({name}, lr {current:g}); lower lr or rho")
                loss.backward()
                if isinstance(opt, SAM):
                    opt.first_step(zero_grad=True)
                    with frozen_bn_stats(net):
                        F.cross_entropy(net(x), y).backward()
                    opt.second_step(zero_grad=True)
                else:
                    opt.step()
                recent.append(float(loss.detach()))
                if len(recent) > window:
                    recent.pop(0)
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{recent[-1]:.3f}")
            if seen == 0:
                raise InvalidSettingError("data yielded no batches")
            epoch += 1
    if bar is not None:
        bar.close()
    opt.zero_grad()
    return TrainResult(steps=step, epochs=step / per_epoch if per_epoch else float("nan"),
                       final_loss=float(np.mean(recent)), seconds=time.perf_counter() - started,
                       settings=settings)


@torch.no_grad()
def evaluate(net: nn.Module, batches: Iterable[Any], device: torch.device | str | None = None) -> tuple[float, float]:
    """Top-1 error in percent and mean cross-entropy of ``net`` in eval mode over ``batches``.

    ``batches`` yields ``(inputs, targets)`` pairs or :class:`ProxyBatch` es (an
    :class:`ImageBatches` gives its epoch 0). The network's training flag is restored.

    Raises:
        InvalidSettingError: ``batches`` is empty.
    """
    device = torch.device(device) if device is not None else next(net.parameters()).device
    was_training = net.training
    net.eval()
    wrong, total, loss_sum = 0, 0, 0.0
    try:
        for x, y in _items(batches, 0):
            x, y = x.to(device), y.to(device)
            logits = net(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            wrong += int((logits.argmax(1) != y).sum())
            total += int(y.numel())
    finally:
        net.train(was_training)
    if total == 0:
        raise InvalidSettingError("evaluate got no images")
    return 100.0 * wrong / total, loss_sum / total
