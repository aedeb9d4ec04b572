"""MeCo and MeCo_opt: minimum eigenvalue of the channel correlation of every module's output.

Jiang, Wang and Bie 2023, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
Minimum Eigenvalue of Correlation" (NeurIPS 2023, https://openreview.net/forum?id=KFm2lZiI7n).
Reference: HamsterMimi/MeCo ``correlation/NAS_Bench_201.py`` (``get_score``, the script behind
the paper's NB201/NATS-TSS correlations; ``--measure meco`` or ``meco_opt``). The same ``meco``
maths is in ``correlation/foresight/pruners/measures/meco.py`` (the measure its Zero-Cost-PT
search uses).

What the reference does, and what is reproduced here:

* a forward hook on **every** module of ``net.named_modules()`` — the network itself, every
  container and every leaf — so a tensor returned by nested modules (a ``Sequential`` and its
  last child) is scored once per module that returns it;
* the hook takes ``output[0]`` (the first sample), reshapes it to ``(C, H·W)`` and computes the
  Pearson correlation between its ``C`` channel rows (``torch.corrcoef``), sets NaN and ±inf
  entries to 0 (a zero-variance channel, e.g. a dead ReLU channel or an all-zero ``none``
  output, has an undefined correlation), and keeps the smallest real part of the eigenvalues;
* ``meco`` sums these minima over all hook calls; ``meco_opt`` instead takes ``8`` channels
  drawn without replacement (``random.sample(range(C), 8)``, fresh per hook call), the minimum
  eigenvalue of their 8×8 correlation, times ``C / 8``;
* NaN (and, in that script, ±inf) per-call values are dropped before the sum;
* one image (``--batch_size 1``: the first training image of a shuffled CIFAR loader with
  random crop and flip, ``torch.manual_seed(42)``), PyTorch's default initialisation
  (``--init_w_type none``), the network in train mode (it never calls ``eval()``).

Departures, all documented in the functions: eigenvalues by ``eigvalsh`` in float64 (the
reference's ``torch.linalg.eig`` is a general solver in float32; the matrix is symmetric, so
only rounding differs — and in NB201's third stage, with 64 channels over 8×8 = 64 positions,
the centred correlation has rank <= 63, so its true minimum is 0 and the reference's value
there is float32 noise of order 1e-7); ``meco_opt`` draws channels from torch's global
generator (the reference's Python ``random`` is never seeded); a feature map with a
non-finite entry raises instead of being zeroed; module outputs that are not tensors of at
least two dimensions are skipped (the reference would index or reshape them and fail).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies.passes import shared
from proxybench.proxies.registry import proxy

__all__ = ["meco", "meco_opt", "channel_correlations", "min_eigenvalue"]

_PAPER = ("NeurIPS 2023 (Jiang, Wang & Bie 2023, MeCo: Zero-Shot NAS with One Data and Single Forward Pass "
          "via Minimum Eigenvalue of Correlation)")
_INPUTS = ("images", "gaussian")


# ---------------------------------------------------------------------------- the shared pass
def _correlation(feature: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between the rows of ``feature`` (C, M) in float64, NaN/±inf set to 0.

    The same matrix as ``torch.corrcoef`` (covariance with Bessel's correction divided by the
    outer product of standard deviations, clipped to [-1, 1]); a row with zero variance gives
    0/0 = NaN in its row and column, diagonal included, which the reference then sets to 0.
    Entry (i, j) depends on rows i and j only, so the correlation of a subset of channels is
    the principal submatrix of this one (what lets meco_opt reuse meco's pass).
    """
    rows = feature.to(torch.float64)
    centred = rows - rows.mean(dim=1, keepdim=True)
    cov = centred @ centred.T / (rows.shape[1] - 1)  # one position per channel: 0/0, all NaN, then all 0
    std = torch.sqrt(torch.diagonal(cov))
    corr = (cov / std[:, None] / std[None, :]).clamp(-1.0, 1.0)
    return torch.where(torch.isfinite(corr), corr, torch.zeros_like(corr))


