"""CRoZe: consistency of features, weights and gradients between a network and a perturbed copy.

Ha, Kim & Hwang, NeurIPS 2023, "Generalizable Lightweight Proxy for Robust NAS against Diverse
Perturbations" (arXiv:2306.05031). The score follows the public code, read at
HyeonjeongHa/CRoZe ``4db142e``: ``zero_cost_methods/pruners/measures/croze.py`` (the measure),
``zero_cost_methods/pruners/p_utils.py`` (``adj_weights``, the weight perturbation, and
``get_layer_metric_array_adv_feats``, which layer reads which feature),
``nasbench_space/models/nasbench2.py`` (``NAS201Model.forward(return_activated_feats=True)``,
the feature taps) and ``zero_cost_methods/pruners/predictive.py`` (the sum over layers).

What the code computes, step by step, on the network it is given:

1. Every tensor of the state dict (weights, biases, BatchNorm γ/β and running statistics) is
   made absolute, as SynFlow does, and the network and batch are cast to float64. Here the
   engine does the cast (need ``float64``) and the proxy makes its own copy absolute and
   restores the signs afterwards.
2. The robust copy θ^r: a deep copy whose every Conv2d/Linear weight (``adj_weights``: the
   state-dict tensors with more than one dimension and ``weight`` in their name) moves
   ``θ_m + β ‖θ_m‖ g_m / (‖g_m‖ + 1e-30)``, with ``g_m = ∂L/∂θ_m`` of the mean cross-entropy on
   the clean batch, norms over the whole tensor (the code takes an SGD step of lr 0.001 on
   ``-L`` and rescales the step, which is the same direction). ``β = 2``.
3. The input step on the robust copy: ``x' = clamp(x − ε sign(∇_x L(f_θr(x), y)), 0, 1)`` with
   ``ε = 0.01`` (``fgsm_attack``).
4. Clean pass: ``L(f_θ(x), y)`` backward, features tapped. Robust pass: ``L(f_θr(x'), y)``
   backward, features tapped. The robust copy's ``.grad`` is not zeroed after step 3, so its
   gradient is ``g^r = ∇L(f_θr(x)) + ∇L(f_θr(x'))``; the clean gradient is ``∇L(f_θ(x))``.
5. Per Conv2d/Linear layer ``m`` whose clean weight has a gradient (``cos₀`` = cosine along
   dim 0, ``torch.nn.CosineSimilarity(dim=0)``, i.e. one cosine per input-channel × kernel
   position for a weight and one per ``(c, h, w)`` across the batch for a feature)::

       P_m = Σ (1 + cos₀(θ^r_m, θ_m))   G_m = Σ |cos₀(g^r_m, g_m)|   Z_m = Σ (1 + cos₀(z^r, z))

   and the score is ``Σ_m |P_m G_m Z_m|``; a layer without gradient contributes 0.

Feature taps (``NAS201Model.forward``): the stem's output, the output of each reduction block
(after stages 1 and 2), the stage-3 output after the head's ReLU (the code's BN-free ``top``
applies an in-place ReLU to the tensor it already stored, so the stored feature is this
one), and the pooled vector entering the classifier: five taps for NB201. Which tap a layer
reads (``get_layer_metric_array_adv_feats``): walking ``net.modules()`` in order and counting
cells (``SearchCell``, NB201's cells) including the current one, a Conv2d reads tap
``count // 5`` and a Linear tap ``count // 5 + 1``. So the stem and cells 1–4 read tap 0, cell 5
(the last of stage 1), reduction 1 and cells 6–9 read tap 1, cell 10, reduction 2 and cells
11–14 tap 2, cell 15 tap 3 and the classifier tap 4: the last cell of each stage reads the next
stage's tap. :func:`layer_taps` reproduces this rule, with the 5 replaced by the network's
cells per stage. Networks without NB201's layout (``stem``, ``cells``, ``head_relu``,
``classifier``) are refused: the reference defines taps only for NB201 and DARTS networks.

Where the code departs from the paper (Eq. 3–10, as DESIGN.md §7 summarises them):

* the input step has a minus sign (it *lowers* the loss; the paper's FGSM adds ε sign ∇_x L),
  and the clamp to [0, 1] acts on *normalised* inputs, so every negative normalised value
  becomes 0. ``input_sign=+1`` gives the paper's step, ``clamp=None`` drops the clamp;
* no SGD step is taken: ``P_m`` compares θ^r with θ themselves, not the weights after one
  update of each network;
* ``g^r`` also holds the clean-input gradient of the robust copy (step 4);
* cosines are taken along dim 0 and summed, so each factor grows with the layer's fan-in
  (``P_m ≤ 2 · C_in k²``) or the tap's size (``Z_m ≤ 2 · C H W``), instead of one bounded cosine
  per layer; the features are shared by layers through the tap rule above, not per layer;
* the outer ``|·|`` changes nothing (all three factors are non-negative).

Other choices of the reference, kept: the network is the measure's ``bn=False`` copy
(``measures/__init__.py``: ``get_prunable_copy(bn=False)``, no BatchNorm in stem, cells and
head, the reduction blocks keep theirs; need ``no_bn``, the preset chooses which BNs go);
train mode throughout (BatchNorm on batch statistics); mean cross-entropy on the true labels.
The reference scored each architecture on a new batch of 8 augmented CIFAR training images
(``main.py`` ``--batch_size 8``, ``--seed 42`` set once by ``proxy.py``; ``dataset.py``
mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010)); those are a preset's choice,
not the proxy's. Nothing here is random: the score depends only on the network and batch.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies._layers import PRUNABLE_TYPES, prunable_layers, sum_layer_values
from proxybench.proxies.registry import proxy
from proxybench.proxies.synflow import linearize, restore_signs

__all__ = ["croze", "feature_taps", "input_step", "layer_taps", "perturb_weights"]

_PAPER = "arXiv:2306.05031 (Ha, Kim & Hwang 2023, CRoZe, NeurIPS 2023)"

#: ``adj_weights``'s guard against a zero gradient (``p_utils.py`` ``EPS``).
_EPS = 1e-30


def _loss(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    out = net(inputs)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{type(net).__name__} returned {type(out).__name__}; croze needs the logits tensor")
    return F.cross_entropy(out, targets)


def _grads(loss: torch.Tensor, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
    """``torch.autograd.grad`` keeping ``None`` for a tensor the loss does not reach."""
    return list(torch.autograd.grad(loss, list(tensors), allow_unused=True))


def _weights(net: nn.Module) -> list[torch.Tensor]:
    weights = [layer.weight for layer in prunable_layers(net)]
    for w in weights:
        w.requires_grad_(True)
    return weights


# ----------------------------------------------------------------------------- feature taps


def _nb201_layout(net: nn.Module) -> tuple[list[nn.Module], int]:
    """The reduction blocks of an NB201-shaped network and its cells per stage."""
    from proxybench.spaces.nb201_net import NB201Cell, ResidualReduction

    missing = [a for a in ("stem", "cells", "head_relu", "classifier") if not hasattr(net, a)]
    if missing or not isinstance(net.classifier, nn.Linear):
        raise TypeError(
            f"croze taps features at an NB201Network's stem, reduction blocks, head ReLU and classifier input; "
            f"{type(net).__name__} lacks {missing or ['a Linear classifier']}"
        )
    blocks = list(net.cells)
    reductions = [b for b in blocks if isinstance(b, ResidualReduction)]
    first = blocks.index(reductions[0]) if reductions else len(blocks)
    per_stage = sum(isinstance(b, NB201Cell) for b in blocks[:first])
    if per_stage < 1:
        raise TypeError(f"croze: {type(net).__name__} has no NB201 cell before its first reduction block")
    return reductions, per_stage


def feature_taps(net: nn.Module) -> list[tuple[nn.Module, str]]:
    """Where the features are read, in tap order: ``(module, "output" | "input")``.

    The stem's output, each reduction block's output, the head ReLU's output (the map entering
    global pooling) and the classifier's input (the pooled vector): five taps on NB201, as
    ``NAS201Model.forward(return_activated_feats=True)`` in the reference.

    Raises:
        TypeError: ``net`` lacks NB201's ``stem``/``cells``/``head_relu``/``classifier``.
    """
    reductions, _ = _nb201_layout(net)
    taps: list[tuple[nn.Module, str]] = [(net.stem, "output")]
    taps += [(block, "output") for block in reductions]
    taps += [(net.head_relu, "output"), (net.classifier, "input")]
    return taps


def layer_taps(net: nn.Module) -> list[tuple[nn.Module, int]]:
    """Every Conv2d/Linear layer with the index (into :func:`feature_taps`) of the feature it reads.

    The reference's rule (``p_utils.get_layer_metric_array_adv_feats``): walk ``net.modules()``
    counting NB201 cells, the current one included; a Conv2d reads tap ``count // k`` and a
    Linear ``count // k + 1``, ``k`` being the cells per stage (the reference hard-codes 5).

    Raises:
        TypeError: As :func:`feature_taps`, or a layer would read a tap that does not exist.
    """
    from proxybench.spaces.nb201_net import NB201Cell

    _, per_stage = _nb201_layout(net)
    n_taps = len(feature_taps(net))
    plan: list[tuple[nn.Module, int]] = []
    cells = 0
    for module in net.modules():
        if isinstance(module, NB201Cell):
            cells += 1
        if isinstance(module, PRUNABLE_TYPES):
            tap = cells // per_stage + (1 if isinstance(module, nn.Linear) else 0)
            if tap >= n_taps:
                raise TypeError(f"croze: {module} would read feature {tap} of {n_taps}; not an NB201 layout")
            plan.append((module, tap))
    return plan


class _Recorder:
    """Forward hooks storing each tap's tensor (detached) for one forward pass."""

    def __init__(self, taps: list[tuple[nn.Module, str]]) -> None:
        self.values: list[torch.Tensor | None] = [None] * len(taps)
        self._handles = []
        for i, (module, where) in enumerate(taps):
            if where == "input":
                self._handles.append(module.register_forward_pre_hook(self._keep_input(i)))
            else:
                self._handles.append(module.register_forward_hook(self._keep_output(i)))

    def _store(self, i: int, value: object) -> None:
        if self.values[i] is not None:
            raise RuntimeError(f"croze: feature tap {i} ran twice in one forward pass")
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"croze: feature tap {i} produced {type(value).__name__}, not a tensor")
        self.values[i] = value.detach()

    def _keep_input(self, i: int):
        return lambda module, inputs: self._store(i, inputs[0])

    def _keep_output(self, i: int):
        return lambda module, inputs, output: self._store(i, output)

    def remove(self) -> list[torch.Tensor]:
        for h in self._handles:
            h.remove()
        missing = [i for i, v in enumerate(self.values) if v is None]
        if missing:
            raise RuntimeError(f"croze: feature taps {missing} did not run in the forward pass")
        return self.values  # type: ignore[return-value]


