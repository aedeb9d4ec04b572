"""AZ-NAS's four zero-cost components: expressivity, progressivity, trainability, complexity.

Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search", CVPR 2024
(arXiv:2403.19232). Follows cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy/compute_az_nas_score.py``
(``compute_nas_score``) as the NB201 notebook ``NB201/tss_general.ipynb`` calls it, and the
network's ``extract_cell_features`` in ``NB201/custom/tss_model.py``. The reference's NB201
protocol, all defaults here:

* the network is put in train mode (BatchNorm uses the batch's statistics) and re-initialised
  (``init_model(model, 'kaiming_norm_fanin')``): every Conv2d and Linear weight
  ``kaiming_normal_(mode='fan_in', nonlinearity='relu')``, their biases 0; every affine
  BatchNorm2d/GroupNorm γ = 1, β = 0 (running statistics untouched);
* the inputs are Gaussian, ``torch.randn`` of the loader batch's shape (az_nas is not in the
  notebook's ``real_input_metrics``; batch 64 of CIFAR-10, 3×32×32), drawn after the weights;
* one forward records the *cell features*: the stem's output and the output of every block of
  ``net.cells`` (18 maps on NB201: stem + 15 cells + 2 residual reductions);
* the trainability backward draws one Rademacher map per block, last block first.

Draws come from torch's global generator in that order (weights in module order, inputs,
then the Rademacher maps), so the engine's seed fixes every score. The reference seeds once
(``prepare_seed(1)``) and scores all 15,625 networks in one continuous random stream; here
each architecture starts from the run's seed, so individual draws differ from the reference's
while their distribution is the same.

Shared work: the three feature components come from the same forward (and trainability from
the backward of that forward), which runs once per architecture through
:func:`proxybench.proxies.passes.shared`; when the run also wants ``feature_backward`` the
first component to run computes the backward too. Complexity needs no forward of the batch.

Precision: as in the reference, everything runs in the inputs' dtype (float32). The
expressivity eigenvalues can instead be taken in float64 (setting ``eig_dtype``), which
removes NaNs that float32 rounding of tiny eigenvalues causes (see :func:`isotropy_entropy`).

The ensemble ``az_nas`` is not a per-architecture proxy and is not computed here. Over a set
of ``N`` architectures (the notebook's ranking cell) it is
``Σ_k log(rankdata(s_k) / N)`` over the four components, ``scipy.stats.rankdata`` with its
default ``'average'`` ties, ascending (every component is higher-is-better, none is negated),
NaN taken as ``-inf`` (ranked lowest) — so the ``-inf`` rows must be kept, not dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies.cost import zero_input_forward
from proxybench.proxies.passes import shared, wanted_passes
from proxybench.proxies.registry import proxy

__all__ = [
    "EIG_DTYPES",
    "INITS",
    "INPUTS",
    "CellPass",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "az_complexity",
    "cell_blocks",
    "cell_pass",
    "isotropy_entropy",
    "reinitialise",
    "api_flops",
]

_PAPER = "arXiv:2403.19232 (Lee & Ham 2024, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search, CVPR)"

#: Added to the normalised eigenvalues inside the log (the reference's ``1e-8``).
_LOG_EPS = 1e-8
#: Added to the largest singular value in the ``1/σ`` term (the reference's ``1e-6``).
_SIGMA_EPS = 1e-6


# ----------------------------------------------------------------------------- init
def _weight_rule(method: str) -> Callable[[torch.Tensor], object] | None:
    """How ``method`` draws a Conv2d/Linear weight (None: keep the weights as they are)."""
    rules: dict[str, Callable[[torch.Tensor], object] | None] = {
        "none": None,
        "kaiming_norm_fanin": lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"),
        "kaiming_norm_fanout": lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
        "kaiming_uni_fanin": lambda w: nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu"),
        "kaiming_uni_fanout": lambda w: nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"),
        "xavier_norm": nn.init.xavier_normal_,
        "xavier_uni": nn.init.xavier_uniform_,
        "plain_norm": lambda w: nn.init.normal_(w, mean=0.0, std=0.1),
        "plain_uni": lambda w: nn.init.uniform_(w, a=-0.1, b=0.1),
    }
    if method not in rules:
        raise ValueError(f"AZ-NAS: unknown init {method!r}; valid: {', '.join(rules)}")
    return rules[method]


#: The reference's ``init_model`` methods (same spellings), plus ``"none"`` (keep the network's weights).
INITS = ("kaiming_norm_fanin", "kaiming_norm_fanout", "kaiming_uni_fanin", "kaiming_uni_fanout",
         "xavier_norm", "xavier_uni", "plain_norm", "plain_uni", "none")

#: Input kinds: ``"gaussian"`` (the reference for AZ-NAS) or ``"batch"`` (the real images, its trainloader branch).
INPUTS = ("gaussian", "batch")

#: Precision of the expressivity eigenvalues: ``"input"`` (the features' dtype, float32 as in
#: the reference) or ``"float64"`` (the maps are cast before the covariance).
EIG_DTYPES: Mapping[str, torch.dtype | None] = MappingProxyType({"input": None, "float64": torch.float64})


@torch.no_grad()
def reinitialise(net: nn.Module, method: str = "kaiming_norm_fanin") -> None:
    """Redraw the weights as the reference's ``init_model(model, method)`` does.

    ``net.apply`` visits the modules children-first, as the reference's ``model.apply``;
    Conv2d and Linear weights follow ``method``, their biases become 0; BatchNorm2d and
    GroupNorm with ``affine`` get γ = 1, β = 0. Other modules (BatchNorm1d, LayerNorm) are left
    as they are, as in the reference. ``"none"`` changes nothing.
    """
    rule = _weight_rule(method)
    if rule is None:
        return

    def visit(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            rule(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    net.apply(visit)


def _check_settings(init: str, inputs: str, eig_dtype: str = "input") -> None:
    _weight_rule(init)
    if inputs not in INPUTS:
        raise ValueError(f"AZ-NAS: unknown inputs {inputs!r}; valid: {', '.join(INPUTS)}")
    if eig_dtype not in EIG_DTYPES:
        raise ValueError(f"AZ-NAS: unknown eig_dtype {eig_dtype!r}; valid: {', '.join(EIG_DTYPES)}")


# ----------------------------------------------------------------------------- cell features
def cell_blocks(net: nn.Module) -> list[nn.Module]:
    """The blocks whose outputs AZ-NAS records: the children of ``net.cells``, in order.

    The reference's ``extract_cell_features`` records the stem output and then each element of
    ``self.cells`` (NB201: 15 cells and the 2 ResNet reduction blocks). The stem output is the
    input of ``cells[0]``, so a network only needs a ``cells`` ModuleList/Sequential whose
    blocks its forward applies one after the other (checked during the forward).

    Raises:
        ValueError: When ``net`` has no non-empty ``cells`` ModuleList/Sequential.
    """
    cells = getattr(net, "cells", None)
    if not isinstance(cells, (nn.ModuleList, nn.Sequential)) or len(cells) == 0:
        raise ValueError(
            f"AZ-NAS needs the network's blocks as a non-empty ModuleList/Sequential `cells` "
            f"(the reference records each cell's output); {type(net).__name__} has none"
        )
    return list(cells)


class _CellTap:
    """Forward hooks that record each block's input and output and cut the graph between blocks.

    Each block's input is replaced by a detached copy that requires a gradient (a leaf), so a
    block's backward ``d f_out / d f_in`` runs through that block alone: the same numbers as
    the reference's ``autograd.grad(f_out, f_in)`` inside one graph, but independent of how
    the network represents a ``none`` edge (xautodl multiplies by 0 and keeps the graph;
    proxybench's NB201 cell skips the edge, which would disconnect later blocks). Forward
    values are unchanged.
    """

    def __init__(self, blocks: list[nn.Module]) -> None:
        self.blocks = blocks
        self.leaves: list[torch.Tensor] = []  # input of block i, as a leaf
        self.outputs: list[torch.Tensor] = []  # output of block i
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> _CellTap:
        for index, block in enumerate(self.blocks):
            self._handles.append(block.register_forward_pre_hook(self._before(index)))
            self._handles.append(block.register_forward_hook(self._after(index)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()

    def _before(self, index: int) -> Callable[..., tuple]:
        def hook(module: nn.Module, args: tuple) -> tuple:
            x = args[0] if args else None
            if not isinstance(x, torch.Tensor) or x.dim() != 4:
                raise ValueError(f"AZ-NAS: cells[{index}] must take an (N, C, H, W) tensor, got {_describe(x)}")
            if len(self.leaves) != index or (index > 0 and x is not self.outputs[index - 1]):
                raise ValueError(
                    f"AZ-NAS: cells[{index}] was not called on the output of cells[{index - 1}]; the network's "
                    "forward must apply its `cells` one after the other, each once"
                )
            leaf = x.detach().requires_grad_(True)
            self.leaves.append(leaf)
            return (leaf, *args[1:])

        return hook

    def _after(self, index: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                raise ValueError(f"AZ-NAS: cells[{index}] must return an (N, C, H, W) tensor, got {_describe(output)}")
            self.outputs.append(output)

        return hook


def _describe(x: object) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__


# ----------------------------------------------------------------------------- the maths
def isotropy_entropy(feature: torch.Tensor, dtype: torch.dtype | None = None) -> float:
    """Entropy of the normalised eigenvalues of a feature map's channel covariance.

    The reference's per-block expressivity: the map ``(B, C, H, W)`` becomes ``B·H·W`` samples
    of ``C`` channels, centred by their mean; ``Σ = XᵀX / (B·H·W)``; with ``λ = eigvalsh(Σ)`` and
    ``p = λ / Σλ`` the score is ``-Σ p log(p + 1e-8)``, in the feature's dtype (float32 in the
    reference) unless ``dtype`` is given (the map is cast first). A constant map has ``Σ = 0``
    and ``p = 0/0``: NaN, as in the reference. So has a map whose smallest eigenvalue comes out
    below ``-1e-8·Σλ`` (``log`` of a negative number): in float32 the eigensolver's rounding
    (~1e-7·λ_max) does this to deep NB201 maps whose spectrum spans 8 decades, a reference
    quirk that float64 removes.
    """
    if feature.dim() != 4:
        raise ValueError(f"AZ-NAS expressivity needs (N, C, H, W) feature maps, got shape {tuple(feature.shape)}")
    b, c, h, w = feature.shape
    samples = feature.detach().to(dtype or feature.dtype).permute(0, 2, 3, 1).reshape(b * h * w, c)
    samples = samples - samples.mean(dim=0, keepdim=True)
    sigma = samples.T @ samples / samples.shape[0]
    eig = torch.linalg.eigvalsh(sigma)
    p = eig / eig.sum()
    return float((-p * torch.log(p + _LOG_EPS)).sum())


def _block_gradient(f_out: torch.Tensor, f_in: torch.Tensor, g_out: torch.Tensor) -> torch.Tensor:
    """``(d f_out / d f_in)ᵀ g_out``; zeros where ``f_out`` does not depend on ``f_in``.

    Zeros are what the reference gets there: its ``none`` edges multiply by 0 and so pass a
    zero gradient; proxybench's cells build no graph at all for them.
    """
    if not f_out.requires_grad:
        return torch.zeros_like(f_in)
    (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, allow_unused=True)
    return torch.zeros_like(f_in) if g_in is None else g_in


def _block_trainability(f_in: torch.Tensor, f_out: torch.Tensor, index: int) -> float:
    """One block's term ``-σ_max - 1/(σ_max + 1e-6) + 2`` of the reference's trainability.

    ``g_out`` is a Rademacher map (``(bernoulli(0.5) - 0.5)·2``, drawn now) of ``f_out``'s
    shape and ``g_in`` its backward to the block's input. A block that passes ``g_out`` through
    unchanged (``g_in == g_out`` everywhere: an identity block) scores ``-inf`` (reference
    quirk). When the block downsamples, ``g_in`` is pixel-unshuffled by ``H_in / H_out`` so both
    have ``B·H_out·W_out`` rows; ``M = g_inᵀ g_out / (B·H_out·W_out)`` and ``σ_max`` is its
    largest singular value.
    """
    g_out = torch.ones_like(f_out) * 0.5
    g_out = (torch.bernoulli(g_out) - 0.5) * 2
    g_in = _block_gradient(f_out, f_in, g_out)
    if g_out.shape == g_in.shape and bool(torch.all(g_in == g_out)):
        return -math.inf
    if g_out.shape[2:] != g_in.shape[2:]:
        stride = int(g_in.shape[2] / g_out.shape[2])
        if stride < 1 or g_in.shape[2] != stride * g_out.shape[2] or g_in.shape[3] != stride * g_out.shape[3]:
            raise ValueError(
                f"AZ-NAS trainability: cells[{index}] maps {tuple(g_in.shape)} to {tuple(g_out.shape)}; "
                "only an integer downsampling of both axes by the same factor can be matched (pixel unshuffle)"
            )
        g_in = F.pixel_unshuffle(g_in, stride)
    bo, co, ho, wo = g_out.shape
    rows_out = g_out.permute(0, 2, 3, 1).reshape(bo * ho * wo, co)
    rows_in = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1])
    if rows_in.shape[0] != rows_out.shape[0]:
        raise ValueError(f"AZ-NAS trainability: cells[{index}] changes the batch size")
    mat = rows_in.T @ rows_out / (bo * ho * wo)
    if mat.shape[0] < mat.shape[1]:
        mat = mat.T  # the reference's speed-up; the singular values are the same
    sigma = torch.linalg.svdvals(mat).max().item()
    return -sigma - 1 / (sigma + _SIGMA_EPS) + 2


@dataclass(frozen=True)
class CellPass:
    """What the shared AZ-NAS pass of one architecture produced (numbers only, no tensors).

    Attributes:
        entropies: :func:`isotropy_entropy` of each recorded feature: the stem output (the
            input of ``cells[0]``), then each block's output.
        block_scores: Each block's trainability term in the reference's order (last block
            first); None when the backward was not run.
    """

    entropies: tuple[float, ...]
    block_scores: tuple[float, ...] | None


def cell_pass(net: nn.Module, batch: ProxyBatch, *, init: str, inputs: str, backward: bool,
              eig_dtype: str = "input") -> CellPass:
    """The reference's ``compute_nas_score`` up to its per-block numbers, on ``net`` (modified).

    Re-initialises ``net`` (:func:`reinitialise`), draws the inputs (``inputs="gaussian"``:
    ``torch.randn`` of the batch's shape, device and dtype), runs one forward with gradients
    enabled recording the cell features, computes each feature's entropy (eigenvalues in
    ``eig_dtype``) and, with ``backward``, each block's trainability term (drawing its
    Rademacher map), last block first.
    """
    _check_settings(init, inputs, eig_dtype)
    blocks = cell_blocks(net)
    reinitialise(net, init)
    if inputs == "gaussian":
        x = torch.randn(tuple(batch.inputs.shape), device=batch.inputs.device, dtype=batch.inputs.dtype)
    else:
        x = batch.inputs.detach()
    tap = _CellTap(blocks)
    with tap, torch.enable_grad():
        net(x)
    if len(tap.outputs) != len(blocks):
        raise ValueError(f"AZ-NAS: the forward called {len(tap.outputs)} of the {len(blocks)} blocks of `cells`")
    features = [tap.leaves[0], *tap.outputs]
    entropies = tuple(isotropy_entropy(f, EIG_DTYPES[eig_dtype]) for f in features)
    scores = None
    if backward:
        with torch.enable_grad():
            scores = tuple(
                _block_trainability(tap.leaves[i], tap.outputs[i], i) for i in reversed(range(len(blocks)))
            )
    return CellPass(entropies=entropies, block_scores=scores)


def _shared_cell_pass(net: nn.Module, batch: ProxyBatch, init: str, inputs: str, backward: bool,
                      eig_dtype: str = "input") -> CellPass:
    """:func:`cell_pass` through the active pass cache (one per architecture and settings).

    The backward is run with the forward when this proxy needs it or the run wants
    ``feature_backward``; a stored forward-only result is not reused by trainability, which
    then runs its own pass (same draws, so the same numbers). Trainability always asks with
    ``eig_dtype="input"``, so it shares only with feature proxies at that default.
    """
    _check_settings(init, inputs, eig_dtype)
    key = f"aznas_feature_forward[init={init},inputs={inputs},eig_dtype={eig_dtype}]"
    with_backward = backward or "feature_backward" in wanted_passes()
    result = shared(key, lambda: cell_pass(net, batch, init=init, inputs=inputs, backward=with_backward,
                                           eig_dtype=eig_dtype))
    if backward and result.block_scores is None:
        result = shared(key + "+feature_backward",
                        lambda: cell_pass(net, batch, init=init, inputs=inputs, backward=True, eig_dtype=eig_dtype))
    return result


def _reference_float(value: float) -> float:
    """The reference's ``float(v) if not np.isnan(v) else -np.inf``: NaN becomes ``-inf``."""
    return -math.inf if math.isnan(value) else float(value)


