"""One forward of the batch serving the loss pass, grasp's Hessian-vector product, the input
Jacobian and NWOT's codes at once.

grad_norm, snip, plain and fisher need the loss backward (``loss_backward``), grasp the same
backward built as a graph and differentiated again (``hvp``), jacov and epe_nas the input
Jacobian (``input_grad``), nwot the ReLU codes of a forward (``forward``). All start with
the same forward of the same network on the same batch, so when more than one is wanted in
a run (the engine tells the :class:`~proxybench.proxies.passes.PassCache` what its proxies
declare) they share it: one forward with the input requiring a gradient, fisher's and
NWOT's hooks in place; the loss backward to the weights (keeping the graph, and with
``create_graph`` when grasp is wanted); fisher's hooks detached; the backward of the summed
logits to the input; last, grasp's second backward ``d(g_detached · g)/dW = H g``.

Every number equals what the separate passes compute (``tests/test_passes.py`` compares
the scores bit for bit): the forward values do not depend on whether the input requires a
gradient, a backward with ``create_graph`` computes the same gradients as one without, and
the backward passes are the same computations as before, in sequence.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies.activation import NwotKernel, jacobian_of
from proxybench.proxies.gradient import FisherRecorder, LossPass, hessian_times_gradient, loss_gradients
from proxybench.proxies.passes import shared, wanted_passes

__all__ = ["BUNDLED", "ForwardBundle", "bundled", "forward_bundle"]

#: The passes one shared forward can serve.
BUNDLED = ("loss_backward", "hvp", "input_grad", "forward")


@dataclass(frozen=True)
class ForwardBundle:
    """What the shared forward produced; a part nobody asked for is None."""

    loss: LossPass | None
    jacobian: tuple[torch.Tensor, int] | None
    nwot_kernel: torch.Tensor | None
    hessian_gradient: list[torch.Tensor] | None = None  # H g per weight (grasp), detached


def bundled(part: str) -> bool:
    """Whether ``part`` should come from the shared forward: it and another bundled pass are wanted."""
    wanted = wanted_passes() & set(BUNDLED)
    return part in wanted and len(wanted) > 1


def forward_bundle(net: nn.Module, batch: ProxyBatch) -> ForwardBundle:
    """The bundle of the active architecture (computed by the first proxy that asks)."""
    parts = frozenset(wanted_passes() & set(BUNDLED))
    return shared("forward_bundle", lambda: _compute(net, batch, parts))


def _compute(net: nn.Module, batch: ProxyBatch, parts: frozenset[str]) -> ForwardBundle:
    want_loss, want_jac, want_codes = ("loss_backward" in parts, "input_grad" in parts, "forward" in parts)
    want_hvp = "hvp" in parts
    want_loss = want_loss or want_hvp
    x = batch.inputs.detach().clone().requires_grad_(want_jac)
    recorder = FisherRecorder(net) if want_loss else None
    codes = NwotKernel(net, batch.size, required=False) if want_codes else None
    if want_loss:
        for layer in recorder.layers:  # type: ignore[union-attr]
            layer.weight.requires_grad_(True)
    with recorder if recorder is not None else nullcontext(), codes if codes is not None else nullcontext():
        y = net(x)
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"{type(net).__name__} returned {type(y).__name__}; proxies need the logits tensor")
        loss = None
        graph_grads: list[torch.Tensor] = []
        if recorder is not None:
            graph_grads = loss_gradients(net, y, batch, retain_graph=want_jac or want_hvp, create_graph=want_hvp)
            recorder.stop()
            loss = LossPass(grads=[g.detach() for g in graph_grads], fisher=recorder.fisher)
    jacobian = jacobian_of(x, y, retain_graph=want_hvp) if want_jac else None
    hessian_gradient = hessian_times_gradient(net, graph_grads) if want_hvp else None
    return ForwardBundle(loss=loss, jacobian=jacobian, nwot_kernel=codes.kernel if codes is not None else None,
                         hessian_gradient=hessian_gradient)
