"""meco and meco_opt: hand-computed values on tiny networks, the reference's quirks, sharing, NB201."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy
from proxybench.proxies.meco import _correlation, channel_correlations, meco, meco_opt
from proxybench.proxies.passes import PassCache, sharing
from proxybench.spaces import get_space

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def _batch(x: torch.Tensor) -> ProxyBatch:
    return ProxyBatch(x, torch.zeros(x.shape[0], dtype=torch.long), 10)


def _np_min_eig(feature: np.ndarray) -> float:
    """The reference's per-hook value, written with numpy: corrcoef, NaN/inf -> 0, min real eigenvalue."""
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(feature.astype(np.float64))
    corr = np.atleast_2d(corr)
    corr[~np.isfinite(corr)] = 0.0
    return float(np.min(np.real(np.linalg.eigvals(corr))))


def _conv_net(c_out: int = 4, seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    return nn.Conv2d(3, c_out, 3, padding=1, bias=False)


def _nb201(arch: str = ARCH, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return get_space("nb201").build(arch, 10).train()


# ------------------------------------------------------------------ registry
@pytest.mark.parametrize("name, extra", [("meco", {}), ("meco_opt", {"n_channels": 8})])
def test_registry_metadata(name: str, extra: dict) -> None:
    spec = get_proxy(name)
    assert spec.higher_is_better is True
    assert "MeCo" in spec.paper and "NeurIPS 2023" in spec.paper
    assert spec.needs == {"batch"} and spec.passes == ("feature_forward",)
    assert spec.family == "meco" and spec.shares_network is True
    assert dict(spec.defaults) == {"n_samples": 1, "inputs": "images", **extra}


# ------------------------------------------------------------------ hand-computed values
def test_conv_relu_sequential_by_hand() -> None:
    """Hooks fire on the conv, the ReLU and the Sequential (whose output is the ReLU's): 1 + 2 terms."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.ReLU())
    x = torch.randn(1, 3, 6, 6)
    conv_out = F.conv2d(x, net[0].weight, padding=1)[0].reshape(5, -1).detach().numpy()
    relu_out = np.maximum(conv_out, 0.0)
    expected = _np_min_eig(conv_out) + 2 * _np_min_eig(relu_out)
    assert meco(net, _batch(x)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_only_the_first_sample_is_scored() -> None:
    net = _conv_net()
    x = torch.randn(4, 3, 5, 5)
    expected = _np_min_eig(F.conv2d(x[:1], net.weight, padding=1)[0].reshape(4, -1).detach().numpy())
    assert meco(net, _batch(x)) == pytest.approx(expected, rel=1e-9)
    # n_samples=3: still the first sample's map (a BN-free conv: the other samples do not matter)
    # (a batched float32 conv rounds differently from a single-sample one: float32 tolerance)
    assert meco(net, _batch(x), n_samples=3) == pytest.approx(expected, rel=1e-5)


def test_containers_count_their_output_again() -> None:
    """The reference hooks every module, so each wrapper around a conv adds the conv's term once more."""
    torch.manual_seed(2)
    x = torch.randn(1, 3, 6, 6)
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    single = meco(conv, _batch(x))
    wrapped = meco(nn.Sequential(nn.Sequential(conv)), _batch(x))
    assert single > 0
    assert wrapped == pytest.approx(3 * single, rel=1e-12)


def test_one_position_per_channel_contributes_zero() -> None:
    """Logits or pooled features: (C, 1) rows have zero variance, NaN -> 0, eigenvalue 0 (reference)."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Flatten(), nn.Linear(48, 10))
    assert meco(net, _batch(torch.randn(1, 3, 4, 4))) == 0.0


def test_dead_channel_zeroes_its_layer() -> None:
    """A channel with zero variance gives a NaN row/column, set to 0, so that layer's minimum is 0."""
    net = _conv_net(c_out=4, seed=4)
    with torch.no_grad():
        net.weight[2] = 0.0
    x = torch.randn(1, 3, 6, 6)
    feature = F.conv2d(x, net.weight, padding=1)[0].reshape(4, -1).detach().numpy()
    value = meco(net, _batch(x))
    assert value == pytest.approx(_np_min_eig(feature), abs=1e-12)
    assert abs(value) < 1e-12


def test_correlation_matches_corrcoef_and_submatrix() -> None:
    torch.manual_seed(5)
    feature = torch.randn(12, 40)
    feature[3] = 1.0  # a constant row
    corr = _correlation(feature)
    expected = torch.corrcoef(feature.double())
    expected[~torch.isfinite(expected)] = 0.0
    assert torch.allclose(corr, expected, atol=1e-12)
    idx = torch.tensor([7, 0, 3, 11])
    assert torch.allclose(corr[idx][:, idx], _correlation(feature[idx]), atol=1e-12)


def test_invariant_to_input_scale_without_bias() -> None:
    """Correlations ignore a positive scale of the features (a bias-free conv scales with its input)."""
    net = _conv_net(c_out=6, seed=6)
    x = torch.randn(1, 3, 7, 7)
    assert meco(net, _batch(x)) == pytest.approx(meco(net, _batch(3.0 * x)), rel=1e-6)


# ------------------------------------------------------------------ meco_opt
def test_meco_opt_equals_meco_when_all_channels_are_drawn() -> None:
    """k = C: the subset is every channel (permuted), the weight C/k = 1."""
    net = nn.Sequential(_conv_net(c_out=8, seed=7), nn.ReLU())
    batch = _batch(torch.randn(1, 3, 6, 6))
    torch.manual_seed(0)
    assert meco_opt(net, batch) == pytest.approx(meco(net, batch), rel=1e-9)


def test_meco_opt_by_hand_with_the_same_draws() -> None:
    """Per hook call in order: randperm(C)[:k] from the global generator, weight C/k."""
    torch.manual_seed(8)
    net = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1, bias=False), nn.ReLU())
    x = torch.randn(1, 3, 6, 6)
    conv_out = F.conv2d(x, net[0].weight, padding=1)[0].reshape(12, -1).detach().numpy()
    maps = [conv_out, np.maximum(conv_out, 0.0), np.maximum(conv_out, 0.0)]  # conv, relu, Sequential
    torch.manual_seed(11)
    expected = 0.0
    for m in maps:
        idx = torch.randperm(12)[:4].numpy()
        expected += 12 / 4 * _np_min_eig(m[idx])
    torch.manual_seed(11)
    assert meco_opt(net, _batch(x), n_channels=4) == pytest.approx(expected, rel=1e-9)


