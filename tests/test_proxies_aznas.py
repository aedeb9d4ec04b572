"""AZ-NAS components: hand-computed values on tiny networks, the reference's quirks and draw order, NB201."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy
from proxybench.proxies.aznas import (
    api_flops,
    az_complexity,
    az_expressivity,
    az_progressivity,
    az_trainability,
    cell_blocks,
    isotropy_entropy,
    reinitialise,
)
from proxybench.proxies.passes import PassCache, sharing
from proxybench.spaces.nb201 import NB201Space

FEATURE_PROXIES = ("az_expressivity", "az_progressivity", "az_trainability")
ALL = (*FEATURE_PROXIES, "az_complexity")
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
MIXED = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|"


def _batch(x: torch.Tensor, num_classes: int = 10) -> ProxyBatch:
    return ProxyBatch(x, torch.zeros(x.shape[0], dtype=torch.long), num_classes)


class Chain(nn.Module):
    """A minimal network in AZ-NAS's shape: ``cells`` applied one after the other, then a head."""

    def __init__(self, *blocks: nn.Module, head: nn.Module | None = None) -> None:
        super().__init__()
        self.cells = nn.ModuleList(blocks)
        self.head = head if head is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.cells:
            x = block(x)
        return self.head(x)


class Zero(nn.Module):
    """A block whose output does not depend on its input (an NB201 cell with only ``none`` into node 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def _entropy_numpy(feature: np.ndarray) -> float:
    b, c, h, w = feature.shape
    rows = feature.transpose(0, 2, 3, 1).reshape(-1, c).astype(np.float64)
    rows = rows - rows.mean(axis=0, keepdims=True)
    lam = np.linalg.eigvalsh(rows.T @ rows / rows.shape[0])
    p = lam / lam.sum()
    return float(-(p * np.log(p + 1e-8)).sum())


def _rademacher(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The reference's ``(bernoulli(ones * 0.5) - 0.5) * 2`` (the draws depend on the dtype)."""
    return (torch.bernoulli(torch.ones(shape, dtype=dtype) * 0.5) - 0.5) * 2


def _term(mat: np.ndarray) -> float:
    s = float(np.linalg.svd(mat, compute_uv=False).max())
    return -s - 1 / (s + 1e-6) + 2


# ------------------------------------------------------------------ registry
@pytest.mark.parametrize("name", ALL)
def test_registry_metadata(name: str) -> None:
    spec = get_proxy(name)
    assert spec.higher_is_better is True
    assert "2403.19232" in spec.paper and spec.family == "aznas"
    assert spec.needs == frozenset()
    if name == "az_complexity":
        assert spec.passes == ("shape_forward",) and spec.shares_network is True and dict(spec.defaults) == {}
    else:
        expected = ("feature_forward", "feature_backward") if name == "az_trainability" else ("feature_forward",)
        assert spec.passes == expected
        assert spec.shares_network is False  # re-initialises its copy, BN updates running stats
        expected_defaults = {"init": "kaiming_norm_fanin", "inputs": "gaussian"}
        if name != "az_trainability":
            expected_defaults["eig_dtype"] = "input"  # float32 features: the reference's precision
        assert dict(spec.defaults) == expected_defaults


# ------------------------------------------------------------------ expressivity maths
def test_isotropy_entropy_matches_numpy_and_is_rotation_and_scale_invariant() -> None:
    torch.manual_seed(0)
    mix = torch.randn(5, 5, dtype=torch.float64)
    f = torch.einsum("dc,nchw->ndhw", mix, torch.randn(6, 5, 4, 4, dtype=torch.float64))
    assert isotropy_entropy(f) == pytest.approx(_entropy_numpy(f.numpy()), rel=1e-9)
    q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))
    rotated = torch.einsum("dc,nchw->ndhw", q, f)
    assert isotropy_entropy(rotated) == pytest.approx(isotropy_entropy(f), rel=1e-9)
    assert isotropy_entropy(3.7 * f + 2.0) == pytest.approx(isotropy_entropy(f), rel=1e-9)


