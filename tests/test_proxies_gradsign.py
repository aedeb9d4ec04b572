"""gradsign and gradsign_mean: hand values, NumPy per-sample maths, single-sample BatchNorm, quirks, NB201."""

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
from proxybench.proxies.gradsign import SignTally, gradsign, gradsign_mean, per_sample_weight_grads, reduce_tally
from proxybench.proxies.passes import PassCache, sharing
from proxybench.spaces.nb201_net import NB201Network

NB201_OPS = ("nor_conv_3x3", "none", "avg_pool_3x3", "skip_connect", "nor_conv_1x1", "none")


def _batch(x: torch.Tensor, labels: list[int] | torch.Tensor, num_classes: int = 10) -> ProxyBatch:
    return ProxyBatch(x, torch.as_tensor(labels, dtype=torch.long), num_classes)


def _reference_loop(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """get_grad_conflict written out: one zero_grad/forward/backward per sample, NumPy signs, nansum/nanmean."""
    net.train()
    rows = []
    for i in range(x.shape[0]):
        net.zero_grad()
        F.cross_entropy(net(x[[i]]), y[[i]]).backward()
        rows.append(np.concatenate([
            (m.weight.grad if m.weight.grad is not None else torch.zeros_like(m.weight)).detach().numpy().ravel()
            for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
        ]))
    agreement = np.abs(np.sign(np.stack(rows)).sum(axis=0))
    return float(np.nansum(agreement)), float(np.nanmean(agreement))


class MLP(nn.Module):
    def __init__(self, d: int, h: int, c: int, with_dead: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.fc2 = nn.Linear(h, c)
        self.dead = nn.Linear(d, 5) if with_dead else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if self.dead is not None:
            self.dead(x)  # output discarded: its weight gets no gradient
        return self.fc2(torch.relu(self.fc1(x)))


def _mlp_sample_grads_numpy(net: MLP, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample (dL_i/dW1, dL_i/dW2) by hand, one row per sample, concatenated in module order."""
    w1, b1 = net.fc1.weight.detach().numpy(), net.fc1.bias.detach().numpy()
    w2, b2 = net.fc2.weight.detach().numpy(), net.fc2.bias.detach().numpy()
    x = x.reshape(x.shape[0], -1)
    z1 = x @ w1.T + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ w2.T + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    delta2 = p - np.eye(w2.shape[0])[y]  # a batch of one: no 1/N
    delta1 = (delta2 @ w2) * (z1 > 0)
    g1 = np.einsum("nh,nd->nhd", delta1, x).reshape(len(x), -1)
    g2 = np.einsum("nc,nh->nch", delta2, a1).reshape(len(x), -1)
    return np.concatenate([g1, g2], axis=1)


# ------------------------------------------------------------------ registry
@pytest.mark.parametrize("name", ["gradsign", "gradsign_mean"])
def test_registry_metadata(name: str) -> None:
    spec = get_proxy(name)
    assert spec.higher_is_better is True
    assert "2110.08616" in spec.paper and "GradSign" in spec.paper
    assert spec.needs == {"batch", "labels"}
    assert spec.passes == ("per_sample_grads",)
    assert spec.family == "gradsign"
    assert spec.shares_network is True
    assert dict(spec.defaults) == {"method": "vmap"}
    if name == "gradsign_mean":
        assert "AZ-NAS" in spec.paper


# ------------------------------------------------------------------ hand values and NumPy maths
def test_hand_value_three_samples() -> None:
    """W = 0, p = (1/2, 1/2): g_i = (p - e_y) x_i = (-.5, .5), (1, -1), (.5, -.5) for x = 1, 2, -1, y = 0, 1, 0.

    Element 0 signs (-, +, +) sum to 1, element 1 (+, -, -) to -1: GradSign 2, per-weight mean 1.
    """
    net = nn.Sequential(nn.Flatten(), nn.Linear(1, 2, bias=False)).double()
    with torch.no_grad():
        net[1].weight.zero_()
    batch = _batch(torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64).reshape(3, 1, 1, 1), [0, 1, 0], 2)
    assert gradsign(net, batch) == 2.0
    assert gradsign_mean(net, batch) == 1.0


def test_matches_numpy_per_sample_backprop() -> None:
    torch.manual_seed(0)
    net = MLP(12, 9, 4).double()
    x = torch.randn(11, 3, 2, 2, dtype=torch.float64)  # not a multiple of the vmap chunk
    y = torch.randint(0, 4, (11,))
    rows = _mlp_sample_grads_numpy(net, x.numpy(), y.numpy())
    grads = [torch.cat([g.flatten(1) for g in chunk], 1) for chunk in per_sample_weight_grads(net, x, y)]
    np.testing.assert_allclose(torch.cat(grads).numpy(), rows, rtol=1e-10, atol=1e-14)
    agreement = np.abs(np.sign(rows).sum(axis=0))
    assert gradsign(net, _batch(x, y, 4)) == float(agreement.sum())
    assert gradsign_mean(net, _batch(x, y, 4)) == pytest.approx(float(agreement.mean()), rel=1e-12)


def test_bounds_and_single_sample() -> None:
    """0 <= score <= N * #weights; one sample scores its number of nonzero gradient elements."""
    torch.manual_seed(1)
    net = MLP(12, 9, 4).double()
    x = torch.randn(6, 3, 2, 2, dtype=torch.float64)
    y = [0, 1, 2, 3, 0, 1]
    n_weights = 12 * 9 + 9 * 4
    assert 0 <= gradsign(net, _batch(x, y, 4)) <= 6 * n_weights
    one = _mlp_sample_grads_numpy(net, x[:1].numpy(), np.array(y[:1]))
    assert gradsign(net, _batch(x[:1], y[:1], 4)) == np.count_nonzero(one)


def test_invariant_to_sample_order() -> None:
    torch.manual_seed(2)
    net = MLP(12, 9, 4).double()
    x = torch.randn(7, 3, 2, 2, dtype=torch.float64)
    y = torch.randint(0, 4, (7,))
    perm = torch.randperm(7)
    assert gradsign(net, _batch(x[perm], y[perm], 4)) == gradsign(net, _batch(x, y, 4))


def test_linear_classifier_closed_form_independent_of_weights() -> None:
    """One bias-free Linear: g_i = (p_i - e_{y_i}) x_i^T and sign(p_ic - [c = y_i]) = +1 if c != y_i else -1,
    so GradSign = sum_{c,d} |sum_i s_ic sign(x_id)| whatever the weights or a positive input scale."""
    torch.manual_seed(3)
    x = torch.randn(9, 2, 2, 2, dtype=torch.float64)
    y = torch.randint(0, 3, (9,))
    s = np.where(np.eye(3)[y.numpy()] == 1, -1.0, 1.0)  # (N, C)
    expected = float(np.abs(s.T @ np.sign(x.reshape(9, -1).numpy())).sum())
    for seed, scale in ((0, 1.0), (1, 1.0), (2, 5.0)):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Flatten(), nn.Linear(8, 3, bias=False)).double()
        assert gradsign(net, _batch(scale * x, y, 3)) == expected


# ------------------------------------------------------------------ BatchNorm: each sample its own statistics
class ConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_single_sample_batchnorm_semantics() -> None:
    """Equal to the reference's loop (each sample normalised by its own statistics), not to batch-BN rows."""
    torch.manual_seed(3)
    net = ConvBN().double().train()
    x = torch.randn(6, 3, 5, 5, dtype=torch.float64)
    y = torch.randint(0, 5, (6,))
    ref_sum, ref_mean = _reference_loop(copy.deepcopy(net), x, y)
    assert gradsign(net, _batch(x, y, 5)) == ref_sum
    assert gradsign_mean(net, _batch(x, y, 5)) == pytest.approx(ref_mean, rel=1e-12)

    # Per-sample gradients under *batch* statistics (rows of the Jacobian of the per-sample losses of
    # one batched forward) give other signs: the semantics matter.
    weights = (net.conv.weight, net.fc.weight)
    losses = F.cross_entropy(net(x), y, reduction="none")
    rows = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(losses[i], weights, retain_graph=True)])
                        for i in range(6)])
    assert float(torch.sign(rows).sum(0).abs().sum()) != ref_sum


