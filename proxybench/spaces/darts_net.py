"""The DARTS CIFAR network (``NetworkCIFAR`` of quark0/darts ``cnn/model.py``), written for proxybench.

Macro structure: a stem Conv3x3(3 -> 3C, no bias) + BN; ``layers`` cells, the ones at
``layers // 3`` and ``2 * layers // 3`` reduction cells (channels doubled, stride 2 on the ops
that read the cell inputs), the others normal; each cell first maps its two inputs to ``C``
channels (``preprocess0``: FactorizedReduce when the previous cell reduced, else ReLU-Conv1x1-BN;
``preprocess1``: ReLU-Conv1x1-BN), computes nodes 2..5 and concatenates them (``4C`` channels
out); an optional auxiliary head on the output of cell ``2 * layers // 3``; global average
pooling and a linear classifier.

Operations (``cnn/operations.py``, ``affine=True`` as the evaluation network builds them):
``sep_conv_k`` = twice ReLU - depthwise k x k - pointwise 1x1 - BN (stride only in the first),
``dil_conv_k`` = ReLU - depthwise k x k dilation 2 - pointwise 1x1 - BN, ``skip_connect`` =
identity (FactorizedReduce at stride 2), ``max_pool_3x3`` and ``avg_pool_3x3`` (padding 1,
``count_include_pad=False``) without BN. Convolutions have no bias.

Module and parameter names are the reference's (``stem.0``, ``cells.3.preprocess0.op.1``,
``cells.3._ops.5.op.2``, ``auxiliary_head.features.2``, ``classifier``), so a state dict of the
reference network of the same genotype (module order as listed) loads as it is.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from proxybench.spaces.darts import CONCAT, NUM_NODES, Genotype

__all__ = ["BN_MODES", "DartsNetwork", "DartsCell", "AuxiliaryHead", "FactorizedReduce", "ReLUConvBN", "SepConv",
           "DilConv", "make_op"]

BN_MODES: dict[str, str] = {
    "all": "the DARTS network: BatchNorm after every convolution",
    "none": "every BatchNorm replaced by Identity (NASLib's SynFlow copy); parameter names unchanged",
    "foresight": "same as 'none': zero-cost-nas builds SynFlow's copy of a non-NB201 network without BatchNorm",
}


def _bn(channels: int, bn: bool) -> nn.Module:
    # Identity keeps the Sequential indices, so parameter names match across BN modes and a
    # BN-free copy takes the scored network's conv weights with load_state_dict(strict=False).
    return nn.BatchNorm2d(channels, affine=True) if bn else nn.Identity()


class ReLUConvBN(nn.Module):
    """ReLU - Conv(k, stride, padding, no bias) - BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, *, bn: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
                                _bn(c_out, bn))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """ReLU - depthwise Conv(k, dilation) - pointwise Conv1x1 - BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, *,
                 bn: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            _bn(c_out, bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked separable convolutions (the first carries the stride), each ReLU-dw-pw-BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, *, bn: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False),
            _bn(c_in, bn),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=1, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            _bn(c_out, bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halve the resolution: ReLU, two stride-2 Conv1x1 (the second on the input shifted by one
    pixel) with ``c_out // 2`` channels each, concatenated, then BN."""

    def __init__(self, c_in: int, c_out: int, *, bn: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = _bn(c_out, bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def make_op(name: str, channels: int, stride: int, *, bn: bool = True) -> nn.Module:
    """The module of operation ``name`` on ``channels`` channels (DARTS's ``OPS[name](C, stride, True)``).

    Raises:
        ValueError: ``name`` is not one of :data:`proxybench.spaces.darts.OPS`.
    """
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, bn=bn)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        k = int(name[-1])
        return SepConv(channels, channels, k, stride, k // 2, bn=bn)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        k = int(name[-1])
        return DilConv(channels, channels, k, stride, 2 * (k // 2), 2, bn=bn)
    raise ValueError(f"unknown DARTS op {name!r}")


def _drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class DartsCell(nn.Module):
    """One cell; ``pairs`` are its eight ``(op, input)`` pairs in module order.

    Args:
        pairs: Two per node 2..5 (a :class:`~proxybench.spaces.darts.Genotype` cell).
        c_prev_prev, c_prev: Channels of the two cell inputs.
        channels: ``C`` of this cell (each node has ``C`` channels; the output ``4C``).
        reduction: Stride 2 on the ops that read inputs 0 and 1.
        reduction_prev: The previous cell reduced, so input 0 has twice input 1's resolution.
        bn: Build BatchNorm (else Identity).
    """

    def __init__(self, pairs: tuple[tuple[str, int], ...], c_prev_prev: int, c_prev: int, channels: int, *,
                 reduction: bool, reduction_prev: bool, bn: bool = True) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, channels, bn=bn)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, channels, 1, 1, 0, bn=bn)
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0, bn=bn)
        self._indices = tuple(j for _, j in pairs)
        self._ops = nn.ModuleList(
            make_op(op, channels, 2 if reduction and j < 2 else 1, bn=bn) for op, j in pairs
        )
        self.multiplier = len(CONCAT)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(NUM_NODES):
            total = None
            for e in (2 * k, 2 * k + 1):
                op = self._ops[e]
                h = op(states[self._indices[e]])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = _drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in CONCAT], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's ``AuxiliaryHeadCIFAR`` (for an 8x8 input): ReLU, AvgPool 5 stride 3 (-> 2x2),
    Conv1x1 -> 128, BN, ReLU, Conv2x2 -> 768, BN, ReLU, Linear(768, classes)."""

    def __init__(self, channels: int, num_classes: int, *, bn: bool = True) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False),
            _bn(128, bn),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            _bn(768, bn),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsNetwork(nn.Module):
    """DARTS's ``NetworkCIFAR`` for one genotype; ``forward`` returns the logits ``(N, classes)``.

    The reference's ``forward`` returns ``(logits, logits_aux)``; here ``forward`` returns the
    logits alone, because every proxy (and the trainer) treats a network as a function to one
    tensor, and the auxiliary logits only feed a training loss. :meth:`forward_with_aux`
    returns both, as the reference does (``logits_aux`` is None unless training with the head).

    Drop-path is off unless ``drop_path_prob`` is set > 0 *and* the network is in train mode
    (the reference sets it per epoch while training); scoring never sets it.

    Args:
        genotype: A :class:`~proxybench.spaces.darts.Genotype`, modules built in its order.
        num_classes: Logits.
        channels: ``C`` (the stem has ``3C``; cells ``C``, ``2C``, ``4C`` per node).
        layers: Number of cells.
        auxiliary: Build the auxiliary head on cell ``2 * layers // 3``'s output.
        bn: A key of :data:`BN_MODES`.
    """

    def __init__(self, genotype: Genotype, num_classes: int = 10, *, channels: int = 32, layers: int = 8,
                 auxiliary: bool = False, bn: str = "all") -> None:
        super().__init__()
        if bn not in BN_MODES:
            raise ValueError(f"unknown DARTS bn mode {bn!r}; valid: {', '.join(BN_MODES)}")
        self.genotype = genotype
        self.bn_mode = bn
        self._layers = int(layers)
        self._auxiliary = bool(auxiliary)
        self.drop_path_prob = 0.0
        with_bn = bn == "all"
        c_curr = 3 * channels
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), _bn(c_curr, with_bn))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        c_aux = c_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = DartsCell(genotype.reduce if reduction else genotype.normal, c_prev_prev, c_prev, c_curr,
                             reduction=reduction, reduction_prev=reduction_prev, bn=with_bn)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == 2 * layers // 3:
                c_aux = c_prev
        if auxiliary:
            self.auxiliary_head = AuxiliaryHead(c_aux, num_classes, bn=with_bn)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logits, logits_aux)`` as the reference's ``forward``."""
        logits_aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == 2 * self._layers // 3 and self._auxiliary and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        return logits, logits_aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    def extra_repr(self) -> str:
        return f"layers={self._layers}, auxiliary={self._auxiliary}, bn={self.bn_mode!r}"
