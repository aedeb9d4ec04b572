"""TE-NAS (Chen, Gong & Wang, ICLR 2021): NTK condition number and number of linear regions.

TE-NAS ranks networks by two training-free indicators: the condition number
``κ = λ_max / λ_min`` of the neural tangent kernel (trainability; lower is better) and the
number of linear regions ``R`` the ReLU network cuts its input space into (expressivity;
higher is better), and combines them by the sum of their ranks. Reference: VITA-Group/TENAS
``lib/procedures/ntk.py`` (``get_ntk_n``), ``lib/procedures/linear_region_counter.py``
(``Linear_Region_Collector``, ``LinearRegionCount``), ``prune_tenas.py`` (networks, repeats,
rankings) and ``prune_launch.py`` (the command line for NAS-Bench-201).

The reference scores the candidates of a pruning search over the NB201 supernet; with a
single op per edge that supernet *is* the architecture's network (each op's output is scaled
by its softmax weight, exactly 1 when one op is left), so these proxies score one
architecture as the reference scores a candidate. Its NB201 protocol, read from the code:

* **NTK** (``prune_func_rank``: ``get_ntk_n(loader, [network_origin, network], recalbn=0,
  train_mode=True, num_batch=1)``): on its own *small* network, ``model_config`` =
  ``C=3, N=1`` with the stem (stem conv 3→3 + BN, one cell per stage at 3/6/12 channels, the
  two ResNet reduction blocks, head BN-ReLU-pool-linear): here ``builder(channels=3,
  cells_per_stage=1, bn="all")``, the same macro structure. One batch of ``--batch_size 72``
  CIFAR training images (``prune_launch.py`` passes 72 for NB201; 16 is only
  ``prune_tenas.py``'s argparse default) in train mode: one forward of the whole batch, then
  for each sample ``n`` a backward of ``sum_c logit[n, c]`` (``backward(ones_like)``), the
  gradient row being every parameter whose name contains ``'weight'`` and that got a
  gradient (conv and linear weights *and BatchNorm γ*; no biases). BatchNorm normalises with
  the statistics of the whole batch, so each row includes the cross-sample terms BN's batch
  mean and variance bring; this is reproduced exactly (one forward, one vmapped backward per
  sample). ``NTK = G Gᵀ``, ``κ = eig[-1] / eig[0]`` (ascending). ``--repeat 3``: three
  batches (a new iterator over the shuffled loader each time); the reference averages the
  three *relative changes* ``(κ_supernet − κ_candidate)/κ_supernet``, whose per-architecture
  counterpart is the mean of the three ``κ``.
* **Linear regions** (``Linear_Region_Collector(input_size=(1000, 1, 3, 3),
  sample_batch=3, ...)``, ``forward_batch_sample``): on a *thin* network, ``model_config_thin``
  = ``C=1, N=1, depth=1, use_stem=False``: only the first cell, at width 1, fed directly
  (no stem) with one-channel 3×3 inputs, followed by the head BN(1)-ReLU. Inputs are real
  training images: ``RandomCrop(3)`` of a normalised image, of one random channel
  (``RandChannel(1)``), 1000 per batch, 3 batches per count (each batch its own forward, so
  BN uses each batch's statistics). Every ``nn.ReLU`` with a 4-D input is hooked; a sample's
  pattern is the sign of every ReLU output unit; ``R`` = the number of distinct patterns
  among the 3000 samples (the reference's half-precision matmul counts exactly that).
  ``--repeat 3`` fresh draws of 3000 inputs; the mean of the three counts (the reference
  averages relative changes, as for the NTK).
* **Init**: ``prune_launch.py`` passes ``--init kaiming_normal``, so the code calls
  ``init_model(net, 'kaiming_normal')``, ``'kaiming_normal_fanout'`` (NTK) and
  ``'kaiming_normal_fanin'`` (regions), but ``init_model`` only knows ``'kaiming_norm_fanin'``
  and ``'kaiming_norm_fanout'``: every call falls through and the networks keep **PyTorch's
  default initialisation** — the same weights for all three repeats, which then differ only
  by their data. ``init="default"`` reproduces that; ``init="kaiming_normal_fanout"`` /
  ``"kaiming_normal_fanin"`` give what the code meant (Kaiming normal, ReLU gain, biases 0,
  BN γ=1 β=0, redrawn before every repeat).

Departures (each documented where it happens): the repeats take consecutive chunks of the
one run-level batch instead of new loader batches (so the NTK needs ``repeat × n_samples``
= 216 images); the crops for the regions are drawn from the run's batch, distinct
(image, channel, position) triples without replacement, instead of one crop per fresh image;
the NTK Gram matrix and its eigenvalues are computed in float64 (the reference: float32
``torch.symeig``); a singular or zero kernel gives ``inf``/``NaN`` instead of the
reference's ratio of a noisy (possibly negative) ``λ_min`` and its ``np.nan_to_num(nan=1e5)``
(available as ``reference_nan_to_num=True``).

The rank-sum ensemble is computed across architectures, not here (see the notes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies.activation import relu_modules
from proxybench.proxies.registry import proxy

__all__ = [
    "tenas_ntk",
    "tenas_lr",
    "INITS",
    "reinitialize",
    "ntk_weights",
    "ntk_gram",
    "condition_number",
    "thin_blocks",
    "activation_patterns",
    "count_distinct_rows",
    "count_linear_regions",
    "draw_crops",
]

_PAPER = (
    "arXiv:2102.11535 (Chen, Gong & Wang 2021, Neural Architecture Search on ImageNet in Four GPU Hours: "
    "A Theoretically Inspired Perspective, ICLR)"
)

#: ``init`` settings: keep the builder's PyTorch default (what the reference effectively runs),
#: or the Kaiming-normal schemes its ``init_model`` was meant to apply.
INITS = ("default", "kaiming_normal_fanin", "kaiming_normal_fanout")

_NETWORKS = ("own", "given")


# ---------------------------------------------------------------------------- shared helpers
@torch.no_grad()
def reinitialize(net: nn.Module, init: str) -> None:
    """Re-draw ``net``'s weights in place as the reference's ``init_model`` would.

    ``"default"`` leaves the network untouched (the reference's actual behaviour: its
    ``--init kaiming_normal`` matches no branch of ``init_model``). The Kaiming schemes follow
    ``prune_tenas.py``'s ``kaiming_normal_fan{in,out}_init``: every Conv2d/Linear weight
    ``kaiming_normal_(mode, nonlinearity='relu')`` and its bias 0; BatchNorm2d γ=1, β=0.

    Raises:
        ValueError: Unknown ``init``.
    """
    if init not in INITS:
        raise ValueError(f"unknown TE-NAS init {init!r}; choose one of {', '.join(INITS)}")
    if init == "default":
        return
    mode = "fan_in" if init.endswith("fanin") else "fan_out"
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _check_choice(name: str, value: str, choices: Sequence[str], proxy_name: str) -> None:
    if value not in choices:
        raise ValueError(f"{proxy_name}: unknown {name} {value!r}; choose one of {', '.join(choices)}")


def _build(builder: Callable[..., nn.Module] | None, proxy_name: str, dtype: torch.dtype, **options: object) -> nn.Module:
    if builder is None:
        raise ValueError(
            f"{proxy_name} scores a network of its own and needs the `builder` keyword "
            "(the engine passes it; in a direct call pass functools.partial(space.build, arch, num_classes))"
        )
    net = builder(**options)
    return net.to(dtype=dtype).train()


# ---------------------------------------------------------------------------- NTK
def ntk_weights(net: nn.Module) -> list[torch.Tensor]:
    """The parameters the reference's NTK differentiates: every one whose name contains ``'weight'``.

    ``get_ntk_n`` filters ``network.named_parameters()`` by the substring ``'weight'``, so conv
    and linear weights *and* BatchNorm's γ (also called ``weight``) are in, biases and BN β out.
    """
    return [p for name, p in net.named_parameters() if "weight" in name]


def ntk_gram(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The empirical NTK ``G Gᵀ`` (float64, ``N × N``) of the summed logits on the batch ``x``.

    Row ``n`` of ``G`` is ``d(sum_c f(x)[n, c]) / dθ`` over :func:`ntk_weights`, from **one**
    forward of the whole batch in the mode the network is in (train: BatchNorm uses the
    batch's statistics, so a row carries the cross-sample terms of those statistics, as the
    reference's per-sample ``logit[n:n+1].backward(ones)`` after one batch forward does).
    The ``N`` backward passes run as one vmapped backward (``is_grads_batched``), which gives
    the same rows as the reference's loop. Weights the output does not reach (the
    reference's ``W.grad is None``) are left out. The Gram matrix is accumulated in float64
    from the network-precision gradients.

    Raises:
        TypeError: The network does not return a ``(N, classes)`` tensor.
        ValueError: No weight reaches the output.
    """
    weights = ntk_weights(net)
    for w in weights:
        w.requires_grad_(True)
    out = net(x)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
        raise TypeError(
            f"{type(net).__name__} must return logits (N, classes) for the NTK, got "
            f"{type(out).__name__}{tuple(out.shape) if isinstance(out, torch.Tensor) else ''}"
        )
    n = out.shape[0]
    per_sample = out.sum(dim=1)
    if not weights or not per_sample.requires_grad:
        raise ValueError(f"tenas_ntk: no parameter named '*weight*' of {type(net).__name__} reaches its output")
    eye = torch.eye(n, dtype=per_sample.dtype, device=per_sample.device)
    grads = torch.autograd.grad(per_sample, weights, grad_outputs=eye, is_grads_batched=True, allow_unused=True)
    rows = [g.reshape(n, -1) for g in grads if g is not None]
    if not rows:
        raise ValueError(f"tenas_ntk: no parameter named '*weight*' of {type(net).__name__} reaches its output")
    g64 = torch.cat(rows, dim=1).detach().to(torch.float64)
    return g64 @ g64.T


