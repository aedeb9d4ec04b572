"""CRoZe: the identity algebra at β = ε = 0, the tap rule, the two perturbations, invariances, NB201."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.data import load_images
from proxybench.data.batches import draw_proxy_batch
from proxybench.presets import get_preset
from proxybench.proxies import PASSES, get_proxy
from proxybench.proxies.croze import (
    croze,
    feature_taps,
    input_step,
    layer_taps,
    perturb_weights,
)
from proxybench.scoring import score_architectures
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import parse_arch, sample_archs
from proxybench.spaces.nb201_net import NB201Network
from proxybench.store import read_scores

MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
WITH_NONE = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|"
DEAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"


def _small(arch: str = MIXED, *, bn: str = "foresight", seed: int = 0) -> nn.Module:
    """A small NB201 network (4 stem channels, 2 cells per stage) in float64, train mode."""
    torch.manual_seed(seed)
    return NB201Network(parse_arch(arch), 10, bn=bn, channels=4, cells_per_stage=2).double().train()


def _batch(n: int = 6, size: int = 16, *, unit: bool = False, seed: int = 0) -> ProxyBatch:
    g = torch.Generator().manual_seed(seed)
    shape = (n, 3, size, size)
    x = torch.rand(shape, generator=g) if unit else torch.randn(shape, generator=g)
    return ProxyBatch(x.double(), torch.randint(0, 10, (n,), generator=g), 10)


def _identity_bound(net: nn.Module, size: int) -> float:
    """4 Σ_m D_w(m)² D_f(tap(m)): P = 2 D_w, G = D_w, Z = 2 D_f when every cosine is 1.

    D_w is a weight's size per output channel (its number of dim-0 columns), D_f a feature's
    size per sample. For the small network on ``size``² inputs the five taps hold (C, H, W) =
    (4, s, s), (8, s/2, s/2), (16, s/4, s/4), (16, s/4, s/4) and the pooled 16.
    """
    s = size
    d_f = [4 * s * s, 8 * (s // 2) ** 2, 16 * (s // 4) ** 2, 16 * (s // 4) ** 2, 16]
    return 4.0 * sum(layer.weight[0].numel() ** 2 * d_f[tap] for layer, tap in layer_taps(net))


# ----------------------------------------------------------------------------- registry


def test_registry_metadata_and_defaults() -> None:
    spec = get_proxy("croze")
    assert spec.fn is croze and spec.family == "croze" and spec.higher_is_better is True
    assert "2306.05031" in spec.paper
    assert spec.needs == frozenset({"batch", "labels", "no_bn", "float64"})
    assert spec.passes == ("perturbed_pair",) and "perturbed_pair" in PASSES
    assert dict(spec.defaults) == {"beta": 2.0, "epsilon": 0.01, "input_sign": -1, "clamp": (0.0, 1.0)}
    assert spec.settings({"beta": 0.5})["beta"] == 0.5


# ----------------------------------------------------------------------------- the algebra


@pytest.mark.parametrize("unit", [False, True])
def test_no_perturbation_gives_four_sum_dw2_df(unit: bool) -> None:
    """β = ε = 0: θ^r = θ, x' = x and g^r = 2g, so every cosine is 1 (see _identity_bound).

    On inputs in [0, 1] the reference's clamp is a no-op, so it may stay on; on Gaussian
    inputs it would move x, so it is switched off.
    """
    net = _small()
    clamp = (0.0, 1.0) if unit else None
    score = croze(net, _batch(unit=unit), beta=0.0, epsilon=0.0, clamp=clamp)
    assert score == pytest.approx(_identity_bound(net, 16), rel=1e-9)


def test_any_perturbation_stays_below_the_identity_bound() -> None:
    """Each factor is at most its value at θ^r = θ, x' = x; the default perturbation lowers the score."""
    net = _small()
    bound = _identity_bound(net, 16)
    for settings in ({}, {"input_sign": 1, "clamp": None}, {"beta": 0.0}, {"epsilon": 0.0, "clamp": None}):
        score = get_proxy("croze")(copy.deepcopy(net), _batch(), **settings)
        assert 0 < score < bound * (1 - 1e-6), settings


