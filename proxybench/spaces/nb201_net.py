"""The NAS-Bench-201 network, written for proxybench (no ``xautodl`` dependency).

Macro structure (NAS-Bench-201's TinyNetwork, DESIGN.md §3): a stem Conv3×3(3→16, no
bias) + BN; three stages of five cells at 16, 32 and 64 channels, separated by a ResNet
reduction block; a head BN-ReLU-global average pool-Linear. Each cell node sums the outputs
of its incoming edges. Only the chosen ops exist as modules (a ``none`` edge has no module
and is skipped in the forward), so parameter counts equal the benchmark's: 1,531,546 for the
all-``nor_conv_3x3`` cell with 10 classes.

BatchNorm follows the benchmark: every BN is ``nn.BatchNorm2d(C)`` with the defaults
(``affine=True``, ``track_running_stats=True``, eps 1e-5, momentum 0.1), in the cells
(xautodl's ``InferCell`` builds its ops with ``affine=True, track_running_stats=True``) as
in the reduction blocks, stem and head; NASLib's NB201 graph does the same. Weights use
PyTorch's default initialisation, as both references do by default.

Parameter names are stable across BN modes (a BN that is absent is simply missing), so
``net_without_bn.load_state_dict(net.state_dict(), strict=False)`` copies every conv and
linear weight, which is how a BN-free copy for SynFlow gets the scored network's weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from proxybench.spaces.nb201 import EDGES

_Device = torch.device | str | None

__all__ = ["BN_MODES", "NB201Network", "NB201Cell", "ResidualReduction", "ReLUConvBN"]

BN_MODES: dict[str, str] = {
    "all": "the benchmark network: BatchNorm in the stem, every cell conv, the reduction blocks and the head",
    "none": "no BatchNorm anywhere (NASLib's SynFlow copy)",
    "foresight": (
        "zero-cost-nas's SynFlow copy (NAS201Model.get_prunable_copy(bn=False)): no BatchNorm in the "
        "stem, the cells or the head; the two reduction blocks keep theirs"
    ),
}
"""Which BatchNorm layers :class:`NB201Network` builds, by ``bn`` mode.

- ``"all"``: the benchmark's network.
- ``"none"``: no BatchNorm at all, as NAS-Bench-Suite-Zero (NASLib) scores SynFlow: its
  ``measures/synflow.py`` registers ``synflow`` with ``bn=False`` and ``measures/__init__.py``
  then scores ``net.get_prunable_copy(bn=False)`` (DESIGN.md §7: every BN removed).
