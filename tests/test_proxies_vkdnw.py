"""VKDNW: hand-computed Fisher spectra on tiny networks, the reference's quirks, NB201."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from proxybench.batch import ProxyBatch
from proxybench.proxies import get_proxy
from proxybench.proxies.passes import PassCache, sharing
from proxybench.proxies.vkdnw import (
    chosen_weights,
    decile_entropy,
    fisher_matrix,
    logit_jacobian,
    multinomial_factor,
    smoothed_probabilities,
    vkdnw,
    vkdnw_dim,
    vkdnw_init,
    vkdnw_single,
)
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import parse_arch
from proxybench.spaces.nb201_net import NB201Network

LEVELS = np.arange(1, 10) / 10


def _batch(x: torch.Tensor, num_classes: int = 10) -> ProxyBatch:
    return ProxyBatch(x, torch.zeros(x.shape[0], dtype=torch.long), num_classes)


def _two_layer(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))


# ---------------------------------------------------------------- independent numpy maths
def _np_probs(z: np.ndarray) -> np.ndarray:
    """The reference's smoothing with its float16 constants, written with numpy's float16."""
    alpha = np.float16(0.05)
    keep = np.float16(np.float16(1.0) - alpha)
    floor = np.float16(np.float32(alpha) / np.float32(z.shape[1]))
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True) * float(keep) + float(floor)


def _np_factor(p: np.ndarray) -> np.ndarray:
    """Tanabe & Sagae's factor, element by element (q_{C-1} := 0, q_{-1} := 1)."""
    n, c = p.shape
    out = np.zeros((n, c, c))
    for s in range(n):
        q = 1 - np.cumsum(p[s])
        q[-1] = 0
        for j in range(c):
            prev = 1.0 if j == 0 else q[j - 1]
            d = math.sqrt(p[s, j] * q[j] / prev)
            out[s, j, j] = d
            for i in range(j + 1, c):
                out[s, i, j] = -p[s, i] / q[j] * d
    return out


def _np_fisher(jac: np.ndarray, z: np.ndarray) -> np.ndarray:
    lower = _np_factor(_np_probs(z))
    scaled = lower @ jac
    return np.mean(np.transpose(scaled, (0, 2, 1)) @ scaled, axis=0)


def _np_entropy(lam: np.ndarray) -> float:
    q = np.quantile(lam, LEVELS)  # linear interpolation, as torch.quantile
    t = q / (np.abs(q).sum() + 1e-10)
    return float(-(t * np.log(t + 1e-10)).sum())


