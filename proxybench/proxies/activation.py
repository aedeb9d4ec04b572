"""Activation and input-Jacobian proxies: jacov, nwot, epe_nas and zen.

None of these scores a layer's weights; each looks at what the untrained network does to its
inputs. The network arrives as the engine prepares it (a fresh copy, default initialisation,
train mode, the batch's device), which is what the references use: neither zero-cost-nas nor
NASLib calls ``eval()``, so BatchNorm normalises with the batch's statistics, and in the
Jacobian proxies a sample's "Jacobian" includes the cross-sample terms that batch statistics
bring (the references' ``y.backward(ones)`` over the whole batch does the same).

* ``jacov`` — Mellor et al. 2020 v1 (arXiv:2006.04647v1), zero-cost-nas
  ``foresight/pruners/measures/jacob_cov.py`` and NASLib
  ``naslib/predictors/utils/pruners/measures/jacov.py`` (identical maths).
* ``nwot`` — Mellor et al. 2021 (ICML, arXiv:2006.04647v2), NASLib
  ``naslib/predictors/utils/pruners/measures/nwot.py``.
* ``epe_nas`` — Lopes et al. 2021 (arXiv:2102.08099), NASLib
  ``naslib/predictors/pruners/measures/epe_nas.py`` (the authors' ``search.py``).
* ``zen`` — Lin et al. 2021 (ICCV, arXiv:2102.01063), idstcv/ZenNAS
  ``ZeroShotProxy/compute_zen_score.py`` as called by ``evolution_search.py`` (NASLib's
  ``measures/zen.py`` cannot run: it stops in ``IPython.embed()`` and reads an undefined
  ``model``).

Undefined values are not hidden. A Jacobian row with zero variance (an output that does not
depend on its input, e.g. an NB201 cell whose output node has only ``none`` edges) makes the
correlation matrix undefined: the references get NaN there (zero-cost-nas and NASLib's
``jacov`` catch numpy's ``LinAlgError``, print it and return NaN; ``epe_nas`` returns NaN),
which NASLib's predictor then replaces by ``-1e8``. Here ``jacov`` and ``epe_nas`` raise a
``ValueError`` that says so, and the engine records the row as ``error``. A singular NWOT
kernel gives ``log|det K| = -inf``, which is returned (the engine records it as non-finite).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies.passes import shared
from proxybench.proxies.registry import proxy

__all__ = ["jacov", "jacov_of_jacobian", "nwot", "epe_nas", "zen", "input_jacobian", "jacobian_of", "relu_modules", "gaussian_init",
           "global_pool_input"]

#: The references' ``k``: added to eigenvalues (jacov) and to |correlations| (epe_nas).
_EPS = 1e-5


# ---------------------------------------------------------------------------- Jacobians
def input_jacobian(net: nn.Module, batch: ProxyBatch) -> torch.Tensor:
    """Rows ``J_n = d(sum_c y_nc)/dx_n`` flattened to ``(N, C·H·W)``, in float64.

    One backward of the summed logits of the whole batch to a copy of the inputs, as the
    references' ``y.backward(torch.ones_like(y))``. An input the output does not reach gives a
    zero Jacobian (``allow_unused``), not an autograd error.
    """
    return _jacobian_and_width(net, batch)[0]


def _jacobian_and_width(net: nn.Module, batch: ProxyBatch) -> tuple[torch.Tensor, int]:
    """:func:`input_jacobian` and ``y.shape[-1]`` (the number of logits) of the same forward.

    A shared pass (:mod:`proxybench.proxies.passes`): jacov and epe_nas of one architecture
    read the same Jacobian, which may come from the forward shared with the loss pass
    (:mod:`proxybench.proxies.bundle`).
    """
    from proxybench.proxies.bundle import bundled, forward_bundle

    if bundled("input_grad"):
        found = forward_bundle(net, batch).jacobian
        assert found is not None
        jac, width = found
    else:
        jac, width = shared("input_jacobian", lambda: _compute_jacobian_and_width(net, batch))
    if not torch.isfinite(jac).all():
        raise ValueError("the input Jacobian has non-finite entries (the network's output overflowed)")
    return jac, width


def _compute_jacobian_and_width(net: nn.Module, batch: ProxyBatch) -> tuple[torch.Tensor, int]:
    x = batch.inputs.detach().clone().requires_grad_(True)
    return jacobian_of(x, net(x))


def jacobian_of(x: torch.Tensor, y: torch.Tensor, retain_graph: bool = False) -> tuple[torch.Tensor, int]:
    """Rows ``d(sum_c y_nc)/dx_n`` as float64 ``(N, C·H·W)`` and the number of logits, from a forward ``y = f(x)``."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"the network returned {type(y).__name__}; Jacobian proxies need a tensor output")
    (grad,) = torch.autograd.grad(y.sum(), [x], allow_unused=True, retain_graph=retain_graph)
    jac = torch.zeros_like(x) if grad is None else grad
    return jac.detach().reshape(jac.shape[0], -1).to(torch.float64), int(y.shape[-1])


