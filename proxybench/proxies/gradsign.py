"""GradSign: how many samples agree on the sign of each weight's loss gradient.

Zhang & Jia 2022 (arXiv:2110.08616, ICLR). The reference is the measure ``grad_conflict``
in cmu-catalyst/GradSign ``zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py``
(``get_grad_conflict``), run by ``zero-cost-nas-code/build.py`` for the NB201 Spearman
experiments; ``naswot-code/gradsign.py`` (Kendall experiments) computes the same sum. For
each sample ``i`` of the batch, alone: ``zero_grad``, forward ``x_i``, cross-entropy with
``y_i``, backward; the gradients of every Conv2d/Linear weight are flattened into one vector
``g_i`` (a weight without ``.grad`` contributes zeros). Then

    GradSign = nansum_k | sum_i sign(g_ik) |

``sign(0) = 0``; a weight element whose gradient is NaN for any sample drops out (NumPy's
``nansum``). The network is in train mode (zero-cost-nas scores a freshly built network and
the measure does not change the mode), so every single-sample pass normalises each
BatchNorm with *that sample's own* statistics (mean and variance over its H x W positions):
the per-sample gradients are not the rows of a batched backward.

The per-sample gradients are computed here with :func:`torch.func.vmap` over
:func:`torch.func.grad` of a one-sample :func:`torch.func.functional_call`, which keeps
exactly those semantics: inside ``vmap`` each sample is a batch of one, so BatchNorm's
train-mode statistics are per sample (checked against the literal loop in float64 in
``tests/test_proxies_gradsign.py``). In float32 the two orders of computation round
differently, and single-sample BatchNorm makes some gradients sensitive to rounding, so a
small fraction of near-zero elements can change sign between ``method="vmap"`` and the
reference-style ``method="loop"`` (see ``/work/notes/gradsign.md``). Each sample gets its own
copy of the BatchNorm buffers, so the network's running statistics stay as they were (the
reference updates them once per sample; in train mode they never enter the score).

Variant ``gradsign_mean``: the AZ-NAS port (cvlab-yonsei/AZ-NAS
``NB201/ZeroShotProxy/compute_gradsign_score.py``, copied from the GradSign repository's
``zero-cost-nas-code/gradsign.py``) divides by the number of weight elements
(``np.nanmean``), which changes the ranking (it is the sum per weight), and turns a NaN
result into ``-inf``. Its NB201 protocol is one batch of 64; the reference's is one batch
of 128 (``build.py --batch_size 128``, seed 42).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from proxybench.batch import ProxyBatch
from proxybench.proxies._layers import prunable_layers
from proxybench.proxies.passes import shared
from proxybench.proxies.registry import proxy

__all__ = ["gradsign", "gradsign_mean", "SignTally", "per_sample_weight_grads", "sign_tally", "reduce_tally"]

_PAPER = "arXiv:2110.08616 (Zhang & Jia 2022, GradSign: Model Performance Inference with Theoretical Insights, ICLR)"
_METHODS = ("vmap", "loop")
_REDUCTIONS = ("sum", "mean")

#: Samples per vmap call. Bounds the memory of the materialised per-sample gradients
#: (chunk x #weights); about the fastest chunk on one CPU thread for NB201.
_VMAP_CHUNK = 8


def _split_parameters(net: nn.Module) -> tuple[list[str], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Names of the Conv2d/Linear weights (:func:`prunable_layers` order), those weights, the other parameters."""
    by_id = {id(p): name for name, p in net.named_parameters()}
    names = [by_id.get(id(layer.weight)) for layer in prunable_layers(net)]
    if not names:
        raise ValueError(
            f"gradsign: {type(net).__name__} has no nn.Conv2d or nn.Linear layer; "
            "GradSign scores their weight gradients"
        )
    if any(n is None for n in names):
        raise ValueError("gradsign: a Conv2d/Linear weight is not a registered parameter of the network")
    others = {name: p.detach() for name, p in net.named_parameters()}
    weights = {name: others.pop(name) for name in dict.fromkeys(names)}  # type: ignore[arg-type]
    return names, weights, others  # type: ignore[return-value]


def per_sample_weight_grads(
    net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, method: str = "vmap"
) -> Iterator[list[torch.Tensor]]:
    """Per-sample ``dL(f(x_i), y_i)/dW`` of every Conv2d/Linear weight, a chunk of samples at a time.

    Each sample is its own batch of one (train-mode BatchNorm: its own statistics), as the
    reference's loop of single-sample backward passes. Yields, per chunk of ``c`` samples,
    one detached tensor ``(c, *W.shape)`` per weight in :func:`prunable_layers` order (a
    weight the loss does not reach gets zeros, like the reference's ``zeros_like``).

    Args:
        method: ``"vmap"`` (:func:`torch.func.vmap`, chunks of :data:`_VMAP_CHUNK`) or
            ``"loop"`` (one :func:`torch.func.grad` call per sample, the reference's order).
    """
    if method not in _METHODS:
        raise ValueError(f"gradsign: unknown method {method!r}; choose one of {', '.join(_METHODS)}")
    names, weights, others = _split_parameters(net)
    buffers = {name: t.detach() for name, t in net.named_buffers()}

    def sample_loss(w: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
        out = functional_call(net, (w, others, b), (x.unsqueeze(0),))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"gradsign: {type(net).__name__} returned {type(out).__name__}, not a logits tensor")
        return F.cross_entropy(out, y.unsqueeze(0))

    n = int(inputs.shape[0])
    if method == "loop":
        for i in range(n):
            g = grad(sample_loss)(weights, {k: t.clone() for k, t in buffers.items()}, inputs[i], targets[i])
            yield [g[name].unsqueeze(0) for name in names]
        return
    batched = vmap(grad(sample_loss), in_dims=(None, 0, 0, 0))
    for start in range(0, n, _VMAP_CHUNK):
        x, y = inputs[start:start + _VMAP_CHUNK], targets[start:start + _VMAP_CHUNK]
        # One copy of every buffer per sample: train-mode BatchNorm writes its running
        # statistics in place, which vmap allows only on a per-sample (batched) tensor.
        b = {k: t.unsqueeze(0).repeat(x.shape[0], *([1] * t.dim())) for k, t in buffers.items()}
        g = batched(weights, b, x, y)
        yield [g[name] for name in names]


