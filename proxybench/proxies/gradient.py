"""Gradient proxies: grad_norm, snip, plain, fisher and grasp.

Each scores every ``nn.Conv2d``/``nn.Linear`` weight ``W`` (:func:`~proxybench.proxies._layers.prunable_layers`)
from the gradient ``g = dL/dW`` of ``L`` = mean cross-entropy of the network's logits on the batch's
true labels, sums over the weight's elements and over layers, and returns one float.

Both references agree on every choice below (SamsungLabs zero-cost-nas,
``foresight/pruners/measures/{grad_norm,snip,grasp,fisher,plain}.py``, and NASLib,
``naslib/predictors/utils/pruners/measures/{grad_norm,snip,grasp,fisher,plain}.py``):

* loss ``F.cross_entropy`` with its default mean over the batch;
* the whole batch in one pass (``split_data=1``; the references split only to survive
  CUDA out-of-memory, which changes fisher and grad_norm, so it is not offered here);
* the network in the mode it is given: the engine passes train mode, as the references
  do (BatchNorm uses batch statistics);
* a layer whose weight gets no gradient (not on any path to the loss) contributes 0.

Sums are accumulated in float64 over per-layer tensors of the network's dtype.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies._layers import prunable_layers, sum_layer_values
from proxybench.proxies.passes import shared
from proxybench.proxies.registry import proxy

__all__ = ["grad_norm", "snip", "plain", "fisher", "grasp", "FisherRecorder", "LossPass", "loss_gradients", "loss_pass"]

_ZC_NAS = "arXiv:2101.08134 (Abdelfattah et al. 2021, Zero-Cost Proxies for Lightweight NAS)"


def _logits(net: nn.Module, batch: ProxyBatch, temperature: float = 1.0) -> torch.Tensor:
    out = net(batch.inputs)
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"{type(net).__name__} returned {type(out).__name__}; gradient proxies need a network "
            "whose forward returns the logits tensor (N, num_classes)"
        )
    return out / temperature if temperature != 1.0 else out


def _loss(net: nn.Module, batch: ProxyBatch, temperature: float = 1.0) -> torch.Tensor:
    return F.cross_entropy(_logits(net, batch, temperature), batch.targets)


def _weights(net: nn.Module) -> list[torch.Tensor]:
    weights = [layer.weight for layer in prunable_layers(net)]
    for w in weights:
        w.requires_grad_(True)
    return weights


def _grads(outputs: torch.Tensor, inputs: Sequence[torch.Tensor], **kwargs: bool) -> list[torch.Tensor]:
    """``torch.autograd.grad`` with unreached inputs given a zero gradient (as the references do)."""
    grads = torch.autograd.grad(outputs, list(inputs), allow_unused=True, **kwargs)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]


@dataclass(frozen=True)
class LossPass:
    """One forward+backward pass of the loss: what grad_norm, snip, plain and fisher read.

    Attributes:
        grads: ``dL/dW`` per Conv2d/Linear weight, in :func:`prunable_layers` order, detached.
        fisher: Per layer (same order) the per-channel ``1/2 mean_n (sum_hw a dL/da)^2``, or
            None for a layer whose output never reached the loss.
    """

    grads: list[torch.Tensor]
    fisher: list[torch.Tensor | None]


def loss_pass(net: nn.Module, batch: ProxyBatch) -> LossPass:
    """The shared loss pass (:mod:`proxybench.proxies.passes`), computed once per architecture.

    One forward with hooks on every Conv2d/Linear output and one backward to the weights:
    the weight gradients and fisher's activation statistics come from the same pass (the
    output hooks fire as the backward pass reaches each activation).
    """
    from proxybench.proxies.bundle import bundled, forward_bundle

    if bundled("loss_backward"):
        loss = forward_bundle(net, batch).loss
        assert loss is not None
        return loss
    return shared("loss_pass", lambda: _compute_loss_pass(net, batch))


class FisherRecorder:
    """Records fisher's per-channel statistic of every Conv2d/Linear output during one backward pass.

    Inside ``with FisherRecorder(net) as rec:`` each layer's output gets a gradient hook in
    the forward pass; the backward pass of the loss then fills ``rec.fisher`` (one entry per
    layer in :func:`prunable_layers` order, None for a layer whose output never reached the
    loss). :meth:`stop` detaches the hooks, so a later backward pass through the same graph
    (the input Jacobian of a shared forward, :mod:`proxybench.proxies.bundle`) is not counted.
    """

    def __init__(self, net: nn.Module) -> None:
        self.layers = prunable_layers(net)
        self._index = {id(layer): i for i, layer in enumerate(self.layers)}
        self.fisher: list[torch.Tensor | None] = [None] * len(self.layers)
        # Activations waiting for their gradient. The gradient hook looks its activation up here
        # instead of closing over it, so no tensor -> hook -> tensor cycle outlives the pass.
        self._pending: dict[int, tuple[nn.Module, torch.Tensor, int]] = {}
        self._module_handles: list[torch.utils.hooks.RemovableHandle] = []
        self._tensor_handles: list[torch.utils.hooks.RemovableHandle] = []
        self._keys = itertools.count()

    def __enter__(self) -> FisherRecorder:
        self._module_handles = [layer.register_forward_hook(self._forward_hook) for layer in self.layers]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._module_handles:
            handle.remove()
        self.stop()

    def stop(self) -> None:
        """Stop recording: later backward passes leave ``fisher`` as it is."""
        for handle in self._tensor_handles:
            handle.remove()
        self._tensor_handles.clear()
        self._pending.clear()

    def _forward_hook(self, layer: nn.Module, inputs: tuple, act: torch.Tensor) -> None:
        if isinstance(act, torch.Tensor) and act.requires_grad:
            key = next(self._keys)
            self._pending[key] = (layer, act, act._version)
            self._tensor_handles.append(act.register_hook(functools.partial(self._grad_hook, key)))

    def _grad_hook(self, key: int, grad: torch.Tensor) -> None:
        layer, act, version = self._pending.pop(key)
        if act._version != version:
            raise RuntimeError(
                f"fisher: the output of {layer} was modified in place after the layer ran; "
                "the activation it needs is lost (use out-of-place ops after conv/linear layers)"
            )
        a, g = act.detach(), grad.detach()
        per_sample = (a * g).sum(dim=tuple(range(2, a.dim()))) if a.dim() > 2 else a * g
        value = 0.5 * per_sample.pow(2).mean(0)
        slot = self._index[id(layer)]
        previous = self.fisher[slot]
        self.fisher[slot] = value if previous is None else previous + value


def loss_gradients(net: nn.Module, logits: torch.Tensor, batch: ProxyBatch, retain_graph: bool = False,
                   create_graph: bool = False) -> list[torch.Tensor]:
    """``dL/dW`` of the cross-entropy of ``logits`` (a forward of ``net``) for every weight.

    Detached, unless ``create_graph``: then each gradient is a graph that can be
    differentiated again (:func:`hessian_times_gradient`); its values are the same.
    """
    weights = _weights(net)
    loss = F.cross_entropy(logits, batch.targets)
    grads = _grads(loss, weights, retain_graph=retain_graph, create_graph=create_graph)
    return grads if create_graph else [g.detach() for g in grads]


def hessian_times_gradient(net: nn.Module, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``H g`` per Conv2d/Linear weight, from gradients ``g`` built with ``create_graph=True``.

    The gradient of ``g_detached · g`` with respect to the weights (a Hessian-vector product:
    no Hessian is formed). A weight off every path to the loss has a constant zero gradient
    (no graph) and gets ``H g = 0``; so do all weights when nothing in the loss depends on one.
    """
    weights = _weights(net)
    terms = [(g.detach() * g).sum() for g in grads if g.requires_grad]
    if not terms:
        return [torch.zeros_like(w) for w in weights]
    return [h.detach() for h in _grads(sum(terms), weights)]


