"""swap and swap_reg: hand-counted patterns on tiny networks, the reference's rules, sharing, NB201."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy
from proxybench.proxies import swap as swap_module
from proxybench.proxies.passes import PassCache, sharing
from proxybench.proxies.swap import (
    count_distinct_patterns,
    pattern_counts,
    reference_param_count,
    regular_factor,
    swap,
    swap_reg,
)
from proxybench.spaces import get_space

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def _batch(x: torch.Tensor) -> ProxyBatch:
    return ProxyBatch(x, torch.zeros(x.shape[0], dtype=torch.long), 10)


def _np_patterns(*layers: np.ndarray) -> int:
    """The reference's count with numpy: sign of the concatenated (N, D) outputs, distinct neuron columns."""
    a = np.concatenate([layer.reshape(layer.shape[0], -1) for layer in layers], axis=1)
    return int(np.unique(np.sign(a).T, axis=0).shape[0])


def _nb201(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return get_space("nb201").build(ARCH, 10).train()


# ------------------------------------------------------------------ registry
@pytest.mark.parametrize("name, extra", [("swap", {}), ("swap_reg", {"mu": 1.5, "sigma": 1.5, "param_unit": 1e6})])
def test_registry_metadata(name: str, extra: dict) -> None:
    spec = get_proxy(name)
    assert spec.higher_is_better is True
    assert "2403.04161" in spec.paper
    assert spec.needs == {"batch"} and spec.passes == ("feature_forward",)
    assert spec.family == "swap" and spec.shares_network is False  # it redraws the weights
    assert dict(spec.defaults) == {"n_samples": 16, "repeats": 32, "init": "gaussian", **extra}


# ------------------------------------------------------------------ hand-counted patterns
def test_two_relus_by_hand() -> None:
    """Patterns of both ReLUs are pooled: a pattern seen in both layers counts once."""
    torch.manual_seed(0)
    c1 = nn.Conv2d(3, 2, 1, bias=False)
    c2 = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    net = nn.Sequential(c1, nn.ReLU(), c2, nn.ReLU())
    x = torch.randn(5, 3, 4, 4)
    with torch.no_grad():
        h1 = F.relu(F.conv2d(x, c1.weight))
        h2 = F.relu(F.conv2d(h1, c2.weight, padding=1))
    expected = _np_patterns(h1.numpy(), h2.numpy())
    assert swap(net, _batch(x), n_samples=5, repeats=1, init="default") == expected
    assert expected < h1[0].numel() + h2[0].numel()  # some duplicates were merged


def test_relu_on_a_flat_input_is_not_hooked() -> None:
    """The reference keeps a ReLU only when its input is 4-D: the ReLU after the Linear is ignored."""
    torch.manual_seed(1)
    conv, lin = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Linear(64, 7)
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), lin, nn.ReLU())
    x = torch.randn(6, 3, 4, 4)
    with torch.no_grad():
        h = F.relu(F.conv2d(x, conv.weight, padding=1))
    assert swap(net, _batch(x), n_samples=6, repeats=1, init="default") == _np_patterns(h.numpy())


def test_only_nn_relu_instances_are_hooked() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.LeakyReLU(), nn.ReLU6())
    with pytest.raises(ValueError, match="no nn.ReLU"):
        swap(net, _batch(torch.randn(16, 3, 4, 4)))


@pytest.mark.parametrize("n", [3, 16, 30, 70])
def test_count_paths_agree_with_numpy(n: int) -> None:
    """Table (N <= 24), int64 packing (N <= 62) and row comparison (beyond) give np.unique's count."""
    g = torch.Generator().manual_seed(n)
    layers = [torch.rand(n, d, generator=g) > 0.5 for d in (50, 300)]
    layers.append(layers[0][:, :20].clone())  # duplicates across layers
    expected = _np_patterns(*(layer.numpy().astype(np.float64) for layer in layers))
    assert count_distinct_patterns(layers) == expected


def test_invariant_to_sample_order() -> None:
    """Permuting the samples permutes every pattern's bits the same way: the count is unchanged."""
    net = _nb201()
    x = torch.randn(16, 3, 32, 32)
    perm = torch.randperm(16)
    first = swap(net, _batch(x), repeats=1, init="default")
    assert swap(net, _batch(x[perm]), repeats=1, init="default") == first
    assert 0 < first <= 2**16


def test_only_the_first_samples_are_used() -> None:
    net = _nb201()
    x = torch.randn(40, 3, 32, 32)
    y = x.clone()
    y[16:] = torch.randn(24, 3, 32, 32)
    assert swap(net, _batch(x), repeats=1, init="default") == swap(net, _batch(y), repeats=1, init="default")


# ------------------------------------------------------------------ init and repeats
def test_gaussian_init_redraws_the_weights() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(3, 64, 3, bias=True), nn.BatchNorm2d(64), nn.ReLU())
    with torch.no_grad():
        net[1].weight.fill_(3.0)
    pattern_counts(net, _batch(torch.randn(16, 3, 8, 8)), n_samples=16, repeats=1, init="gaussian")
    w = net[0].weight.detach()
    assert abs(float(w.std()) - 1.0) < 0.05 and abs(float(w.mean())) < 0.05  # N(0, 1), not Kaiming
    assert torch.all(net[0].bias == 0) and torch.all(net[1].weight == 1) and torch.all(net[1].bias == 0)