def test_the_clamp_alone_perturbs_normalised_inputs() -> None:
    """With ε = 0 the reference's clamp to [0, 1] still moves Gaussian inputs, so the score drops."""
    net = _small()
    clamped = croze(copy.deepcopy(net), _batch(), beta=0.0, epsilon=0.0, clamp=(0.0, 1.0))
    assert clamped < _identity_bound(net, 16) * (1 - 1e-6)


# ----------------------------------------------------------------------------- feature taps


def test_tap_rule_of_the_reference_on_the_benchmark_network() -> None:
    """Stem and cells 1-4 read tap 0, cell 5 and stage 2 tap 1, ..., cell 15 tap 3, the head tap 4."""
    net = get_space("nb201").build(MIXED, 10)
    names = {module: name for name, module in net.named_modules()}
    expected_cell = {**{i: 0 for i in range(4)}, 4: 1, 5: 1, **{i: 1 for i in range(6, 10)}, 10: 2, 11: 2,
                     **{i: 2 for i in range(12, 16)}, 16: 3}
    plan = [(names[layer], tap) for layer, tap in layer_taps(net)]
    assert plan[0] == ("stem.conv", 0) and plan[-1] == ("classifier", 4)
    for name, tap in plan[1:-1]:
        assert tap == expected_cell[int(name.split(".")[1])], name
    taps = feature_taps(net)
    assert [(names[m], where) for m, where in taps] == [
        ("stem", "output"), ("cells.5", "output"), ("cells.11", "output"), ("head_relu", "output"),
        ("classifier", "input"),
    ]


def test_tap_rule_scales_with_cells_per_stage() -> None:
    """k = 2: cells 0 | 1, reduction 2, cell 3 | 4, reduction 5, cell 6 | 7 (last cell of each stage moves on)."""
    net = _small()
    names = {module: name for name, module in net.named_modules()}
    taps: dict[str, set[int]] = {}
    for layer, tap in layer_taps(net):
        parts = names[layer].split(".")
        taps.setdefault(parts[1] if parts[0] == "cells" else parts[0], set()).add(tap)
    assert taps == {"stem": {0}, "0": {0}, "1": {1}, "2": {1}, "3": {1}, "4": {2}, "5": {2}, "6": {2}, "7": {3},
                    "classifier": {4}}


def test_network_without_nb201_layout_is_refused() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double()
    with pytest.raises(TypeError, match="NB201Network's stem"):
        croze(net, ProxyBatch(torch.randn(4, 3, 2, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.long), 3))


@pytest.mark.parametrize(
    "settings, match",
    [({"beta": -1.0}, "beta"), ({"epsilon": -0.1}, "epsilon"), ({"input_sign": 0}, "input_sign"),
     ({"clamp": (1.0, 0.0)}, "clamp")],
)
def test_bad_settings_raise(settings: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        get_proxy("croze")(_small(), _batch(), **settings)


# ----------------------------------------------------------------------------- the perturbations


def _linear_model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double()


def test_input_step_is_minus_epsilon_sign_of_the_input_gradient() -> None:
    """Softmax regression: ∂L/∂x_n = Wᵀ(softmax(W x_n + b) − e_{y_n}) / N, by hand."""
    net = _linear_model()
    x = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1])
    w, b = net[1].weight.detach(), net[1].bias.detach()
    flat = x.reshape(5, 12)
    residual = (torch.softmax(flat @ w.T + b, 1) - F.one_hot(y, 3).double()) / 5
    grad_x = (residual @ w).reshape_as(x)
    eps = 0.03
    stepped, (grad_w,) = input_step(net, x, y, epsilon=eps, clamp=None, weights=[net[1].weight])
    assert torch.equal(stepped, x - eps * grad_x.sign())  # the reference's loss-lowering step
    assert torch.allclose(grad_w, residual.T @ flat, rtol=1e-12, atol=0)
    ascent, _ = input_step(net, x, y, epsilon=eps, sign=1.0, clamp=None)
    assert torch.equal(ascent, x + eps * grad_x.sign())
    clamped, _ = input_step(net, x, y, epsilon=eps)
    assert torch.equal(clamped, (x - eps * grad_x.sign()).clamp(0.0, 1.0))
    assert (clamped >= 0).all() and (clamped <= 1).all()