def condition_number(gram: torch.Tensor) -> float:
    """``λ_max / λ_min`` of a positive semi-definite Gram matrix (ascending ``eigvalsh``, float64).

    ``G Gᵀ`` is PSD, so a computed ``λ_min <= 0`` means singular to working precision:
    ``inf`` (the reference divides by whatever ``λ_min`` its float32 solver returns, a
    possibly negative rounding error). A zero kernel (``λ_max <= 0``: the output does not
    depend on the weights) gives ``NaN`` (0/0; the reference's ``np.nan_to_num`` turns it into 1e5).
    """
    eig = torch.linalg.eigvalsh(gram.to(torch.float64))
    lo, hi = float(eig[0]), float(eig[-1])
    if hi <= 0.0:
        return float("nan")
    if lo <= 0.0:
        return float("inf")
    return hi / lo


@proxy(
    "tenas_ntk",
    higher_is_better=False,
    paper=_PAPER,
    needs=("batch", "builder"),
    passes=("own_network", "per_sample_grads"),
    network="own",
    channels=3,
    cells_per_stage=1,
    n_samples=72,
    repeat=3,
    init="default",
    reference_nan_to_num=False,
)
def tenas_ntk(
    net: nn.Module,
    batch: ProxyBatch,
    *,
    builder: Callable[..., nn.Module] | None = None,
    network: str = "own",
    channels: int = 3,
    cells_per_stage: int = 1,
    n_samples: int = 72,
    repeat: int = 3,
    init: str = "default",
    reference_nan_to_num: bool = False,
) -> float:
    """NTK condition number ``λ_max/λ_min`` (mean over repeats), TE-NAS's trainability indicator.

    Follows VITA-Group/TENAS ``lib/procedures/ntk.py`` ``get_ntk_n`` as ``prune_tenas.py``
    calls it for NB201 (module docstring): per repeat ``r`` the Gram matrix :func:`ntk_gram`
    of the images ``batch.inputs[r·n : (r+1)·n]`` (the reference takes a new loader batch
    per repeat; here consecutive chunks of the run's batch, so it must hold
    ``repeat × n_samples`` images), then :func:`condition_number`; the score is the mean.

    Args:
        builder: The engine's ``builder`` need (required for ``network="own"``).
        network: ``"own"`` (reference): score ``builder(channels, cells_per_stage, bn="all")``,
            built from torch's global generator at the call; ``"given"``: score ``net`` itself
            (e.g. the full NB201 network, as AZ-NAS's re-implementation does).
        channels, cells_per_stage: The own network's size (reference ``C=3, N=1``).
        n_samples: Images per NTK (reference ``--batch_size 72`` for NB201).
        repeat: Number of batches averaged (reference ``--repeat 3``).
        init: See :data:`INITS`; ``"default"`` keeps the built weights for every repeat (the
            reference's behaviour), a Kaiming scheme redraws them before each repeat.
        reference_nan_to_num: Apply the reference's ``np.nan_to_num(κ, nan=100000.0)`` to each
            repeat's κ (NaN → 1e5, ±inf → ±float max) instead of keeping the honest value.

    Raises:
        ValueError: Batch smaller than ``repeat × n_samples``, bad settings, no builder, or no
            weight reaching the output.
    """
    _check_choice("network", network, _NETWORKS, "tenas_ntk")
    _check_choice("init", init, INITS, "tenas_ntk")
    n, reps = int(n_samples), int(repeat)
    if n < 1 or reps < 1:
        raise ValueError(f"tenas_ntk: n_samples and repeat must be >= 1, got {n_samples!r}, {repeat!r}")
    if batch.size < n * reps:
        raise ValueError(
            f"tenas_ntk needs repeat × n_samples = {reps} × {n} = {n * reps} images (one chunk per repeat), "
            f"got a batch of {batch.size}"
        )
    dtype = batch.inputs.dtype
    model = net if network == "given" else _build(
        builder, "tenas_ntk", dtype, channels=int(channels), cells_per_stage=int(cells_per_stage), bn="all"
    )
    model.train()
    conds: list[float] = []
    for r in range(reps):
        reinitialize(model, init)
        kappa = condition_number(ntk_gram(model, batch.inputs[r * n:(r + 1) * n]))
        if reference_nan_to_num:
            kappa = float(np.nan_to_num(kappa, copy=True, nan=100000.0))
        conds.append(kappa)
    return float(sum(conds) / len(conds))