- ``"foresight"``: what SamsungLabs zero-cost-nas (Abdelfattah et al. 2021) builds for
  SynFlow. ``foresight/models/nasbench2.py`` builds ``NAS201Model`` with ``use_bn``, and
  ``get_prunable_copy(bn=False)`` rebuilds it with ``use_bn=False``; in
  ``nasbench2_ops.py`` ``use_bn`` reaches ``stem`` (Conv without its BN), every cell
  ``ReLUConvBN`` (ReLU-Conv without BN) and ``top`` (``lastact`` = ReLU only, no BN),
  but ``reduction`` takes no ``use_bn`` and always builds ``conv_a``/``conv_b`` as
  ReLU-Conv-BN. So the copy drops the stem, cell and head BNs and keeps the 4
  reduction-block BNs. (zero-cost-nas's own network also differs elsewhere, and those
  differences are not reproduced here: its cell convs have a bias and its cell BNs have
  ``affine=False, track_running_stats=False``, and it builds all five ops on every edge
  behind a mask. Here the BN pattern is applied to the benchmark's network so that the
  copy can take the scored network's weights.) Read at SamsungLabs/zero-cost-nas
  ``nasbench2_pred.py`` (scores ``nasbench2.get_model_from_arch_str(arch_str, classes)``)
  and ``foresight/models/nasbench2.py`` / ``nasbench2_ops.py`` (Samsung's files, as
  vendored unchanged in hzf1174/RoBoT and leeyeehoo/GenNAS).
"""


class ReLUConvBN(nn.Module):
    """ReLU → Conv k×k (no bias, "same" padding) → BatchNorm (unless ``bn=False``).

    The ReLU is a module (not ``F.relu``) because activation proxies such as NWOT hook
    ``nn.ReLU`` modules, as the references do.
    """

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, *, bn: bool = True, device: _Device = None
    ) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(
            c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False, device=device
        )
        self.bn = nn.BatchNorm2d(c_out, device=device) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.relu(x))
        return x if self.bn is None else self.bn(x)


def _make_op(op: str, channels: int, bn: bool, device: _Device) -> nn.Module | None:
    """The module of one edge; ``None`` for ``none`` (the edge is skipped, not multiplied by 0)."""
    if op == "none":
        return None
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, bn=bn, device=device)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, bn=bn, device=device)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {op!r}")


class NB201Cell(nn.Module):
    """One NB201 cell: node ``j`` = sum over edges ``i -> j`` of ``op(node i)``; returns node 3.

    Edge modules live in ``self.edges`` under ``"e{i}{j}"`` (``none`` edges have no entry).
    A node all of whose inputs are ``none`` is a zero tensor of the input's shape; when that
    is node 3 the cell outputs zeros and everything after it is independent of the input,
    so the network's logits are constant (the classifier's bias while BN shifts are 0).
    Every node is computed even when it cannot reach the output, as in the references, so
    activation hooks see the same ReLUs; parameters on such dead edges get no gradient
    (``grad is None``), where the references' multiply-by-zero gives zeros.
    """

    def __init__(self, ops: Sequence[str], channels: int, *, bn: bool = True, device: _Device = None) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        plan: list[list[tuple[int, str]]] = [[], [], [], []]
        for (source, target), op in zip(EDGES, ops):
            module = _make_op(op, channels, bn, device)
            if module is not None:
                key = f"e{source}{target}"
                self.edges[key] = module
                plan[target].append((source, key))
        self._plan = tuple(tuple(inputs) for inputs in plan[1:])
        self.ops = tuple(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for inputs in self._plan:
            if not inputs:
                nodes.append(torch.zeros_like(x))
                continue
            source, key = inputs[0]
            total = self.edges[key](nodes[source])
            for source, key in inputs[1:]:
                total = total + self.edges[key](nodes[source])  # out of place: skip edges alias inputs
            nodes.append(total)
        return nodes[3]

    def extra_repr(self) -> str:
        return "ops=" + ",".join(self.ops)


class ResidualReduction(nn.Module):
    """The ResNet block between stages: halves the resolution and doubles the channels.

    ``conv_b(conv_a(x)) + shortcut(x)`` with ``conv_a`` = ReLU-Conv3×3 stride 2-BN,
    ``conv_b`` = ReLU-Conv3×3-BN and ``shortcut`` = AvgPool 2×2 stride 2 then Conv1×1 (no bias).
    """

    def __init__(self, c_in: int, c_out: int, *, bn: bool = True, device: _Device = None) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, bn=bn, device=device)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1, bn=bn, device=device)
        self.shortcut = nn.Sequential()
        self.shortcut.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2, padding=0))
        self.shortcut.add_module("conv", nn.Conv2d(c_in, c_out, kernel_size=1, bias=False, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class _Stem(nn.Module):
    def __init__(self, channels: int, *, bn: bool, device: _Device) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False, device=device)
        self.bn = nn.BatchNorm2d(channels, device=device) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.bn is None else self.bn(x)


class NB201Network(nn.Module):
    """The NAS-Bench-201 network for one cell; ``forward`` returns logits ``(N, num_classes)``.

    Modules, in construction (and so random-initialisation) order: ``stem`` (``conv``,
    ``bn``), ``cells.0`` … ``cells.16`` (five :class:`NB201Cell`, a
    :class:`ResidualReduction` at ``cells.5`` and ``cells.11``, five cells, a reduction,
    five cells), ``head_bn``, ``head_relu``, ``pool``, ``classifier``. Building consumes the
    global torch RNG only for conv/linear weights (BN starts at γ=1, β=0), so after the same
    ``torch.manual_seed`` two builds, whatever their ``bn`` mode, have identical weights.

    Args:
        ops: The six ops in canonical edge order (:func:`proxybench.spaces.nb201.parse_arch`).
        num_classes: Number of logits.
        bn: A key of :data:`BN_MODES`.
        channels: Stem width (16 in the benchmark); stages use ×1, ×2, ×4.
        cells_per_stage: 5 in the benchmark.
        device: Where parameters are created (``None``: torch's default device). Weights are
            drawn from that device's generator, so seeded builds on different devices differ;
            ``"meta"`` builds a shape-only network (fast parameter counting).

    Raises:
        ValueError: Unknown ``bn`` mode, or ``num_classes`` < 1.
    """

    def __init__(
        self,
        ops: Sequence[str],
        num_classes: int = 10,
        *,
        bn: str = "all",
        channels: int = 16,
        cells_per_stage: int = 5,
        device: _Device = None,
    ) -> None:
        super().__init__()
        if bn not in BN_MODES:
            raise ValueError(f"unknown NB201 bn mode {bn!r}; valid: {', '.join(BN_MODES)}")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
        if len(ops) != 6:
            raise ValueError(f"NB201 needs 6 ops in canonical edge order, got {list(ops)!r}")
        self.ops = tuple(ops)
        self.bn_mode = bn
        self.num_classes = int(num_classes)
        outer_bn = bn == "all"  # stem, cells and head: only the benchmark network has these
        reduction_bn = bn in ("all", "foresight")

        self.stem = _Stem(channels, bn=outer_bn, device=device)
        blocks: list[nn.Module] = []
        widths = [channels * m for m in (1, 2, 4)]
        for stage, width in enumerate(widths):
            if stage:
                blocks.append(ResidualReduction(widths[stage - 1], width, bn=reduction_bn, device=device))
            blocks.extend(NB201Cell(self.ops, width, bn=outer_bn, device=device) for _ in range(cells_per_stage))
        self.cells = nn.ModuleList(blocks)
        self.head_bn = nn.BatchNorm2d(widths[-1], device=device) if outer_bn else None
        self.head_relu = nn.ReLU(inplace=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], self.num_classes, device=device)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map that enters global pooling (after the head's BN-ReLU)."""
        x = self.stem(x)
        for block in self.cells:
            x = block(x)
        if self.head_bn is not None:
            x = self.head_bn(x)
        return self.head_relu(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.forward_features(x)), 1))

    def extra_repr(self) -> str:
        return f"bn={self.bn_mode!r}, num_classes={self.num_classes}"