@pytest.mark.parametrize("method", ["vmap", "loop"])
def test_nb201_float64_equals_reference_loop(method: str) -> None:
    torch.manual_seed(4)
    net = NB201Network(NB201_OPS, 10, channels=4, cells_per_stage=1).double()
    x = torch.randn(10, 3, 16, 16, dtype=torch.float64)
    y = torch.randint(0, 10, (10,))
    ref_sum, ref_mean = _reference_loop(copy.deepcopy(net), x, y)
    assert gradsign(copy.deepcopy(net), _batch(x, y), method=method) == ref_sum
    assert gradsign_mean(copy.deepcopy(net), _batch(x, y), method=method) == pytest.approx(ref_mean, rel=1e-12)


def test_nb201_float32_close_to_reference_loop() -> None:
    """float32: the loop reproduces the reference's rounding; vmap rounds differently (a few sign flips)."""
    torch.manual_seed(5)
    net = NB201Network(NB201_OPS, 10, channels=4, cells_per_stage=1)
    x = torch.randn(10, 3, 16, 16)
    y = torch.randint(0, 10, (10,))
    ref_sum, _ = _reference_loop(copy.deepcopy(net), x, y)
    assert gradsign(copy.deepcopy(net), _batch(x, y), method="loop") == pytest.approx(ref_sum, rel=1e-6)
    assert gradsign(copy.deepcopy(net), _batch(x, y), method="vmap") == pytest.approx(ref_sum, rel=1e-3)


