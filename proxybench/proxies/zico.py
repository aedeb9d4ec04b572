"""ZiCo: the inverse coefficient of variation of the loss gradients across batches.

Li et al. 2023 (arXiv:2301.11300, ICLR), reference SLDGroup/ZiCo
``ZeroShotProxy/compute_zico.py`` (``getgrad``, ``caculate_zico``, ``getzico``) and its
NAS-Bench-201 port in cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy/compute_zico_score.py``
(the same maths; it skips layers whose ``.grad`` is None and stops after ``batch_iter=2``
batches). For every Conv2d/Linear weight ``W_l`` (:func:`prunable_layers`) and every
element ``k`` of it, the references collect ``g_b = dL_b/dW_l[k]`` for batches
``b = 1..B`` (``L_b`` = mean cross-entropy of batch ``b``, the network in train mode, one
``zero_grad``/``backward`` per batch, no parameter update) and score

    ZiCo = sum_l  ln( sum_{k: std_b(g) != 0}  mean_b |g_b| / std_b(g_b) )

with NumPy's population std (``ddof=0``) and the natural log; a layer whose sum is 0 (every
element has zero spread: a layer off every path to the loss, or identical batches) adds
nothing, so a network without any gradient spread scores 0.

Here the engine's batch is split into ``n_batches`` equal consecutive chunks, which play the
references' batches: ``B = 2`` (``getzico`` iterates ``evolution_search.py``'s
``--maxbatch 2`` batches; the AZ-NAS port ``batch_iter=2``). The AZ-NAS NB201 runs use
batches of 64 (``configs/nas-benchmark/algos/weight-sharing.config``), so the preset must
provide 128 images for that protocol. Each chunk is its own forward pass, so BatchNorm uses
that chunk's statistics, as with the references' separate batches.

Departures, none of which changes the formula: the ratios are summed in float64 (the
references sum float32 NumPy arrays; the per-element statistics follow NumPy's float32
arithmetic, see :func:`zico_from_gradients`); the forward passes run on
copies of the BatchNorm buffers (:func:`torch.func.functional_call`), so the network's running
statistics and ``.grad`` fields are left as they were (the references update both; in train
mode neither enters the score).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad

from proxybench.batch import ProxyBatch
from proxybench.proxies._layers import prunable_layers
from proxybench.proxies.registry import proxy

__all__ = ["zico", "chunk_weight_gradients", "zico_from_gradients"]

_PAPER = (
    "arXiv:2301.11300 (Li et al. 2023, ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients, ICLR)"
)


def _weight_names(net: nn.Module) -> list[str]:
    """Parameter names of every Conv2d/Linear weight, in :func:`prunable_layers` order."""
    by_id = {id(p): name for name, p in net.named_parameters()}
    names = [by_id.get(id(layer.weight)) for layer in prunable_layers(net)]
    if not names:
        raise ValueError(
            f"zico: {type(net).__name__} has no nn.Conv2d or nn.Linear layer; ZiCo scores their weight gradients"
        )
    if any(n is None for n in names):
        raise ValueError("zico: a Conv2d/Linear weight is not a registered parameter of the network")
    return names  # type: ignore[return-value]


def chunk_weight_gradients(net: nn.Module, batch: ProxyBatch, n_batches: int) -> list[torch.Tensor]:
    """The ``multi_batch_grads`` pass: ``dL_b/dW`` of each chunk ``b``, stacked per layer.

    Args:
        net: The network, in the mode it is given (train mode: each chunk's BatchNorm
            statistics).
        batch: Split into ``n_batches`` equal consecutive chunks.
        n_batches: Number of chunks ``B``.

    Returns:
        One detached tensor ``(B, numel)`` per Conv2d/Linear weight (:func:`prunable_layers`
        order), in the network's dtype; a weight the loss does not reach gets zeros, as
        the references' multiply-by-zero ``none`` edges give.
    """
    names = _weight_names(net)
    chunk = batch.size // n_batches
    params = {name: p.detach() for name, p in net.named_parameters()}
    weights = {name: params.pop(name) for name in dict.fromkeys(names)}

    def chunk_loss(w: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
                   y: torch.Tensor) -> torch.Tensor:
        out = functional_call(net, (w, params, buffers), (x,))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"zico: {type(net).__name__} returned {type(out).__name__}, not a logits tensor")
        return F.cross_entropy(out, y)

    per_chunk = []
    for b in range(n_batches):
        # Fresh buffer copies per chunk: the train-mode forward updates them, not the network's.
        buffers = {name: t.detach().clone() for name, t in net.named_buffers()}
        rows = slice(b * chunk, (b + 1) * chunk)
        per_chunk.append(grad(chunk_loss)(weights, buffers, batch.inputs[rows], batch.targets[rows]))
    return [torch.stack([g[name].reshape(-1) for g in per_chunk]) for name in names]


def zico_from_gradients(grads: list[torch.Tensor]) -> float:
    """ZiCo of per-layer gradient stacks ``(B, numel)``: ``sum_l ln sum_k mean|g| / std(g)``.

    Elements with zero std (population std, over the ``B`` rows) are left out; a layer
    with none left (its sum is 0) contributes nothing, as ``caculate_zico`` skips it.

    The per-element mean and std are computed in the gradients' own dtype with NumPy's
    order of operations (``mean = sum / B``; ``std = sqrt(sum((g - mean)^2) / B)``), as the
    reference's ``np.mean``/``np.std`` on float32 arrays do: with two batches the ratio is
    ``(|a| + |b|) / |a - b|``, so elements whose two gradients nearly coincide dominate the
    sum and their float32 std (the rounding of ``a + b``) moves the score by about 1e-4 relative;
    computing it more accurately would not be the reference's number. The ratios, their
    per-layer sums and the logs are accumulated in float64.
    """
    total = 0.0
    for g in grads:
        g = g.detach().cpu()
        count = g.shape[0]
        mean_abs = g.abs().sum(dim=0) / count
        deviation = g - g.sum(dim=0) / count
        std = ((deviation * deviation).sum(dim=0) / count).sqrt()
        keep = std != 0
        layer_sum = float((mean_abs[keep] / std[keep]).to(torch.float64).sum())
        if layer_sum != 0:
            total += math.log(layer_sum)
    return total


@proxy(
    "zico",
    higher_is_better=True,
    paper=_PAPER,
    needs=("batch", "labels"),
    passes=("multi_batch_grads",),
    shares_network=True,
    n_batches=2,
)
def zico(net: nn.Module, batch: ProxyBatch, *, n_batches: int = 2) -> float:
    """Sum over Conv2d/Linear layers of ``ln sum_k mean_b|g_bk| / std_b(g_bk)`` over ``n_batches`` chunks.

    SLDGroup/ZiCo ``ZeroShotProxy/compute_zico.py`` (Li et al. 2023, arXiv:2301.11300): the
    batch is split into ``n_batches`` equal consecutive chunks (default 2, the reference's
    number of batches; the AZ-NAS NB201 protocol is 2 x 64 images, a 128-image batch), each
    chunk's mean cross-entropy is differentiated to the weights, and the per-element mean of
    ``|g|`` over chunks is divided by the population std over chunks (elements with zero std
    skipped), summed per layer, logged (natural log) and summed over layers whose sum is
    nonzero. See the module docstring for the departures (float64 statistics, buffers left
    untouched). Higher is better.

    Raises:
        ValueError: ``n_batches`` < 2 (the std over one batch is 0 everywhere), a batch that
            does not split into ``n_batches`` equal non-empty chunks, or a network without
            Conv2d/Linear layers.
    """
    if isinstance(n_batches, bool) or not isinstance(n_batches, int) or n_batches < 2:
        raise ValueError(f"zico: n_batches must be an integer >= 2 (the std over batches), got {n_batches!r}")
    if batch.size < n_batches or batch.size % n_batches:
        raise ValueError(
            f"zico: a batch of {batch.size} images does not split into {n_batches} equal chunks; "
            f"use a batch size that is a multiple of {n_batches} (the reference protocol: {n_batches} x 64 = "
            f"{n_batches * 64})"
        )
    return zico_from_gradients(chunk_weight_gradients(net, batch, n_batches))