def _np_two_layer_jacobian(net: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and d logits / d(W1[0,0], b1[0], W2[0,0], b2[0]) of Linear-ReLU-Linear, by hand."""
    w1, b1 = net[1].weight.detach().double().numpy(), net[1].bias.detach().double().numpy()
    w2, b2 = net[3].weight.detach().double().numpy(), net[3].bias.detach().double().numpy()
    a = x @ w1.T + b1
    h = np.maximum(a, 0)
    z = h @ w2.T + b2
    n, c = z.shape
    jac = np.zeros((n, c, 4))
    on = (a[:, 0] > 0).astype(float)
    for k in range(c):
        jac[:, k, 0] = w2[k, 0] * on * x[:, 0]
        jac[:, k, 1] = w2[k, 0] * on
    jac[:, 0, 2] = h[:, 0]
    jac[:, 0, 3] = 1.0
    return jac, z


# ---------------------------------------------------------------- registry
def test_registry_metadata() -> None:
    defaults = {"init": "kaiming_norm_fanin", "inputs": "gaussian", "n_samples": 64, "n_tensors": 128,
                "weights_per_tensor": 1, "svd_dtype": "float64"}
    for name, passes, settings in (
        ("vkdnw", ("per_sample_grads",), defaults),
        ("vkdnw_single", ("weights", "per_sample_grads"), defaults),
        ("vkdnw_dim", ("weights",), {}),
    ):
        spec = get_proxy(name)
        assert spec.higher_is_better is True
        assert "2502.04975" in spec.paper and spec.family == "vkdnw"
        assert spec.needs == frozenset() and spec.passes == passes
        assert dict(spec.defaults) == settings
    assert get_proxy("vkdnw_dim").shares_network is True
    assert not get_proxy("vkdnw").shares_network and not get_proxy("vkdnw_single").shares_network


# ---------------------------------------------------------------- the pieces
def test_smoothing_keeps_the_reference_float16_constants() -> None:
    """α = 0.05 held in float16: 1-α → 0.9501953125, α/10 → 0.00499725..., rows sum to ~1.000168."""
    logits = torch.randn(5, 10)
    p = smoothed_probabilities(logits)
    torch.testing.assert_close(p, torch.softmax(logits, 1) * 0.9501953125 + 0.00499725341796875, rtol=0, atol=0)
    torch.testing.assert_close(p.sum(1), torch.full((5,), 0.9501953125 + 10 * 0.00499725341796875))
    assert float(p.sum(1).mean()) == pytest.approx(1.000168, abs=2e-6)
    torch.testing.assert_close(p.double(), torch.from_numpy(_np_probs(logits.double().numpy())), rtol=1e-6, atol=0)


def test_multinomial_factor_matches_elementwise_formula_and_covariance() -> None:
    torch.manual_seed(1)
    logits = torch.randn(4, 6, dtype=torch.float64)
    p = smoothed_probabilities(logits)
    lower = multinomial_factor(p)
    np.testing.assert_allclose(lower.numpy(), _np_factor(p.numpy()), rtol=1e-12, atol=1e-15)
    assert torch.equal(lower, torch.tril(lower)) and (lower[:, :, -1] == 0).all()
    # L Lᵀ is the multinomial covariance up to the smoothing's Σp ≠ 1 (the reference back-tests
    # to 1e-3); with probabilities that do sum to 1 it is exact.
    cov = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    assert (lower @ lower.transpose(1, 2) - cov).abs().max() < 1e-3
    exact = torch.softmax(logits, 1)
    f = multinomial_factor(exact)
    torch.testing.assert_close(f @ f.transpose(1, 2), torch.diag_embed(exact) - exact[:, :, None] * exact[:, None, :])


def test_fisher_uses_lt_l_not_l_lt() -> None:
    """Reference quirk: F = mean (L J)ᵀ(L J) = Jᵀ LᵀL J, not Jᵀ (diag p - ppᵀ) J."""
    torch.manual_seed(2)
    jac = torch.randn(7, 5, 4, dtype=torch.float64)
    logits = torch.randn(7, 5, dtype=torch.float64)
    got = fisher_matrix(jac, logits)
    np.testing.assert_allclose(got.numpy(), _np_fisher(jac.numpy(), logits.numpy()), rtol=1e-10, atol=1e-12)
    p = smoothed_probabilities(logits)
    textbook = torch.einsum("ncp,ncd,ndq->pq", jac, torch.diag_embed(p) - p[:, :, None] * p[:, None, :], jac) / 7
    assert not torch.allclose(got, textbook, rtol=1e-2)
    torch.testing.assert_close(got, got.T)


def test_decile_entropy_by_hand_and_invariances() -> None:
    lam = torch.tensor([5.0, 1.0, 0.0, 2.0, 9.0, 3.0, 0.5, 7.0], dtype=torch.float64)
    assert decile_entropy(lam) == pytest.approx(_np_entropy(lam.numpy()), rel=1e-12)
    assert decile_entropy(lam * 1e4) == pytest.approx(decile_entropy(lam), rel=1e-9)  # scale-free
    assert decile_entropy(lam.flip(0)) == decile_entropy(lam)
    assert decile_entropy(torch.full((20,), 3.0)) == pytest.approx(math.log(9), rel=1e-6)  # the maximum
    assert decile_entropy(torch.zeros(21)) == 0.0  # a rank-one Fisher of 21 weights: every decile is 0
    one_decile = torch.zeros(10)
    one_decile[-1] = 10.0  # the 0.9 decile interpolates to 1, the others are 0: all weight on one
    assert decile_entropy(one_decile) == pytest.approx(0.0, abs=1e-8)
    assert decile_entropy(one_decile) == pytest.approx(_np_entropy(one_decile.numpy()), abs=1e-12)


def test_chosen_weights_first_tensors_and_linspace_indices() -> None:
    net = NB201Network(("nor_conv_3x3",) * 6, 10)
    names = [n for n, _ in net.named_parameters()]
    assert len(names) == 291
    chosen = chosen_weights(net, 128, 1)
    assert [n for n, _ in chosen] == names[:128]
    assert all(idx.tolist() == [0] for _, idx in chosen)
    assert [n for n, _ in chosen_weights(net, -2, 1)] == names[:145]  # the reference's negative form
    params = dict(net.named_parameters())
    name, idx = chosen_weights(net, 1, 3)[0]
    n = params[name].numel()
    assert idx.tolist() == [0, int((n - 1) / 2), n - 1]
    assert chosen_weights(net, 500, 1)[-1][0] == names[-1]  # more than there are: all of them
    with pytest.raises(ValueError, match="not 0"):
        chosen_weights(net, 0, 1)
    with pytest.raises(ValueError, match="weights_per_tensor"):
        chosen_weights(net, 128, 0)
    with pytest.raises(ValueError, match="no parameters"):
        chosen_weights(nn.Sequential(nn.Flatten()), 128, 1)


def test_init_is_kaiming_fan_in_and_resets_batchnorm() -> None:
    net = nn.Sequential(nn.Conv2d(64, 64, 3, bias=True), nn.BatchNorm2d(64), nn.Flatten(), nn.Linear(10, 2000))
    with torch.no_grad():
        net[1].weight.fill_(3.0)
        net[1].bias.fill_(1.0)
        net[1].running_mean.fill_(5.0)
        net[1].running_var.fill_(7.0)
    torch.manual_seed(0)
    vkdnw_init(net)
    assert float(net[0].weight.detach().std()) == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.02)
    assert float(net[3].weight.detach().std()) == pytest.approx(math.sqrt(2 / 10), rel=0.02)
    assert (net[0].bias == 0).all() and (net[3].bias == 0).all()
    assert (net[1].weight == 1).all() and (net[1].bias == 0).all()
    assert (net[1].running_mean == 0).all() and (net[1].running_var == 1).all()


# ---------------------------------------------------------------- whole proxy on tiny nets
def test_two_layer_network_against_hand_computed_fisher() -> None:
    net = _two_layer(3)
    torch.manual_seed(4)
    x = torch.randn(8, 3)
    jac_np, z_np = _np_two_layer_jacobian(net, x.double().numpy())
    jac, logits = logit_jacobian(net, x.reshape(8, 3, 1, 1), chosen_weights(net, 128, 1))
    np.testing.assert_allclose(jac.numpy(), jac_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits.numpy(), z_np, rtol=1e-5, atol=1e-6)
    lam = np.linalg.svd(_np_fisher(jac_np, z_np), compute_uv=False)
    expected = _np_entropy(lam)
    got = vkdnw(net, _batch(x.reshape(8, 3, 1, 1), 3), init="none", inputs="images", n_samples=8)
    assert got == pytest.approx(expected, abs=2e-5)
    assert 0 < got <= math.log(9)
    assert vkdnw_dim(net, _batch(x.reshape(8, 3, 1, 1), 3)) == 4.0


def test_only_the_first_n_samples_of_the_batch_are_used() -> None:
    net = _two_layer(5)
    torch.manual_seed(6)
    x = torch.randn(10, 3, 1, 1)
    other = x.clone()
    other[6:] = torch.randn(4, 3, 1, 1)
    kw = dict(init="none", inputs="images", n_samples=6)
    assert vkdnw(copy.deepcopy(net), _batch(x, 3), **kw) == vkdnw(copy.deepcopy(net), _batch(other, 3), **kw)
    with pytest.raises(ValueError, match="needs 11 images"):
        vkdnw(net, _batch(x, 3), init="none", inputs="images", n_samples=11)


def test_eval_mode_samples_are_independent_and_match_a_backward_loop() -> None:
    """BatchNorm reads its running statistics in eval mode, so one sample's Jacobian ignores the others."""
    torch.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 5))
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    net.eval()
    x = torch.randn(4, 3, 6, 6)
    chosen = chosen_weights(net, 128, 2)
    jac, logits = logit_jacobian(net, x, chosen)
    alone, _ = logit_jacobian(net, x[2:3], chosen)
    torch.testing.assert_close(alone[0], jac[2])
    params = dict(net.named_parameters())
    for n in range(4):
        for c in range(5):
            grads = torch.autograd.grad(net(x[n:n + 1])[0, c], [params[k] for k, _ in chosen])
            row = torch.cat([g.reshape(-1)[idx] for g, (_, idx) in zip(grads, chosen)])
            torch.testing.assert_close(jac[n, c], row, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logits, net(x).detach())