# ----------------------------------------------------------------------------- proxies
@proxy(
    "az_expressivity",
    higher_is_better=True,
    paper=_PAPER,
    needs=(),
    passes=("feature_forward",),
    init="kaiming_norm_fanin",
    inputs="gaussian",
    eig_dtype="input",
)
def az_expressivity(net: nn.Module, batch: ProxyBatch, *, init: str = "kaiming_norm_fanin",
                    inputs: str = "gaussian", eig_dtype: str = "input") -> float:
    """AZ-NAS expressivity: sum over the cell features of the eigenvalue entropy (isotropy) of their covariance.

    ``s^E = Σ_l H(λ_l / Σλ_l)`` over the stem output and every block output of ``net.cells``
    (:func:`isotropy_entropy`), after the reference's re-initialisation, on Gaussian inputs
    (``compute_az_nas_score.py``: ``expressivity = np.sum(expressivity_scores)``). A constant
    feature map, or float32 rounding of a tiny eigenvalue below ``-1e-8·Σλ``, makes it NaN,
    which the reference turns into ``-inf`` (returned as such).

    Args:
        init: Weight re-initialisation (:data:`INITS`; the reference's ``kaiming_norm_fanin``).
        inputs: ``"gaussian"`` (reference) or ``"batch"`` (the real images).
        eig_dtype: ``"input"`` (the features' float32, as the reference) or ``"float64"``
            (covariance and eigenvalues in float64: no spurious NaN from rounding).
    """
    result = _shared_cell_pass(net, batch, init, inputs, backward=False, eig_dtype=eig_dtype)
    return _reference_float(float(np.sum(np.array(result.entropies))))