def _tapped_loss_grads(
    net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, taps: list[tuple[nn.Module, str]]
) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """One forward with the taps recording, then the loss gradient of every Conv2d/Linear weight."""
    weights = _weights(net)
    recorder = _Recorder(taps)
    try:
        loss = _loss(net, inputs, targets)
    finally:
        features = recorder.remove()
    return features, _grads(loss, weights)


# ----------------------------------------------------------------------------- perturbations


@torch.no_grad()
def _move(weights: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None], beta: float) -> None:
    for w, g in zip(weights, grads):
        if g is not None:
            w.add_(g * (beta * w.norm() / (g.norm() + _EPS)))


def perturb_weights(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, beta: float) -> None:
    """Move every Conv2d/Linear weight in place to ``θ_m + β ‖θ_m‖ g_m / ‖g_m‖``, ``g_m = ∂L/∂θ_m``.

    ``L`` is the mean cross-entropy of ``net`` on ``(inputs, targets)``; norms are over the
    whole weight tensor, so ``‖θ^r_m − θ_m‖ = β ‖θ_m‖`` for every layer with a non-zero
    gradient. A layer the loss does not reach (or with a zero gradient) is left as it is, as
    the reference's ``adj_weights`` (``p_utils.py``) leaves it; biases and BatchNorm parameters
    are never moved.
    """
    weights = _weights(net)
    _move(weights, _grads(_loss(net, inputs, targets), weights), beta)


