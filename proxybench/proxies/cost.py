"""Cost baselines: parameter count, FLOPs and the sum of weight norms.

They need no data and no gradient, and they are the bar every zero-cost proxy has to clear:
on NAS-Bench-201 the parameter count alone reaches Spearman rho ~ .75 on CIFAR-10
(Abdelfattah et al. 2021, arXiv:2101.08134; NAS-Bench-Suite-Zero, arXiv:2210.03230).

All three follow NASLib (``naslib/predictors/utils/pruners/predictive.py``, which takes
``params`` and ``flops`` from ``tensorwatch.ModelStats``, and ``measures/l2_norm.py``), so a
score equals the NAS-Bench-Suite-Zero reference value for the same network. zero-cost-nas has
no cost measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies._layers import prunable_layers, sum_layer_values
from proxybench.proxies.registry import proxy

__all__ = ["params", "flops", "l2_norm", "count_flops", "zero_input_forward"]

_SUITE_ZERO = "arXiv:2210.03230 (NAS-Bench-Suite-Zero); baseline in arXiv:2101.08134"


@proxy(
    "params",
    higher_is_better=True,
    paper=_SUITE_ZERO,
    passes=("weights",),
    shares_network=True,
    description="Trainable parameters in millions (NASLib: every nn.Parameter with requires_grad).",
)
def params(net: nn.Module, batch: ProxyBatch) -> float:
    """Trainable parameters in millions: ``sum(p.numel() for p in net.parameters() if p.requires_grad) / 1e6``.

    NASLib's definition (``p_utils.count_parameters``; its ``params`` score, from tensorwatch,
    agrees on every NB201 network): BatchNorm affine weights, biases and the classifier count,
    buffers (running statistics) do not; a parameter shared by two modules counts once.
    ``batch`` is unused.
    """
    return sum(p.numel() for p in net.parameters() if p.requires_grad) / 1e6


# ----------------------------------------------------------------------------- flops
#
# The counting rules of tensorwatch's torchstat (``tensorwatch/model_graph/torchstat/
# compute_flops.py``), which produced NAS-Bench-Suite-Zero's ``flops`` column. They are not
# the usual "MACs of conv and linear": ReLUs, BatchNorms and poolings cost something, a
# Linear's bias costs nothing, and an adaptive pooling uses an off-by-one window. Only leaf
# modules of these types are counted; any other module (Hardswish, Sigmoid, functional calls
# such as ``F.relu`` or ``x + y``) costs 0.

_RELUS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_flops(m: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> int:
    # One multiply-add per weight per output position (k*k*C_in/groups*C_out), plus one add
    # per output element when there is a bias.
    n, c_out, h, w = y.shape
    kh, kw = m.kernel_size
    positions = n * h * w
    total = kh * kw * x.shape[1] * (c_out // m.groups) * positions
    if m.bias is not None:
        total += c_out * positions
    return total


def _bn_flops(m: nn.BatchNorm2d, x: torch.Tensor, y: torch.Tensor) -> int:
    # Normalise (1 per element) and, when affine, scale-and-shift (1 more).
    return x.numel() * (2 if m.affine else 1)


def _pool_flops(m: nn.AvgPool2d | nn.MaxPool2d, x: torch.Tensor, y: torch.Tensor) -> int:
    # k*k per output element; the output size is recomputed with floor and the first stride
    # for both axes, exactly as torchstat does (differs from y.shape only for ceil_mode or
    # unequal strides, which NB201 and OFA never use).
    # (torchstat pairs the width with kernel_size[0]/padding[0] and the height with [1].)
    k0, k1 = _pair(m.kernel_size)
    s0, _ = _pair(m.stride)
    p0, p1 = _pair(m.padding)
    out_w = math.floor((x.shape[3] + 2 * p0 - k0) / float(s0) + 1)
    out_h = math.floor((x.shape[2] + 2 * p1 - k1) / float(s0) + 1)
    return x.shape[0] * x.shape[1] * out_w * out_h * k0 * k1


def _adaptive_pool_flops(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    # torchstat's window is one element larger than the real one on each axis
    # (``end - start + 1``): global pooling of an 8x8 map costs 9*9 per channel.
    h_in, w_in = x.shape[2], x.shape[3]
    h_out, w_out = y.shape[2], y.shape[3]
    total = 0
    for i in range(h_out):
        rows = math.ceil((i + 1) * h_in / h_out) - math.floor(i * h_in / h_out) + 1
        for j in range(w_out):
            cols = math.ceil((j + 1) * w_in / w_out) - math.floor(j * w_in / w_out) + 1
            total += x.shape[0] * x.shape[1] * rows * cols
    return total


def _linear_flops(m: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> int:
    # in*out multiply-adds per row; the bias is not counted (torchstat's rule).
    rows = x.numel() // x.shape[-1]
    return rows * m.in_features * m.out_features


_RULES: tuple[tuple[tuple[type[nn.Module], ...], Callable[..., int]], ...] = (
    ((nn.Conv2d,), _conv_flops),
    ((nn.BatchNorm2d,), _bn_flops),
    ((nn.AvgPool2d, nn.MaxPool2d), _pool_flops),
    ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), _adaptive_pool_flops),
    (_RELUS, lambda m, x, y: x.numel()),
    ((nn.Upsample,), lambda m, x, y: y.numel()),
    ((nn.Linear,), _linear_flops),
)


def _rule(module: nn.Module) -> Callable[..., int] | None:
    if next(module.children(), None) is not None:  # torchstat hooks leaf modules only
        return None
    for types, rule in _RULES:
        if isinstance(module, types):
            return rule
    return None


def count_flops(net: nn.Module, input_shape: tuple[int, ...], *, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None) -> int:
    """Operations of one forward pass of a zero input of ``input_shape`` (N, C, H, W), torchstat rules.

    The network runs in eval mode (so a batch of one passes BatchNorm, as in tensorwatch)
    under ``torch.no_grad``; its training mode is restored afterwards. Every call of a
    module is counted (torchstat keeps only the last call of a module that runs twice; no
    NB201 or OFA network does).

    Args:
        net: The network.
        input_shape: Full input shape including the batch dimension.
        device: Where the input is made; defaults to the device of the first parameter.
        dtype: Input dtype; defaults to the dtype of the first floating parameter.

    Returns:
        The total count (an ``int``).
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal total
        rule = _rule(module)
        x = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
        y = output if isinstance(output, torch.Tensor) else None
        if rule is not None and x is not None and y is not None:
            total += int(rule(module, x, y))

    zero_input_forward(net, input_shape, [(m, hook) for m in net.modules() if _rule(m) is not None],
                       device=device, dtype=dtype)
    return total