def test_proxy_runs_in_eval_mode_and_restores_train_mode() -> None:
    torch.manual_seed(8)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 5)).train()
    torch.manual_seed(9)
    vkdnw(net, _batch(torch.randn(6, 3, 6, 6), 5), init="none", inputs="images", n_samples=6)
    assert net.training
    assert (net[1].running_mean == 0).all() and (net[1].running_var == 1).all()  # eval: stats untouched
    assert int(net[1].num_batches_tracked) == 0


def test_gaussian_inputs_are_drawn_after_the_weights() -> None:
    """Default protocol = seed → Kaiming init → torch.randn(n, C, H, W); the batch's images are unused."""
    base = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 5))
    images, small = _batch(torch.rand(9, 3, 6, 6), 5), _batch(torch.rand(2, 3, 6, 6), 5)
    torch.manual_seed(10)
    default = vkdnw(copy.deepcopy(base), images, n_samples=7)
    torch.manual_seed(10)
    other = vkdnw(copy.deepcopy(base), small, n_samples=7)
    assert default == other
    manual = copy.deepcopy(base)
    torch.manual_seed(10)
    vkdnw_init(manual)
    noise = torch.randn(7, 3, 6, 6)
    assert vkdnw(manual, _batch(noise, 5), init="none", inputs="images", n_samples=7) == default


