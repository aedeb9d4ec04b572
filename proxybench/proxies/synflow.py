"""SynFlow: the synaptic flow of the network with every weight made positive.

``synflow = sum_l sum |W_l ⊙ dR/dW_l|`` over every ``nn.Conv2d``/``nn.Linear`` weight
(:func:`~proxybench.proxies._layers.prunable_layers`), where ``R = sum f_|θ|(1)`` is the sum of
the logits of the network whose every parameter *and buffer* has been replaced by its absolute
value, fed one all-ones input of the batch's image shape ``(1, C, H, W)``.

Tanaka et al. 2020 (arXiv:2006.05467) define it for pruning; Abdelfattah et al. 2021
(arXiv:2101.08134) use it as a zero-cost NAS proxy. Choices follow the two reference
implementations, which agree line for line (SamsungLabs zero-cost-nas
``foresight/pruners/measures/synflow.py``; NASLib
``naslib/predictors/utils/pruners/measures/synflow.py``):

* every tensor of ``net.state_dict()`` is made absolute (weights, biases, BatchNorm γ/β *and*
  its running statistics), and the signs are restored afterwards;
* float64 (the references call ``net.double()``): on the NB201 all-``nor_conv_3x3`` network
  without BatchNorm ``R`` is about 1e50, beyond float32 but far below float64's 1.8e308. The
  engine casts the copy (need ``float64``); a score that still overflows comes back as
  ``inf`` and the engine records it as non-finite;
* the network stays in the mode it is given: the references never call ``eval()``, so the
  engine's train mode is theirs. BatchNorm2d in train mode accepts the single all-ones
  sample because it normalises over ``N·H·W`` values (it fails only on a 1×1 map, which
  NB201 never feeds a BatchNorm); the error would be raised, not hidden;
* ``synflow`` runs on the BN-free copy built by the engine (need ``no_bn``; which BNs go is
  the preset's choice: NASLib removes all, zero-cost-nas keeps NB201's reduction-block BNs);
  ``synflow_bn`` keeps every BN. Both are the same function registered twice, as the
  references' stacked ``@measure`` decorators do;
* a layer the output does not reach (a dead NB201 edge) contributes 0.

``R`` and the gradients are computed with ``torch.autograd.grad`` on the layer weights only, so
no ``.grad`` is left on the network.
"""

from __future__ import annotations

import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies._layers import prunable_layers, sum_layer_values
from proxybench.proxies.registry import proxy

__all__ = ["synflow", "linearize", "restore_signs"]

_PAPER = "arXiv:2006.05467 (Tanaka et al. 2020, SynFlow); as a NAS proxy arXiv:2101.08134"


@torch.no_grad()
def linearize(net: nn.Module) -> dict[str, torch.Tensor]:
    """Make every tensor of ``net.state_dict()`` absolute in place; return where each was negative.

    ``state_dict()`` tensors share storage with the parameters and buffers, so this covers
    biases and BatchNorm statistics too, as the references' ``linearize`` does. The boolean
    masks (one byte per element) are all :func:`restore_signs` needs: where a value was
    negative it is negated back, elsewhere it is kept, which equals the references'
    multiplication by the stored ``sign`` (``sign(0) = 0`` multiplies an ``abs`` of 0).
    """
    negative: dict[str, torch.Tensor] = {}
    for name, tensor in net.state_dict().items():
        if tensor.dtype == torch.bool:
            continue
        negative[name] = tensor < 0
        tensor.abs_()
    return negative


@torch.no_grad()
def restore_signs(net: nn.Module, negative: dict[str, torch.Tensor]) -> None:
    """Undo :func:`linearize`: negate back every element that was negative before it."""
    for name, tensor in net.state_dict().items():
        mask = negative.get(name)
        if mask is not None and mask.shape == tensor.shape:
            tensor.copy_(torch.where(mask, tensor.neg(), tensor))


@proxy("synflow", higher_is_better=True, paper=_PAPER, needs=("no_bn", "float64"), passes=("abs_ones",))
@proxy(
    "synflow_bn",
    higher_is_better=True,
    paper=_PAPER,
    needs=("float64",),
    passes=("abs_ones",),
    description="SynFlow with every BatchNorm kept (zero-cost-nas/NASLib 'synflow_bn')",
)
def synflow(net: nn.Module, batch: ProxyBatch) -> float:
    """Synaptic flow ``sum |W ⊙ dR/dW|``, ``R = sum f_|θ|(1)``, over every Conv2d/Linear weight.

    Only the batch's image shape, device and dtype are read: the input is one all-ones sample
    ``(1, C, H, W)``. Every state-dict tensor is made absolute first and its sign restored
    after (see the module docstring for the references, ``measures/synflow.py`` in
    zero-cost-nas and NASLib, and their defaults). Tanaka et al. 2020, arXiv:2006.05467.

    Returns:
        The score; ``inf`` when it overflows the network's dtype.
    """
    layers = prunable_layers(net)
    if not layers:
        raise ValueError(f"{type(net).__name__} has no Conv2d/Linear layer for SynFlow to score")
    negative = linearize(net)
    try:
        weights = [layer.weight for layer in layers]
        for w in weights:
            w.requires_grad_(True)
        ones = batch.inputs.new_ones((1, *batch.input_shape))
        out = net(ones)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"{type(net).__name__} returned {type(out).__name__}; SynFlow needs a tensor output")
        grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
        with torch.no_grad():
            return sum_layer_values(
                0.0 if g is None else (w * g).abs().sum() for w, g in zip(weights, grads)
            )
    finally:
        restore_signs(net, negative)