@contextmanager
def _every_module_output(net: nn.Module) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Record ``(module name, correlation of output[0])`` for every module call of a forward.

    Hooks every module of ``net.named_modules()`` (containers and the root included), as the
    reference does. A module called twice is recorded twice, in call order (hooks fire when a
    module returns, so children come before their parents). The correlation is computed in
    the hook, before any later in-place op (an ``inplace=True`` ReLU after a BatchNorm) could
    change the tensor.

    Raises (from the forward):
        ValueError: When a feature map has a non-finite entry.
    """
    recorded: list[tuple[str, torch.Tensor]] = []

    def hook_for(name: str):
        def record(module: nn.Module, inputs: object, output: object) -> None:
            if not isinstance(output, torch.Tensor) or output.dim() < 2:
                return  # not a (N, C, ...) tensor: nothing the reference could score either
            first = output[0].detach()
            feature = first.reshape(first.shape[0], -1)
            if not bool(torch.isfinite(feature).all()):
                raise ValueError(f"meco: the output of module '{name or '<root>'}' has non-finite entries "
                                 "(the network's activations overflowed)")
            recorded.append((name, _correlation(feature)))
        return record

    handles = [m.register_forward_hook(hook_for(name)) for name, m in net.named_modules()]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def channel_correlations(net: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """One forward of ``x`` without gradients; per module call, its name and the C×C correlation.

    ``x`` is forwarded as a batch (BatchNorm in train mode normalises over all of it); each
    module's output is scored on its first sample only, as the reference's ``output[0]``.
    The forward runs inside ``torch.random.fork_rng`` so that a network that draws random
    numbers (dropout) leaves the global generator as it found it: meco_opt's channel draws then
    do not depend on whether this pass ran or was taken from the cache. The buffers (BatchNorm
    running statistics, which a train-mode forward updates) are restored afterwards, so the
    network is left exactly as it came (``shares_network``).
    """
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    buffers = [(b, b.clone()) for b in net.buffers()]
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad(), _every_module_output(net) as recorded:
            net(x)
    finally:
        with torch.no_grad():  # train-mode BatchNorm updated its running statistics: put them back
            for live, saved in buffers:
                live.copy_(saved)
    return list(recorded)


def min_eigenvalue(corr: torch.Tensor) -> float:
    """Smallest eigenvalue of a symmetric matrix (``eigvalsh``, float64)."""
    return float(torch.linalg.eigvalsh(corr)[0])


def _inputs(batch: ProxyBatch, n_samples: int, inputs: str, proxy_name: str) -> torch.Tensor:
    if inputs not in _INPUTS:
        raise ValueError(f"{proxy_name}: inputs must be one of {_INPUTS}, got {inputs!r}")
    n = int(n_samples)
    if n < 1:
        raise ValueError(f"{proxy_name}: n_samples must be >= 1, got {n_samples!r}")
    if batch.size < n:
        raise ValueError(f"{proxy_name} uses the first {n} samples of the batch, but the batch has {batch.size}")
    x = batch.inputs[:n]
    if inputs == "gaussian":
        return torch.randn(x.shape, device=x.device, dtype=x.dtype)
    return x


def _correlations(net: nn.Module, batch: ProxyBatch, n_samples: int, inputs: str,
                  proxy_name: str) -> list[tuple[str, torch.Tensor]]:
    """The shared ``feature_forward`` pass of meco and meco_opt (same inputs, same network).

    Gaussian inputs are drawn *before* the cache is consulted, by each proxy, so both proxies
    consume the same random numbers whether or not the pass is shared.
    """
    x = _inputs(batch, n_samples, inputs, proxy_name)
    return shared(f"meco_correlations:n={int(n_samples)}:inputs={inputs}", lambda: channel_correlations(net, x))


# ---------------------------------------------------------------------------- meco
@proxy(
    "meco",
    higher_is_better=True,
    paper=_PAPER,
    needs=("batch",),
    passes=("feature_forward",),
    shares_network=True,
    n_samples=1,
    inputs="images",
)
def meco(net: nn.Module, batch: ProxyBatch, *, n_samples: int = 1, inputs: str = "images") -> float:
    """MeCo: ``sum over module calls of λ_min(corr(channels of output[0]))``.

    Follows HamsterMimi/MeCo ``correlation/NAS_Bench_201.py`` ``get_score(measure='meco')``:
    every module of ``net`` hooked (see :func:`_every_module_output`), the Pearson correlation
    between the ``C`` channels (rows of the ``(C, H·W)`` map of the first sample) with NaN/inf
    set to 0, its smallest eigenvalue, summed over every hook call; NaN values dropped. Module
    outputs with a single position per channel (logits, pooled features) give an all-NaN, hence
    zero, matrix and contribute exactly 0, as in the reference.

    Args:
        n_samples: Images forwarded, the first of the batch (reference NB201 protocol: 1).
            Only the first one's feature maps are scored; BatchNorm (train mode) normalises
            over all of them.
        inputs: ``"images"`` (the batch, as the reference's correlation script) or
            ``"gaussian"`` (``torch.randn`` of the same shape, as the reference's
            ``foresight/pruners/measures/meco.py``, which draws ``randn(1, 3, 64, 64)``; here
            the batch's resolution is kept).

    Raises:
        ValueError: The batch has fewer than ``n_samples`` images, an unknown ``inputs``, or a
            feature map with non-finite entries.
    """
    values = [min_eigenvalue(corr) for _, corr in _correlations(net, batch, n_samples, inputs, "meco")]
    return _sum_finite(values)


# ---------------------------------------------------------------------------- meco_opt
@proxy(
    "meco_opt",
    higher_is_better=True,
    paper=_PAPER,
    needs=("batch",),
    passes=("feature_forward",),
    shares_network=True,
    n_samples=1,
    inputs="images",
    n_channels=8,
)
def meco_opt(net: nn.Module, batch: ProxyBatch, *, n_samples: int = 1, inputs: str = "images",
             n_channels: int = 8) -> float:
    """MeCo_opt: ``sum over module calls of (C / k) · λ_min(corr of k random channels)``, k = 8.

    Follows HamsterMimi/MeCo ``correlation/NAS_Bench_201.py`` ``get_score(measure='meco_opt')``:
    the same hooks and correlation as :func:`meco`, but per hook call ``k`` distinct channels
    are drawn uniformly (the reference's ``random.sample(range(C), 8)``, a new draw per call)
    and the minimum eigenvalue of their k×k correlation is weighted by ``C / k``; NaN and inf
    values dropped. Here the draws come from torch's global generator (``randperm(C)[:k]`` per
    call, in hook order, after the forward), so the engine's seed fixes the score; the
    reference's Python ``random`` is never seeded. The k×k correlation is the principal
    submatrix of the full one, so the forward is shared with :func:`meco`.

    Args:
        n_samples: As :func:`meco` (reference: 1).
        inputs: As :func:`meco` (reference: ``"images"``).
        n_channels: ``k``, channels sampled per module output (reference: 8).

    Raises:
        ValueError: A module output has fewer than ``k`` channels (the reference's
            ``random.sample`` raises there too), ``k`` < 1, or as :func:`meco`.
    """
    k = int(n_channels)
    if k < 1:
        raise ValueError(f"meco_opt: n_channels must be >= 1, got {n_channels!r}")
    recorded = _correlations(net, batch, n_samples, inputs, "meco_opt")
    values = []
    for name, corr in recorded:
        c = corr.shape[0]
        if c < k:
            raise ValueError(f"meco_opt samples {k} channels, but module '{name or '<root>'}' outputs only {c} "
                             "(the reference's random.sample raises here too)")
        idx = torch.randperm(c)[:k].to(corr.device)
        sub = corr[idx][:, idx]
        values.append(min_eigenvalue(sub) * c / k)
    return _sum_finite(values)


def _sum_finite(values: list[float]) -> float:
    """Sum (math.fsum) of the finite values: the reference drops NaN and inf per-call values."""
    return float(math.fsum(v for v in values if math.isfinite(v)))