def test_isotropy_entropy_extremes() -> None:
    """Whitened channels reach log(C); one direction only gives ~0; a constant map is 0/0 = NaN."""
    torch.manual_seed(1)
    x = torch.randn(4000, 3, dtype=torch.float64)
    x = x - x.mean(0)
    white = x @ torch.linalg.inv(torch.linalg.cholesky(x.T @ x / x.shape[0])).T
    f = white.reshape(1000, 2, 2, 3).permute(0, 3, 1, 2)
    assert isotropy_entropy(f) == pytest.approx(math.log(3), abs=1e-7)
    rank_one = torch.randn(50, 1, 3, 3, dtype=torch.float64) * torch.tensor([1.0, 2.0, -1.0]).view(1, 3, 1, 1)
    assert isotropy_entropy(rank_one) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(isotropy_entropy(torch.zeros(2, 3, 2, 2)))


# ------------------------------------------------------------------ tiny network by hand
def _tiny() -> tuple[Chain, torch.Tensor]:
    """Block 0: 1×1 conv 3→3; block 1: 2×2 conv stride 2 (3→4); block 2: ReLU (not an identity)."""
    torch.manual_seed(5)
    net = Chain(nn.Conv2d(3, 3, 1, bias=False), nn.Conv2d(3, 4, 2, stride=2, bias=False), nn.ReLU(),
                head=nn.Flatten()).double()
    x = torch.randn(3, 3, 4, 4, dtype=torch.float64)
    return net, x


def test_expressivity_and_progressivity_by_hand() -> None:
    net, x = _tiny()
    with torch.no_grad():
        f1 = net.cells[0](x)
        f2 = net.cells[1](f1)
        f3 = torch.relu(f2)
    e = [_entropy_numpy(t.numpy()) for t in (x, f1, f2, f3)]
    batch = _batch(x)
    got_e = az_expressivity(copy.deepcopy(net), batch, init="none", inputs="batch")
    got_p = az_progressivity(copy.deepcopy(net), batch, init="none", inputs="batch")
    assert got_e == pytest.approx(sum(e), rel=1e-9)
    assert got_p == pytest.approx(min(b - a for a, b in zip(e, e[1:])), rel=1e-9, abs=1e-12)


def test_float64_eigenvalues_option_on_float32_features() -> None:
    """``eig_dtype="float64"`` casts the float32 maps before the covariance (no float32 rounding)."""
    net, x = _tiny()
    net, x = net.float(), x.float()
    with torch.no_grad():
        feats = [x, net.cells[0](x)]
        feats += [net.cells[1](feats[1])]
        feats += [torch.relu(feats[2])]
    expected = sum(_entropy_numpy(f.double().numpy()) for f in feats)
    got = az_expressivity(copy.deepcopy(net), _batch(x), init="none", inputs="batch", eig_dtype="float64")
    assert got == pytest.approx(expected, rel=1e-12)
    single = az_expressivity(copy.deepcopy(net), _batch(x), init="none", inputs="batch")
    assert single == pytest.approx(expected, rel=1e-5)
    assert isotropy_entropy(feats[1], torch.float64) == pytest.approx(_entropy_numpy(feats[1].double().numpy()))