def test_meco_opt_raises_on_too_few_channels() -> None:
    with pytest.raises(ValueError, match="samples 8 channels"):
        meco_opt(_conv_net(c_out=4), _batch(torch.randn(1, 3, 5, 5)))


# ------------------------------------------------------------------ inputs and errors
def test_batch_too_small_and_bad_settings() -> None:
    net = _conv_net()
    with pytest.raises(ValueError, match="first 2 samples"):
        meco(net, _batch(torch.randn(1, 3, 5, 5)), n_samples=2)
    with pytest.raises(ValueError, match="inputs must be"):
        meco(net, _batch(torch.randn(1, 3, 5, 5)), inputs="noise")
    with pytest.raises(ValueError, match="n_channels"):
        meco_opt(net, _batch(torch.randn(1, 3, 5, 5)), n_channels=0)


def test_non_finite_features_raise() -> None:
    class Blow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * float("inf")

    with pytest.raises(ValueError, match="non-finite"):
        meco(nn.Sequential(_conv_net(), Blow()), _batch(torch.randn(1, 3, 5, 5)))


def test_gaussian_inputs_ignore_the_images_and_follow_the_seed() -> None:
    net = _nb201()
    a, b = _batch(torch.randn(2, 3, 32, 32)), _batch(torch.randn(2, 3, 32, 32))
    torch.manual_seed(0)
    first = meco(net, a, inputs="gaussian")
    torch.manual_seed(0)
    assert meco(net, b, inputs="gaussian") == first
    assert meco(net, a) != first


def test_hooks_removed_and_network_untouched() -> None:
    net = _nb201()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    meco(net, _batch(torch.randn(1, 3, 32, 32)))
    torch.manual_seed(0)
    meco_opt(net, _batch(torch.randn(1, 3, 32, 32)))
    assert all(not m._forward_hooks for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # BN running statistics restored: shares_network is safe


# ------------------------------------------------------------------ sharing
@pytest.mark.parametrize("inputs", ["images", "gaussian"])
def test_shared_pass_is_bit_identical(inputs: str) -> None:
    base = _nb201()
    batch = _batch(torch.randn(3, 3, 32, 32))
    alone = {}
    for fn in (meco, meco_opt):
        torch.manual_seed(4)
        alone[fn.__name__] = fn(copy.deepcopy(base), batch, inputs=inputs)
    cache = PassCache()
    together = {}
    with sharing(cache, variant="x"):
        for fn in (meco, meco_opt):
            torch.manual_seed(4)
            together[fn.__name__] = fn(copy.deepcopy(base), batch, inputs=inputs)
    assert cache.computed == 1 and cache.hits == 1
    assert together == alone


# ------------------------------------------------------------------ NB201
def test_nb201_smoke_and_determinism() -> None:
    batch = _batch(torch.randn(64, 3, 32, 32))
    net = _nb201()
    names = [name for name, _ in channel_correlations(net, batch.inputs[:1])]
    assert names[:3] == ["stem.conv", "stem.bn", "stem"]  # children before parents, every module
    assert "cells.0.edges.e01.bn" in names and "cells.0.edges.e01" in names and "" in names
    value = get_proxy("meco")(net, batch)
    assert np.isfinite(value) and value > 0
    assert get_proxy("meco")(_nb201(), batch) == value
    torch.manual_seed(0)
    opt = get_proxy("meco_opt")(net, batch)
    torch.manual_seed(0)
    assert np.isfinite(opt) and opt > 0 and get_proxy("meco_opt")(net, batch) == opt
    assert net.training