def test_bad_settings_and_networks_raise() -> None:
    net = _two_layer()
    b = _batch(torch.randn(4, 3, 1, 1), 3)
    with pytest.raises(ValueError, match="unknown init"):
        vkdnw(net, b, init="xavier")
    with pytest.raises(ValueError, match="unknown inputs"):
        vkdnw(net, b, inputs="uniform")
    with pytest.raises(ValueError, match="n_samples"):
        vkdnw(net, b, n_samples=0)
    with pytest.raises(ValueError, match="unknown svd_dtype"):
        vkdnw(net, b, svd_dtype="float16")

    class Pair(nn.Module):  # the reference's TinyNetwork returns (features, logits)
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, self.fc(x.flatten(1))

    with pytest.raises(TypeError, match="logits tensor"):
        vkdnw(Pair(), b, n_samples=4)
    with pytest.raises(ValueError, match="no parameters"):
        vkdnw(nn.Flatten(), b, n_samples=4)
    broken = _two_layer()
    with torch.no_grad():
        broken[3].weight.fill_(float("inf"))
    with pytest.raises(ValueError, match="non-finite"):
        vkdnw(broken, b, init="none", n_samples=4)


def test_deterministic_and_shared_pass_is_bit_identical() -> None:
    net = NB201Network(("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3"),
                       10, channels=4, cells_per_stage=1)
    b = _batch(torch.randn(8, 3, 8, 8))
    kw = dict(n_samples=8)
    alone = {}
    for name, fn in (("vkdnw", vkdnw), ("vkdnw_single", vkdnw_single)):
        torch.manual_seed(11)
        alone[name] = fn(copy.deepcopy(net), b, **kw)
    torch.manual_seed(11)
    assert vkdnw(copy.deepcopy(net), b, **kw) == alone["vkdnw"]
    cache = PassCache()
    with sharing(cache, variant="x"):
        torch.manual_seed(11)
        first = vkdnw(copy.deepcopy(net), b, **kw)
        torch.manual_seed(11)
        second = vkdnw_single(copy.deepcopy(net), b, **kw)
    assert (first, second) == (alone["vkdnw"], alone["vkdnw_single"])
    assert cache.computed == 1 and cache.hits == 1
    dim = vkdnw_dim(net, b)
    assert second == pytest.approx(dim + first, abs=1e-12)
    with sharing(PassCache(), variant="x"):  # another setting is another pass
        torch.manual_seed(11)
        assert vkdnw(copy.deepcopy(net), b, n_samples=6) != first