def input_step(
    net: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    epsilon: float,
    sign: float = -1.0,
    clamp: Sequence[float] | None = (0.0, 1.0),
    weights: Sequence[torch.Tensor] = (),
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """The reference's ``fgsm_attack``: ``x' = clamp(x + sign · ε · sign(∇_x L(f(x), y)))``.

    Args:
        net: The network whose loss gradient sets the step (the robust copy).
        inputs: ``x``; not modified.
        targets: True labels.
        epsilon: Step size ε (per element, L∞).
        sign: ``-1`` (the reference: a step that lowers the loss) or ``+1`` (FGSM as printed).
        clamp: ``(low, high)`` applied to ``x'``, or ``None``.
        weights: Tensors whose gradient of the same loss is returned too (the reference lets
            the robust network's ``.grad`` keep it).

    Returns:
        ``x'`` (detached) and the gradients of ``weights`` (``None`` where unreached).
    """
    x = inputs.detach().clone().requires_grad_(True)
    grads = _grads(_loss(net, x, targets), [x, *weights])
    step = grads[0] if grads[0] is not None else torch.zeros_like(x)
    with torch.no_grad():
        stepped = x + (sign * epsilon) * step.sign()
        if clamp is not None:
            stepped = stepped.clamp(clamp[0], clamp[1])
    return stepped.detach(), grads[1:]


def _cos0(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a, b, dim=0)


def _check(beta: float, epsilon: float, input_sign: float, clamp: Sequence[float] | None) -> None:
    if not beta >= 0:
        raise ValueError(f"croze: beta must be >= 0 (the relative size of the weight step), got {beta}")
    if not epsilon >= 0:
        raise ValueError(f"croze: epsilon must be >= 0 (its direction is input_sign), got {epsilon}")
    if input_sign not in (-1, 1):
        raise ValueError(f"croze: input_sign must be -1 (the reference) or +1 (FGSM as printed), got {input_sign}")
    if clamp is not None and (len(clamp) != 2 or not clamp[0] < clamp[1]):
        raise ValueError(f"croze: clamp must be None or (low, high) with low < high, got {clamp!r}")


@proxy(
    "croze",
    higher_is_better=True,
    paper=_PAPER,
    needs=("batch", "labels", "no_bn", "float64"),
    passes=("perturbed_pair",),
    description="CRoZe: sum over layers of feature, weight and gradient consistency with a perturbed copy",
    beta=2.0,
    epsilon=0.01,
    input_sign=-1,
    clamp=(0.0, 1.0),
)
def croze(
    net: nn.Module,
    batch: ProxyBatch,
    *,
    beta: float = 2.0,
    epsilon: float = 0.01,
    input_sign: float = -1,
    clamp: Sequence[float] | None = (0.0, 1.0),
) -> float:
    """``Σ_m |P_m G_m Z_m|`` between the |θ| network and its weight- and input-perturbed copy.

    Follows HyeonjeongHa/CRoZe ``zero_cost_methods/pruners/measures/croze.py`` and
    ``p_utils.py`` (``adj_weights``, ``get_layer_metric_array_adv_feats``); the steps, the
    feature taps and where the code departs from the paper are in the module docstring.

    Args:
        net: An NB201-shaped network (:func:`feature_taps`); its own copy (made absolute here,
            signs restored before returning). The engine passes the BN-free float64 copy.
        batch: Normalised images and true labels.
        beta: Relative size of the per-layer weight step, ``‖θ^r_m − θ_m‖ = β ‖θ_m‖`` (2).
        epsilon: Size of the per-pixel input step (0.01).
        input_sign: ``-1``: ``x − ε sign ∇_x L`` as the code; ``+1``: FGSM as the paper prints it.
        clamp: Bounds applied to the stepped input, ``(0, 1)`` as the code (on normalised
            inputs), or ``None``.

    Returns:
        The score (float64 sum over layers).

    Raises:
        TypeError: ``net`` is not NB201-shaped or does not return logits.
        ValueError: A setting is out of range.
    """
    _check(beta, epsilon, input_sign, clamp)
    taps = feature_taps(net)
    plan = layer_taps(net)
    x, y = batch.inputs, batch.targets
    negative = linearize(net)
    try:
        robust = copy.deepcopy(net)
        perturb_weights(robust, x, y, beta)
        robust_taps = feature_taps(robust)
        x_step, first = input_step(
            robust, x, y, epsilon=epsilon, sign=input_sign, clamp=clamp, weights=_weights(robust)
        )
        feats, grads = _tapped_loss_grads(net, x, y, taps)
        feats_r, second = _tapped_loss_grads(robust, x_step, y, robust_taps)
        with torch.no_grad():
            z = [(1 + _cos0(fr, f)).sum() for f, fr in zip(feats, feats_r)]
            values = []
            robust_layers = prunable_layers(robust)
            for (layer, tap), layer_r, g, g1, g2 in zip(plan, robust_layers, grads, first, second):
                if g is None:
                    continue
                g_r = sum((t for t in (g1, g2) if t is not None), torch.zeros_like(g))
                p = (1 + _cos0(layer_r.weight, layer.weight)).sum()
                values.append((p * _cos0(g_r, g).abs().sum() * z[tap]).abs())
        return sum_layer_values(values)
    finally:
        restore_signs(net, negative)