# ------------------------------------------------------------------ reference quirks
def test_nan_elements_drop_out() -> None:
    """nansum skips a weight element whose sign sum is NaN; nanmean divides by the non-NaN count."""
    tally = SignTally(sign_sums=[torch.tensor([3.0, -1.0, float("nan")], dtype=torch.float64),
                                 torch.tensor([[0.0, float("nan")]], dtype=torch.float64)], samples=3)
    assert reduce_tally(tally, "sum") == 4.0
    assert reduce_tally(tally, "mean") == pytest.approx(4.0 / 3)
    all_nan = SignTally(sign_sums=[torch.full((4,), float("nan"), dtype=torch.float64)], samples=2)
    assert reduce_tally(all_nan, "sum") == 0.0  # np.nansum of nothing
    assert reduce_tally(all_nan, "mean") == -math.inf  # AZ-NAS: NaN -> -inf
    with pytest.raises(ValueError, match="unknown reduction"):
        reduce_tally(tally, "max")


def test_nan_sample_end_to_end() -> None:
    """A NaN image makes every gradient of its pass NaN: every element drops out."""
    net = MLP(12, 9, 4).double()
    x = torch.randn(3, 3, 2, 2, dtype=torch.float64)
    x[1] = float("nan")
    assert gradsign(net, _batch(x, [0, 1, 2], 4)) == 0.0
    assert gradsign_mean(net, _batch(x, [0, 1, 2], 4)) == -math.inf


def test_unreached_weights_count_as_zero_in_the_mean() -> None:
    """A weight the loss never reaches has agreement 0 (reference: zeros_like): same sum, larger denominator."""
    torch.manual_seed(6)
    plain = MLP(12, 9, 4).double()
    dead = MLP(12, 9, 4, with_dead=True).double()
    dead.fc1.load_state_dict(plain.fc1.state_dict())
    dead.fc2.load_state_dict(plain.fc2.state_dict())
    batch = _batch(torch.randn(5, 3, 2, 2, dtype=torch.float64), [0, 1, 2, 3, 0], 4)
    total = gradsign(plain, batch)
    assert gradsign(dead, batch) == total
    n_plain, n_dead = 12 * 9 + 9 * 4, 12 * 9 + 9 * 4 + 12 * 5
    assert gradsign_mean(plain, batch) == pytest.approx(total / n_plain, rel=1e-12)
    assert gradsign_mean(dead, batch) == pytest.approx(total / n_dead, rel=1e-12)


# ------------------------------------------------------------------ sharing, errors, determinism, network
def test_shared_pass_gives_identical_scores() -> None:
    torch.manual_seed(7)
    net = NB201Network(NB201_OPS, 10, channels=4, cells_per_stage=1)
    batch = _batch(torch.randn(6, 3, 16, 16), [0, 1, 2, 3, 4, 5])
    alone = (gradsign(copy.deepcopy(net), batch), gradsign_mean(copy.deepcopy(net), batch))
    with sharing(PassCache(), variant="x") as cache:
        together = (gradsign(copy.deepcopy(net), batch), gradsign_mean(copy.deepcopy(net), batch))
    assert together == alone
    assert cache.computed == 1 and cache.hits == 1
    with sharing(PassCache(), variant="x") as cache:
        gradsign(copy.deepcopy(net), batch, method="vmap")
        gradsign(copy.deepcopy(net), batch, method="loop")
    assert cache.computed == 2  # the method is part of the pass name


def test_bad_inputs_raise() -> None:
    batch = _batch(torch.randn(2, 3, 2, 2), [0, 1], 4)
    with pytest.raises(ValueError, match="no nn.Conv2d or nn.Linear"):
        gradsign(nn.Sequential(nn.Flatten()), batch)
    with pytest.raises(ValueError, match="unknown method"):
        gradsign(MLP(12, 3, 4), batch, method="jacrev")
    with pytest.raises(ValueError, match="empty"):
        gradsign(MLP(12, 3, 4), ProxyBatch(torch.randn(0, 3, 2, 2), torch.zeros(0, dtype=torch.long), 4))


def test_leaves_network_untouched_and_is_deterministic() -> None:
    torch.manual_seed(8)
    net = NB201Network(("nor_conv_3x3",) * 6, 10, channels=4, cells_per_stage=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batch = _batch(torch.randn(5, 3, 16, 16), [0, 1, 2, 3, 4])
    first = gradsign(net, batch)
    assert gradsign(net, batch) == first
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # running statistics included: shares_network is safe
    assert all(p.grad is None for p in net.parameters())


def test_nb201_smoke() -> None:
    torch.manual_seed(0)
    net = NB201Network(("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3"), 10)
    net.train()
    n = 8
    batch = _batch(torch.randn(n, 3, 32, 32), torch.arange(n) % 10)
    total = get_proxy("gradsign")(net, batch)
    n_weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert math.isfinite(total) and 0 < total <= n * n_weights
    assert get_proxy("gradsign_mean")(net, batch) == pytest.approx(total / n_weights, rel=1e-12)