# ---------------------------------------------------------------------------- linear regions
def thin_blocks(builder: Callable[..., nn.Module] | None, *, channels: int, cells_per_stage: int, depth: int,
                dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """The reference's thin network body: the first ``depth`` blocks of a freshly built network.

    ``model_config_thin`` (``C=1, N=1, depth=1, use_stem=False``) keeps the cells up to
    ``depth`` and never calls its stem, so the input enters the first cell directly and must
    have ``channels`` channels (1: the reference's one-channel crops). Found generically as
    the children of the built network's ``cells`` ``ModuleList`` (NB201Network's stages and
    reduction blocks in forward order).

    Raises:
        ValueError: No builder, a network without a ``cells`` ModuleList, or ``depth`` out of range.
    """
    full = _build(builder, "tenas_lr", dtype, channels=int(channels), cells_per_stage=int(cells_per_stage), bn="all")
    cells = getattr(full, "cells", None)
    if not isinstance(cells, nn.ModuleList):
        raise ValueError(
            f"tenas_lr builds its thin network from the built network's `cells` ModuleList; "
            f"{type(full).__name__} has none"
        )
    if not 1 <= int(depth) <= len(cells):
        raise ValueError(f"tenas_lr: depth must be in 1..{len(cells)}, got {depth!r}")
    return nn.Sequential(*list(cells)[: int(depth)]).train()


class _PatternRecorder:
    """Forward hooks on every ReLU module (:func:`relu_modules`) that keep ``output > 0`` of 4-D inputs.

    The reference hooks ``nn.ReLU`` modules and keeps outputs whose input is 4-D
    (``len(input[0].size()) == 4``); the sign of a ReLU output is ``output > 0``. Each unit's
    bit is packed 8 to a byte so a full network's patterns stay small.
    """

    def __init__(self, net: nn.Module) -> None:
        self.modules = relu_modules(net)
        self.codes: list[torch.Tensor] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> _PatternRecorder:
        self._handles = [m.register_forward_hook(self._keep) for m in self.modules]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()

    def _keep(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(inputs, tuple) and inputs and inputs[0].dim() == 4:
            self.codes.append(_pack_bits(output.detach() > 0))


_BIT_WEIGHTS = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def _pack_bits(code: torch.Tensor) -> torch.Tensor:
    """``(N, ...)`` booleans → ``(N, ceil(D/8))`` uint8, D = units per sample (zero padded)."""
    flat = code.reshape(code.shape[0], -1)
    pad = (-flat.shape[1]) % 8
    if pad:
        flat = F.pad(flat, (0, pad))
    weights = _BIT_WEIGHTS.to(flat.device)
    return (flat.reshape(flat.shape[0], -1, 8).to(torch.uint8) * weights).sum(dim=2, dtype=torch.uint8)


@torch.no_grad()
def activation_patterns(model: nn.Module, x: torch.Tensor, head: bool) -> torch.Tensor:
    """One forward of ``x``; each sample's packed on/off pattern over every hooked ReLU unit.

    With ``head`` (the thin network) the output of ``model`` then goes through the
    reference's ``lastact``: a fresh ``BatchNorm2d`` (γ=1, β=0, train mode: this batch's
    statistics) and a ReLU, whose units are part of the pattern.

    Raises:
        ValueError: No ReLU unit was recorded.
    """
    with _PatternRecorder(model) as rec:
        y = model(x)
    codes = list(rec.codes)
    if head:
        if not isinstance(y, torch.Tensor) or y.dim() != 4:
            raise ValueError("tenas_lr: the thin network's body must return a 4-D feature map")
        codes.append(_pack_bits(F.relu(F.batch_norm(y, None, None, training=True, eps=1e-5)) > 0))
    if not codes:
        raise ValueError(f"tenas_lr: {type(model).__name__} has no ReLU module with a 4-D input to hook")
    return torch.cat(codes, dim=1)


def count_distinct_rows(patterns: torch.Tensor) -> int:
    """Number of distinct rows: the reference's ``sum_i 1 / #{j: pattern_j == pattern_i}``."""
    return int(torch.unique(patterns, dim=0).shape[0])


def count_linear_regions(model: nn.Module, batches: Sequence[torch.Tensor], head: bool) -> int:
    """Distinct activation patterns over all samples of ``batches``, each batch its own forward.

    As the reference's ``forward_batch_sample``: every batch is forwarded separately (in
    train mode BatchNorm uses that batch's statistics) and the patterns of all batches are
    pooled before counting (:func:`count_distinct_rows`).
    """
    return count_distinct_rows(torch.cat([activation_patterns(model, x, head) for x in batches], dim=0))


def draw_crops(inputs: torch.Tensor, total: int, crop: int | None, in_channels: int | None) -> torch.Tensor:
    """``total`` distinct crops of the images, as the reference's ``RandomCrop(crop)`` + ``RandChannel(1)``.

    Every (image, channel, top, left) combination is a candidate (channel only when
    ``in_channels == 1``; ``crop=None`` keeps the whole image, ``in_channels=None`` all its
    channels); ``total`` of them are drawn without replacement with ``torch.randperm`` from
    torch's global generator, so no crop repeats. (The reference crops one fresh training
    image per sample; a run's batch has fewer images, so they are reused at other positions
    and channels.)

    Raises:
        ValueError: Fewer distinct crops than ``total``, a crop larger than the images, or
            ``in_channels`` other than 1 or None.
    """
    n, c, h, w = inputs.shape
    if in_channels not in (None, 1):
        raise ValueError(f"tenas_lr: in_channels must be 1 (one random channel) or None (all), got {in_channels!r}")
    side_h, side_w = (h, w) if crop is None else (int(crop), int(crop))
    if not (1 <= side_h <= h and 1 <= side_w <= w):
        raise ValueError(f"tenas_lr: crop {crop!r} does not fit images of {h}×{w}")
    tops, lefts = h - side_h + 1, w - side_w + 1
    channel_choices = c if in_channels == 1 else 1
    combos = n * channel_choices * tops * lefts
    if combos < total:
        raise ValueError(
            f"tenas_lr needs {total} distinct crops but a batch of {n} images has only {combos} "
            f"({channel_choices} channel choice(s) × {tops * lefts} positions each)"
        )
    pick = torch.randperm(combos)[:total].to(inputs.device)
    pos = pick % (tops * lefts)
    rest = pick // (tops * lefts)
    channel = rest % channel_choices
    image = rest // channel_choices
    top, left = pos // lefts, pos % lefts
    rows = (top[:, None] + torch.arange(side_h, device=inputs.device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(side_w, device=inputs.device))[:, None, None, :]
    chans = (channel[:, None] if in_channels == 1 else torch.arange(c, device=inputs.device).expand(total, c))
    return inputs[image[:, None, None, None], chans[:, :, None, None], rows, cols]


@proxy(
    "tenas_lr",
    higher_is_better=True,
    paper=_PAPER,
    needs=("batch", "builder"),
    passes=("own_network",),
    network="own",
    channels=1,
    cells_per_stage=1,
    depth=1,
    inputs="images",
    crop=3,
    in_channels=1,
    n_samples=1000,
    sample_batches=3,
    repeat=3,
    init="default",
)
def tenas_lr(
    net: nn.Module,
    batch: ProxyBatch,
    *,
    builder: Callable[..., nn.Module] | None = None,
    network: str = "own",
    channels: int = 1,
    cells_per_stage: int = 1,
    depth: int = 1,
    inputs: str = "images",
    crop: int | None = 3,
    in_channels: int | None = 1,
    n_samples: int = 1000,
    sample_batches: int = 3,
    repeat: int = 3,
    init: str = "default",
) -> float:
    """Number of linear regions (mean over repeats), TE-NAS's expressivity indicator.

    Follows VITA-Group/TENAS ``lib/procedures/linear_region_counter.py`` as ``prune_tenas.py``
    uses it for NB201 (module docstring): the thin network :func:`thin_blocks` (first cell at
    width 1, no stem) plus the head BN-ReLU; per repeat ``sample_batches`` batches of
    ``n_samples`` one-channel 3×3 crops (:func:`draw_crops`, all distinct across repeats),
    each batch forwarded on its own; the count of distinct ReLU on/off patterns over the
    pooled samples (:func:`count_linear_regions`); the score is the mean over repeats.

    Args:
        builder: The engine's ``builder`` need (required for ``network="own"``).
        network: ``"own"`` (reference thin network) or ``"given"``: ``net`` itself, every
            hooked ReLU (including its own head), no extra head (AZ-NAS's re-implementation:
            the full network, ``inputs="gaussian"``, ``crop=None``, ``in_channels=None``,
            ``n_samples=64``, ``sample_batches=1``, ``repeat=1``).
        channels, cells_per_stage, depth: The thin network (reference ``C=1, N=1, depth=1``).
        inputs: ``"images"`` (reference: crops of the batch's real images) or ``"gaussian"``
            (``torch.randn`` of the crop's shape, as AZ-NAS).
        crop: Crop side (reference 3); ``None`` keeps the image size.
        in_channels: 1 (reference: one random channel per crop) or ``None`` (all channels).
        n_samples, sample_batches: Samples per forward and forwards per count (reference 1000, 3).
        repeat: Counts averaged (reference 3); with ``init="default"`` the weights are the same
            for every repeat (the reference's behaviour), only the inputs differ.
        init: See :data:`INITS`; a Kaiming scheme redraws the weights before every repeat.

    Raises:
        ValueError: Too few distinct crops in the batch, bad settings, no builder, or no
            ReLU to hook.
    """
    _check_choice("network", network, _NETWORKS, "tenas_lr")
    _check_choice("inputs", inputs, ("images", "gaussian"), "tenas_lr")
    _check_choice("init", init, INITS, "tenas_lr")
    n, batches, reps = int(n_samples), int(sample_batches), int(repeat)
    if min(n, batches, reps) < 1:
        raise ValueError(f"tenas_lr: n_samples, sample_batches and repeat must be >= 1, got {n}, {batches}, {reps}")
    dtype = batch.inputs.dtype
    if network == "own":
        model: nn.Module = thin_blocks(builder, channels=channels, cells_per_stage=cells_per_stage, depth=depth,
                                       dtype=dtype)
    else:
        model = net.train()
    total = n * batches * reps
    if inputs == "images":
        samples = draw_crops(batch.inputs, total, crop, in_channels)
    else:
        _, c, h, w = batch.inputs.shape
        if in_channels not in (None, 1):
            raise ValueError(f"tenas_lr: in_channels must be 1 or None, got {in_channels!r}")
        shape = (total, c if in_channels is None else 1, h if crop is None else int(crop), w if crop is None else int(crop))
        samples = torch.randn(shape, device=batch.inputs.device, dtype=dtype)
    counts: list[int] = []
    for r in range(reps):
        reinitialize(model, init)
        chunk = samples[r * n * batches:(r + 1) * n * batches]
        counts.append(count_linear_regions(model, list(chunk.split(n)), head=network == "own"))
    return float(sum(counts) / len(counts))
