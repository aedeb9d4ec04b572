"""VKDNW: entropy of the Fisher information spectrum (Tybl & Neumann, CVPR 2025).

Variance of Knowledge of Deep Network Weights (arXiv:2502.04975) scores an untrained network
by how evenly the Fisher information of its predictive distribution spreads over weight
directions: an even spectrum means every direction is about equally hard to estimate. The
reference is ondratybl/VKDNW ``NB201/ZeroShotProxy/compute_vkdnw_score.py``
(``compute_nas_score`` → ``get_fisher`` → ``get_jacobian_index`` / ``cholesky_covariance``),
run by ``NB201/tss_general_.py`` (last version before commit 2b67433, which removed it) and
aggregated in ``NB201/tss_utils.py`` / ``NB201/paper_preparation.ipynb``.

Per architecture, as the reference computes it for NB201:

1. Re-initialise the network (``init="kaiming_norm_fanin"``): every Conv2d/Linear weight
   Kaiming-normal fan-in (ReLU gain), biases 0, BatchNorm/GroupNorm γ = 1, β = 0. The
   reference does this on a freshly built network, whose BatchNorm running statistics are
   still (0, 1); the re-initialisation here also resets them, so the copy is in that state
   whatever ran on it before.
2. Draw 64 Gaussian inputs ``torch.randn`` (the reference's default: VKDNW is not among the
   run's ``real_input_metrics``, so it gets ``trainloader=None`` and draws noise).
3. Switch to **eval mode** (``get_fisher`` calls ``model.eval()``): BatchNorm uses its
   running statistics (0, 1), i.e. it only multiplies by ``γ/sqrt(1+eps)`` and adds β, and
   the samples of the batch do not interact. Per-sample Jacobians therefore come from
   ``torch.func`` (``vmap`` over samples of ``jacrev`` through ``functional_call``), as in the
   reference; a loop of single-sample backward passes in eval mode gives the same numbers.
4. Choose the weights: the first ``n_tensors = 128`` parameter tensors in
   ``named_parameters()`` order (BatchNorm γ/β and biases included), and in each the
   ``weights_per_tensor = 1`` element(s) at ``linspace(0, numel-1, k).long()`` — for k = 1 the
   first element. Commit 779a3a8 ("table 1 adjust (sample first layers)", the Nov 12 runs the
   paper's Table 1 comes from) took element 0 of the first 128 tensors; the final code's
   ``--p 1`` is the same selection.
5. ``J_n`` = d logits_n / d(chosen weights), ``(C, P)`` per sample.
6. Smoothed probabilities ``p = softmax(logits)·(1-α) + α/C`` with α = 0.05 **as a float16
   tensor** (quirk, reproduced): ``1-α`` and ``α/C`` are computed in float16, so the factors
   are 0.9501953125 and float16(0.04998779/C) (C = 10: 0.00499725), and ``p`` sums to
   ≈ 1.00017, not 1.
7. The lower-triangular factor ``L`` of the multinomial covariance (Tanabe & Sagae 1992,
   Theorem 1, as ``cholesky_covariance``): ``q_j = 1 - sum_{k<=j} p_k`` (``q_{C-1} := 0``),
   ``d_j = sqrt(p_j q_j / q_{j-1})`` (``q_{-1} := 1``), ``L_jj = d_j``, ``L_ij = -p_i d_j / q_j``
   for ``i > j``. The reference checks ``L Lᵀ ≈ diag(p) - p pᵀ`` but then builds the Fisher
   from ``L J``: **F = mean_n (L_n J_n)ᵀ (L_n J_n) = mean_n J_nᵀ L_nᵀ L_n J_n** (quirk,
   reproduced), not ``J_nᵀ L_n L_nᵀ J_n = J_nᵀ (diag p - p pᵀ) J_n``.
8. ``λ`` = singular values of F (the reference: ``torch.svd(F).S`` in float32, on CUDA; no
   regularisation). **Departure: by default (``svd_dtype="float64"``) the float32 Fisher
   matrix is cast to float64 before the SVD.** F is far from full rank (a network whose
   output ignores its input has rank 1), so most singular values are zero or tiny and the
   lower deciles read whatever the solver leaves there. On the CPU, LAPACK's float32
   ``gesdd`` (what ``torch.svd`` calls) returns the zero singular values as a plateau of equal
   values near 6e-9·λ_max: all nine deciles equal and the score becomes log 9, the maximum,
   for a network with constant output; over 100 NB201 networks that drops Spearman ρ of
   ``vkdnw`` on CIFAR-10 from .65 to .43 and of ``vkdnw_single`` from .81 to .77 (the paper's
   Table 1: .815). The float64 spectrum of the same matrix is solver-independent (float32
   ``svdvals`` agrees with it to ρ = 1.000 over those networks). ``svd_dtype="float32"`` is
   the reference's call exactly, with the platform's float32 solver.
9. Score = entropy of the nine deciles of λ: ``t = Q/(‖Q‖₁ + 1e-10)`` with
   ``Q = quantile(λ, arange(0.1, 1, 0.1))`` (linear interpolation),
   ``VKDNW = -Σ t log(t + 1e-10)``, at most log 9 ≈ 2.197.

Proxies registered here:

* ``vkdnw`` — the entropy above (the reference's ``vkdnw_entropy``, the paper's VKDNW).
* ``vkdnw_dim`` — ℵ, the number of parameter tensors ``len(list(named_parameters()))``
  (the reference's ``vkdnw_dim``, the paper's "No. of trainable layers (ℵ)"; an NB201 network
  with k convolution edges per cell has 21 + 45k).
* ``vkdnw_single`` — ``ℵ + VKDNW``. The reference ranks architectures by the pair
  ``(vkdnw_dim, vkdnw_entropy)`` lexicographically (pandas dense rank of tuples), which the
  paper calls VKDNW_single. Since VKDNW ≤ log 9 < 2.2, ``ℵ + VKDNW`` orders architectures
  exactly that way whenever distinct ℵ differ by more than 2.2, as on NB201 (steps of 45);
  on a space with closer ℵ rank the pair instead.

The aggregated ranking VKDNW_agg is built across architectures from stored scores and is not
computed here (see ``/work/notes/vkdnw.md``).

Departures: the SVD in float64 (step 8; ``svd_dtype="float32"`` restores the reference's
call). Where the reference's ``torch.svd`` raises, it prints the error and scores the network
0; here a non-finite Jacobian or Fisher matrix raises a ``ValueError`` (the engine records an
``error`` row). The probabilities are taken from the logits of the same per-sample
forward as the Jacobian rather than from a second forward of the batch; in eval mode with
running statistics the two are the same computation.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from proxybench.batch import ProxyBatch
from proxybench.proxies.passes import shared
from proxybench.proxies.registry import proxy

__all__ = [
    "vkdnw",
    "vkdnw_dim",
    "vkdnw_single",
    "chosen_weights",
    "decile_entropy",
    "fisher_matrix",
    "fisher_spectrum",
    "logit_jacobian",
    "multinomial_factor",
    "smoothed_probabilities",
    "vkdnw_init",
]

_PAPER = (
    "arXiv:2502.04975 (Tybl & Neumann 2025, Training-free Neural Architecture Search through "
    "Variance of Knowledge of Deep Network Weights, CVPR 2025)"
)

#: The reference's NB201 protocol (``tss_general_.py`` defaults as run for Table 1), and the
#: precision of the final SVD (float64: a departure, see the module docstring, step 8).
_DEFAULTS: Mapping[str, object] = {
    "init": "kaiming_norm_fanin",
    "inputs": "gaussian",
    "n_samples": 64,
    "n_tensors": 128,
    "weights_per_tensor": 1,
    "svd_dtype": "float64",
}

_INITS = ("kaiming_norm_fanin", "none")
_INPUTS = ("gaussian", "images")
_SVD_DTYPES = {"float64": torch.float64, "float32": torch.float32}

#: Samples per vmap chunk: whole batches of 64 per-sample weight gradients thrash memory on a
#: CPU (2-3x slower); samples are independent in eval mode, so chunking changes nothing else.
_CHUNK = 16

#: ``α`` of the reference's label smoothing, held in float16 as the reference holds it.
_ALPHA_FP16 = 0.05


# ---------------------------------------------------------------------------- set-up
@torch.no_grad()
def vkdnw_init(net: nn.Module) -> None:
    """The reference's ``init_model(model, 'kaiming_norm_fanin')`` on a fresh network.

    Conv2d/Linear: ``kaiming_normal_(mode='fan_in', nonlinearity='relu')``, bias 0;
    BatchNorm2d/GroupNorm with affine parameters: γ = 1, β = 0. Weights are drawn from torch's
    global generator in ``net.modules()`` order (the order ``model.apply`` reaches these leaf
    modules). BatchNorm running statistics are reset to (0, 1): the reference scores a network
    just built, so they are at their initial values when its eval-mode pass reads them.
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            if getattr(m, "affine", False):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.reset_running_stats()