def test_svd_in_float64_by_default_and_float32_is_the_reference_call() -> None:
    """A network whose output ignores its input has a rank-one Fisher matrix: every decile is 0.

    The default decomposes the float32 matrix in float64 (score ≈ 0); ``svd_dtype="float32"``
    is ``torch.svd(F).S`` of the float32 matrix, as the reference (on the CPU, LAPACK returns
    the zero singular values of such a matrix as a plateau of equal values, which scores
    near log 9; not asserted, it is the platform's rounding).
    """
    dead = "|none~0|+|none~0|avg_pool_3x3~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"
    net = NB201Network(parse_arch(dead), 10, channels=4, cells_per_stage=1)
    b = _batch(torch.zeros(6, 3, 8, 8))
    torch.manual_seed(12)
    assert vkdnw(copy.deepcopy(net), b, n_samples=6) == pytest.approx(0.0, abs=1e-4)
    torch.manual_seed(12)
    got32 = vkdnw(copy.deepcopy(net), b, n_samples=6, svd_dtype="float32")
    copy32 = copy.deepcopy(net)
    torch.manual_seed(12)
    chosen = chosen_weights(copy32, 128, 1)
    vkdnw_init(copy32)
    x = torch.randn(6, 3, 8, 8)
    jac, logits = logit_jacobian(copy32.eval(), x, chosen)
    fisher = fisher_matrix(jac, logits)
    assert fisher.dtype == torch.float32 and int(torch.linalg.matrix_rank(fisher.double())) == 1
    assert got32 == decile_entropy(torch.svd(fisher).S)


# ---------------------------------------------------------------- NB201
@pytest.mark.parametrize("k, arch", [
    (0, "|skip_connect~0|+|none~0|avg_pool_3x3~1|+|none~0|skip_connect~1|avg_pool_3x3~2|"),
    (3, "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"),
    (6, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
])
def test_nb201_dim_counts_parameter_tensors(k: int, arch: str) -> None:
    """ℵ = stem 3 + 15 cells x 3 tensors per conv edge + 2 reductions x 7 + head 4 = 21 + 45k."""
    net = get_space("nb201").build(arch, 10)
    assert vkdnw_dim(net, _batch(torch.zeros(1, 3, 32, 32))) == 21 + 45 * k


def test_nb201_smoke_value() -> None:
    """The benchmark network (16 Gaussian inputs to stay fast; the default 64 is the slow test below)."""
    arch = "|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"
    torch.manual_seed(0)
    net = get_space("nb201").build(arch, 10).train()
    b = _batch(torch.zeros(64, 3, 32, 32))
    torch.manual_seed(0)
    score = vkdnw(copy.deepcopy(net), b, n_samples=16)
    assert math.isfinite(score) and 0 < score < math.log(9)
    torch.manual_seed(0)
    assert vkdnw_single(copy.deepcopy(net), b, n_samples=16) == pytest.approx(66 + score, abs=1e-12)


@pytest.mark.slow
def test_nb201_largest_network_smoke() -> None:
    torch.manual_seed(0)
    net = get_space("nb201").build(get_space("nb201").largest(), 10).train()
    torch.manual_seed(0)
    score = vkdnw(net, _batch(torch.zeros(64, 3, 32, 32)))
    assert math.isfinite(score) and 0 < score < math.log(9)


def test_jacov_kaiming_is_jacov_of_the_reinitialised_copy_and_never_reads_the_shared_jacobian():
    import copy

    from proxybench.proxies.activation import jacov
    from proxybench.proxies.aznas import reinitialise
    from proxybench.proxies.passes import PassCache, sharing
    from proxybench.proxies.vkdnw import jacov_kaiming
    from proxybench.spaces import get_space

    torch.manual_seed(0)
    net = get_space("nb201").build("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|"
                                   "nor_conv_3x3~1|avg_pool_3x3~2|", 10).train()
    g = torch.Generator().manual_seed(1)
    batch = ProxyBatch(torch.randn(8, 3, 32, 32, generator=g), torch.arange(8) % 10, 10)
    torch.manual_seed(7)
    by_hand = copy.deepcopy(net)
    reinitialise(by_hand, "kaiming_norm_fanin")
    expected = jacov(by_hand, batch)
    torch.manual_seed(7)
    alone = jacov_kaiming(copy.deepcopy(net), batch)
    assert alone == expected
    cache = PassCache(wanted={"input_grad", "loss_backward", "reinit_input_grad"})
    with sharing(cache, variant="v"):
        plain = jacov(copy.deepcopy(net), batch)  # fills the shared input Jacobian of the network as built
        torch.manual_seed(7)
        shared_run = jacov_kaiming(copy.deepcopy(net), batch)
    assert shared_run == alone and plain != alone