def test_trainability_by_hand_with_pixel_unshuffle_and_draw_order() -> None:
    """Rademacher maps are drawn last block first; a stride-2 block's g_in is pixel-unshuffled."""
    net, x = _tiny()
    w0 = net.cells[0].weight.detach()[:, :, 0, 0].numpy()  # (3, 3)
    w1 = net.cells[1].weight.detach().numpy()  # (4, 3, 2, 2)
    with torch.no_grad():
        f1 = net.cells[0](x)
        f2 = net.cells[1](f1)
    torch.manual_seed(11)
    g3 = _rademacher((3, 4, 2, 2), torch.float64).numpy()  # block 2 (ReLU), drawn first
    g2 = _rademacher((3, 4, 2, 2), torch.float64).numpy()  # block 1
    g1 = _rademacher((3, 3, 4, 4), torch.float64).numpy()  # block 0
    # block 2: ReLU backward
    gi3 = g3 * (f2.numpy() > 0)
    m3 = gi3.transpose(0, 2, 3, 1).reshape(-1, 4).T @ g3.transpose(0, 2, 3, 1).reshape(-1, 4) / 12
    # block 1: non-overlapping 2×2 stride 2 — input pixel (2h+a, 2w+b) gets W[:, :, a, b]ᵀ g[:, h, w]
    gi2 = np.zeros((3, 3, 4, 4))
    for a in range(2):
        for b in range(2):
            gi2[:, :, a::2, b::2] = np.einsum("oc,nohw->nchw", w1[:, :, a, b], g2)
    unshuffled = np.zeros((3, 12, 2, 2))  # channel c·4 + a·2 + b, as torch's pixel_unshuffle
    for c in range(3):
        for a in range(2):
            for b in range(2):
                unshuffled[:, c * 4 + a * 2 + b] = gi2[:, c, a::2, b::2]
    m2 = unshuffled.transpose(0, 2, 3, 1).reshape(-1, 12).T @ g2.transpose(0, 2, 3, 1).reshape(-1, 4) / 12
    # block 0: 1×1 conv backward g_in = W0ᵀ g
    gi1 = np.einsum("oc,nohw->nchw", w0, g1)
    m1 = gi1.transpose(0, 2, 3, 1).reshape(-1, 3).T @ g1.transpose(0, 2, 3, 1).reshape(-1, 3) / 48
    expected = np.mean([_term(m3), _term(m2), _term(m1)])
    torch.manual_seed(11)
    got = az_trainability(copy.deepcopy(net), _batch(x), init="none", inputs="batch")
    assert got == pytest.approx(expected, rel=1e-9)