def chosen_weights(net: nn.Module, n_tensors: int, weights_per_tensor: int) -> list[tuple[str, torch.Tensor]]:
    """The weights whose Fisher information VKDNW measures: ``(name, flat indices)`` pairs.

    ``get_jacobian_index``: parameter tensors in ``named_parameters()`` order, the first
    ``n_tensors`` of them when positive, the first ``len // -n_tensors`` when negative (the
    reference's ``params_grad_len``); in each, the indices
    ``linspace(0, numel - 1, weights_per_tensor).long()`` (the reference's ``p``; 1 gives the
    first element; more indices than elements repeat some, as in the reference).

    Raises:
        ValueError: ``n_tensors`` is 0, ``weights_per_tensor`` < 1, or the network has no
            parameters.
    """
    if int(n_tensors) == 0:
        raise ValueError("vkdnw: n_tensors must be positive (first n tensors) or negative (a fraction), not 0")
    if int(weights_per_tensor) < 1:
        raise ValueError(f"vkdnw: weights_per_tensor must be >= 1, got {weights_per_tensor!r}")
    named = [(name, p) for name, p in net.named_parameters() if p.numel() > 0]
    if not named:
        raise ValueError(f"vkdnw: {type(net).__name__} has no parameters to measure the Fisher information of")
    keep = int(n_tensors) if n_tensors > 0 else len(named) // -int(n_tensors)
    if keep < 1:
        raise ValueError(f"vkdnw: n_tensors={n_tensors} keeps none of the {len(named)} parameter tensors")
    return [
        (name, torch.linspace(0, p.numel() - 1, steps=int(weights_per_tensor), device=p.device).long())
        for name, p in named[:keep]
    ]


