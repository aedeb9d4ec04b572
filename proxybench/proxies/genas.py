"""GeNAS flatness + depth of the minimum on trained (supernet) weights.

**genas** (GeNAS, Jeong et al. 2023, IJCAI, arXiv:2305.08611; code clovaai/GeNAS). For
increasing noise levels σ_1 < … < σ_T, L_t is the mean cross-entropy of the network with
Gaussian noise of level σ_t added to its weights, and

    poor  = α · |L_1 / σ_1|  +  Σ_{t=1}^{T−1} |(L_{t+1} − L_t) / (σ_{t+1} − σ_t)|
    score = 1 / (poor + 1e-5)                       (higher = flatter and deeper)

the first term measuring the depth of the minimum (low loss under small noise), the sum its
flatness (the loss rising slowly with the noise). This is what the public code computes
(``evolution_search/metrics/tester_wlm.py``, ``get_cand_wlm``), and it is the default here
(``form="code"``). The code has no α: its depth term has weight 1, which is ``alpha=1.0``;
``alpha=0`` leaves flatness alone, the paper's ablation (DESIGN.md §7; Table 5: σ = {2e-3,
1e-2, 2e-2}, α = 1 best). (The code's ``--wlm_weight`` is something else: the weight of this
score when it is added to the angle or accuracy metric, times 1/σ_1, in
``evolution_search/cand_evaluator.py``.)

**The printed Eq. 4** puts the inverse on the depth term only:
F = Σ_t |(L_{t+1} − L_t) / (σ_{t+1} − σ_t)| + α · |L_1 / σ_1|^{−1}, with no 1e-5 and no
outer inverse. ``form="paper"`` returns that F as printed. Its two terms point in opposite
directions (the sum grows with sharpness, the inverted depth term with depth), so the printed
form has no single orientation; the registered ``higher_is_better=True`` is the code form's.

**What the code does, and what is followed here** (``tester_wlm.py``):

* the network is put in eval mode (BN uses the running statistics, recalibrated beforehand:
  see :mod:`proxybench.weights.supernet`) and perturbed *cumulatively*: level 1 adds
  N(0, σ_1²) noise to every parameter, level t adds an increment with standard deviation
  **σ_t − σ_{t−1}** (not sqrt(σ_t² − σ_{t−1}²)), one draw per level. So the total noise
  at level t has standard deviation sqrt(σ_1² + Σ_k (σ_k − σ_{k−1})²), which is *less* than
  σ_t (for the defaults: 2e-3, 8.2e-3, 1.30e-2 instead of 2e-3, 1e-2, 2e-2). The code's
  comment says it chose the cumulative form over fresh noise of std σ_t to save a copy of
  the model, knowing the two differ;
* "every parameter" is every tensor of ``model.named_parameters()``: conv and linear
  weights, biases, BN γ and β (buffers are not perturbed). The code perturbs the whole
  supernet, whose off-path parameters do not affect the output; here the standalone network
  holds exactly the path's parameters, so the outputs are the same function;
* L_t is the mean CE over held-out data: GeNAS splits the CIFAR training set in halves,
  trains the supernet on one and evaluates on the other (``--max_val_img_size 25000``:
  all of it, in unshuffled, unaugmented batches of 64, averaging the batch means). Here L_t
  is the mean over the first ``eval_images`` images of the weight provider's held-out part
  (``SupernetWeights.held_out_batch``), the same images at every level; the default 1280
  (as ``flatnas_r``) keeps CPU runs affordable, ``eval_images=25000`` is the code's amount;
* the README's search command uses ``--stds 0.001,0.003,0.006`` and ``get_cand_wlm``'s
  default is ``0.01, 0.015, …, 0.05``; the default here is the paper's Table 5 choice.

**Randomness.** The noise is drawn on the CPU from a generator seeded with one draw of
torch's global generator (:func:`proxybench.proxies.flatness.noise_generator`), so after the
engine's ``torch.manual_seed(seed)`` the score is deterministic and device-independent. The
parameters and the training flag are restored before returning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.errors import InvalidSettingError
from proxybench.proxies.flatness import noise_generator
from proxybench.proxies._heldout import evaluation_images
from proxybench.proxies.registry import proxy

__all__ = ["genas", "genas_losses", "genas_value", "noise_increments", "FORMS", "EPS"]

_GENAS = "arXiv:2305.08611 (GeNAS, IJCAI 2023; code: clovaai/GeNAS)"

#: ``form`` values: the public code's score (default) and the printed Eq. 4.
FORMS: tuple[str, ...] = ("code", "paper")
#: The code's ``1 / (poor_minima + 1e-5)``.
EPS = 1e-5


def _check_sigmas(sigmas: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(float(s) for s in sigmas)
    except (TypeError, ValueError):
        raise InvalidSettingError(f"sigmas must be a list of numbers, got {sigmas!r}") from None
    if not values or values[0] <= 0 or any(b <= a for a, b in zip(values, values[1:])):
        raise InvalidSettingError(f"sigmas must be positive and strictly increasing (GeNAS asserts it), got "
                                  f"{list(values)}")
    return values


def noise_increments(sigmas: Sequence[float]) -> tuple[float, ...]:
    """Standard deviations of the noise added at each level: σ_1, then σ_t − σ_{t−1} (GeNAS)."""
    values = _check_sigmas(sigmas)
    return tuple(s - p for s, p in zip(values, (0.0,) + values[:-1]))


def _normal(shape: torch.Size, std: float, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """N(0, std²) noise of ``shape`` on the CPU (one place, so a test can replace the draw)."""
    return torch.randn(shape, generator=generator, dtype=dtype, device="cpu") * std


@torch.no_grad()
def _mean_ce(net: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int) -> float:
    total = 0.0
    for i in range(0, x.shape[0], chunk):
        total += float(F.cross_entropy(net(x[i:i + chunk]), y[i:i + chunk], reduction="sum"))
    return total / x.shape[0]


@torch.no_grad()
def genas_losses(
    net: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    sigmas: Sequence[float],
    chunk_size: int = 256,
    generator: torch.Generator | None = None,
    on_level: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """L_t, the mean cross-entropy after the cumulative perturbation of level t, for each σ_t.

    Args:
        net: The network (evaluated in eval mode; parameters and training flag restored).
        inputs: Held-out images, on the network's device.
        targets: Their labels.
        sigmas: σ_1 < … < σ_T.
        chunk_size: Images per forward pass.
        generator: CPU generator of the noise (default: :func:`noise_generator`).
        on_level: Called as ``on_level(t, net)`` after level ``t``'s noise is added.

    Returns:
        ``[L_1, …, L_T]``.
    """
    stds = noise_increments(sigmas)
    gen = generator if generator is not None else noise_generator()
    was_training = net.training
    net.eval()
    params = list(net.parameters())
    originals = [p.detach().clone() for p in params]
    losses = []
    try:
        for t, std in enumerate(stds):
            for p in params:
                p.add_(_normal(p.shape, std, gen, p.dtype).to(p.device))
            if on_level is not None:
                on_level(t, net)
            losses.append(_mean_ce(net, inputs, targets, chunk_size))
    finally:
        for p, w in zip(params, originals):
            p.copy_(w)
        net.train(was_training)
    return losses


def genas_value(losses: Sequence[float], sigmas: Sequence[float], alpha: float = 1.0, form: str = "code") -> float:
    """The GeNAS score of the losses L_t at noise levels σ_t (see the module docstring).

    ``form="code"``: 1 / (α|L_1/σ_1| + Σ|ΔL/Δσ| + 1e-5). ``form="paper"``: Σ|ΔL/Δσ| + α|L_1/σ_1|^{−1}.

    Raises:
        InvalidSettingError: Unknown form, or losses and sigmas of different lengths.
    """
    if form not in FORMS:
        raise InvalidSettingError(f"unknown GeNAS form {form!r}; choose one of {', '.join(FORMS)}")
    sig = _check_sigmas(sigmas)
    if len(losses) != len(sig):
        raise InvalidSettingError(f"{len(losses)} losses for {len(sig)} sigmas")
    slope = sum(abs((losses[t + 1] - losses[t]) / (sig[t + 1] - sig[t])) for t in range(len(sig) - 1))
    depth = abs(losses[0] / sig[0])
    if form == "code":
        return 1.0 / (float(alpha) * depth + slope + EPS)
    if alpha == 0:
        return float(slope)
    return float(slope + float(alpha) / depth) if depth > 0 else float("inf")


@proxy(
    "genas",
    higher_is_better=True,
    paper=_GENAS,
    needs=("batch", "labels", "trained_weights"),
    description="GeNAS: inverse of depth (alpha |L1/s1|) plus flatness (sum |dL/ds|) of the loss under "
                "cumulative Gaussian weight noise.",
    sigmas=(2e-3, 1e-2, 2e-2),
    alpha=1.0,
    eval_images=1280,
    form="code",
    chunk_size=256,
)
def genas(
    net: nn.Module,
    batch: ProxyBatch,
    sigmas: Sequence[float] = (2e-3, 1e-2, 2e-2),
    alpha: float = 1.0,
    eval_images: int | None = 1280,
    form: str = "code",
    chunk_size: int = 256,
) -> float:
    """GeNAS flatness + depth: 1 / (α|L_1/σ_1| + Σ_t |(L_{t+1} − L_t)/(σ_{t+1} − σ_t)| + 1e-5).

    Args:
        net: Trained network (supernet weights; BN recalibrated by the provider).
        batch: At least ``eval_images`` held-out images with labels
            (``SupernetWeights.held_out_batch``; the engine passes it for proxies that need
            ``trained_weights``).
        sigmas: Increasing noise levels (paper Table 5: 2e-3, 1e-2, 2e-2).
        alpha: Weight of the depth term (the code's implicit 1; 0 = flatness only).
        eval_images: Images of ``batch`` evaluated at every level; ``None``: all.
        form: ``"code"`` (default) or ``"paper"`` (the printed Eq. 4; see the module docstring).
        chunk_size: Images per forward pass.

    Raises:
        InvalidSettingError: Bad sigmas, form, alpha or chunk size, or a batch smaller than ``eval_images``.
    """
    if form not in FORMS:
        raise InvalidSettingError(f"unknown GeNAS form {form!r}; choose one of {', '.join(FORMS)}")
    sig = _check_sigmas(sigmas)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
        raise InvalidSettingError(f"alpha must be a number >= 0, got {alpha!r}")
    if int(chunk_size) < 1:
        raise InvalidSettingError(f"chunk_size must be >= 1, got {chunk_size}")
    x, y = evaluation_images(net, batch, eval_images, "genas")
    losses = genas_losses(net, x, y, sigmas=sig, chunk_size=int(chunk_size))
    return genas_value(losses, sig, float(alpha), form)