def zero_input_forward(
    net: nn.Module, input_shape: tuple[int, ...], hooks: list[tuple[nn.Module, Callable[..., None]]], *,
    device: torch.device | str | None = None, dtype: torch.dtype | None = None,
) -> None:
    """One forward of zeros of ``input_shape`` with forward ``hooks`` in place: how operations are counted.

    Eval mode (a batch of one passes BatchNorm, and no running statistic changes) under
    ``torch.no_grad``; the hooks are removed and the training mode restored afterwards. The
    input is made on ``device`` / in ``dtype``, by default those of the first (floating)
    parameter.
    """
    first = next(net.parameters(), None)
    device = device if device is not None else (first.device if first is not None else "cpu")
    dtype = dtype if dtype is not None else (first.dtype if first is not None and first.is_floating_point()
                                              else torch.float32)
    handles = [module.register_forward_hook(fn) for module, fn in hooks]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros(input_shape, device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)


@proxy(
    "flops",
    higher_is_better=True,
    paper=_SUITE_ZERO,
    passes=("shape_forward",),
    shares_network=True,
    description="FLOPs in millions of one 1xCxHxW input, counted with NASLib's (tensorwatch) rules.",
)
def flops(net: nn.Module, batch: ProxyBatch) -> float:
    """Operations of one input image (``1 x C x H x W`` of the batch's image shape) in millions.

    Counting rules (tensorwatch torchstat, which NASLib's ``get_model_stats`` calls; see
    :func:`count_flops`), per leaf module and input of batch size 1:

    * Conv2d: ``H_out W_out C_out k_h k_w C_in / groups`` multiply-adds, ``+ H_out W_out C_out`` with a bias;
    * BatchNorm2d: ``numel(input)``, doubled when affine;
    * ReLU/ReLU6/PReLU/ELU/LeakyReLU: ``numel(input)``;
    * AvgPool2d/MaxPool2d: ``C H_out W_out k^2``;
    * AdaptiveAvg/MaxPool2d: ``C * sum over output cells of (window_h + 1)(window_w + 1)``;
    * Linear: ``in * out`` (bias not counted); Upsample: ``numel(output)``; all else 0.

    With these rules the NB201 network of NASLib tuple ``(0, 2, 3, 2, 3, 1)`` gives 88.307392,
    the NAS-Bench-Suite-Zero value. Only the batch's image shape is used.
    """
    return count_flops(net, (1, *batch.input_shape)) / 1e6


@proxy(
    "l2_norm",
    higher_is_better=True,
    paper="arXiv:2210.03230 (NAS-Bench-Suite-Zero)",
    passes=("weights",),
    shares_network=True,
    description="Sum over Conv2d/Linear layers of the Frobenius norm of the weight (NASLib l2_norm).",
)
def l2_norm(net: nn.Module, batch: ProxyBatch) -> float:
    """``sum_l ||W_l||_F`` over every Conv2d and Linear weight (a sum of norms, not of squares).

    NASLib ``measures/l2_norm.py`` (``mode='param'``, ``l.weight.norm()`` per layer, summed by
    ``find_measures``); biases and BatchNorm parameters are not included. ``batch`` is unused.
    """
    with torch.no_grad():
        return sum_layer_values(layer.weight.norm() for layer in prunable_layers(net))