@proxy(
    "az_progressivity",
    higher_is_better=True,
    paper=_PAPER,
    needs=(),
    passes=("feature_forward",),
    init="kaiming_norm_fanin",
    inputs="gaussian",
    eig_dtype="input",
)
def az_progressivity(net: nn.Module, batch: ProxyBatch, *, init: str = "kaiming_norm_fanin",
                     inputs: str = "gaussian", eig_dtype: str = "input") -> float:
    """AZ-NAS progressivity: the smallest increase of the feature entropy from one block to the next.

    ``s^P = min_l (s^E_l - s^E_{l-1})`` over consecutive cell features (stem output, then each
    block of ``net.cells``), from the same pass as :func:`az_expressivity`
    (``np.min(expressivity_scores[1:] - expressivity_scores[:-1])``); NaN becomes ``-inf``.

    Args:
        init: Weight re-initialisation (:data:`INITS`; the reference's ``kaiming_norm_fanin``).
        inputs: ``"gaussian"`` (reference) or ``"batch"`` (the real images).
        eig_dtype: ``"input"`` (reference) or ``"float64"``, as for :func:`az_expressivity`.
    """
    result = _shared_cell_pass(net, batch, init, inputs, backward=False, eig_dtype=eig_dtype)
    e = np.array(result.entropies)
    return _reference_float(float(np.min(e[1:] - e[:-1])))