def test_score_is_the_mean_over_repeats() -> None:
    net = _nb201()
    batch = _batch(torch.randn(16, 3, 32, 32))
    torch.manual_seed(3)
    counts = pattern_counts(copy.deepcopy(net), batch, n_samples=16, repeats=3, init="gaussian")
    assert len(set(counts)) > 1  # each repeat redraws the weights
    torch.manual_seed(3)
    assert swap(copy.deepcopy(net), batch, repeats=3) == sum(counts) / 3


def test_regularisation_formula() -> None:
    """exp(-(Θ - μ)² / σ): σ is not squared and there is no factor 2 (reference cal_regular_factor)."""
    assert regular_factor(2000, mu=1.0, sigma=4.0, param_unit=1e3) == pytest.approx(math.exp(-0.25))
    assert regular_factor(1_500_000, mu=1.5, sigma=1.5, param_unit=1e6) == 1.0
    net = _nb201()
    batch = _batch(torch.randn(16, 3, 32, 32))
    torch.manual_seed(4)
    plain = swap(copy.deepcopy(net), batch, repeats=2)
    torch.manual_seed(4)
    reg = swap_reg(copy.deepcopy(net), batch, repeats=2)
    n_params = sum(p.numel() for p in net.parameters())
    assert reg == pytest.approx(plain * math.exp(-((n_params / 1e6 - 1.5) ** 2) / 1.5), rel=1e-12)


def test_param_count_skips_auxiliary_heads() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1))
    net.auxiliary_head = nn.Linear(10, 10)
    assert reference_param_count(net) == 3 * 4 + 4


# ------------------------------------------------------------------ errors and determinism
def test_errors() -> None:
    net = _nb201()
    with pytest.raises(ValueError, match="first 16 samples"):
        swap(net, _batch(torch.randn(8, 3, 32, 32)))
    with pytest.raises(ValueError, match="repeats > 1 needs init='gaussian'"):
        swap(net, _batch(torch.randn(16, 3, 32, 32)), init="default")
    with pytest.raises(ValueError, match="init must be"):
        swap(net, _batch(torch.randn(16, 3, 32, 32)), init="kaiming")
    with pytest.raises(ValueError, match="sigma must be > 0"):
        swap_reg(net, _batch(torch.randn(16, 3, 32, 32)), sigma=0.0)

    class Blow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * float("inf")

    with pytest.raises(ValueError, match="non-finite"):
        swap(nn.Sequential(nn.Conv2d(3, 2, 1), Blow(), nn.ReLU()), _batch(torch.randn(16, 3, 4, 4)),
             repeats=1, init="default")


def test_same_seed_same_score() -> None:
    batch = _batch(torch.randn(16, 3, 32, 32))
    scores = []
    for seed in (5, 5, 6):
        net = _nb201()  # built under its own seed; the draws below start from the proxy's seed
        torch.manual_seed(seed)
        scores.append(swap(net, batch, repeats=2))
    assert scores[0] == scores[1] != scores[2]


def test_shared_pass_is_bit_identical() -> None:
    base = _nb201()
    batch = _batch(torch.randn(20, 3, 32, 32))
    alone = {}
    for fn in (swap, swap_reg):
        torch.manual_seed(7)
        alone[fn.__name__] = fn(copy.deepcopy(base), batch, repeats=2)
    cache = PassCache()
    together = {}
    with sharing(cache, variant="x"):
        for fn in (swap, swap_reg):
            torch.manual_seed(7)
            together[fn.__name__] = fn(copy.deepcopy(base), batch, repeats=2)
    assert cache.computed == 1 and cache.hits == 1
    assert together == alone


def test_hooks_are_removed() -> None:
    net = _nb201()
    swap(net, _batch(torch.randn(16, 3, 32, 32)), repeats=1, init="default")
    assert all(not m._forward_hooks for m in net.modules())
    assert swap_module.swap_relus(net)  # NB201 has ReLU modules in every conv op and the head


# ------------------------------------------------------------------ NB201
@pytest.mark.slow
def test_nb201_default_protocol_smoke() -> None:
    batch = _batch(torch.randn(64, 3, 32, 32))
    nets = [_nb201(), _nb201()]
    torch.manual_seed(0)
    value = get_proxy("swap")(nets[0], batch)
    assert np.isfinite(value) and 0 < value <= 2**16
    torch.manual_seed(0)
    reg = get_proxy("swap_reg")(nets[1], batch)
    assert np.isfinite(reg) and 0 < reg <= value


def test_nb201_quick_smoke() -> None:
    net = _nb201()
    torch.manual_seed(0)
    value = get_proxy("swap")(net, _batch(torch.randn(16, 3, 32, 32)), repeats=2)
    assert np.isfinite(value) and 1000 < value <= 2**16