class _ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3)
        self.head = nn.Linear(5 * 4 * 4, 4)
        self.unused = nn.Linear(4, 4)  # registered but never called: no gradient, no move

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).flatten(1))


def test_weight_step_has_norm_beta_times_weight_norm_along_the_loss_gradient() -> None:
    torch.manual_seed(0)
    net = _ConvNet().double()
    x, y = torch.randn(6, 3, 6, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), [net.conv.weight, net.head.weight])
    beta = 0.7
    perturb_weights(net, x, y, beta)
    for name, g in zip(("conv", "head"), grads):
        delta = net.get_submodule(name).weight.detach() - before[f"{name}.weight"]
        assert delta.norm().item() == pytest.approx(beta * before[f"{name}.weight"].norm().item(), rel=1e-12)
        assert F.cosine_similarity(delta.flatten(), g.flatten(), dim=0).item() == pytest.approx(1.0, abs=1e-12)
        assert torch.equal(net.get_submodule(name).bias, before[f"{name}.bias"])  # biases are never moved
    assert torch.equal(net.unused.weight, before["unused.weight"])


# ----------------------------------------------------------------------------- the reference's mechanics


def _reference_style_score(net: nn.Module, batch: ProxyBatch, beta: float, eps: float, cells_per_stage: int) -> float:
    """The measure as the reference runs it: .grad accumulation, an SGD step rescaled, explicit taps.

    A second code path (``measures/croze.py``, ``p_utils.adj_weights``) to compare with: the
    weight step is an SGD step of lr 1e-3 on ``-L`` whose difference is rescaled to
    ``β ‖θ‖``; the robust copy's ``.grad`` is not zeroed between the input step's backward
    and the robust loss's backward; features come from a hand-written forward.
    """
    from proxybench.spaces.nb201_net import NB201Cell, ResidualReduction

    def forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = model.stem(x)
        feats = [h]
        for block in model.cells:
            h = block(h)
            if isinstance(block, ResidualReduction):
                feats.append(h)
        h = model.head_relu(h if model.head_bn is None else model.head_bn(h))
        pooled = torch.flatten(model.pool(h), 1)
        return model.classifier(pooled), [*feats, h, pooled]

    x, y = batch.inputs, batch.targets
    with torch.no_grad():
        for t in net.state_dict().values():
            t.abs_()
    robust = copy.deepcopy(net)
    stepper = copy.deepcopy(robust)
    opt = torch.optim.SGD(stepper.parameters(), lr=1e-3)
    (-F.cross_entropy(stepper(x), y)).backward()
    opt.step()
    with torch.no_grad():
        for (name, old), new in zip(robust.named_parameters(), stepper.parameters()):
            if old.dim() > 1:
                diff = new - old
                old.add_(beta * old.norm() / (diff.norm() + 1e-30) * diff)
    xa = x.detach().clone().requires_grad_(True)
    robust.zero_grad()
    F.cross_entropy(robust(xa), y).backward()
    x_step = (xa - eps * xa.grad.sign()).clamp(0, 1).detach()
    net.zero_grad()
    out, feats = forward(net, x)
    out_r, feats_r = forward(robust, x_step)
    (F.cross_entropy(out, y) + F.cross_entropy(out_r, y)).backward()
    total, cells = 0.0, 0
    for layer, layer_r in zip(net.modules(), robust.modules()):
        cells += isinstance(layer, NB201Cell)
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and layer.weight.grad is not None:
            tap = cells // cells_per_stage + isinstance(layer, nn.Linear)
            with torch.no_grad():
                w = (1 + F.cosine_similarity(layer_r.weight, layer.weight, dim=0)).sum()
                g = F.cosine_similarity(layer_r.weight.grad, layer.weight.grad, dim=0).abs().sum()
                z = (1 + F.cosine_similarity(feats_r[tap], feats[tap], dim=0)).sum()
                total += (w * g * z).abs().item()
    return total