@proxy(
    "az_trainability",
    higher_is_better=True,
    paper=_PAPER,
    needs=(),
    passes=("feature_forward", "feature_backward"),
    init="kaiming_norm_fanin",
    inputs="gaussian",
)
def az_trainability(net: nn.Module, batch: ProxyBatch, *, init: str = "kaiming_norm_fanin",
                    inputs: str = "gaussian") -> float:
    """AZ-NAS trainability: mean over blocks of ``-σ - 1/σ + 2``, σ the spectral norm of a block's backward.

    For each block of ``net.cells``, last first: a Rademacher map ``g_out`` on its output is
    backpropagated to its input; σ is the largest singular value of the channel
    cross-moment ``g_inᵀ g_out / (B·H·W)`` (``g_in`` pixel-unshuffled at a downsampling block);
    the term peaks at 0 when σ = 1 (``compute_az_nas_score.py``, :func:`_block_trainability`).
    An identity block (``g_in == g_out``) scores ``-inf``, and so does the mean (reference
    quirk); NaN becomes ``-inf``.

    Args:
        init: Weight re-initialisation (:data:`INITS`; the reference's ``kaiming_norm_fanin``).
        inputs: ``"gaussian"`` (reference) or ``"batch"`` (the real images).
    """
    result = _shared_cell_pass(net, batch, init, inputs, backward=True)
    assert result.block_scores is not None
    return _reference_float(float(np.mean(np.array(result.block_scores))))


