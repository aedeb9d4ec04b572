"""Sharpness-aware minimisation: SAM (Foret et al. 2021) and adaptive SAM (Kwon et al. 2021).

Both minimise the loss at the worst point of a neighbourhood of the weights. One update is
two forward-backward passes:

1. gradient ``g`` at ``w``; :meth:`SAM.first_step` moves to ``w + e(w)``;
2. gradient ``g'`` at ``w + e(w)``; :meth:`SAM.second_step` puts ``w`` back and lets the
   wrapped *base* optimizer (FlatNAS: SGD, lr 0.1, momentum 0.9, weight decay 5e-4) step
   with ``g'``.

The perturbation, with ``T_w`` a diagonal scaling (``T_w = I`` for SAM):

    e(w) = rho * T_w² g / ‖T_w g‖₂            so that  ‖T_w⁻¹ e(w)‖₂ = rho

the norm taken over *all* parameters together (one global norm, not one per tensor).

**ASAM's T_w: what the references do.** The ASAM paper (arXiv:2102.11600) uses the
element-wise operator ``T_w = |w| + eta``; the two public implementations differ in where
they apply it:

* SamsungLabs/ASAM ``asam.py`` (commit dc9b513, class ``ASAM``, ``ascent_step``): multiplies
  the gradient by ``|w| + eta`` (``eta=0.01`` by default, ``rho=0.5``) only for parameters
  whose *name contains* ``"weight"`` -- conv/linear weights **and BatchNorm γ** -- and leaves
  biases and BatchNorm β unscaled (``T_w = 1``).
* FlatNAS's code, AI-Tech-Research-Lab/CNAS ``train_utils.py`` (class ``SAM``, a copy of
  davda54/sam with ``adaptive=True``; ``get_optimizer(..., rho=2.0, adaptive=True)``):
  ``T_w = |w|`` with **no eta**, applied to **every** parameter (biases, BN γ and β, head),
  ``e = rho * w² g / (‖|w| g‖ + 1e-12)``.

:class:`ASAM` defaults to FlatNAS's reading (``rho=2.0``, ``eta=0.0``, every parameter
scaled), since it is the one the FlatNAS numbers were produced with. SamsungLabs' reading is
``ASAM(base, eta=0.01, unscaled=[p for n, p in model.named_parameters() if "weight" not in n])``
(see :func:`samsung_unscaled`). With ``eta=0`` a weight that is exactly 0 (BN β at
initialisation) is never perturbed, as in the FlatNAS code.

**BatchNorm running statistics** must not move during the perturbed pass: the statistics of
``w + e`` are not those of ``w``. :func:`frozen_bn_stats` saves every BatchNorm's
``running_mean``, ``running_var`` and ``num_batches_tracked`` and puts them back on exit
(the normalisation inside the pass still uses batch statistics, as in training). The CNAS
code (``disable_running_stats``: momentum 0 for the second pass) keeps mean and variance
the same way but still counts the batch in ``num_batches_tracked``; that counter is used
only when ``momentum=None``, which neither NB201 nor OFA networks use.

Example:
    >>> base = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)  # doctest: +SKIP
    >>> opt = ASAM(base, rho=2.0, model=net)  # doctest: +SKIP
    >>> def closure():  # doctest: +SKIP
    ...     loss = F.cross_entropy(net(x), y)
    ...     loss.backward()
    ...     return loss
    >>> loss = opt.step(closure)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from proxybench.errors import InvalidSettingError

__all__ = ["SAM", "ASAM", "frozen_bn_stats", "samsung_unscaled"]

_EPS = 1e-12  # added to the gradient norm, as both references do


@contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Run a block without changing any BatchNorm running statistics of ``module``.

    Saves ``running_mean``, ``running_var`` and ``num_batches_tracked`` of every BatchNorm
    that tracks statistics and restores them on exit (also when the block raises). Forward
    passes inside still normalise with batch statistics in training mode.

    Example:
        >>> with frozen_bn_stats(net):  # doctest: +SKIP
        ...     F.cross_entropy(net(x), y).backward()
    """
    saved: list[tuple[_BatchNorm, dict[str, torch.Tensor]]] = []
    for m in module.modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            buffers = {
                name: getattr(m, name).detach().clone()
                for name in ("running_mean", "running_var", "num_batches_tracked")
                if getattr(m, name, None) is not None
            }
            saved.append((m, buffers))
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in saved:
                for name, value in buffers.items():
                    getattr(m, name).copy_(value)


def samsung_unscaled(model: nn.Module) -> list[nn.Parameter]:
    """Parameters SamsungLabs/ASAM leaves unscaled (``T_w = 1``): those whose name lacks ``weight``."""
    return [p for n, p in model.named_parameters() if "weight" not in n]