@pytest.mark.parametrize("arch", [MIXED, WITH_NONE])
def test_equals_the_reference_mechanics(arch: str) -> None:
    net, batch = _small(arch), _batch(8)
    ours = croze(copy.deepcopy(net), batch)
    theirs = _reference_style_score(copy.deepcopy(net), batch, beta=2.0, eps=0.01, cells_per_stage=2)
    assert ours == pytest.approx(theirs, rel=1e-9)


# ----------------------------------------------------------------------------- invariances


def test_batch_order_does_not_matter() -> None:
    net, batch = _small(), _batch(8)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(5))
    shuffled = ProxyBatch(batch.inputs[perm], batch.targets[perm], 10)
    assert croze(copy.deepcopy(net), shuffled) == pytest.approx(croze(copy.deepcopy(net), batch), rel=1e-10)


def test_same_seed_same_float_and_parameters_restored() -> None:
    first, second = _small(seed=3), _small(seed=3)
    params = {k: v.clone() for k, v in first.named_parameters()}
    a, b = croze(first, _batch()), croze(second, _batch())
    assert a == b and math.isfinite(a)
    assert all(torch.equal(params[k], v) for k, v in first.named_parameters())  # signs restored
    assert croze(_small(seed=4), _batch()) != a


# ----------------------------------------------------------------------------- NB201


@pytest.mark.parametrize("arch", [MIXED, WITH_NONE])
@pytest.mark.parametrize("bn", ["foresight", "none", "all"])
def test_finite_positive_on_nb201(arch: str, bn: str) -> None:
    assert 0 < croze(_small(arch, bn=bn), _batch()) < math.inf


def test_a_cell_with_only_none_inputs_to_its_output_scores_zero() -> None:
    """Every cell outputs zeros: the clean gradients and the later features vanish, every cosine is 0."""
    for bn in ("foresight", "none"):
        assert croze(_small(DEAD, bn=bn), _batch()) == 0.0


def test_engine_runs_it_with_the_zc_nas_preset(tmp_path: Path, data_dir: Path) -> None:
    arch = sample_archs(1, seed=0)[0]
    summary = score_architectures([arch], proxies="croze", preset="zc-nas", batch_size=8, data_dir=data_dir,
                                  out=tmp_path, progress=False, download=False)
    assert summary.rows_written == 1
    (row,) = read_scores(tmp_path).to_pylist()
    assert row["status"] == "ok" and row["score"] > 0 and row["dtype"] == "float64"
    settings = json.loads(row["settings"])["proxy_settings"]
    assert settings == {"beta": 2.0, "epsilon": 0.01, "input_sign": -1, "clamp": [0.0, 1.0]}


@pytest.mark.slow
def test_ranks_twelve_nb201_architectures_by_cifar10_test_accuracy(data_dir: Path, nb201_csv: Path) -> None:
    # The reference's setting: batch 8, zero-cost-nas normalisation, the BN-free copy with the
    # reduction blocks' BNs kept, float64. Measured on this seed-0 sample: rho = .944 (#params
    # .63); on the samples of seeds 1-6, .86-.94 (#params .77-.92).
    with nb201_csv.open() as fh:
        accuracy = {r["ArchitectureString"]: float(r["CIFAR10TestAccuracy200Epochs"]) for r in csv.DictReader(fh)}
    preset = get_preset("zc-nas")
    source = load_images("cifar10", "train", data_dir=data_dir, download=False)
    batch = draw_proxy_batch(source, batch_size=8, seed=0, mean=preset.mean, std=preset.std).to(dtype=torch.float64)
    archs = sample_archs(12, seed=0)
    scores = []
    for arch in archs:
        torch.manual_seed(0)
        scores.append(croze(get_space("nb201").build(arch, 10, bn="foresight").double().train(), batch))
    rho = spearmanr(scores, [accuracy[a] for a in archs]).statistic
    assert rho > 0.75, (rho, scores)