# ----------------------------------------------------------------------------- complexity
def api_flops(net: nn.Module, input_shape: tuple[int, ...]) -> float:
    """FLOPs per input as NATS-Bench's API stores them (xautodl ``get_model_infos``), in millions.

    The reference's complexity is ``api.get_compute_costs(dataset)['flops']``, which xautodl
    ``utils/flop_benchmark.py`` computed: hooks count every call of a Conv2d
    (``B·H_out·W_out·k_h·k_w·C_in·C_out/groups``, ``+ B·H_out·W_out·C_out`` with a bias), Conv1d
    (likewise) and Linear (``rows·in·out``, ``+ rows·out`` with a bias; the reference's rows are
    the batch of its 2-D input); poolings are hooked but *not* added, BatchNorm, ReLU and
    element-wise sums cost nothing. The total is divided by the batch size. (proxybench's
    ``flops`` follows tensorwatch's rules instead, which also count BN, ReLU and pooling.) The
    network runs once on zeros of ``input_shape`` in eval mode without gradients (no buffer
    changes); its mode is restored.
    """
    total = 0.0

    def conv_hook(m: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        positions = out.shape[0] * math.prod(out.shape[2:])
        per_position = math.prod(m.kernel_size) * m.in_channels * m.out_channels / m.groups
        total += per_position * positions + (m.out_channels * positions if m.bias is not None else 0)

    def linear_hook(m: nn.Linear, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        rows = args[0].numel() // m.in_features
        total += rows * m.in_features * m.out_features + (rows * m.out_features if m.bias is not None else 0)

    hooks = [(m, conv_hook if isinstance(m, (nn.Conv2d, nn.Conv1d)) else linear_hook)
             for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear))]
    zero_input_forward(net, input_shape, hooks)
    return total / input_shape[0] / 1e6


@proxy(
    "az_complexity",
    higher_is_better=True,
    paper=_PAPER,
    needs=(),
    passes=("shape_forward",),
    shares_network=True,
)
def az_complexity(net: nn.Module, batch: ProxyBatch) -> float:
    """AZ-NAS complexity: FLOPs (millions) of one input, counted as the NATS-Bench API does (conv + linear).

    The reference takes ``get_compute_costs(dataset)['flops']`` from the API rather than
    computing it (``compute_nas_score`` has ``# info['complexity'] = ... # take info from api``);
    :func:`api_flops` recounts that number on a ``1 x C x H x W`` input of the batch's image shape
    (153.27297 M for ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|``
    on CIFAR-10, the API's 153.27). Only the batch's image shape is used.
    """
    return api_flops(net, (1, *batch.input_shape))
