"""Flatness proxies on trained weights: FlatNAS's robustness to weight noise.

**flatnas_r** (FlatNAS, Gambella, Pittorino and Roveri 2024, arXiv:2402.19102):

    R(x, σ) = E_z[ E(w + σ z ⊙ w) ] − E(w),   z ~ N(0, I)

the mean, over ``draws`` = M independent draws (paper: σ = 0.05, M = 20), of how much the
top-1 error (percentage points) grows when every weight is multiplied by ``1 + σ z``.
Lower = flatter. What the public code does (AI-Tech-Research-Lab/CNAS
``robustness/utility/perturb.py``: ``create_perturb`` with ``noise="mult"``, ``perturb``,
``calculate_robustness``), and what is followed here:

* every ``nn.Parameter`` of ``model.parameters()`` is perturbed: conv and linear weights,
  biases, BatchNorm γ and β, the classifier; buffers (BN running statistics) are not;
* one fresh ``z`` per draw, the perturbed network evaluated in eval mode, so BatchNorm uses
  the running statistics of the trained network;
* the error is top-1 over the whole evaluation set, in percentage points.

One difference is a setting: the code averages ``abs(acc0 - acc)``, the paper
``E(w + σ z ⊙ w) − E(w)`` without absolute value. Noise can *lower* the error of an
under-trained network, which the code counts as a loss of robustness. The default is the
paper's signed definition (``absolute=False``); ``absolute=True`` is the code's.
On which images the code evaluates: its 2024 version takes the augmented training loader,
its 2025 version the test set. proxybench evaluates on held-out training images (see below)
and the run records which.

**The batch contract.** A proxy receives one :class:`~proxybench.batch.ProxyBatch`. For
``flatnas_r`` it must hold at least ``eval_images`` normalised, *unaugmented* images with
their labels that the weights were not trained on: the engine should pass
``TrainedWeights.held_out_batch(dataset, data_dir, eval_images)`` (the first images of the
weight provider's held-out split) rather than the preset's proxy batch. The first
``eval_images`` images are used (all of them with ``eval_images=None``), in forward chunks of
``chunk_size`` (eval mode, so chunking does not change the result).

**Randomness.** The noise is drawn on the CPU from a generator seeded with one draw of
torch's global generator, so after the engine's ``torch.manual_seed(seed)`` the score is
deterministic and the same on every device. The network's weights and training flag are
restored before returning.
"""

from __future__ import annotations

import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.errors import InvalidSettingError
from proxybench.proxies._heldout import evaluation_images
from proxybench.proxies.registry import proxy

__all__ = ["flatnas_r", "robustness_draws", "noise_generator"]

_FLATNAS = "arXiv:2402.19102 (FlatNAS; code: AI-Tech-Research-Lab/CNAS)"


def noise_generator() -> torch.Generator:
    """A CPU generator seeded from torch's global generator (one ``randint`` draw)."""
    seed = int(torch.randint(0, 2**62, (1,)).item())
    return torch.Generator(device="cpu").manual_seed(seed)


@torch.no_grad()
def _error(net: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int) -> float:
    wrong = 0
    for i in range(0, x.shape[0], chunk):
        wrong += int((net(x[i:i + chunk]).argmax(1) != y[i:i + chunk]).sum())
    return 100.0 * wrong / x.shape[0]


@torch.no_grad()
def robustness_draws(
    net: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    sigma: float,
    draws: int,
    chunk_size: int = 256,
    generator: torch.Generator | None = None,
) -> tuple[float, list[float]]:
    """The clean error E(w) and the M errors E(w + σ z_m ⊙ w), in percent.

    The network is evaluated in eval mode; its parameters and training flag are restored.
    """
    gen = generator if generator is not None else noise_generator()
    was_training = net.training
    net.eval()
    params = list(net.parameters())
    originals = [p.detach().clone() for p in params]
    try:
        clean = _error(net, inputs, targets, chunk_size)
        noisy = []
        for _ in range(draws):
            for p, w in zip(params, originals):
                z = torch.randn(w.shape, generator=gen, dtype=w.dtype, device="cpu").to(w.device)
                p.copy_(w + sigma * (z * w))
            noisy.append(_error(net, inputs, targets, chunk_size))
    finally:
        for p, w in zip(params, originals):
            p.copy_(w)
        net.train(was_training)
    return clean, noisy


@proxy(
    "flatnas_r",
    higher_is_better=False,
    paper=_FLATNAS,
    needs=("batch", "labels", "trained_weights"),
    description="FlatNAS robustness R(x, sigma): mean error increase (pp) under multiplicative Gaussian weight noise.",
    sigma=0.05,
    draws=20,
    eval_images=1280,
    absolute=False,
    chunk_size=256,
)
def flatnas_r(
    net: nn.Module,
    batch: ProxyBatch,
    sigma: float = 0.05,
    draws: int = 20,
    eval_images: int | None = 1280,
    absolute: bool = False,
    chunk_size: int = 256,
) -> float:
    """R(x, σ) = mean_m [E(w + σ z_m ⊙ w)] − E(w) in percentage points (lower is flatter).

    Args:
        net: The trained network (its running statistics are used: eval mode).
        batch: At least ``eval_images`` held-out images and labels (see the module docstring).
        sigma: Relative noise scale (paper 0.05).
        draws: M, the number of noise draws (paper 20).
        eval_images: How many images of ``batch`` to evaluate on (default 1280 = 10 × 128);
            ``None`` uses the whole batch.
        absolute: Average ``|E(w + σ z ⊙ w) − E(w)|`` as the CNAS code does, instead of the
            paper's signed difference.
        chunk_size: Images per forward pass (memory only; does not change the value).

    Raises:
        InvalidSettingError: ``batch`` is smaller than ``eval_images``, or ``sigma`` < 0,
            ``draws`` < 1, ``chunk_size`` < 1.
    """
    if not sigma >= 0:
        raise InvalidSettingError(f"sigma must be >= 0, got {sigma}")
    if int(draws) < 1 or int(chunk_size) < 1:
        raise InvalidSettingError(f"draws and chunk_size must be >= 1, got {draws} and {chunk_size}")
    x, y = evaluation_images(net, batch, eval_images, "flatnas_r")
    clean, noisy = robustness_draws(net, x, y, sigma=float(sigma), draws=int(draws), chunk_size=int(chunk_size))
    diffs = [e - clean for e in noisy]
    if absolute:
        diffs = [abs(d) for d in diffs]
    return float(sum(diffs) / len(diffs))