@dataclass(frozen=True)
class SignTally:
    """The shared ``per_sample_grads`` pass of GradSign: ``sum_i sign(g_i)`` per weight element.

    Attributes:
        sign_sums: One detached float tensor per Conv2d/Linear weight (flattened, in
            :func:`prunable_layers` order): the sum over samples of the gradient's sign, NaN
            where any sample's gradient was NaN.
        samples: Number of samples summed.
    """

    sign_sums: list[torch.Tensor]
    samples: int


def _nan_sign(g: torch.Tensor) -> torch.Tensor:
    """``np.sign``: -1, 0 or 1, and NaN for NaN (``torch.sign`` maps NaN to 0)."""
    return torch.sign(g).masked_fill(torch.isnan(g), float("nan"))


def sign_tally(net: nn.Module, batch: ProxyBatch, method: str = "vmap") -> SignTally:
    """Sum the per-sample gradient signs of every weight element over the whole batch."""
    if batch.size < 1:
        raise ValueError("gradsign: the batch is empty")
    sums: list[torch.Tensor] | None = None
    for chunk in per_sample_weight_grads(net, batch.inputs, batch.targets, method):
        signs = [_nan_sign(g.detach()).flatten(1).sum(0, dtype=torch.float64).cpu() for g in chunk]
        sums = signs if sums is None else [s + t for s, t in zip(sums, signs)]
    assert sums is not None
    return SignTally(sign_sums=sums, samples=batch.size)


def reduce_tally(tally: SignTally, reduction: str = "sum") -> float:
    """``nansum`` (or ``nanmean``) of ``|sum_i sign(g_i)|`` over all weight elements.

    ``mean`` divides by the number of non-NaN elements, as ``np.nanmean``; with every
    element NaN it returns ``-inf`` (the AZ-NAS port's replacement of NaN), where ``sum``
    returns 0 (``np.nansum`` of nothing).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"gradsign: unknown reduction {reduction!r}; choose one of {', '.join(_REDUCTIONS)}")
    agreement = torch.cat([s.abs().flatten() for s in tally.sign_sums])
    finite = ~torch.isnan(agreement)
    total = float(agreement[finite].sum())
    if reduction == "sum":
        return total
    count = int(finite.sum())
    return total / count if count else float("-inf")


def _tally(net: nn.Module, batch: ProxyBatch, method: str) -> SignTally:
    return shared(f"gradsign_sign_tally:{method}", lambda: sign_tally(net, batch, method))


@proxy(
    "gradsign",
    higher_is_better=True,
    paper=_PAPER,
    needs=("batch", "labels"),
    passes=("per_sample_grads",),
    shares_network=True,
    method="vmap",
)
def gradsign(net: nn.Module, batch: ProxyBatch, *, method: str = "vmap") -> float:
    """``sum_k |sum_i sign(dL_i/dW_k)|`` over every Conv2d/Linear weight element, one sample per pass.

    cmu-catalyst/GradSign ``zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py``
    (Zhang & Jia 2022, arXiv:2110.08616): every sample of the batch is its own forward and
    backward pass in train mode (its own BatchNorm statistics), the signs of its weight
    gradients are summed over samples, and the absolute sums are added up over all weight
    elements with NaN entries skipped (``np.nansum``). Reference protocol: one batch of 128
    CIFAR-10 training images, seed 42. Higher is better. ``method`` only chooses how the
    per-sample gradients are computed (module docstring).

    Raises:
        ValueError: An empty batch, a network without Conv2d/Linear layers, or an unknown method.
    """
    return reduce_tally(_tally(net, batch, method), "sum")


@proxy(
    "gradsign_mean",
    higher_is_better=True,
    paper=_PAPER + "; as ported by AZ-NAS, arXiv:2403.19232",
    needs=("batch", "labels"),
    passes=("per_sample_grads",),
    shares_network=True,
    method="vmap",
)
def gradsign_mean(net: nn.Module, batch: ProxyBatch, *, method: str = "vmap") -> float:
    """GradSign divided by the number of weight elements (``np.nanmean``), as the AZ-NAS port computes it.

    cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy/compute_gradsign_score.py`` (and the
    GradSign repository's ``zero-cost-nas-code/gradsign.py``): the same per-sample sign
    agreement as :func:`gradsign`, averaged instead of summed over the weight elements (a
    weight the loss does not reach counts, with agreement 0); a NaN result becomes ``-inf``.
    AZ-NAS's NB201 protocol: one batch of 64. Higher is better.
    """
    return reduce_tally(_tally(net, batch, method), "mean")