def test_trainability_term_is_at_most_zero_and_zero_for_an_orthogonal_block() -> None:
    """-σ - 1/σ + 2 ≤ 0 with equality at σ = 1: an orthogonal 1×1 conv has g_in = Qᵀg, M = Qᵀ·(ggᵀ/N)."""
    torch.manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    conv = nn.Conv2d(4, 4, 1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(q.reshape(4, 4, 1, 1))
    x = torch.randn(64, 4, 16, 16, dtype=torch.float64)  # many pixels: ggᵀ/N ≈ I
    score = az_trainability(Chain(conv), _batch(x), init="none", inputs="batch")
    assert -0.01 < score <= 0


# ------------------------------------------------------------------ reference quirks
def test_identity_block_scores_minus_inf_trainability() -> None:
    """The reference: ``g_in == g_out`` everywhere → that block scores -inf, so does the mean."""
    torch.manual_seed(0)
    net = Chain(nn.Conv2d(3, 3, 3, padding=1), nn.Identity())
    x = torch.randn(2, 3, 5, 5)
    assert az_trainability(copy.deepcopy(net), _batch(x)) == -math.inf
    assert math.isfinite(az_expressivity(copy.deepcopy(net), _batch(x)))
    assert az_progressivity(Chain(nn.Identity()), _batch(x)) == 0.0  # identical features: no increase


def test_zero_block_gives_nan_expressivity_reported_as_minus_inf_and_large_negative_trainability() -> None:
    """A constant feature map makes the entropy NaN, which the reference maps to -inf; its zero
    gradient gives σ = 0 and the term -1/(0 + 1e-6) + 2."""
    torch.manual_seed(0)
    net = Chain(Zero())
    x = torch.randn(2, 3, 4, 4)
    assert az_expressivity(copy.deepcopy(net), _batch(x)) == -math.inf
    assert az_progressivity(copy.deepcopy(net), _batch(x)) == -math.inf
    assert az_trainability(copy.deepcopy(net), _batch(x)) == pytest.approx(-1 / 1e-6 + 2)


def test_block_after_a_zero_block_still_passes_its_gradient() -> None:
    """xautodl's ``none`` multiplies by 0 and keeps the graph, so a block fed zeros still has a
    backward; proxybench's zero cells build no graph, and the per-block leaves keep it anyway."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 3, 1, bias=False)
    x = torch.randn(2, 3, 4, 4)
    torch.manual_seed(4)
    got = az_trainability(Chain(Zero(), conv), _batch(x), init="none", inputs="batch")
    torch.manual_seed(4)
    g = _rademacher((2, 3, 4, 4)).numpy()  # conv block first
    w = conv.weight.detach()[:, :, 0, 0].numpy()
    gi = np.einsum("oc,nohw->nchw", w, g)
    m = gi.transpose(0, 2, 3, 1).reshape(-1, 3).T @ g.transpose(0, 2, 3, 1).reshape(-1, 3) / 32
    assert got == pytest.approx((_term(m) + (-1 / 1e-6 + 2)) / 2, rel=1e-5)


# ------------------------------------------------------------------ protocol: init and draw order
def test_reinitialise_is_kaiming_normal_fan_in_with_unit_bn_and_zero_biases() -> None:
    net = Chain(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4), nn.GroupNorm(2, 4),
                head=nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.3)
    torch.manual_seed(7)
    reinitialise(net)
    torch.manual_seed(7)
    w_conv = torch.empty(4, 3, 3, 3).normal_(0, math.sqrt(2 / 27))
    w_lin = torch.empty(2, 4).normal_(0, math.sqrt(2 / 4))
    torch.testing.assert_close(net.cells[0].weight, w_conv, rtol=0, atol=0)
    torch.testing.assert_close(net.head[1].weight, w_lin, rtol=0, atol=0)
    assert (net.cells[0].bias == 0).all() and (net.head[1].bias == 0).all()
    for norm in (net.cells[1], net.cells[2]):
        assert (norm.weight == 1).all() and (norm.bias == 0).all()
    before = copy.deepcopy(net.state_dict())
    reinitialise(net, "none")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="unknown init"):
        reinitialise(net, "orthogonal")


def test_default_protocol_is_init_then_gaussian_inputs_then_rademacher_maps() -> None:
    """Defaults = the reference's order of draws: weights, then x ~ N(0, 1) of the batch's shape, then g."""
    torch.manual_seed(0)
    base = Chain(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, stride=2, padding=1),
                 head=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)))
    images = torch.rand(4, 3, 8, 8) * 100  # never used by the default
    for name in FEATURE_PROXIES:
        torch.manual_seed(3)
        default = get_proxy(name)(copy.deepcopy(base), _batch(images))
        torch.manual_seed(3)
        net = copy.deepcopy(base)
        reinitialise(net, "kaiming_norm_fanin")
        x = torch.randn(4, 3, 8, 8)
        by_hand = get_proxy(name)(net, _batch(x), init="none", inputs="batch")
        assert default == by_hand, name


# ------------------------------------------------------------------ sharing, determinism
def _nb201_scores(arch: str, cache: PassCache | None, n: int = 8) -> dict[str, float]:
    torch.manual_seed(0)
    base = NB201Space().build(arch, 10).train()
    batch = _batch(torch.randn(n, 3, 32, 32))
    out = {}
    for name in ALL:
        net = copy.deepcopy(base)
        torch.manual_seed(1)  # the engine reseeds before every proxy
        if cache is None:
            out[name] = get_proxy(name)(net, batch)
        else:
            with sharing(cache, variant="x"):
                out[name] = get_proxy(name)(net, batch)
    return out


def test_shared_pass_gives_bit_identical_scores() -> None:
    alone = _nb201_scores(MIXED, None)
    told = PassCache(wanted={p for name in ALL for p in get_proxy(name).passes})
    assert _nb201_scores(MIXED, told) == alone
    assert told.computed == 1 and told.hits == 2  # one forward+backward serves the three
    untold = PassCache()  # forward-only first; trainability runs its own (same draws)
    assert _nb201_scores(MIXED, untold) == alone
    assert untold.computed == 2 and untold.hits == 2  # trainability looked first, then ran its own


def test_settings_are_part_of_the_pass_name() -> None:
    torch.manual_seed(0)
    base = Chain(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    batch = _batch(torch.randn(3, 3, 6, 6))
    cache = PassCache()
    with sharing(cache, variant="x"):
        torch.manual_seed(1)
        gaussian = az_expressivity(copy.deepcopy(base), batch)
        torch.manual_seed(1)
        real = az_expressivity(copy.deepcopy(base), batch, inputs="batch")
    assert cache.computed == 2 and gaussian != real
    with sharing(cache, variant="x"):  # another eigenvalue precision is another pass
        torch.manual_seed(1)
        precise = az_expressivity(copy.deepcopy(base), batch, eig_dtype="float64")
    assert cache.computed == 3 and precise == pytest.approx(gaussian, rel=1e-5)


def test_deterministic_given_the_seed() -> None:
    torch.manual_seed(0)
    base = Chain(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    batch = _batch(torch.randn(3, 3, 6, 6))

    def run(seed: int) -> float:
        torch.manual_seed(seed)
        return az_trainability(copy.deepcopy(base), batch)

    assert run(5) == run(5) and run(5) != run(6)


# ------------------------------------------------------------------ errors
def test_clear_errors_on_networks_and_settings_it_cannot_score() -> None:
    x = _batch(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="`cells`"):
        az_expressivity(nn.Sequential(nn.Conv2d(3, 3, 1)), x)
    with pytest.raises(ValueError, match="`cells`"):
        cell_blocks(Chain())

    class Parallel(Chain):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return sum(block(t) for block in self.cells)

    with pytest.raises(ValueError, match="one after the other"):
        az_expressivity(Parallel(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)), x)

    class Flat(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return t.flatten(1)

    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        az_expressivity(Chain(Flat()), x)
    with pytest.raises(ValueError, match="integer downsampling"):
        az_trainability(Chain(nn.Conv2d(3, 3, 2)), _batch(torch.randn(2, 3, 5, 5)))  # 5×5 → 4×4
    with pytest.raises(ValueError, match="unknown inputs"):
        az_expressivity(Chain(nn.Conv2d(3, 3, 1)), x, inputs="uniform")
    with pytest.raises(ValueError, match="unknown init"):
        az_progressivity(Chain(nn.Conv2d(3, 3, 1)), x, init="orthogonal")
    with pytest.raises(ValueError, match="unknown eig_dtype"):
        az_progressivity(Chain(nn.Conv2d(3, 3, 1)), x, eig_dtype="float16")


# ------------------------------------------------------------------ complexity
def test_api_flops_by_hand_counts_conv_and_linear_only() -> None:
    """Conv MACs (+ bias), Linear in·out + out; BN, ReLU and pooling cost nothing (xautodl)."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=True), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.AvgPool2d(2), nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5), nn.Linear(5, 2, bias=False))
    net.train()
    before = copy.deepcopy(net.state_dict())
    expected = (9 * 3 * 8 * 64 + 8 * 64) + (9 * 8 * 8 / 4 * 16) + (8 * 5 + 5) + 5 * 2
    assert api_flops(net, (1, 3, 8, 8)) == pytest.approx(expected / 1e6, rel=1e-12)
    assert api_flops(net, (4, 3, 8, 8)) == pytest.approx(expected / 1e6, rel=1e-12)  # per input
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize(
    "arch, classes, api_value",
    [
        (BEST, 10, 153.27297),  # API (tss_general.ipynb output, arch 13714): 153.27 M on cifar10, 153.28 on cifar100
        (BEST, 100, 153.27882),
        ("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|", 10,
         121.81569),  # arch 3558: API 121.82 M
    ],
)
def test_complexity_equals_the_nats_bench_api_flops(arch: str, classes: int, api_value: float) -> None:
    net = NB201Space().build(arch, classes).train()
    batch = _batch(torch.randn(2, 3, 32, 32), classes)
    assert az_complexity(net, batch) == pytest.approx(api_value, abs=1e-9)
    assert round(az_complexity(net, batch), 2) == round(api_value, 2)
    assert az_complexity(net, batch) != pytest.approx(get_proxy("flops")(net, batch), rel=1e-3)  # not torchstat


# ------------------------------------------------------------------ NB201 smoke
def test_nb201_smoke_values() -> None:
    scores = _nb201_scores(BEST, None, n=8)
    assert all(math.isfinite(v) for v in scores.values())
    assert 0 < scores["az_expressivity"] <= 18 * math.log(64)  # 18 features, at most log(C) each
    assert scores["az_trainability"] <= 0
    assert scores["az_complexity"] == pytest.approx(153.27297)
