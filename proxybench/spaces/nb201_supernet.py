"""The NAS-Bench-201 one-shot supernet: every op on every edge, one path per forward pass.

Same macro structure as :class:`~proxybench.spaces.nb201_net.NB201Network` (DESIGN.md §3):
stem Conv3×3 + BN, three stages of ``cells_per_stage`` cells at 16/32/64 channels with a
ResNet reduction block between stages, head BN-ReLU-pool-Linear. Each cell edge ``e{i}{j}``
holds one module per op that has one (``skip_connect`` = Identity, ``nor_conv_1x1`` and
``nor_conv_3x3`` = ReLU-Conv-BN with their own BN, ``avg_pool_3x3`` = AvgPool; ``none`` has no
module, as in the standalone network). A forward pass runs one *path*: six ops in canonical
edge order, the same cell in every position, as a standalone NB201 network has.

**Weight sharing is by module name.** The standalone network's ``cells.{c}.edges.e{ij}.<rest>``
is the supernet's ``cells.{c}.edges.e{ij}.<op>.<rest>`` for the op the architecture puts on
that edge; every other name (stem, reduction blocks, head) is the same in both. So
:func:`inherit` turns a supernet state dict into a state dict that a network built by
``get_space("nb201").build(arch)`` loads with ``strict=True``, and that network computes exactly
what the supernet computes with the path fixed to ``arch`` (the cell sums its edges in the
same order; checked bit for bit in ``tests/test_supernet.py``).

**Training** is single-path one-shot with uniform sampling (SPOS, Guo et al. 2020; what GeNAS
trains, clovaai/GeNAS ``train_supernet/train.py``: ``get_random_cand`` draws one op index per
edge uniformly for every step, one genotype for all normal cells and one for the reduction
cells). NB201 has one cell type, so one 6-op path per step (:func:`sample_path`); NB201 needs
no repair of the sampled cell (GeNAS's ``utils.check_cand`` forces DARTS's two inputs per node).

**BatchNorm.** The supernet's BN layers are shared by every path that uses them, so their
running statistics after training mix the paths; before an architecture is evaluated they
are recomputed on training images (:func:`recalibrate_bn`). GeNAS does it as SPOS says
(``evolution_search/metrics/tester_wlm.py``, ``get_cand_wlm``): running mean set to 0 and
variance to 1, then ``ceil(max_train_img_size / batch_size)`` = ceil(850 / 64) = **14**
training batches forwarded in train mode without gradients, the BN momentum left at its
default 0.1 (so the statistics are an exponential average that still weighs the reset values
by 0.9^14 ≈ 0.23). ``average="cumulative"`` (momentum ``None``) gives the plain average of the
batches instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from proxybench.spaces.nb201 import EDGES, OPS, format_arch, parse_arch
from proxybench.spaces.nb201_net import ReLUConvBN, ResidualReduction, _Stem

__all__ = [
    "GENAS_RECALIBRATION_IMAGES",
    "NB201Supernet",
    "NB201SuperCell",
    "sample_path",
    "inherit",
    "supernet_key",
    "recalibrate_bn",
    "recalibration_batches",
]

_Device = torch.device | str | None

#: Images GeNAS forwards to recompute BN statistics (``max_train_img_size=850``, README and
#: ``tester_wlm.py``); with its batch of 64 that is ceil(850 / 64) = 14 batches.
GENAS_RECALIBRATION_IMAGES = 850

_EDGE_KEY = re.compile(r"^(cells\.\d+\.edges\.e(\d)(\d))\.(.+)$")
_EDGE_POS = {edge: k for k, edge in enumerate(EDGES)}


def _make_candidate(op: str, channels: int, device: _Device) -> nn.Module | None:
    if op == "none":
        return None
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, device=device)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, device=device)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {op!r}")


class NB201SuperCell(nn.Module):
    """A cell with every op on every edge: ``edges["e{i}{j}"][op]`` (no entry for ``none``)."""

    def __init__(self, channels: int, *, device: _Device = None) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        for source, target in EDGES:
            candidates = nn.ModuleDict()
            for op in OPS:
                module = _make_candidate(op, channels, device)
                if module is not None:
                    candidates[op] = module
            self.edges[f"e{source}{target}"] = candidates

    def forward(self, x: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
        # The same order of operations as NB201Cell, so a fixed path is bit-identical to it.
        nodes = [x]
        for target in (1, 2, 3):
            total = None
            for source in range(target):
                op = ops[_EDGE_POS[(source, target)]]
                if op == "none":
                    continue
                out = self.edges[f"e{source}{target}"][op](nodes[source])
                total = out if total is None else total + out  # out of place: skip edges alias inputs
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[3]


class NB201Supernet(nn.Module):
    """The NB201 one-shot supernet; ``forward(x, ops)`` runs the path ``ops`` (six op names).

    Module names follow :class:`~proxybench.spaces.nb201_net.NB201Network` with the op name
    inserted after each edge (see the module docstring), built in the same order, with
    PyTorch's default initialisation.

    Args:
        num_classes: Number of logits.
        channels: Stem width (16 in the benchmark).
        cells_per_stage: 5 in the benchmark.
        device: Where parameters are created.

    Example:
        >>> net = NB201Supernet(10)
        >>> logits = net(torch.randn(2, 3, 32, 32), ("nor_conv_3x3",) * 6)
    """

    def __init__(self, num_classes: int = 10, *, channels: int = 16, cells_per_stage: int = 5,
                 device: _Device = None) -> None:
        super().__init__()
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.channels = int(channels)
        self.cells_per_stage = int(cells_per_stage)
        self.path: tuple[str, ...] | None = None
        self.stem = _Stem(channels, bn=True, device=device)
        blocks: list[nn.Module] = []
        widths = [channels * m for m in (1, 2, 4)]
        for stage, width in enumerate(widths):
            if stage:
                blocks.append(ResidualReduction(widths[stage - 1], width, device=device))
            blocks.extend(NB201SuperCell(width, device=device) for _ in range(cells_per_stage))
        self.cells = nn.ModuleList(blocks)
        self.head_bn = nn.BatchNorm2d(widths[-1], device=device)
        self.head_relu = nn.ReLU(inplace=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], self.num_classes, device=device)

    def set_path(self, ops: Sequence[str] | str | None) -> None:
        """Fix the path ``forward(x)`` runs when given no ops (an architecture string or six ops)."""
        self.path = None if ops is None else _ops(ops)

    def forward(self, x: torch.Tensor, ops: Sequence[str] | str | None = None) -> torch.Tensor:
        path = _ops(ops) if ops is not None else self.path
        if path is None:
            raise ValueError("NB201Supernet.forward needs ops (six op names or an arch string), or set_path() first")
        x = self.stem(x)
        for block in self.cells:
            x = block(x, path) if isinstance(block, NB201SuperCell) else block(x)
        x = self.head_relu(self.head_bn(x))
        return self.classifier(torch.flatten(self.pool(x), 1))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, channels={self.channels}, cells_per_stage={self.cells_per_stage}"


def _ops(ops: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(ops, str):
        return parse_arch(ops)
    ops = tuple(ops)
    format_arch(ops)  # validates: six known ops
    return ops


def sample_path(seed: int, step: int) -> tuple[str, ...]:
    """The path of training step ``step``: one op per edge, uniform over the five ops.

    Drawn from ``numpy.random.default_rng([seed, step])``, so it depends only on the seed and
    the step (a resumed run draws the same paths as an uninterrupted one).
    """
    rng = np.random.default_rng([int(seed), int(step)])
    return tuple(OPS[int(i)] for i in rng.integers(0, len(OPS), size=len(EDGES)))


def supernet_key(key: str, ops: Sequence[str]) -> str:
    """The supernet name of a standalone network's state-dict ``key`` for the cell ``ops``.

    Raises:
        KeyError: ``key`` belongs to a ``none`` edge (which has no module).
    """
    match = _EDGE_KEY.match(key)
    if match is None:
        return key
    prefix, source, target, rest = match.groups()
    op = ops[_EDGE_POS[(int(source), int(target))]]
    if op == "none":
        raise KeyError(f"{key}: edge e{source}{target} is 'none' in this cell and has no weights")
    return f"{prefix}.{op}.{rest}"


def inherit(supernet_state: Mapping[str, torch.Tensor], arch: str | Sequence[str]) -> dict[str, torch.Tensor]:
    """The state dict of the standalone NB201 network of ``arch``, taken from a supernet's.

    Every tensor of the standalone network (parameters and BN buffers) is the supernet's
    tensor of that edge's chosen op; stem, reduction blocks and head are shared. The result
    loads with ``strict=True`` into ``get_space("nb201").build(arch, num_classes)``. Tensors
    are the supernet's (not copies): ``load_state_dict`` copies them.

    Args:
        supernet_state: ``NB201Supernet.state_dict()`` (or a checkpoint's copy of it).
        arch: NB201 string or six ops in canonical edge order.

    Raises:
        KeyError: The state dict is not an NB201 supernet's.
    """
    ops = _ops(arch)
    out: dict[str, torch.Tensor] = {}
    for key, value in supernet_state.items():
        match = _EDGE_KEY.match(key)
        if match is None:
            out[key] = value
            continue
        prefix, source, target, rest = match.groups()
        op, _, tail = rest.partition(".")
        if op not in OPS or not tail:
            raise KeyError(f"{key} is not an NB201 supernet parameter (expected '{prefix}.<op>.<name>')")
        if ops[_EDGE_POS[(int(source), int(target))]] == op:
            out[f"{prefix}.{tail}"] = value
    return out


def _bn_layers(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(net: nn.Module, batches: Iterable[Any], *, average: str = "ema",
                   device: torch.device | str | None = None, path: Sequence[str] | str | None = None) -> int:
    """Recompute every BatchNorm's running statistics of ``net`` from ``batches``.

    The running mean is set to 0 and the variance to 1, then each batch is forwarded in
    training mode without gradients. ``average="ema"`` keeps each BN's momentum (0.1: GeNAS's
    ``get_cand_wlm``); ``"cumulative"`` uses momentum ``None`` for the plain average over the
    batches (restored afterwards). The training flag is restored.

    Args:
        net: A network (or an :class:`NB201Supernet`, then with ``path``).
        batches: ``(inputs, targets)`` pairs or tensors of inputs.
        average: ``"ema"`` or ``"cumulative"``.
        device: Where to run (default: where ``net`` is).
        path: Ops for a supernet's forward.

    Returns:
        The number of batches forwarded.

    Raises:
        ValueError: Unknown ``average``.
    """
    if average not in ("ema", "cumulative"):
        raise ValueError(f"average must be 'ema' or 'cumulative', got {average!r}")
    device = torch.device(device) if device is not None else next(net.parameters()).device
    layers = _bn_layers(net)
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.running_mean.zero_()
        m.running_var.fill_(1.0)
        m.num_batches_tracked.zero_()
        if average == "cumulative":
            m.momentum = None
    was_training = net.training
    net.train()
    count = 0
    try:
        for item in batches:
            x = item[0] if isinstance(item, (tuple, list)) else item
            x = x.to(device)
            if path is not None:
                net(x, path)
            else:
                net(x)
            count += 1
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        net.train(was_training)
    return count


def recalibration_batches(n_batches: int | None, batch_size: int) -> int:
    """``n_batches``, or GeNAS's ``ceil(850 / batch_size)`` when it is ``None``."""
    if n_batches is None:
        return math.ceil(GENAS_RECALIBRATION_IMAGES / int(batch_size))
    return int(n_batches)
