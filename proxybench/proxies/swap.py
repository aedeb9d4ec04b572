"""SWAP-Score and regularised SWAP-Score: distinct sample-wise activation patterns of the ReLUs.

Peng, Song, Fayek, Ciesielski and Chang 2024, "SWAP-NAS: Sample-Wise Activation Patterns for
Ultra-fast NAS" (ICLR 2024, arXiv:2403.04161). Reference: pym1024/SWAP
``src/metrics/swap.py`` (classes ``SWAP`` and ``SampleWiseActivationPatterns``, function
``cal_regular_factor``), driven by ``correlation.py`` (the repository's only correlation script,
for DARTS) with ``src/utils/utilities.py`` (``network_weight_gaussian_init``,
``count_parameters``).

The reference, reproduced here:

* a forward hook on every ``nn.ReLU`` (``isinstance``: subclasses count, ``ReLU6``/``LeakyReLU``
  do not) that keeps the ReLU's output when its input is 4-D (a conv feature map);
* one forward of 16 images (``--input_samples 16``: the first batch of an unshuffled CIFAR-10
  training loader, normalised) without gradients, in train mode (``eval()`` is never called,
  so BatchNorm uses the 16 images' statistics);
* the kept outputs flattened per sample and concatenated to ``A`` (16 × neurons),
  ``sign(A)`` (0 or 1 after a ReLU), transposed to one row per neuron, and the score is the
  number of distinct rows — the number of distinct 16-bit on/off patterns a neuron shows
  across the samples (``torch.unique(dim=0)``), at most ``min(#neurons, 2^16)``;
* before each of ``--repeats 32`` forwards the weights are redrawn by
  ``network_weight_gaussian_init`` (Conv2d and Linear weights N(0, 1), biases 0; BatchNorm2d
  and GroupNorm γ = 1, β = 0) and the score is the mean over the repeats;
* regularised: each repeat's count times ``exp(-(Θ - μ)² / σ)``, ``Θ`` the number of
  parameters (``named_parameters`` whose name lacks ``"auxiliary"``) divided by 1e3 — note
  ``σ`` is not squared and there is no factor 2.

Departures: the distinct patterns are counted by packing each neuron's bits into one int64
(``sum_i b_i 2^i``) and counting distinct integers (the same number as ``unique(dim=0)``, much
faster; a fallback does rows for more than 62 samples); weights are redrawn once per repeat in
``modules()`` order (the reference's ``net.apply(network_weight_gaussian_init)`` redraws every
subtree again from each of its ancestors — the same distribution, more draws); a BatchNorm
without affine parameters is skipped rather than crashing ``nn.init.ones_(None)``; draws come
from torch's global generator, which the engine seeds (the reference never seeds: its
``SWAP(seed=...)`` only calls ``manual_seed`` when the seed changes); a non-finite activation
raises.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies.activation import gaussian_init as _gaussian_init
from proxybench.proxies.passes import shared
from proxybench.proxies.registry import proxy

__all__ = ["swap", "swap_reg", "swap_relus", "count_distinct_patterns", "pattern_counts", "regular_factor",
           "reference_param_count"]

_PAPER = "arXiv:2403.04161 (Peng et al. 2024, SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS, ICLR)"
_INITS = ("gaussian", "default")
_MAX_TABLE = 24  # samples whose codes are counted in a table of 2^N flags (float32-exact packing)
_MAX_PACKED = 62  # samples whose bits fit one int64 code


def swap_relus(net: nn.Module) -> list[nn.Module]:
    """The modules SWAP hooks: every ``nn.ReLU`` instance (the reference's ``isinstance`` test)."""
    return [m for m in net.modules() if isinstance(m, nn.ReLU)]


def count_distinct_patterns(codes: Sequence[torch.Tensor]) -> int:
    """Number of distinct columns over boolean matrices ``(N, D_l)`` (samples × neurons), all layers together.

    Equals the reference's ``torch.unique(sign(A).T, dim=0).size(0)`` for ``A`` the
    concatenation of the layers along neurons. Each neuron's column is packed into the
    integer ``sum_i b_i 2^i`` (a bijection between patterns and integers): for ``N <= 24`` by
    a float32 matrix product (every partial sum is an integer below 2^24, so exact) marked in
    a table of the ``2^N`` possible codes, for ``N <= 62`` in int64 then ``unique``;
    beyond, the rows themselves are compared.
    """
    if not codes:
        return 0
    n, device = codes[0].shape[0], codes[0].device
    if n <= _MAX_TABLE:
        weights = torch.pow(2.0, torch.arange(n, dtype=torch.float32, device=device))
        seen = torch.zeros(2**n, dtype=torch.bool, device=device)
        for c in codes:
            seen[(weights @ c.to(torch.float32)).to(torch.int64)] = True
        return int(seen.sum())
    if n <= _MAX_PACKED:
        weights = torch.pow(2, torch.arange(n, dtype=torch.int64, device=device))
        distinct = [torch.unique((c.to(torch.int64) * weights[:, None]).sum(dim=0)) for c in codes]
        return int(torch.unique(torch.cat(distinct)).numel())
    rows = torch.cat([c.T.to(torch.uint8) for c in codes], dim=0)
    return int(torch.unique(rows, dim=0).shape[0])


def _forward_patterns(net: nn.Module, relus: list[nn.Module], x: torch.Tensor) -> int:
    """One forward of ``x``; the number of distinct activation patterns of the hooked ReLUs."""
    n = x.shape[0]
    kept: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if not (isinstance(inputs, tuple) and inputs and inputs[0].dim() == 4):
            return  # the reference keeps a ReLU's output only when its input is a 4-D feature map
        flat = output.detach().reshape(n, -1)
        if not bool(torch.isfinite(flat).all()):
            raise ValueError("swap: a ReLU output has non-finite entries (the network's activations overflowed)")
        kept.append(flat > 0)  # sign() of a ReLU output: 1 where positive, 0 where zero

    handles = [m.register_forward_hook(keep) for m in relus]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    if not kept:
        raise ValueError(f"swap: no nn.ReLU of {type(net).__name__} was called on a 4-D feature map")
    return count_distinct_patterns(kept)


def pattern_counts(net: nn.Module, batch: ProxyBatch, *, n_samples: int, repeats: int, init: str) -> tuple[int, ...]:
    """The distinct-pattern count of each repeat (the pass swap and swap_reg share).

    Per repeat: redraw the weights (``init="gaussian"``) then one forward, without gradients,
    in the mode given, of the first ``n_samples`` images. ``init="default"`` scores the
    network as given, once.

    Raises:
        ValueError: Bad settings, a batch smaller than ``n_samples``, no ReLU to hook, or
            non-finite activations.
    """
    n, r = int(n_samples), int(repeats)
    if init not in _INITS:
        raise ValueError(f"swap: init must be one of {_INITS}, got {init!r}")
    if n < 1 or r < 1:
        raise ValueError(f"swap: n_samples and repeats must be >= 1, got {n_samples!r} and {repeats!r}")
    if init == "default" and r != 1:
        raise ValueError("swap: repeats > 1 needs init='gaussian' (with the given weights every repeat is the same)")
    if batch.size < n:
        raise ValueError(f"swap uses the first {n} samples of the batch, but the batch has {batch.size}")
    relus = swap_relus(net)
    if not relus:
        raise ValueError(f"swap: {type(net).__name__} has no nn.ReLU module to hook")
    x = batch.inputs[:n]
    counts = []
    with torch.no_grad():
        for _ in range(r):
            if init == "gaussian":
                _gaussian_init(net)
            counts.append(_forward_patterns(net, relus, x))
    return tuple(counts)


def _shared_counts(net: nn.Module, batch: ProxyBatch, n_samples: int, repeats: int, init: str) -> tuple[int, ...]:
    return shared(f"swap_counts:n={int(n_samples)}:repeats={int(repeats)}:init={init}",
                  lambda: pattern_counts(net, batch, n_samples=n_samples, repeats=repeats, init=init))


def reference_param_count(net: nn.Module) -> int:
    """Parameters as the reference's ``count_parameters`` (×1e3): ``named_parameters`` not named ``auxiliary``."""
    return sum(p.numel() for name, p in net.named_parameters() if "auxiliary" not in name)


def regular_factor(n_params: int, mu: float, sigma: float, param_unit: float) -> float:
    """``exp(-(Θ - μ)² / σ)`` with ``Θ = n_params / param_unit`` (the reference's ``cal_regular_factor``)."""
    if not sigma > 0:
        raise ValueError(f"swap_reg: sigma must be > 0, got {sigma!r}")
    if not param_unit > 0:
        raise ValueError(f"swap_reg: param_unit must be > 0, got {param_unit!r}")
    theta = n_params / float(param_unit)
    return math.exp(-((theta - float(mu)) ** 2) / float(sigma))


# ---------------------------------------------------------------------------- proxies
@proxy(
    "swap",
    higher_is_better=True,
    paper=_PAPER,
    needs=("batch",),
    passes=("feature_forward",),
    n_samples=16,
    repeats=32,
    init="gaussian",
)
def swap(net: nn.Module, batch: ProxyBatch, *, n_samples: int = 16, repeats: int = 32,
         init: str = "gaussian") -> float:
    """SWAP-Score: distinct per-neuron on/off patterns of the ReLUs over 16 images, mean of 32 redraws.

    Follows pym1024/SWAP ``src/metrics/swap.py`` (``SWAP.forward``,
    ``SampleWiseActivationPatterns.calSWAP``) as ``correlation.py`` runs it; see the module
    docstring for the exact rules and departures.

    Args:
        n_samples: Images used, the first of the batch (reference ``--input_samples 16``).
        repeats: Gaussian redraws averaged (reference ``--repeats 32``).
        init: ``"gaussian"`` (reference ``network_weight_gaussian_init`` before each repeat) or
            ``"default"`` (score the network as built; needs ``repeats=1``).

    Raises:
        ValueError: See :func:`pattern_counts`.
    """
    counts = _shared_counts(net, batch, n_samples, repeats, init)
    return float(sum(counts)) / len(counts)


@proxy(
    "swap_reg",
    higher_is_better=True,
    paper=_PAPER,
    needs=("batch",),
    passes=("feature_forward",),
    n_samples=16,
    repeats=32,
    init="gaussian",
    mu=1.5,
    sigma=1.5,
    param_unit=1e6,
)
def swap_reg(net: nn.Module, batch: ProxyBatch, *, n_samples: int = 16, repeats: int = 32, init: str = "gaussian",
             mu: float = 1.5, sigma: float = 1.5, param_unit: float = 1e6) -> float:
    """Regularised SWAP-Score: each repeat's count times ``exp(-(Θ - μ)² / σ)``, averaged.

    ``Θ`` = :func:`reference_param_count` / ``param_unit``. The formula is the reference's
    ``cal_regular_factor`` (pym1024/SWAP ``src/metrics/swap.py``), whose ``count_parameters``
    gives thousands of parameters (``param_unit=1e3``). The repository ships no NB201 script
    and no μ, σ; the defaults here (μ = σ = 1.5 with Θ in millions, i.e. near NB201's largest
    network, 1.53 M parameters) could not be checked against the paper's text and are a
    setting to override (see /work/notes/swap.md). The counts are shared with :func:`swap`.

    Args:
        n_samples, repeats, init: As :func:`swap`.
        mu: ``μ``, in units of ``param_unit`` parameters.
        sigma: ``σ`` (> 0), in squared units of ``param_unit`` (it divides the squared difference).
        param_unit: Parameters per unit of ``Θ`` (reference code: 1e3).

    Raises:
        ValueError: ``sigma`` or ``param_unit`` not positive, or as :func:`swap`.
    """
    factor = regular_factor(reference_param_count(net), mu, sigma, param_unit)
    counts = _shared_counts(net, batch, n_samples, repeats, init)
    return float(sum(c * factor for c in counts)) / len(counts)