class SAM:
    """Sharpness-aware minimisation around any base optimizer (arXiv:2010.01412).

    Args:
        base_optimizer: An optimizer over the parameters to train; it makes the actual update
            (its learning rate, momentum, weight decay and schedule all apply as usual; give an
            LR scheduler the base optimizer).
        rho: Neighbourhood radius (SAM: 0.05, the paper's CIFAR value).
        model: Optional; when given, :meth:`step` runs its perturbed pass inside
            :func:`frozen_bn_stats` of this module.

    Raises:
        InvalidSettingError: ``rho`` is negative or not finite.
    """

    adaptive = False
    default_rho = 0.05

    def __init__(self, base_optimizer: torch.optim.Optimizer, *, rho: float | None = None,
                 model: nn.Module | None = None) -> None:
        rho = self.default_rho if rho is None else float(rho)
        if not rho >= 0 or rho == float("inf"):
            raise InvalidSettingError(f"rho must be a finite number >= 0, got {rho}")
        self.base_optimizer = base_optimizer
        self.rho = rho
        self.model = model
        self._saved: dict[torch.Tensor, torch.Tensor] = {}

    # -- what a scheduler or a caller reads through ------------------------------------------
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.base_optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state)

    # -- the two steps -------------------------------------------------------------------------
    def _scaling(self, p: torch.Tensor) -> torch.Tensor | None:
        """``T_w`` of one parameter (``None``: identity)."""
        return None

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        """Move every parameter with a gradient from ``w`` to ``w + e(w)``.

        Call after the backward pass at ``w``. ``zero_grad`` clears the gradients for the
        perturbed pass.

        Raises:
            RuntimeError: Called twice without :meth:`second_step` in between.
        """
        if self._saved:
            raise RuntimeError("SAM.first_step called twice; call second_step before the next first_step")
        params = self._params()
        if not params:
            return
        scales = [self._scaling(p) for p in params]
        scaled = [p.grad if t is None else t * p.grad for p, t in zip(params, scales)]
        device = params[0].device
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(s).to(device) for s in scaled]))
        factor = self.rho / (norm + _EPS)
        for p, t, s in zip(params, scales, scaled):
            self._saved[p] = p.detach().clone()
            e = (s if t is None else t * s) * factor.to(p.device)
            p.add_(e)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore ``w`` exactly (from a copy) and step the base optimizer with the current gradients.

        Call after the backward pass at ``w + e(w)``.
        """
        for p, old in self._saved.items():
            p.copy_(old)
        self._saved.clear()
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """One full SAM update; ``closure`` runs forward + backward and returns the loss.

        The closure runs twice: at ``w`` (its loss is returned) and at ``w + e(w)`` (inside
        :func:`frozen_bn_stats` of ``model`` when one was given). Gradients are cleared first.
        """
        self.zero_grad()
        with torch.enable_grad():
            loss = closure()
        self.first_step(zero_grad=True)
        try:
            with torch.enable_grad():
                if self.model is not None:
                    with frozen_bn_stats(self.model):
                        closure()
                else:
                    closure()
        except BaseException:
            # Never leave the network at w + e(w).
            with torch.no_grad():
                for p, old in self._saved.items():
                    p.copy_(old)
            self._saved.clear()
            raise
        self.second_step(zero_grad=False)
        return loss

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rho={self.rho}, base={type(self.base_optimizer).__name__})"


class ASAM(SAM):
    """Adaptive SAM (arXiv:2102.11600): the neighbourhood scales with ``T_w = |w| + eta``.

    Defaults follow FlatNAS's code (``rho=2.0``, ``eta=0``, every parameter scaled); see the
    module docstring for SamsungLabs' variant.

    Args:
        base_optimizer: As :class:`SAM`.
        rho: Radius in the ``T_w⁻¹`` norm (FlatNAS: 2.0; SamsungLabs' CIFAR runs 0.5–2.0).
        eta: Added to ``|w|`` (SamsungLabs: 0.01).
        unscaled: Parameters that get ``T_w = 1`` (SamsungLabs: :func:`samsung_unscaled`).
        model: As :class:`SAM`.

    Raises:
        InvalidSettingError: A negative ``rho`` or ``eta``.
    """

    adaptive = True
    default_rho = 2.0

    def __init__(self, base_optimizer: torch.optim.Optimizer, *, rho: float | None = None, eta: float = 0.0,
                 unscaled: Iterable[torch.Tensor] = (), model: nn.Module | None = None) -> None:
        super().__init__(base_optimizer, rho=rho, model=model)
        if not float(eta) >= 0:
            raise InvalidSettingError(f"eta must be >= 0, got {eta}")
        self.eta = float(eta)
        self._unscaled = {id(p) for p in unscaled}

    def _scaling(self, p: torch.Tensor) -> torch.Tensor | None:
        if id(p) in self._unscaled:
            return None
        t = p.detach().abs()
        return t.add_(self.eta) if self.eta else t

    def scaling(self, p: torch.Tensor) -> torch.Tensor:
        """``T_w`` of ``p`` at its current value (ones for an unscaled parameter)."""
        t = self._scaling(p)
        return torch.ones_like(p) if t is None else t

    def __repr__(self) -> str:
        return (f"ASAM(rho={self.rho}, eta={self.eta}, unscaled={len(self._unscaled)}, "
                f"base={type(self.base_optimizer).__name__})")