def _compute_loss_pass(net: nn.Module, batch: ProxyBatch) -> LossPass:
    _weights(net)
    with FisherRecorder(net) as recorder:
        grads = loss_gradients(net, _logits(net, batch), batch)
    return LossPass(grads=grads, fisher=recorder.fisher)


def _weight_grads(net: nn.Module, batch: ProxyBatch) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    return _weights(net), loss_pass(net, batch).grads


@proxy("grad_norm", higher_is_better=True, paper=_ZC_NAS, needs=("batch", "labels"), passes=("loss_backward",),
       shares_network=True)
def grad_norm(net: nn.Module, batch: ProxyBatch) -> float:
    """Sum over layers of the Frobenius norm of the loss gradient: ``sum_l ||dL/dW_l||_F``.

    A sum of per-layer norms (not the norm of the whole gradient), as zero-cost-nas and NASLib
    ``measures/grad_norm.py`` compute it (Abdelfattah et al. 2021, arXiv:2101.08134).
    """
    _, grads = _weight_grads(net, batch)
    return sum_layer_values(g.norm() for g in grads)


@proxy(
    "snip",
    higher_is_better=True,
    paper="arXiv:1810.02340 (Lee et al. 2019, SNIP); as a NAS proxy arXiv:2101.08134",
    needs=("batch", "labels"),
    passes=("loss_backward",),
    shares_network=True,
)
def snip(net: nn.Module, batch: ProxyBatch) -> float:
    """Connection sensitivity ``sum |dL/dW ⊙ W|`` over every Conv2d/Linear weight.

    The references (``measures/snip.py``) multiply each weight by a mask ``c = 1`` and take
    ``|dL/dc|``; at ``c = 1`` that is ``|W ⊙ dL/dW|`` exactly (chain rule), computed here
    directly. Lee et al. 2019 (arXiv:1810.02340), unnormalised as in zero-cost-nas.
    """
    weights, grads = _weight_grads(net, batch)
    with torch.no_grad():
        return sum_layer_values((g * w).abs() for g, w in zip(grads, weights))