def _check_rows_vary(jac: torch.Tensor, proxy_name: str) -> None:
    """Raise when a Jacobian row is constant: its correlation with anything is undefined (0/0)."""
    flat = (jac == jac[:, :1]).all(dim=1)
    if bool(flat.any()):
        raise ValueError(
            f"{proxy_name}: {int(flat.sum())} of {jac.shape[0]} input-Jacobian rows are constant (zero variance), "
            "so their correlations are undefined; the output does not depend on those inputs "
            "(the references return NaN here)"
        )


def _corrcoef(rows: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between rows (``numpy.corrcoef``), clipped to [-1, 1] as numpy does."""
    return torch.corrcoef(rows)


# ---------------------------------------------------------------------------- jacov
@proxy(
    "jacov",
    higher_is_better=True,
    paper="arXiv:2006.04647v1 (Mellor et al. 2020, NAS without training, v1); as in arXiv:2101.08134",
    needs=("batch",),
    passes=("input_grad",),
    shares_network=True,
)
def jacov(net: nn.Module, batch: ProxyBatch) -> float:
    """Jacobian covariance ``-sum_i [log(λ_i + k) + 1/(λ_i + k)]``, λ = eig(corrcoef(J)), k = 1e-5.

    ``J`` is :func:`input_jacobian` (one row per sample), ``corrcoef`` the N×N Pearson
    correlation between samples. The references (zero-cost-nas ``measures/jacob_cov.py``,
    NASLib ``measures/jacov.py``) call ``np.linalg.eig``, a general solver that can return
    complex pairs for this symmetric matrix; here ``eigvalsh`` in float64 returns its real
    spectrum. Mellor et al. 2020, arXiv:2006.04647v1.

    Raises:
        ValueError: When a Jacobian row is constant (the correlation matrix is undefined; the
            references return NaN), or the batch has a single sample.
    """
    if batch.size < 2:
        raise ValueError(f"jacov needs at least 2 samples to correlate, got a batch of {batch.size}")
    return jacov_of_jacobian(input_jacobian(net, batch))


def jacov_of_jacobian(jac: torch.Tensor, proxy_name: str = "jacov") -> float:
    """jacov's score of Jacobian rows ``(N, D)``: ``-Σ log(λ + k) + 1/(λ + k)``, λ = eigvalsh(corrcoef).

    Raises:
        ValueError: A row is constant (its correlations are undefined).
    """
    _check_rows_vary(jac, proxy_name)
    eig = torch.linalg.eigvalsh(_corrcoef(jac))
    return float(-(torch.log(eig + _EPS) + 1.0 / (eig + _EPS)).sum())


# ---------------------------------------------------------------------------- epe_nas
@proxy(
    "epe_nas",
    higher_is_better=True,
    paper="arXiv:2102.08099 (Lopes et al. 2021, EPE-NAS)",
    needs=("batch", "labels"),
    passes=("input_grad",),
    shares_network=True,
)
def epe_nas(net: nn.Module, batch: ProxyBatch) -> float:
    """Per-class Jacobian correlation ``sum_c |s_c|``, ``s_c = sum log(|corrcoef(J_c)| + 1e-5)``.

    ``J_c`` holds the :func:`input_jacobian` rows of the samples labelled ``c``; the sum in
    ``s_c`` runs over all ``N_c²`` entries, diagonal included. Reproduces NASLib
    ``naslib/predictors/pruners/measures/epe_nas.py`` (Lopes et al. 2021, arXiv:2102.08099),
    quirks included, with ``n`` = the number of logits (``y.shape[-1]``):

    * a class with one sample has ``corrcoef`` = the scalar 1, so ``s_c = log(1 + 1e-5)``;
    * ``n <= 100``: score ``sum_c |s_c|`` (no normalisation);
    * ``n > 100`` (ImageNet16-120): each ``s_c`` is divided by ``N_c``, a class with a single
      sample is *dropped* (the reference's ``len()`` of a scalar raises and its ``except``
      skips the class), and the score is ``sum_{c,c'} |s_c - s_c'| / (number of classes kept)``.

    Raises:
        ValueError: When a Jacobian row is constant (the reference returns NaN).
    """
    jac, n_outputs = _jacobian_and_width(net, batch)
    _check_rows_vary(jac, "epe_nas")
    labels = batch.targets.detach().to(jac.device)
    per_class: list[float] = []
    for c in _labels_in_order(labels):
        rows = jac[labels == c]
        if rows.shape[0] == 1:
            if n_outputs > 100:
                continue  # the reference's len(scalar) TypeError: the class is skipped
            per_class.append(math.log(1.0 + _EPS))  # log(|corrcoef(one row)| + k), corrcoef = 1
            continue
        s = torch.log(_corrcoef(rows).abs() + _EPS).sum()
        if n_outputs > 100:
            s = s / rows.shape[0]
        per_class.append(float(s))
    scores = torch.tensor(per_class, dtype=torch.float64)
    if n_outputs <= 100:
        return float(scores.abs().sum())
    if not per_class:
        return 0.0
    return float((scores[:, None] - scores[None, :]).abs().sum() / len(per_class))


def _labels_in_order(labels: torch.Tensor) -> list[int]:
    """Distinct labels in order of first appearance (the reference's dict order)."""
    seen: dict[int, None] = {}
    for value in labels.tolist():
        seen.setdefault(int(value), None)
    return list(seen)


# ---------------------------------------------------------------------------- nwot
def relu_modules(net: nn.Module) -> list[nn.Module]:
    """The modules NWOT hooks: PyTorch's own activation modules whose class name contains ``ReLU``.

    NASLib hooks every module whose type string contains ``'ReLU'`` but not ``'naslib'``
    (``nn.ReLU``, and also ``ReLU6``/``LeakyReLU``), so that composite ops named after a ReLU
    (its ``ReLUConvBN``, proxybench's :class:`~proxybench.spaces.nb201_net.ReLUConvBN`) are
    not counted twice; "defined in ``torch.nn``" is the same rule for any project.
    """
    return [
        m for m in net.modules()
        if "ReLU" in type(m).__name__ and type(m).__module__.startswith("torch.nn")
    ]


@proxy(
    "nwot",
    higher_is_better=True,
    paper="arXiv:2006.04647v2 (Mellor et al. 2021, ICML, NAS without training)",
    needs=("batch",),
    passes=("forward",),
    shares_network=True,
)
def nwot(net: nn.Module, batch: ProxyBatch) -> float:
    """Activation-pattern kernel ``log|det K|``, ``K = sum_relu [c cᵀ + (1-c)(1-c)ᵀ]`` in float64.

    ``c`` is the binary code ``input > 0`` of each ReLU module (:func:`relu_modules`) over all
    its units, one row per sample, so ``K_ij`` counts the units where samples ``i`` and ``j``
    agree (``#units - Hamming distance``). One forward of the batch in the mode given (train,
    as NASLib), without gradients. NASLib ``naslib/predictors/utils/pruners/measures/nwot.py``
    reads the ReLU's *input* in a forward hook (for a ReLU ``input > 0`` iff ``output > 0``);
    ``slogdet`` as its ``np.linalg.slogdet``. Mellor et al. 2021, arXiv:2006.04647v2.

    Returns:
        ``log|det K|``; ``-inf`` when ``K`` is singular (e.g. two samples with identical codes).

    Raises:
        ValueError: When the network has no ReLU module to hook.
    """
    from proxybench.proxies.bundle import bundled, forward_bundle

    if bundled("forward"):
        kernel = forward_bundle(net, batch).nwot_kernel
        if kernel is None:
            raise ValueError(f"{type(net).__name__} has no ReLU module for NWOT to hook")
    else:
        recorder = NwotKernel(net, batch.size)
        with recorder, torch.no_grad():
            net(batch.inputs)
        kernel = recorder.kernel
    return float(torch.linalg.slogdet(kernel).logabsdet)


class NwotKernel:
    """Accumulates NWOT's kernel ``K`` from the ReLU inputs of the forward passes run inside ``with``.

    ``kernel`` is None when the network has no ReLU module (:func:`relu_modules`); entering
    then raises, unless ``required=False`` (a shared forward that serves other proxies too).
    """

    def __init__(self, net: nn.Module, n: int, required: bool = True) -> None:
        self.modules = relu_modules(net)
        if required and not self.modules:
            raise ValueError(f"{type(net).__name__} has no ReLU module for NWOT to hook")
        self.n = n
        self.kernel: torch.Tensor | None = None
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> NwotKernel:
        self._handles = [m.register_forward_pre_hook(self._count) for m in self.modules]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()

    def _count(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        n = self.n
        code = (inputs[0].detach().reshape(n, -1) > 0).to(torch.float64)
        ones = code.sum(dim=1)
        # c cᵀ + (1-c)(1-c)ᵀ = D - r_i - r_j + 2 c cᵀ, with D units and r_i = active units of i
        term = code.shape[1] - ones[:, None] - ones[None, :] + 2.0 * (code @ code.T)
        self.kernel = term if self.kernel is None else self.kernel + term


# ---------------------------------------------------------------------------- zen
def _is_global_pool(module: nn.Module) -> bool:
    if not isinstance(module, nn.AdaptiveAvgPool2d):
        return False
    size = module.output_size
    return all(s == 1 for s in (size if isinstance(size, tuple) else (size, size)))


@contextmanager
def global_pool_input(net: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Capture the feature map that enters global average pooling, without knowing module names.

    Hooks every ``nn.AdaptiveAvgPool2d`` with output size 1 and keeps the input of the *last*
    call in a forward (a squeeze-excitation block's pooling runs before the head's). The
    yielded list holds that tensor after each forward (it is cleared and refilled per call).

    Raises:
        ValueError: When the network has no such module (a functional ``F.adaptive_avg_pool2d``
            cannot be hooked).
    """
    pools = [m for m in net.modules() if _is_global_pool(m)]
    if not pools:
        raise ValueError(
            f"{type(net).__name__} has no nn.AdaptiveAvgPool2d(1) module; zen needs the feature map "
            "that enters global average pooling"
        )
    captured: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        captured[:] = [inputs[0]]

    handles = [m.register_forward_pre_hook(keep) for m in pools]
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def gaussian_init(net: nn.Module) -> None:
    """ZenNAS ``network_weight_gaussian_init`` (SWAP uses the same): conv/linear weights N(0,1), biases 0; BN/GN γ=1, β=0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@proxy(
    "zen",
    higher_is_better=True,
    paper="arXiv:2102.01063 (Lin et al. 2021, Zen-NAS, ICCV)",
    needs=(),
    passes=("gaussian_forward",),
    mixup_gamma=1e-2,
    repeat=1,
)
def zen(net: nn.Module, batch: ProxyBatch, *, mixup_gamma: float = 1e-2, repeat: int = 1) -> float:
    """Zen-score ``log E_n ||f(x_n) - f(x_n + γ ε_n)||_1 + sum_BN log sqrt(mean(running_var))``.

    Follows idstcv/ZenNAS ``ZeroShotProxy/compute_zen_score.py`` (Lin et al. 2021,
    arXiv:2102.01063) with the settings of its search (``evolution_search.py``: ``repeat=1``,
    ``--gamma 1e-2``, batch 64 at the dataset's resolution), per repeat:

    1. every Conv2d/Linear weight redrawn from N(0, 1) and its bias zeroed, BatchNorm2d and
       GroupNorm γ = 1, β = 0 (``network_weight_gaussian_init``);
    2. ``x`` then ``ε`` drawn from N(0, 1) with the batch's shape, device and dtype (float32:
       the reference uses float32, ``fp16=False``) — the images themselves are not used, so
       the proxy needs no data;
    3. without gradients, in the mode given (train: BatchNorm uses batch statistics and
       updates its running statistics), ``f(x)`` then ``f(x + γ ε)``, where ``f`` is the
       feature map entering global average pooling (:func:`global_pool_input`);
    4. ``Δ = mean over samples of sum over C·H·W of |f(x) - f(x + γε)|``;
    5. every BatchNorm2d adds ``log sqrt(mean over channels of running_var)``. As in the
       reference, ``running_var`` is what the two forwards leave with each BN's own momentum
       (0.1 by default: ``0.81 + 0.09 v_x + 0.1 v_mix`` from the initial 1), not the batch
       variance of the paper's text.

    Draws come from torch's global generator (the engine seeds it before each proxy), in the
    order weights (module order), ``x``, ``ε``, so a seed fixes the score. ``repeat`` > 1
    averages independent repeats; unlike the reference (whose running statistics carry over
    from one repeat to the next) each repeat starts from fresh running statistics. The
    reference also scores its own networks with residual links removed (``no_reslink=True``);
    a generic network cannot be rewired, so zen scores the network as built.

    Args:
        mixup_gamma: γ, the perturbation scale (reference 1e-2).
        repeat: Number of independent draws averaged (reference search: 1).

    Returns:
        The score; ``-inf`` when the features do not depend on the input (Δ = 0).

    Raises:
        ValueError: No global-pooling module to hook, a BatchNorm2d without running
            statistics, or ``repeat`` < 1.
    """
    if int(repeat) < 1:
        raise ValueError(f"zen: repeat must be >= 1, got {repeat!r}")
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if any(m.running_var is None for m in norms):
        raise ValueError("zen: a BatchNorm2d tracks no running statistics (track_running_stats=False)")
    shape, device, dtype = tuple(batch.inputs.shape), batch.inputs.device, batch.inputs.dtype
    scores: list[float] = []
    with torch.no_grad(), global_pool_input(net) as features:
        for _ in range(int(repeat)):
            gaussian_init(net)
            for m in norms:
                m.reset_running_stats()
            x = torch.randn(shape, device=device, dtype=dtype)
            eps = torch.randn(shape, device=device, dtype=dtype)
            f_x = _features(net, x, features)
            f_mix = _features(net, x + mixup_gamma * eps, features)
            delta = (f_x - f_mix).abs().flatten(1).sum(dim=1).mean()
            log_bn = sum(
                (torch.log(torch.sqrt(m.running_var.to(torch.float64).mean())) for m in norms),
                torch.zeros((), dtype=torch.float64, device=device),
            )
            scores.append(float(torch.log(delta.to(torch.float64)) + log_bn))
    return float(sum(scores) / len(scores))


def _features(net: nn.Module, x: torch.Tensor, captured: list[torch.Tensor]) -> torch.Tensor:
    captured.clear()
    net(x)
    if not captured:
        raise ValueError(f"{type(net).__name__}'s forward never called its global-pooling module")
    return captured[0]