def _inputs(batch: ProxyBatch, inputs: str, n_samples: int) -> torch.Tensor:
    if int(n_samples) < 1:
        raise ValueError(f"vkdnw: n_samples must be >= 1, got {n_samples!r}")
    if inputs == "gaussian":
        shape = (int(n_samples), *batch.input_shape)
        return torch.randn(shape, device=batch.inputs.device, dtype=batch.inputs.dtype)
    if inputs == "images":
        if batch.size < int(n_samples):
            raise ValueError(f"vkdnw: needs {n_samples} images, the batch has {batch.size}")
        return batch.inputs[: int(n_samples)]
    raise ValueError(f"vkdnw: unknown inputs {inputs!r}; valid: {', '.join(_INPUTS)}")


# ---------------------------------------------------------------------------- Jacobian
def logit_jacobian(
    net: nn.Module, x: torch.Tensor, chosen: list[tuple[str, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample Jacobians of the logits to the chosen weights, and the logits.

    ``torch.func``: for one sample the network is a function of the chosen entries only (the
    other parameters and the buffers are fixed, detached); ``jacrev`` differentiates it and
    ``vmap`` maps it over the samples, each sample a batch of one, in the mode the network is
    in (the caller puts it in eval mode, as the reference). Columns follow ``chosen``, tensor
    by tensor.

    Returns:
        ``J`` of shape ``(N, C, P)`` and the logits ``(N, C)``, detached, in the network's dtype.

    Raises:
        TypeError: The network does not return a logits tensor of shape ``(1, C)`` per sample.
    """
    fixed = {name: p.detach() for name, p in net.named_parameters()}
    buffers = {name: b.detach() for name, b in net.named_buffers()}
    start = {name: fixed[name].reshape(-1)[index] for name, index in chosen}

    def logits_of(values: dict[str, torch.Tensor], sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = dict(fixed)
        for name, index in chosen:
            flat = fixed[name].reshape(-1).index_put((index,), values[name])
            params[name] = flat.view_as(fixed[name])
        out = functional_call(net, (params, buffers), (sample.unsqueeze(0),))
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            raise TypeError(
                f"vkdnw: {type(net).__name__} must return a logits tensor (N, num_classes), "
                f"got {type(out).__name__}{'' if not isinstance(out, torch.Tensor) else tuple(out.shape)}"
            )
        logits = out.squeeze(0)
        return logits, logits

    per_sample = vmap(jacrev(logits_of, has_aux=True), in_dims=(None, 0), chunk_size=_CHUNK)
    jac, logits = per_sample(start, x)
    columns = torch.cat([jac[name].reshape(x.shape[0], logits.shape[1], -1) for name, _ in chosen], dim=2)
    return columns.detach(), logits.detach()


# ---------------------------------------------------------------------------- Fisher matrix
def smoothed_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """``softmax(logits)·(1-α) + α/C`` with the reference's float16 arithmetic for the constants.

    The reference holds α = 0.05 in a float16 tensor, so ``1 - α`` and ``α / C`` are rounded
    to float16 before they meet the float32 softmax: 0.9501953125 and float16(0.0499878/C).
    The rows then sum to slightly more than 1 (1.000168 for C = 10).
    """
    alpha = torch.tensor(_ALPHA_FP16, dtype=torch.float16)
    keep = float(1 - alpha)
    floor = float(alpha / logits.shape[1])
    return torch.softmax(logits, dim=1) * keep + floor


def multinomial_factor(probs: torch.Tensor) -> torch.Tensor:
    """Per row of ``probs`` (N, C), the lower-triangular ``L`` with ``L Lᵀ = diag(p) - p pᵀ`` when Σp = 1.

    Tanabe & Sagae (1992), Theorem 1, as the reference's ``cholesky_covariance`` builds it:
    ``q_j = 1 - Σ_{k≤j} p_k`` with ``q_{C-1}`` set to 0, ``d_j = sqrt(p_j q_j / q_{j-1})`` with
    ``q_{-1} = 1``, diagonal ``d_j``, below it ``-p_i (1/q_j) d_j``. The last column is 0 (the
    covariance has rank C - 1). Computed in the dtype of ``probs`` (float32 in the reference).
    """
    n, c = probs.shape
    tail = 1 - torch.cumsum(probs, dim=1)
    tail[:, -1] = 0
    before = torch.roll(tail, shifts=1, dims=1)
    before[:, 0] = 1
    diag = torch.sqrt(probs * tail / before)
    inverse = torch.where(tail > 0, 1 / tail, torch.zeros_like(tail))
    below = torch.tril(-(probs[:, :, None] * inverse[:, None, :]), diagonal=-1)
    eye = torch.eye(c, dtype=probs.dtype, device=probs.device).expand(n, c, c)
    return (below + eye) * diag[:, None, :]


def fisher_matrix(jac: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The reference's Fisher matrix ``mean_n (L_n J_n)ᵀ (L_n J_n)`` (P, P) from ``J`` (N, C, P) and logits.

    ``L_n`` is :func:`multinomial_factor` of :func:`smoothed_probabilities`. The reference
    multiplies the Jacobian by ``L`` itself, so this is ``J_nᵀ L_nᵀ L_n J_n`` — not the
    textbook ``J_nᵀ L_n L_nᵀ J_n = J_nᵀ (diag p - p pᵀ) J_n`` its factor was checked against.
    """
    factor = multinomial_factor(smoothed_probabilities(logits))
    scaled = torch.matmul(factor, jac)
    return torch.mean(torch.matmul(scaled.transpose(1, 2), scaled), dim=0)


# ---------------------------------------------------------------------------- spectrum
def fisher_spectrum(
    net: nn.Module, batch: ProxyBatch, *, init: str, inputs: str, n_samples: int, n_tensors: int,
    weights_per_tensor: int, svd_dtype: str = "float64",
) -> torch.Tensor:
    """The singular values (descending) of the reference's Fisher matrix, a detached CPU tensor.

    The matrix is built in the network's dtype (float32, as the reference) and decomposed in
    ``svd_dtype``; the values are returned in that dtype.

    A shared pass (``per_sample_grads``): ``vkdnw`` and ``vkdnw_single`` of one architecture
    compute it once; the pass name carries every setting that changes it.

    Raises:
        ValueError: A bad setting, too few images, or a non-finite Jacobian or Fisher matrix
            (the network overflowed; the reference's ``torch.svd`` would fail and it would
            score 0).
    """
    if init not in _INITS:
        raise ValueError(f"vkdnw: unknown init {init!r}; valid: {', '.join(_INITS)}")
    if inputs not in _INPUTS:
        raise ValueError(f"vkdnw: unknown inputs {inputs!r}; valid: {', '.join(_INPUTS)}")
    if svd_dtype not in _SVD_DTYPES:
        raise ValueError(f"vkdnw: unknown svd_dtype {svd_dtype!r}; valid: {', '.join(_SVD_DTYPES)}")
    key = (f"vkdnw_spectrum:init={init}:inputs={inputs}:n={n_samples}:tensors={n_tensors}:k={weights_per_tensor}"
           f":svd={svd_dtype}")
    return shared(key, lambda: _compute_spectrum(net, batch, init, inputs, n_samples, n_tensors, weights_per_tensor,
                                                 _SVD_DTYPES[svd_dtype]))


def _compute_spectrum(
    net: nn.Module, batch: ProxyBatch, init: str, inputs: str, n_samples: int, n_tensors: int,
    weights_per_tensor: int, svd_dtype: torch.dtype,
) -> torch.Tensor:
    chosen = chosen_weights(net, n_tensors, weights_per_tensor)
    if inputs == "images" and batch.size < int(n_samples):  # fail before drawing weights
        raise ValueError(f"vkdnw: needs {n_samples} images, the batch has {batch.size}")
    if init == "kaiming_norm_fanin":
        vkdnw_init(net)
    x = _inputs(batch, inputs, n_samples)
    was_training = net.training
    net.eval()
    try:
        jac, logits = logit_jacobian(net, x, chosen)
    finally:
        net.train(was_training)
    if not (torch.isfinite(jac).all() and torch.isfinite(logits).all()):
        raise ValueError("vkdnw: the logits or their Jacobian have non-finite entries (the network overflowed)")
    fisher = fisher_matrix(jac, logits)
    if not torch.isfinite(fisher).all():
        raise ValueError("vkdnw: the Fisher matrix has non-finite entries")
    # torch.svd(F).S as the reference (torch.linalg.svd is what it calls: bit-identical), in
    # svd_dtype; float64 keeps the solver's rounding out of the lower deciles.
    return torch.linalg.svd(fisher.to(svd_dtype), full_matrices=False).S.detach().cpu()


def decile_entropy(eigenvalues: torch.Tensor) -> float:
    """``-Σ t log(t + 1e-10)``, ``t = Q / (‖Q‖₁ + 1e-10)``, Q = the nine deciles of ``eigenvalues``.

    Deciles at ``torch.arange(0.1, 1., 0.1)`` (nine levels, in the eigenvalues' dtype) with
    ``torch.quantile``'s linear interpolation; the norm is taken as a Python float before the
    ``1e-10`` is added, as in the reference. Invariant to scaling and reordering the
    eigenvalues; 0 when the deciles are all 0; at most log 9 (all deciles equal).
    """
    values = eigenvalues.reshape(-1)
    levels = torch.arange(0.1, 1.0, 0.1, dtype=values.dtype, device=values.device)
    deciles = torch.quantile(values, levels)
    share = deciles / (torch.linalg.vector_norm(deciles, ord=1).item() + 1e-10)
    return float(-(share * torch.log(share + 1e-10)).sum())


# ---------------------------------------------------------------------------- proxies
@proxy(
    "vkdnw",
    higher_is_better=True,
    paper=_PAPER,
    passes=("per_sample_grads",),
    **_DEFAULTS,
)
def vkdnw(
    net: nn.Module, batch: ProxyBatch, *, init: str = "kaiming_norm_fanin", inputs: str = "gaussian",
    n_samples: int = 64, n_tensors: int = 128, weights_per_tensor: int = 1, svd_dtype: str = "float64",
) -> float:
    """Entropy of the nine deciles of the Fisher information spectrum (the reference's ``vkdnw_entropy``).

    See the module docstring for the protocol (ondratybl/VKDNW
    ``NB201/ZeroShotProxy/compute_vkdnw_score.py``, ``compute_nas_score``). The images of the
    batch are only used with ``inputs="images"``; by default 64 Gaussian inputs are drawn
    after the weights, from torch's global generator.

    Args:
        init: ``"kaiming_norm_fanin"`` (reference) or ``"none"`` (score the weights as given).
        inputs: ``"gaussian"`` (reference for NB201) or ``"images"`` (the first ``n_samples``
            images of the batch; the reference's ``--real_input``).
        n_samples: Number of inputs (the reference's batch size, 64).
        n_tensors: Parameter tensors whose weights enter the Fisher matrix (``params_grad_len``, 128).
        weights_per_tensor: Weights taken from each (``p``, 1: the first element).
        svd_dtype: ``"float64"`` (default, a departure) or ``"float32"`` (the reference's
            ``torch.svd`` of the float32 matrix; platform-dependent in the lower deciles).

    Raises:
        ValueError: See :func:`fisher_spectrum` and :func:`chosen_weights`.
        TypeError: The network does not return logits.
    """
    spectrum = fisher_spectrum(net, batch, init=init, inputs=inputs, n_samples=n_samples, n_tensors=n_tensors,
                               weights_per_tensor=weights_per_tensor, svd_dtype=svd_dtype)
    return decile_entropy(spectrum)


@proxy(
    "vkdnw_dim",
    higher_is_better=True,
    paper=_PAPER,
    passes=("weights",),
    shares_network=True,
)
def vkdnw_dim(net: nn.Module, batch: ProxyBatch) -> float:
    """ℵ, the number of parameter tensors ``len(list(net.named_parameters()))`` (the reference's ``vkdnw_dim``).

    The paper's "No. of trainable layers": every weight, bias and BatchNorm γ/β tensor counts
    once (a shared tensor once); 21 + 45k on an NB201 network with k convolution edges per
    cell. ``batch`` is unused.
    """
    return float(len(list(net.named_parameters())))


@proxy(
    "vkdnw_single",
    higher_is_better=True,
    paper=_PAPER,
    passes=("weights", "per_sample_grads"),
    **_DEFAULTS,
)
def vkdnw_single(
    net: nn.Module, batch: ProxyBatch, *, init: str = "kaiming_norm_fanin", inputs: str = "gaussian",
    n_samples: int = 64, n_tensors: int = 128, weights_per_tensor: int = 1, svd_dtype: str = "float64",
) -> float:
    """``ℵ + VKDNW``: parameter-tensor count plus the decile entropy (the paper's VKDNW_single on NB201).

    The reference ranks by the pair ``(vkdnw_dim, vkdnw_entropy)`` lexicographically
    (``tss_utils.get_scores`` and ``paper_preparation.ipynb``: pandas dense rank of the
    tuples); the sum orders architectures the same way whenever distinct ℵ differ by more
    than log 9 ≈ 2.2, as on NB201. Settings as :func:`vkdnw`, whose spectrum it shares.
    """
    dim = float(len(list(net.named_parameters())))
    spectrum = fisher_spectrum(net, batch, init=init, inputs=inputs, n_samples=n_samples, n_tensors=n_tensors,
                               weights_per_tensor=weights_per_tensor, svd_dtype=svd_dtype)
    return dim + decile_entropy(spectrum)


@proxy(
    "jacov_kaiming",
    higher_is_better=True,
    paper="arXiv:2006.04647v1 (Mellor et al. 2020) as AZ-NAS and VKDNW run it (cvlab-yonsei/AZ-NAS, ondratybl/VKDNW)",
    needs=("batch",),
    passes=("reinit_input_grad",),
    init="kaiming_norm_fanin",
)
def jacov_kaiming(net: nn.Module, batch: ProxyBatch, *, init: str = "kaiming_norm_fanin") -> float:
    """Jacobian covariance after a Kaiming-normal fan-in re-initialisation (VKDNW_agg's jacov component).

    ondratybl/VKDNW ``NB201/ZeroShotProxy/compute_jacov_score.py`` (from AZ-NAS): the model in
    train mode, re-initialised with ``init_model(model, 'kaiming_norm_fanin')`` (Conv2d/Linear
    weights Kaiming normal, fan-in, ReLU gain, biases 0; affine BatchNorm/GroupNorm γ = 1,
    β = 0: :func:`proxybench.proxies.aznas.reinitialise`), then ``y.backward(ones)`` over a batch
    of real training images and ``-Σ log(λ + 1e-5) + 1/(λ + 1e-5)`` of ``eigh(corrcoef(J))``,
    exactly the maths of :func:`proxybench.proxies.activation.jacov`. Its Jacobian is its own
    (never the shared ``input_grad`` pass: that one belongs to the network as built). The
    reference turns any failure into NaN (VKDNW_agg then gives NaN the column minimum); here
    a constant Jacobian row raises, as ``jacov`` does, and the row is recorded as ``error``.
    """
    from proxybench.proxies.activation import jacobian_of, jacov_of_jacobian
    from proxybench.proxies.aznas import reinitialise

    if batch.size < 2:
        raise ValueError(f"jacov_kaiming needs at least 2 samples to correlate, got a batch of {batch.size}")
    reinitialise(net, init)
    x = batch.inputs.detach().clone().requires_grad_(True)
    jac, _ = jacobian_of(x, net(x))
    return jacov_of_jacobian(jac, "jacov_kaiming")