@proxy(
    "plain",
    higher_is_better=True,
    paper="arXiv:2101.08134 (Abdelfattah et al. 2021; first-order Taylor saliency, Mozer & Smolensky 1989)",
    needs=("batch", "labels"),
    passes=("loss_backward",),
    shares_network=True,
)
def plain(net: nn.Module, batch: ProxyBatch) -> float:
    """Signed first-order saliency ``sum dL/dW ⊙ W`` over every Conv2d/Linear weight.

    zero-cost-nas and NASLib ``measures/plain.py``. Orientation: like every proxy in both
    references, the raw score is read as higher-is-better; on NAS-Bench-201 it then
    correlates *negatively* with accuracy (about -0.26 in NAS-Bench-Suite-Zero's sample), and
    that sign is reported, not flipped.
    """
    weights, grads = _weight_grads(net, batch)
    with torch.no_grad():
        return sum_layer_values(g * w for g, w in zip(grads, weights))


@proxy(
    "fisher",
    higher_is_better=True,
    paper="arXiv:1801.05787 (Theis et al. 2018, Fisher pruning); as a NAS proxy arXiv:1906.04113, arXiv:2101.08134",
    needs=("batch", "labels"),
    passes=("loss_backward",),
    shares_network=True,
)
def fisher(net: nn.Module, batch: ProxyBatch) -> float:
    """Fisher channel saliency, broadcast to weights: ``sum_l sum_k |W_l[k]| * 1/2 mean_n (sum_hw a dL/da)^2``.

    ``a`` is the output of Conv2d/Linear layer ``l`` (bias included), ``k`` its output channel,
    ``n`` the sample, ``|W_l[k]|`` the number of weights feeding channel ``k``
    (``C_in/groups * k_h * k_w``, or ``in_features``). zero-cost-nas and NASLib
    ``measures/fisher.py`` (``mode='channel'``) capture ``a`` and ``dL/da`` through an identity
    "dummy" module placed after each layer, compute the per-channel value, then broadcast it
    to every weight of the channel before summing, hence the ``|W_l[k]|`` factor. Here a
    forward hook on the layer and a gradient hook on its output give the same values, in the
    loss pass shared with grad_norm, snip and plain (:func:`loss_pass`).
    A layer run twice accumulates both calls (the references would fail). Theis et al. 2018
    (arXiv:1801.05787), as used by BlockSwap (arXiv:1906.04113) and Abdelfattah et al. 2021.
    """
    layers = prunable_layers(net)
    per_layer = loss_pass(net, batch).fisher
    with torch.no_grad():
        return sum_layer_values(
            value.abs() * layer.weight[0].numel() for layer, value in zip(layers, per_layer) if value is not None
        )


@proxy(
    "grasp",
    higher_is_better=True,
    paper="arXiv:2002.07376 (Wang et al. 2020, GraSP); as a NAS proxy arXiv:2101.08134",
    needs=("batch", "labels"),
    passes=("loss_backward", "hvp"),
    shares_network=True,
    temperature=1.0,
)
def grasp(net: nn.Module, batch: ProxyBatch, temperature: float = 1.0) -> float:
    """Gradient-flow preservation ``sum -W ⊙ (H g)`` over every Conv2d/Linear weight.

    ``g = dL/dW`` over all Conv2d/Linear weights together, ``H`` the Hessian of ``L`` with
    respect to them, ``L`` the cross-entropy of logits divided by ``temperature``.
    zero-cost-nas and NASLib ``measures/grasp.py`` defaults: ``T = 1``, one iteration
    (``num_iters = 1``), whole batch; ``H g`` is the gradient of ``g_detached · dL/dW``
    (a Hessian-vector product, no Hessian is formed). The references run two forward passes
    of the same batch; one is used here, which gives the same ``g`` and ``H g``, and with
    ``T = 1`` it is the forward and loss backward shared with the other gradient proxies
    (:mod:`proxybench.proxies.bundle`), so grasp adds only the second backward.

    Sign and orientation: GraSP (Wang et al. 2020, arXiv:2002.07376) scores ``S = -W ⊙ Hg``
    and *removes* the weights with the highest ``S``. Both references return the same
    ``-W ⊙ Hg`` but read a *higher* sum as better ("accuracy seems to be negatively correlated
    with this metric, so we add -ve sign"), and the published NAS-Bench-201 correlations
    (rho .51 CIFAR-10, Abdelfattah et al. 2021) use that reading; so does this registration.
    """
    from proxybench.proxies.bundle import bundled, forward_bundle

    weights = _weights(net)
    if temperature == 1.0 and bundled("hvp"):
        hg = forward_bundle(net, batch).hessian_gradient
        assert hg is not None
    else:
        grad_f = _grads(_loss(net, batch, temperature), weights, create_graph=True)
        hg = hessian_times_gradient(net, grad_f)
    with torch.no_grad():
        return sum_layer_values(-w * h for w, h in zip(weights, hg))
